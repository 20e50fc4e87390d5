import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadCaptioner, type AttentionMap } from '../../shared/captioner';
import { decodeImage } from '../../shared/image/decode';
import type { CaptionDataset } from '../data/captions';
import { fileSource } from '../fs-source';

/** Words with no place of their own in a photo: their maps are left out of the gallery. */
const FUNCTION_WORDS = new Set(['a', 'an', 'the', 'is', 'are', 'in', 'on', 'of', 'and', 'with', 'at', 'to', 'its', 'his', 'her', 'their', 'while', 'into', 'through', 'from', 'by', 'for', 'as', 'near', 'some', 'two', 'three', 'other', 'another']);

export interface AttentionItem {
  name: string;
  caption: string;
  attention: AttentionMap;
}

/**
 * Captions `names` (beam 3) with an attention bundle and keeps each caption's maps: photos whose
 * caption names `focusWord` first, so a reader can check that word's map against the photo.
 */
export async function attentionItems(bundleDir: string, dataset: CaptionDataset, names: string[], count: number, focusWord = 'dog'): Promise<AttentionItem[]> {
  const captioner = await loadCaptioner(fileSource(bundleDir));
  try {
    if (captioner.manifest.decoder.architecture !== 'lstm-attention') throw new Error(`${bundleDir} has no attention decoder (decoder.architecture ${captioner.manifest.decoder.architecture})`);
    const items: AttentionItem[] = [];
    for (const name of names) {
      const r = captioner.caption(decodeImage(new Uint8Array(readFileSync(join(dataset.imageDir, name)))), { beam: 3, attention: true });
      items.push({ name, caption: r.caption, attention: r.attention! });
    }
    const has = (i: AttentionItem) => i.caption.split(' ').includes(focusWord);
    return [...items.filter(has), ...items.filter((i) => !has(i))].slice(0, count);
  } finally {
    captioner.dispose();
  }
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** One word's map over a copy of the photo: grid cells tinted by weight (relative to the word's largest), blurred a little. */
function overlay(imageUrl: string, word: string, map: AttentionMap, row: number[]): string {
  const [rows, cols] = map.grid;
  const max = Math.max(...row, 1e-6);
  const cells = row.map((w) => `<i style="background:rgba(255,${Math.round(210 * (1 - w / max))},0,${((0.8 * w) / max).toFixed(2)})"></i>`).join('');
  return `<div class="w"><div class="ph"><img src="${imageUrl}" alt=""><div class="g" style="grid-template:repeat(${rows},1fr)/repeat(${cols},1fr)">${cells}</div></div><span>${esc(word)}</span></div>`;
}

/** A static page: each photo, its caption, and one overlay per content word (the photo is stretched to a square, as the encoder sees it). */
export function attentionGalleryHtml(title: string, items: AttentionItem[], imagePath: (name: string) => string): string {
  const rows = items
    .map((it) => {
      const url = pathToFileURL(imagePath(it.name)).href;
      const words = it.caption.split(' ');
      const maps = words.map((w, i) => (FUNCTION_WORDS.has(w) ? '' : overlay(url, w, it.attention, it.attention.weights[i]))).join('');
      return `<figure><div class="name">${esc(it.name)}</div><p class="cap">${esc(it.caption)}</p><div class="maps">${maps}</div></figure>`;
    })
    .join('\n');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:1200px}figure{border-bottom:1px solid #ddd;padding:.8em 0;margin:0}
.name{color:#777;font-size:12px}.cap{font-weight:600;margin:.2em 0 .5em}.maps{display:flex;flex-wrap:wrap;gap:.6em}
.w{display:flex;flex-direction:column;align-items:center;font-size:13px}.ph{position:relative;width:150px;height:150px}
.ph img{width:100%;height:100%;object-fit:fill;display:block}.g{position:absolute;inset:0;display:grid;filter:blur(5px)}</style></head>
<body><h1>${esc(title)}</h1><p>Per content word: where the decoder looked (orange = more weight, relative to that word's largest cell).</p>
${rows}</body></html>`;
}
