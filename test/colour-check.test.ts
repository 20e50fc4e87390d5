import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { memorySource } from '../shared/bundle/source';
import { loadCaptioner } from '../shared/captioner';
import { COLOUR_BINS, colourCheckInput, colourCheckProblems, colourCheckWeights, colourFractions, encodeColourCheckWeights, unlikelyColours, type ColourCheck } from '../shared/colour-check';
import type { RgbImage } from '../shared/image/types';
import { tinyBundle } from './helpers/tiny-bundle';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const flat = (w: number, h: number, rgb: [number, number, number]): RgbImage => ({ width: w, height: h, data: new Uint8Array(w * h * 3).map((_, i) => rgb[i % 3]) });
const bin = (name: (typeof COLOUR_BINS)[number]) => COLOUR_BINS.indexOf(name);

/** A check over `words` (featureSize inputs + the bins) with all-zero weights: each word's probability is sigmoid(bias). */
function zeroCheck(words: string[], featureSize: number, bias: number[], threshold: number): ColourCheck {
  const weights = encodeColourCheckWeights(new Float32Array((featureSize + COLOUR_BINS.length) * words.length));
  return { version: 1, words, featureSize, weights, bias, threshold };
}

describe('colour fractions', () => {
  it('put flat colours in their bins, and split a two-colour photo by area', () => {
    expect(colourFractions(flat(40, 30, [220, 30, 30]))[bin('red')]).toBe(1);
    expect(colourFractions(flat(40, 30, [250, 250, 250]))[bin('white')]).toBe(1);
    expect(colourFractions(flat(40, 30, [10, 10, 10]))[bin('black')]).toBe(1);
    expect(colourFractions(flat(40, 30, [30, 40, 220]))[bin('blue')]).toBe(1);
    expect(colourFractions(flat(40, 30, [110, 60, 20]))[bin('brown')]).toBe(1);
    const half: RgbImage = { width: 64, height: 64, data: new Uint8Array(64 * 64 * 3) };
    for (let i = 0; i < 64 * 32; i++) half.data.set([30, 200, 40], i * 3); // top half green, bottom black
    const f = colourFractions(half);
    expect(f[bin('green')]).toBeCloseTo(0.5, 2);
    expect(f[bin('black')]).toBeCloseTo(0.5, 2);
    expect(f.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
  });

  it('sample a large photo on a grid of about maxSamples pixels', () => {
    // Green except every 10th column, which is red: a grid with a stride of 10 sees only green.
    const big: RgbImage = { width: 1000, height: 1000, data: new Uint8Array(1000 * 1000 * 3) };
    for (let p = 0; p < 1000 * 1000; p++) big.data.set(p % 10 === 5 ? [220, 30, 30] : [30, 200, 40], p * 3);
    expect(colourFractions(big, 10_000)[bin('green')]).toBe(1); // stride √(10⁶ / 10⁴) = 10: columns 0, 10, 20 …
    expect(colourFractions(big, 1_000_000)[bin('red')]).toBeCloseTo(0.1, 5); // every pixel
  });
});

describe('colour check', () => {
  it('bans the words whose probability is under the threshold', () => {
    const check = zeroCheck(['red', 'blue'], 2, [3, -3], 0.5);
    const x = colourCheckInput([0.1, 0.2], colourFractions(flat(8, 8, [220, 30, 30])));
    expect(x).toHaveLength(2 + COLOUR_BINS.length);
    expect(unlikelyColours(check, colourCheckWeights(check), x)).toEqual(['blue']);
    expect(unlikelyColours({ ...check, threshold: 0 }, colourCheckWeights(check), x)).toEqual([]);
  });

  it('is validated against the encoder: sizes, threshold, weights', () => {
    const good = zeroCheck(['red'], 4, [0], 0.3);
    expect(colourCheckProblems(good, 4)).toEqual([]);
    expect(colourCheckProblems(good, 5).join('; ')).toMatch(/featureSize must be the encoder's featureSize \(5\), got 4.*must be 32 bytes/);
    expect(colourCheckProblems({ ...good, threshold: 2 }, 4)).toEqual(['colourCheck.threshold must be a number from 0 to 1']);
    expect(colourCheckProblems({ ...good, weights: 'AAAA' }, 4)).toEqual(['colourCheck.weights must be 30 bytes of float16 in base64 ([4 + 11, 1]), got 3 bytes']);
    expect(colourCheckProblems({ ...good, bias: [0, 1] }, 4)).toEqual(['colourCheck.bias must be 1 numbers']);
    // 32 bytes: base64 with one padding character; not base64 at all.
    expect(colourCheckProblems(zeroCheck(['red'], 5, [0], 0.3), 5)).toEqual([]);
    expect(colourCheckProblems({ ...good, weights: 'not base64!' }, 4)).toEqual(['colourCheck.weights must be 30 bytes of float16 in base64 ([4 + 11, 1]), got no base64 string']);
    // Stored as float16: decoded back within float16's precision.
    const values = Float32Array.from({ length: 15 }, (_, i) => (i - 7) / 3);
    const back = colourCheckWeights({ ...good, weights: encodeColourCheckWeights(values) });
    values.forEach((v, i) => expect(back[i]).toBeCloseTo(v, 2));
  });

  it('in a bundle: a banned word never appears, rows carry the colour fractions, and an unknown word is a clear error', async () => {
    const files = await tinyBundle();
    const plain = await loadCaptioner(memorySource(files), { warmup: false });
    const photo = flat(48, 40, [220, 30, 30]);
    const before = plain.caption(photo, { beam: 3 }).caption;
    const word = before.split(' ')[0];
    const F = plain.manifest.encoder.featureSize;
    plain.dispose();

    const withCheck = (check: ColourCheck) => {
      const m = JSON.parse(new TextDecoder().decode(files.get('manifest.json')!));
      return new Map(files).set('manifest.json', new TextEncoder().encode(JSON.stringify({ ...m, colourCheck: check })));
    };
    const checked = await loadCaptioner(memorySource(withCheck(zeroCheck([word], F, [-8], 0.5))), { warmup: false });
    const after = checked.caption(photo, { beam: 3 });
    expect(after.caption.split(' ')).not.toContain(word);
    expect(after.alternatives.every((a) => !a.caption.split(' ').includes(word))).toBe(true);
    // encode() appends the photo's colour fractions; captioning its row applies the same check.
    const row = checked.encode(photo);
    expect(row).toHaveLength(checked.featureRowSize);
    expect(Array.from(row.subarray(row.length - COLOUR_BINS.length))).toEqual(Array.from(colourFractions(photo)));
    expect(checked.captionFeatures(row, { beam: 3 })[0].caption).toBe(after.caption);
    checked.dispose();

    // A likely word is left alone.
    const kept = await loadCaptioner(memorySource(withCheck(zeroCheck([word], F, [8], 0.5))), { warmup: false });
    expect(kept.caption(photo, { beam: 3 }).caption).toBe(before);
    kept.dispose();

    await expect(loadCaptioner(memorySource(withCheck(zeroCheck(['magenta'], F, [0], 0.5))), { warmup: false })).rejects.toThrow(/colourCheck.words not in the vocabulary: magenta/);
  });
});
