import { readFileSync } from 'node:fs';
import { parseCsv } from './captions';

/**
 * Extra training captions (e.g. a teacher decoder's, for sequence-level distillation) from an
 * `image,caption` CSV. Every image must be a train photo: a caption of a dev photo would leak into
 * the scores training is tuned on.
 */
export function readExtraCaptions(csvPath: string, trainNames: Iterable<string>): Map<string, string[]> {
  const rows = parseCsv(readFileSync(csvPath, 'utf8'));
  const header = (rows.shift() ?? []).map((h) => h.trim().toLowerCase());
  const [imageCol, captionCol] = [header.indexOf('image'), header.indexOf('caption')];
  if (imageCol < 0 || captionCol < 0) throw new Error(`${csvPath}: the header must name columns 'image' and 'caption', got '${header.join(',')}'`);
  const train = new Set(trainNames);
  const out = new Map<string, string[]>();
  rows.forEach((row, i) => {
    if (row.length === 1 && !row[0].trim()) return;
    const name = row[imageCol]?.trim();
    const caption = row[captionCol]?.trim();
    if (!name || !caption) throw new Error(`${csvPath}: record ${i + 2} has no image or caption`);
    if (!train.has(name)) throw new Error(`${csvPath}: record ${i + 2} captions '${name}', which is not a train photo (extra captions may only add to the train split)`);
    out.set(name, [...(out.get(name) ?? []), caption]);
  });
  return out;
}

/** `base` with `extra`'s captions appended per image (a new map; `base` is left as it was). */
export function withExtraCaptions(base: ReadonlyMap<string, string[]>, extra: ReadonlyMap<string, string[]>): Map<string, string[]> {
  const out = new Map(base);
  for (const [name, caps] of extra) out.set(name, [...(base.get(name) ?? []), ...caps]);
  return out;
}

/** An `image,caption` CSV (RFC 4180 quoting), one row per caption. */
export function captionsCsv(captions: Iterable<[string, string]>): string {
  const q = (s: string) => (/[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  const lines = ['image,caption'];
  for (const [name, caption] of captions) lines.push(`${q(name)},${q(caption)}`);
  return `${lines.join('\n')}\n`;
}
