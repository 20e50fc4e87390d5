import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { makeBatches, type Example } from '../offline/train/batches';
import { attentionCoverage } from '../offline/train/loss';
import { copyLayerWeights } from '../offline/train/train-decoder';
import { buildDecoder } from '../shared/models/decoder';
import { decoderWeights, forwardSequence } from '../shared/models/decoder-ops';
import { rng } from '../offline/random';

const caption = (n: number) => [1, ...Array.from({ length: n }, (_, i) => 4 + i), 2];
const examples: Example[] = Array.from({ length: 50 }, (_, i) => ({ row: i, ids: caption(1 + (i % 7)) }));

describe('decoder training batches', () => {
  it('pads each batch to its own longest caption and keeps every example once', () => {
    const batches = makeBatches(examples, 8, rng(1));
    expect([...batches.flatMap((b) => [...b.rows])].sort((a, b) => a - b)).toEqual(examples.map((_, i) => i));
    for (const b of batches) {
      expect(b.inputs.length).toBe(b.size * b.steps);
      const lengths = [...b.rows].map((r) => examples[r].ids.length - 1);
      expect(b.steps).toBe(Math.max(...lengths));
      // Targets are the inputs shifted by one, ending in <end>, zero past it.
      [...b.rows].forEach((r, k) => {
        const ids = examples[r].ids;
        expect([...b.inputs.subarray(k * b.steps, k * b.steps + ids.length - 1)]).toEqual(ids.slice(0, -1));
        expect([...b.targets.subarray(k * b.steps, (k + 1) * b.steps)]).toEqual([...ids.slice(1), ...Array(b.steps - ids.length + 1).fill(0)]);
      });
    }
  });

  it('the same seed gives the same batches (a resumed epoch repeats exactly), another seed others', () => {
    const a = makeBatches(examples, 8, rng(3)).map((x) => [...x.rows]);
    expect(makeBatches(examples, 8, rng(3)).map((x) => [...x.rows])).toEqual(a);
    expect(makeBatches(examples, 8, rng(4)).map((x) => [...x.rows])).not.toEqual(a);
  });
});

describe('attention coverage', () => {
  it('is 0 when each caption spreads its attention evenly, and grows as the maps collapse onto one cell', () => {
    const targets = tf.tensor2d([[5, 6, 2, 0]], undefined, 'int32'); // 3 scored steps, 1 padding
    const even = tf.fill([1, 4, 6], 1 / 6) as tf.Tensor3D;
    const oneCell = tf.tensor3d([[[1, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 1]]]);
    const moving = tf.tensor3d([[[1, 0, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0], [0, 0, 0, 0, 1, 0], [1, 0, 0, 0, 0, 0]]]);
    expect(attentionCoverage(even, targets).dataSync()[0]).toBeCloseTo(0, 6);
    // One cell for all 3 words: (3 − 0.5)² + 5 × 0.5², over 6 cells; the padded step does not count.
    expect(attentionCoverage(oneCell, targets).dataSync()[0]).toBeCloseTo((2.5 ** 2 + 5 * 0.25) / 6, 5);
    expect(attentionCoverage(moving, targets).dataSync()[0]).toBeLessThan(attentionCoverage(oneCell, targets).dataSync()[0]);
  });
});

describe('warm start of an attention decoder from a pooled one', () => {
  it('copies every shared layer; with att_out zeroed it captions exactly as the pooled decoder', () => {
    const cfg = { vocabSize: 20, featureSize: 6, embeddingSize: 5, units: 8, maxLength: 8, dropout: 0 };
    const pooled = buildDecoder(cfg, { seed: 1 });
    for (const l of pooled.layers) l.setWeights(l.getWeights().map((w, i) => tf.randomNormal(w.shape, 0, 0.5, 'float32', i + 3)));
    const attending = buildDecoder({ ...cfg, attention: { grid: [2, 2], channels: 3, size: 4, temperature: 5 } }, { seed: 2 });
    const fresh = copyLayerWeights(pooled, attending);
    expect(fresh.sort()).toEqual(['att_gate', 'att_grid', 'att_out', 'att_query']);
    const out = attending.getLayer('att_out');
    out.setWeights(out.getWeights().map((w) => tf.zerosLike(w)));
    const rows = tf.randomNormal([2, 6 + 12], 0, 1, 'float32', 9) as tf.Tensor2D;
    const tokens = tf.tensor2d([[1, 4, 5], [1, 7, 2]], undefined, 'int32');
    const a = forwardSequence(decoderWeights(attending), rows, tokens);
    const b = forwardSequence(decoderWeights(pooled), rows.slice([0, 0], [2, 6]), tokens);
    expect(tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]).toBeLessThan(1e-5);
    // A layer missing for another reason is an error, not a silent cold start.
    expect(() => copyLayerWeights(attending, buildDecoder({ ...cfg, units: 8 }, { seed: 3 }))).not.toThrow();
    const renamed = buildDecoder(cfg, { seed: 4 });
    expect(() => copyLayerWeights(tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [1], name: 'other' })] }), renamed)).toThrow(/has no layer/);
  });

  it('moves an attention decoder to a grid of another width: only att_grid starts fresh', () => {
    const cfg = { vocabSize: 20, featureSize: 6, embeddingSize: 5, units: 8, maxLength: 8, dropout: 0 };
    const teacherGrid = buildDecoder({ ...cfg, attention: { grid: [2, 2], channels: 3, size: 4, temperature: 5 } }, { seed: 1 });
    const studentGrid = buildDecoder({ ...cfg, attention: { grid: [2, 2], channels: 7, size: 4, temperature: 5 } }, { seed: 2 });
    expect(copyLayerWeights(teacherGrid, studentGrid)).toEqual(['att_grid']);
    const same = (name: string) => teacherGrid.getLayer(name).getWeights().every((w, i) => tf.max(tf.abs(tf.sub(w, studentGrid.getLayer(name).getWeights()[i]))).dataSync()[0] === 0);
    expect(['att_query', 'att_gate', 'att_out'].every(same)).toBe(true);
    expect(studentGrid.getLayer('att_grid').getWeights()[0].shape).toEqual([7, 4]);
    // Any other layer of another size is an error: a different attention size is not a grid change.
    const otherSize = buildDecoder({ ...cfg, attention: { grid: [2, 2], channels: 3, size: 6, temperature: 5 } }, { seed: 3 });
    expect(() => copyLayerWeights(teacherGrid, otherSize)).toThrow(/layer 'att_\w+' has weights/);
  });
});
