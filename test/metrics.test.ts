import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { bleuFromTotals, ciderD, corpusBleu, scoreCaptions, summarizeCaptions, unsupportedColours } from '../offline/metrics';

interface VectorCase {
  name: string;
  references?: Record<string, string[]>;
  candidates?: Record<string, string>;
  totals?: { correct: number[]; guess: number[]; test_length: number; ref_length: number };
  expected: {
    bleu?: number[];
    bleu4_per_image?: number[];
    cider_d?: number;
    cider_d_per_image?: number[];
  };
  tolerance: number;
}

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const vectorsPath = process.env.CAPTION_METRIC_VECTORS ?? resolve(repoRoot, '../shared/eval/metric-vectors.json');
const cases: VectorCase[] | null = existsSync(vectorsPath)
  ? (JSON.parse(readFileSync(vectorsPath, 'utf8')) as { cases: VectorCase[] }).cases
  : null;

function expectClose(actual: number, expected: number, tol: number, what: string): void {
  expect(Math.abs(actual - expected), `${what}: got ${actual}, expected ${expected} ± ${tol}`).toBeLessThanOrEqual(tol);
}

describe('metric vectors (pycocoevalcap reference values)', () => {
  // A fresh clone may lack the shared vectors: then this one test is skipped, its name saying why.
  const reason = `SKIPPED: metric vectors not found at ${vectorsPath} (set CAPTION_METRIC_VECTORS)`;
  it.skipIf(cases === null)(cases ? `loads ${cases.length} reference cases from ${vectorsPath}` : reason, () => {
    expect(cases!.length).toBeGreaterThan(0);
  });

  for (const c of cases ?? []) {
    it(c.name, () => {
      const tol = c.tolerance;
      let checks = 0;
      if (c.totals) {
        const t = c.totals;
        const bleu = bleuFromTotals({ correct: t.correct, guess: t.guess, testLength: t.test_length, refLength: t.ref_length });
        c.expected.bleu!.forEach((e, k) => expectClose(bleu[k], e, tol, `BLEU-${k + 1}`));
        checks++;
      } else {
        const refs = c.references!;
        const cands = c.candidates!;
        // Per-image expectations follow the candidates' key order in the file.
        const ids = Object.keys(cands);
        const b = corpusBleu(refs, cands);
        if (c.expected.bleu) {
          c.expected.bleu.forEach((e, k) => expectClose(b.bleu[k], e, tol, `BLEU-${k + 1}`));
          checks++;
        }
        if (c.expected.bleu4_per_image) {
          expect(ids.length).toBe(c.expected.bleu4_per_image.length);
          c.expected.bleu4_per_image.forEach((e, i) => expectClose(b.perImage[ids[i]][3], e, tol, `BLEU-4 of ${ids[i]}`));
          checks++;
        }
        if (c.expected.cider_d !== undefined || c.expected.cider_d_per_image) {
          const cd = ciderD(refs, cands);
          if (c.expected.cider_d !== undefined) expectClose(cd.score, c.expected.cider_d, tol, 'CIDEr-D');
          if (c.expected.cider_d_per_image) {
            expect(ids.length).toBe(c.expected.cider_d_per_image.length);
            c.expected.cider_d_per_image.forEach((e, i) => expectClose(cd.perImage[ids[i]], e, tol, `CIDEr-D of ${ids[i]}`));
          }
          checks++;
        }
      }
      // A case whose shape this test does not understand must fail, not pass vacuously.
      expect(checks, `case "${c.name}" checked nothing`).toBeGreaterThan(0);
    });
  }
});

describe('BLEU (independent checks)', () => {
  it('an identical candidate scores BLEU 1 at every order', () => {
    const s = 'a dog runs across the green field';
    const { bleu, perImage } = corpusBleu({ a: [s, 'a dog in a field'] }, { a: s });
    for (const v of [...bleu, ...perImage.a]) expect(v).toBeCloseTo(1, 8);
  });

  it('a candidate sharing no word scores ~0', () => {
    const { bleu, totals } = corpusBleu({ a: ['a dog runs in the park'] }, { a: 'two cats sleep on sofas' });
    expect(totals.correct).toEqual([0, 0, 0, 0]);
    for (const v of bleu) expect(v).toBeLessThan(1e-5);
  });

  it('clips repeated words: "the the the the" against "the cat"', () => {
    const { bleu, totals } = corpusBleu({ a: ['the cat'] }, { a: 'the the the the' });
    expect(totals.correct[0]).toBe(1);
    expect(totals.guess[0]).toBe(4);
    expect(bleu[0]).toBeCloseTo(0.25, 8); // no brevity penalty: candidate is longer
  });

  it('uses the closest reference length, ties going to the shorter one', () => {
    const refs = { a: ['w w w', 'w w w w w', 'w w w w w w w w w'] };
    expect(corpusBleu(refs, { a: 'x x x x' }).totals.refLength).toBe(3);
    expect(corpusBleu(refs, { a: 'x x x x x x x' }).totals.refLength).toBe(5);
  });

  it('applies the brevity penalty from corpus lengths', () => {
    const { bleu, totals } = corpusBleu({ a: ['the cat sat on the mat'] }, { a: 'the cat' });
    expect(totals).toMatchObject({ testLength: 2, refLength: 6 });
    expect(bleu[0]).toBeCloseTo(Math.exp(1 - 3), 8);
  });

  it('is case-sensitive and splits only on whitespace', () => {
    const { totals } = corpusBleu({ a: ['The  cat'] }, { a: ' the cat ' });
    expect(totals.testLength).toBe(2);
    expect(totals.correct[0]).toBe(1);
  });

  it('rejects mismatched keys', () => {
    expect(() => corpusBleu({ a: ['x'] }, { b: 'x' })).toThrow();
    expect(() => corpusBleu({ a: [] }, { a: 'x' })).toThrow();
  });
});

describe('CIDEr-D (independent checks)', () => {
  const refs = {
    '1': ['a black dog runs on the grass', 'a dog running in a field'],
    '2': ['a man rides a bike down the street', 'a cyclist on a city road'],
    '3': ['two kids play in the water', 'children swimming in a pool'],
  };
  const cands = { '1': 'a dog runs in the grass', '2': 'a man riding a bike', '3': 'kids in a pool' };

  it('does not depend on image key order or key names', () => {
    const base = ciderD(refs, cands);
    const order = ['3', '1', '2'];
    const shuffled = ciderD(
      new Map(order.map((k) => [`img-${k}`, refs[k as keyof typeof refs]])),
      new Map([...order].reverse().map((k) => [`img-${k}`, cands[k as keyof typeof cands]])),
    );
    expect(shuffled.score).toBeCloseTo(base.score, 12);
    for (const k of order) expect(shuffled.perImage[`img-${k}`]).toBeCloseTo(base.perImage[k], 12);
    expect(base.score).toBeGreaterThan(0);
  });

  it('scores 5 for exact two-word matches (orders 3 and 4 are empty)', () => {
    // df = 1 for every n-gram and N = 2, so each weight is log 2; orders 1-2 have cosine 1, 3-4 have 0.
    const r = ciderD({ a: ['a b'], b: ['c d'] }, { a: 'a b', b: 'c d' });
    expect(r.perImage.a).toBeCloseTo(5, 12);
    expect(r.score).toBeCloseTo(5, 12);
  });

  it('clips candidate weights by the reference weight (the "-D" in CIDEr-D)', () => {
    // Unigrams: hyp {a: 2w}, ref {a: w, b: w}, w = log 2 -> min(2w, w) * w / (2w * sqrt(2) w) = 1 / (2 sqrt 2).
    // Bigrams "a a" vs "a b" share nothing; orders 3-4 are empty. Unclipped it would be twice as large.
    const r = ciderD({ a: ['a b'], b: ['c d'] }, { a: 'a a', b: 'c d' });
    expect(r.perImage.a).toBeCloseTo(10 / 4 / (2 * Math.SQRT2), 12);
  });

  it('is 0 for a single image, since idf = log(1) - log(df) = 0 (as in coco-caption)', () => {
    expect(ciderD({ a: ['a dog runs'] }, { a: 'a dog runs' }).score).toBe(0);
  });

  it('penalises length differences and unrelated candidates', () => {
    const exact = ciderD(refs, { ...cands, '1': refs['1'][0] }).perImage['1'];
    const padded = ciderD(refs, { ...cands, '1': `${refs['1'][0]} and then it runs on and on` }).perImage['1'];
    const unrelated = ciderD(refs, { ...cands, '1': 'zebra xylophone quartz' }).perImage['1'];
    expect(padded).toBeLessThan(exact);
    expect(unrelated).toBe(0);
  });
});

describe('scoreCaptions', () => {
  it('combines corpus BLEU and CIDEr-D with per-image values', () => {
    const refs = { x: ['a cat on a mat', 'the cat sits on the mat'], y: ['a red bus on the road', 'a bus driving down a street'] };
    const cands = { x: 'a cat on the mat', y: 'a bus on a street' };
    const s = scoreCaptions(refs, cands);
    const b = corpusBleu(refs, cands);
    const c = ciderD(refs, cands);
    expect([s.bleu1, s.bleu2, s.bleu3, s.bleu4]).toEqual(b.bleu);
    expect(s.ciderD).toBe(c.score);
    expect(s.perImage).toEqual({
      x: { bleu4: b.perImage.x[3], ciderD: c.perImage.x },
      y: { bleu4: b.perImage.y[3], ciderD: c.perImage.y },
    });
  });
});

describe('unsupported colour words', () => {
  it('counts the colours a caption says that no reference of its photo uses', () => {
    const refs = new Map([
      ['a', ['a man in a blue shirt sits', 'a man on a bench']],
      ['b', ['a brown dog runs', 'a dog in the grass']],
      ['c', ['two children play']],
    ]);
    const cands = new Map([
      ['a', 'a man in a red shirt is sitting on a red bench'], // red: made up (counted once)
      ['b', 'a brown and white dog runs'], // brown: supported; white: made up
      ['c', 'two children play outside'], // no colour
    ]);
    expect(unsupportedColours(refs, cands)).toEqual({ said: 3, unsupported: 2, captions: 2 });
    // Every colour supported by some reference of the same photo: nothing made up.
    expect(unsupportedColours(refs, { a: 'a man in a blue shirt', b: 'a brown dog' })).toEqual({ said: 2, unsupported: 0, captions: 0 });
  });

  it('summarizeCaptions: corpus scores, distinct captions and made-up colours of one caption set', () => {
    const refs = new Map([
      ['a', ['a man in a blue shirt sits', 'a man on a bench']],
      ['b', ['a brown dog runs', 'a dog in the grass']],
      ['c', ['a brown dog runs', 'two children play']],
    ]);
    const cands = new Map([
      ['a', 'a man in a red shirt'],
      ['b', 'a brown dog runs'],
      ['c', 'a brown dog runs'],
    ]);
    const { perImage: _p, ...scores } = scoreCaptions(refs, cands);
    expect(summarizeCaptions(refs, cands)).toEqual({ ...scores, distinct: 2, colours: { said: 3, unsupported: 1, captions: 1 } });
  });
});
