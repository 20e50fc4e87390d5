import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadBundle } from '../shared/bundle/load';
import { memorySource } from '../shared/bundle/source';
import { writeBundle } from '../shared/bundle/write';
import { loadCaptioner } from '../shared/captioner';
import { COLOUR_BINS, colourCheckWeights, colourFractions, encodeColourCheckWeights, type ColourCheck } from '../shared/colour-check';
import type { RgbImage } from '../shared/image/types';
import { foldProjection } from '../offline/export/fold-projection';
import { tinyBundle } from './helpers/tiny-bundle';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** A tiny bundle whose projection (48) is wider than the pooled feature it reads (32 channels), with a colour check on it. */
async function projectedBundle(attention: boolean) {
  const files = await tinyBundle({ featureSize: 48, attention, seed: 5 });
  const manifest = JSON.parse(new TextDecoder().decode(files.get('manifest.json')!));
  const w = Float32Array.from({ length: (48 + COLOUR_BINS.length) * 2 }, (_, i) => Math.sin(i * 1.7) * 0.5);
  const check: ColourCheck = { version: 1, words: ['red', 'man'], featureSize: 48, weights: encodeColourCheckWeights(w), bias: [0.2, -0.1], threshold: 0.5 };
  files.set('manifest.json', new TextEncoder().encode(JSON.stringify({ ...manifest, colourCheck: check })));
  // A projection bias (initialised to zeros), so the fold's bias terms count.
  const b = await loadBundle(memorySource(files));
  const proj = b.encoder.getLayer('projection');
  proj.setWeights([proj.getWeights()[0], tf.randomNormal([48], 0, 0.5, 'float32', 9)]);
  const { format: _f, formatVersion: _v, quantization: _q, vocabulary: _voc, ...rest } = b.manifest;
  return writeBundle({ manifest: rest, encoder: b.encoder, decoder: b.decoder, vocabulary: b.vocabulary, quantization: 'none' });
}

const image = (seed: number): RgbImage => ({ width: 40, height: 36, data: Uint8Array.from({ length: 40 * 36 * 3 }, (_, i) => (i * (7 + seed) + seed * 31) & 255) });

/** The colour check's probabilities for a photo, from its feature row (the pooled feature first). */
function colourProbabilities(check: ColourCheck, row: Float32Array, img: RgbImage): number[] {
  const w = colourCheckWeights(check);
  const x = [...row.subarray(0, check.featureSize), ...Array.from(colourFractions(img), (f) => Math.sqrt(f) * 4)];
  return check.words.map((_, c) => 1 / (1 + Math.exp(-x.reduce((z, v, i) => z + v * w[i * check.words.length + c], check.bias[c]))));
}

describe('foldProjection', () => {
  for (const attention of [false, true]) {
    it(`serves the same captions, scores and colour decisions from the pooled feature, with fewer weights${attention ? ' (attention)' : ''}`, async () => {
      const files = await projectedBundle(attention);
      const b = await loadBundle(memorySource(files));
      const folded = foldProjection(b);
      expect(folded.manifest.encoder.featureSize).toBe(32);
      expect(folded.manifest.id).toBe(`${b.manifest.id}-folded`);
      expect(folded.manifest.colourCheck!.featureSize).toBe(32);
      expect(folded.manifest.encoder.params).toBe(b.manifest.encoder.params! - 32 * 48 - 48);
      expect(folded.manifest.training).toMatchObject({ projectionFolded: { layer: 'projection', from: 48, to: 32 } });
      // Projection 32×48 + 48, and three 48-row maps of 16 columns become 32-row ones.
      expect(folded.weightsRemoved).toBe(32 * 48 + 48 + 3 * 16 * 16);
      const { format: _f, formatVersion: _v, quantization: _q, vocabulary: _voc, ...rest } = folded.manifest;
      const out = await writeBundle({ manifest: rest, encoder: folded.encoder, decoder: folded.decoder, vocabulary: b.vocabulary, quantization: 'none' });
      const bytes = (m: Map<string, Uint8Array>) => [...m].filter(([p]) => p.endsWith('.bin')).reduce((a, [, v]) => a + v.byteLength, 0);
      expect(bytes(out)).toBe(bytes(files) - 4 * folded.weightsRemoved);

      const before = await loadCaptioner(memorySource(files), { warmup: false });
      const after = await loadCaptioner(memorySource(out), { warmup: false });
      expect(after.featureRowSize).toBe(before.featureRowSize - 16);
      const scores = new Set<string>();
      for (let s = 0; s < 6; s++) {
        const img = image(s);
        const [x, y] = [before.caption(img, { beam: 3 }), after.caption(img, { beam: 3 })];
        expect(y.caption).toBe(x.caption);
        expect(y.score).toBeCloseTo(x.score, 4);
        scores.add(x.score.toFixed(4));
        const [px, py] = [colourProbabilities(b.manifest.colourCheck!, before.encode(img), img), colourProbabilities(folded.manifest.colourCheck!, after.encode(img), img)];
        py.forEach((p, c) => expect(p).toBeCloseTo(px[c], 2)); // float16 weights on both sides
      }
      expect(scores.size).toBeGreaterThan(1); // the photos do steer the decoder
      before.dispose();
      after.dispose();
    });
  }

  it('refuses an encoder whose feature is not a linear projection, or one that does not shrink', async () => {
    const b = await loadBundle(memorySource(await tinyBundle()));
    expect(() => foldProjection(b)).toThrow(/nothing to gain: 'projection' maps 32 pooled values to 24 features/);
    const relu = tf.layers.dense({ units: 24, activation: 'relu', name: 'projection' }).apply(b.encoder.outputs[0].sourceLayer.input as tf.SymbolicTensor) as tf.SymbolicTensor;
    const encoder = tf.model({ inputs: b.encoder.inputs, outputs: relu });
    expect(() => foldProjection({ ...b, encoder })).toThrow(/nothing to fold: the encoder's feature comes from 'projection' \(Dense, relu\)/);
    const pooled = tf.model({ inputs: b.encoder.inputs, outputs: b.encoder.outputs[0].sourceLayer.input as tf.SymbolicTensor });
    expect(() => foldProjection({ ...b, encoder: pooled })).toThrow(/nothing to fold: the encoder's feature comes from 'global_pool' \(GlobalAveragePooling2D\)/);
  });
});
