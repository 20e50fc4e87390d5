import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SPECIAL_TOKENS, Vocabulary } from '../shared/text/vocabulary';
import { parseCsv, readCaptionsCsv, readDataset, readFlickr8k } from '../offline/data/captions';
import { readGlove } from '../offline/data/glove';
import { captionsCsv, readExtraCaptions, withExtraCaptions } from '../offline/data/extra-captions';

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'offline-data-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function touchImages(dir: string, names: string[]): void {
  mkdirSync(dir, { recursive: true });
  for (const n of names) writeFileSync(join(dir, n), 'x');
}

describe('Flickr8k layout', () => {
  it('reads captions and splits, reporting and dropping a missing image', () => {
    const dir = join(tmp, 'flickr');
    touchImages(join(dir, 'images'), ['a.jpg', 'b.jpg', 'c.jpg', 'd.jpg']);
    const tokens = ['a.jpg#0\tA dog runs .', 'a.jpg#1\tA brown dog .', 'b.jpg#0\tTwo kids', 'c.jpg#0\tA cat', 'd.jpg#0\tA ball', 'e.jpg#0\tGone'];
    writeFileSync(join(dir, 'Flickr8k.token.txt'), tokens.join('\n') + '\n');
    writeFileSync(join(dir, 'Flickr_8k.trainImages.txt'), 'a.jpg\nb.jpg\ne.jpg\n');
    writeFileSync(join(dir, 'Flickr_8k.devImages.txt'), 'c.jpg\n');
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const ds = readFlickr8k(dir);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0][0])).toMatch(/1 listed image.*e\.jpg/);
    expect(ds.imageDir).toBe(join(dir, 'images'));
    expect(ds.missing).toEqual(['e.jpg']);
    expect(ds.splits).toEqual({ train: ['a.jpg', 'b.jpg'], dev: ['c.jpg'], unsplit: ['d.jpg'] });
    expect(ds.captions.get('a.jpg')).toEqual(['A dog runs .', 'A brown dog .']);
    expect(ds.captions.has('e.jpg')).toBe(false);
    expect(readDataset(dir).splits).toEqual(ds.splits);
    warn.mockRestore();
  });
});

describe('image,caption CSV layout', () => {
  it('parses quoted fields with commas, quotes and newlines', () => {
    expect(parseCsv('image,caption\r\na.jpg,"A dog, a ""ball"",\nand grass"\nb.jpg,plain\n')).toEqual([
      ['image', 'caption'],
      ['a.jpg', 'A dog, a "ball",\nand grass'],
      ['b.jpg', 'plain'],
    ]);
  });

  it('splits by name hash without split files, deterministically, and reports missing images', () => {
    const dir = join(tmp, 'csv');
    const names = Array.from({ length: 40 }, (_, i) => `img${i}.jpg`);
    touchImages(join(dir, 'Images'), names);
    const rows = names.flatMap((n) => [`${n},"A dog, running"`, `${n},second caption`]);
    writeFileSync(join(dir, 'captions.txt'), ['image,caption', ...rows, 'nothere.jpg,lost'].join('\n'));
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const ds = readCaptionsCsv(join(dir, 'captions.txt'), join(dir, 'Images'));
    expect(warn).toHaveBeenCalledTimes(1);
    expect(ds.missing).toEqual(['nothere.jpg']);
    expect(ds.captions.get('img3.jpg')).toEqual(['A dog, running', 'second caption']);
    const { train, dev, unsplit } = ds.splits;
    expect(unsplit).toEqual([]);
    expect(train.length + dev.length).toBe(40);
    expect(train.length).toBeGreaterThan(dev.length);
    expect(dev.length).toBeGreaterThan(0);
    expect(new Set([...train, ...dev]).size).toBe(40);
    const again = readDataset(dir); // folder with captions.txt, auto-detected
    expect(again.imageDir).toBe(join(dir, 'Images'));
    expect(again.splits).toEqual(ds.splits);
    warn.mockRestore();
  });

  it('uses split files when given', () => {
    const dir = join(tmp, 'csv-split');
    touchImages(join(dir, 'images'), ['a.jpg', 'b.jpg', 'c.jpg']);
    writeFileSync(join(dir, 'caps.csv'), 'image,caption\na.jpg,one\nb.jpg,two\nc.jpg,three\n');
    writeFileSync(join(dir, 'Flickr_8k.trainImages.txt'), 'a.jpg\n');
    writeFileSync(join(dir, 'Flickr_8k.devImages.txt'), 'b.jpg\n');
    expect(readDataset(join(dir, 'caps.csv')).splits).toEqual({ train: ['a.jpg'], dev: ['b.jpg'], unsplit: ['c.jpg'] });
  });

  it('rejects a CSV without image/caption columns and an unknown layout', () => {
    const f = join(tmp, 'bad.csv');
    writeFileSync(f, 'file,text\na.jpg,x\n');
    expect(() => readCaptionsCsv(f, tmp)).toThrow(/'image' and 'caption'/);
    const empty = join(tmp, 'empty');
    mkdirSync(empty);
    expect(() => readDataset(empty)).toThrow(/neither Flickr8k\.token\.txt nor captions/);
  });
});

describe('GloVe', () => {
  const vocab = new Vocabulary([SPECIAL_TOKENS.pad, SPECIAL_TOKENS.start, SPECIAL_TOKENS.end, SPECIAL_TOKENS.unknown, 'dog', 'cat', 'a', 'ball']);

  it('fills covered rows, reports coverage and missing words, seeds the rest', async () => {
    const f = join(tmp, 'glove.txt');
    writeFileSync(f, 'the 0.1 0.2 0.3\ndog 1 2 3\ncat -1 -2 -3.5\nball 0 0.5 1e-1\n');
    const g = await readGlove(f, vocab);
    expect(g.dim).toBe(3);
    expect(g.covered).toBe(3);
    expect(g.coverage).toBeCloseTo(3 / 4);
    expect(g.missing).toEqual(['a']);
    expect(g.matrix.length).toBe(vocab.size * 3);
    const row = (w: string) => Array.from(g.matrix.subarray(vocab.idOf(w) * 3, vocab.idOf(w) * 3 + 3));
    expect(row('dog')).toEqual([1, 2, 3]);
    expect(row('cat')[2]).toBeCloseTo(-3.5);
    expect(Array.from(g.matrix.subarray(0, 3))).toEqual([0, 0, 0]); // <pad>
    const a = row('a');
    expect(a.some((v) => v !== 0)).toBe(true);
    expect(Math.max(...a.map(Math.abs))).toBeLessThan(1);
    expect(Array.from((await readGlove(f, vocab)).matrix)).toEqual(Array.from(g.matrix));
  });

  it('rejects a malformed line, naming it', async () => {
    const f = join(tmp, 'glove-bad.txt');
    writeFileSync(f, 'dog 1 2 3\ncat 1 2\nball 1 2 3\n');
    await expect(readGlove(f, vocab)).rejects.toThrow(/glove-bad\.txt:2: expected a word and 3 numbers, got 2/);
    await expect(readGlove(join(tmp, 'glove.txt'), vocab, 100)).rejects.toThrow(/:1: expected a word and 100 numbers/);
  });
});

describe('extra captions (sequence-level distillation)', () => {
  it('round-trip through an image,caption CSV and join the human captions of train photos only', () => {
    const csv = join(tmp, 'extra.csv');
    writeFileSync(csv, captionsCsv([['a.jpg', 'a dog, running'], ['b.jpg', 'two "kids"'], ['a.jpg', 'a dog']]));
    const extra = readExtraCaptions(csv, ['a.jpg', 'b.jpg', 'c.jpg']);
    expect(extra).toEqual(new Map([['a.jpg', ['a dog, running', 'a dog']], ['b.jpg', ['two "kids"']]]));
    const base = new Map([['a.jpg', ['a brown dog']], ['c.jpg', ['a cat']]]);
    const merged = withExtraCaptions(base, extra);
    expect(merged.get('a.jpg')).toEqual(['a brown dog', 'a dog, running', 'a dog']);
    expect(merged.get('b.jpg')).toEqual(['two "kids"']);
    expect(merged.get('c.jpg')).toEqual(['a cat']);
    expect(base.get('a.jpg')).toEqual(['a brown dog']);
    // A dev photo's caption would leak into the scores training is tuned on.
    expect(() => readExtraCaptions(csv, ['a.jpg'])).toThrow(/'b\.jpg', which is not a train photo/);
  });
});
