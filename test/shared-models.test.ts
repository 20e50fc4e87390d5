import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { beamSearch, greedyBatch } from '../shared/decoding/search';
import { buildDecoder } from '../shared/models/decoder';
import { decodeStep, decoderWeights, featureRowSize, forwardSequence, initialState } from '../shared/models/decoder-ops';
import { buildCompactVgg16, compactVgg16Cost } from '../shared/models/vgg16';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const maxAbsDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);

describe('compact VGG16', () => {
  it('has VGG16 layout and the configured output', () => {
    const m = buildCompactVgg16({ widthMultiplier: 0.25, inputSize: 64, featureSize: 40 });
    const convs = m.layers.filter((l) => l.getClassName() === 'Conv2D');
    expect(convs.map((l) => l.name)).toEqual([
      'block1_conv1', 'block1_conv2', 'block2_conv1', 'block2_conv2',
      'block3_conv1', 'block3_conv2', 'block3_conv3', 'block4_conv1', 'block4_conv2', 'block4_conv3',
      'block5_conv1', 'block5_conv2', 'block5_conv3',
    ]);
    expect(m.layers.filter((l) => l.getClassName() === 'MaxPooling2D')).toHaveLength(5);
    expect(m.outputs[0].shape).toEqual([null, 40]);
    expect(compactVgg16Cost({ widthMultiplier: 0.25, inputSize: 64, featureSize: 40 }).params).toBe(m.countParams());
  });

  it('a wide head: a 1×1 convolution on the last block\'s whole grid (no last max-pool), counted in the cost', () => {
    const cfg = { widthMultiplier: 0.25, inputSize: 112, featureSize: 40, headChannels: 96 };
    const m = buildCompactVgg16(cfg);
    expect(m.layers.filter((l) => l.getClassName() === 'MaxPooling2D')).toHaveLength(4);
    expect(m.getLayer('head_conv').outputShape).toEqual([null, 7, 7, 96]);
    expect(m.getLayer('projection').getWeights()[0].shape).toEqual([96, 40]);
    const cost = compactVgg16Cost(cfg);
    expect(cost.params).toBe(m.countParams());
    const plain = compactVgg16Cost({ ...cfg, headChannels: 0 });
    // Head: 128·96 + 96 weights at 7×7; projection from 96 channels instead of 128.
    expect(cost.params - plain.params).toBe(128 * 96 + 96 + (96 - 128) * 40);
    expect(cost.flops - plain.flops).toBe(2 * 128 * 96 * 49 + 2 * (96 - 128) * 40);
    expect(() => buildCompactVgg16({ ...cfg, headChannels: 1.5 })).toThrow(/headChannels/);
  });

  it('counts full VGG16 like the literature (14.7 M conv params, 15.3 GFLOP at 224²)', () => {
    const c = compactVgg16Cost({ widthMultiplier: 1, inputSize: 224, featureSize: 0 });
    expect(c.params).toBe(14_714_688);
    expect(c.flops / 1e9).toBeCloseTo(30.7, 0); // 15.35 G multiply-adds
  });

  it('rejects bad configurations with a clear message', () => {
    expect(() => buildCompactVgg16({ widthMultiplier: 0.25, inputSize: 100, featureSize: 8 })).toThrow(/multiple of 16/);
    expect(() => buildCompactVgg16({ widthMultiplier: 2, inputSize: 64, featureSize: 8 })).toThrow(/widthMultiplier/);
  });
});

// The pooled decoder, and the attention decoder over a 2×3 grid of 5 channels (rows [pooled 10 | grid 30]).
describe.each([
  { kind: 'pooled', attention: undefined },
  { kind: 'attention', attention: { grid: [2, 3] as [number, number], channels: 5, size: 7, temperature: 5 } },
  { kind: 'dot-product attention (first runs)', attention: { grid: [2, 3] as [number, number], channels: 5, size: 7 } },
])('$kind decoder', ({ attention }) => {
  const cfg = { vocabSize: 30, featureSize: 10, embeddingSize: 6, units: 12, maxLength: 8, dropout: 0.3, attention };
  const model = buildDecoder(cfg);
  for (const layer of model.layers) layer.setWeights(layer.getWeights().map((w, i) => tf.randomNormal(w.shape, 0, 0.5, 'float32', i + 7)));
  const w = decoderWeights(model);
  const R = featureRowSize(w);
  const features = tf.randomNormal([3, R], 0, 1, 'float32', 3) as tf.Tensor2D;
  const tokens = tf.tensor2d([[1, 5, 7, 9], [1, 4, 4, 2], [1, 8, 0, 0]], undefined, 'int32');
  const modelInputs = () =>
    attention ? [features.slice([0, 0], [3, 10]), features.slice([0, 10], [3, 30]).reshape([3, 6, 5]), tokens] : [features, tokens];

  it('fast sequence pass equals the layers model', () => {
    expect(R).toBe(attention ? 40 : 10);
    expect(maxAbsDiff(model.predict(modelInputs()) as tf.Tensor, forwardSequence(w, features, tokens))).toBeLessThan(1e-5);
  });

  it('step-by-step decoding equals the sequence pass', () => {
    let s = initialState(w, features);
    const steps: tf.Tensor[] = [];
    const cols = tokens.arraySync();
    for (let t = 0; t < 4; t++) {
      const r = decodeStep(w, tf.tensor1d(cols.map((row) => row[t]), 'int32'), s);
      s = r.state;
      steps.push(r.logProbs);
    }
    expect(maxAbsDiff(tf.logSoftmax(forwardSequence(w, features, tokens)), tf.stack(steps, 1))).toBeLessThan(1e-5);
  });

  it('dropout with a seed is reproducible and differs from inference', () => {
    const a = forwardSequence(w, features, tokens, 0.5, 11);
    const b = forwardSequence(w, features, tokens, 0.5, 11);
    expect(maxAbsDiff(a, b)).toBe(0);
    expect(maxAbsDiff(a, forwardSequence(w, features, tokens))).toBeGreaterThan(1e-3);
  });

  const search = { maxLength: 8, startId: 1, endId: 2, bannedIds: [0, 1, 3] };

  it('beam 1 equals greedy decoding', () => {
    const greedy = greedyBatch(w, features, search);
    for (let i = 0; i < 3; i++) {
      const f = features.slice([i, 0], [1, R]) as tf.Tensor2D;
      const [best] = beamSearch(w, f, { ...search, beam: 1, alternatives: 1 });
      expect(best.tokens).toEqual(greedy[i].tokens);
      expect(best.logProb).toBeCloseTo(greedy[i].logProb, 4);
    }
  });

  it('beam search returns distinct alternatives, best first, never banned tokens', () => {
    const f = features.slice([0, 0], [1, R]) as tf.Tensor2D;
    const hyps = beamSearch(w, f, { ...search, beam: 5, alternatives: 5 });
    expect(hyps.length).toBeGreaterThan(1);
    expect(new Set(hyps.map((h) => h.tokens.join(' '))).size).toBe(hyps.length);
    for (let i = 1; i < hyps.length; i++) expect(hyps[i - 1].score).toBeGreaterThanOrEqual(hyps[i].score);
    for (const h of hyps) {
      expect(h.tokens.some((t) => [0, 1, 2, 3].includes(t))).toBe(false);
      expect(h.tokens.length).toBeLessThanOrEqual(8);
      expect(h.tokens.length).toBeGreaterThanOrEqual(1);
    }
    // Wider beams never find a worse best hypothesis than greedy under the same score.
    const [g] = beamSearch(w, f, { ...search, beam: 1, alternatives: 1 });
    expect(hyps[0].score).toBeGreaterThanOrEqual(g.score - 1e-6);
  });

  it('length penalty: score = logProb / length^alpha, and hypotheses are ranked by it', () => {
    const f = features.slice([1, 0], [1, R]) as tf.Tensor2D;
    for (const alpha of [0, 0.5, 1]) {
      const hyps = beamSearch(w, f, { ...search, beam: 4, alternatives: 4, lengthPenalty: alpha });
      for (const h of hyps) expect(h.score).toBeCloseTo(h.logProb / (h.tokens.length + (h.finished ? 1 : 0)) ** alpha, 5);
      for (let i = 1; i < hyps.length; i++) expect(hyps[i - 1].score).toBeGreaterThanOrEqual(hyps[i].score);
    }
    // Without the penalty (alpha 0) the best caption is never longer than with full normalisation.
    const [sum] = beamSearch(w, f, { ...search, beam: 4, alternatives: 1, lengthPenalty: 0 });
    const [mean] = beamSearch(w, f, { ...search, beam: 4, alternatives: 1, lengthPenalty: 1 });
    expect(sum.tokens.length).toBeLessThanOrEqual(mean.tokens.length);
  });

  it('a caption never exceeds maxLength − 1 words, even when the model would go on', () => {
    // <end> made (almost) impossible: every caption runs to the length limit.
    const endless = { ...w, logits: { kernel: w.logits.kernel, bias: tf.add(w.logits.bias, tf.oneHot(2, 30).mul(-60)) as tf.Tensor1D } };
    const limit = { ...search, maxLength: 5 };
    for (const h of greedyBatch(endless, features, limit)) expect(h).toMatchObject({ finished: true, tokens: expect.any(Array) });
    expect(greedyBatch(endless, features, limit).map((h) => h.tokens.length)).toEqual([4, 4, 4]);
    const f = features.slice([0, 0], [1, R]) as tf.Tensor2D;
    const hyps = beamSearch(endless, f, { ...limit, beam: 3, alternatives: 3 });
    expect(hyps.map((h) => h.tokens.length)).toEqual([4, 4, 4]);
    expect(hyps.every((h) => h.finished)).toBe(true);
    endless.logits.bias.dispose();
  });

  it('search leaks no tensors', () => {
    const f = features.slice([0, 0], [1, R]) as tf.Tensor2D;
    beamSearch(w, f, { ...search, beam: 3, alternatives: 3 });
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) {
      beamSearch(w, f, { ...search, beam: 3, alternatives: 3 });
      greedyBatch(w, features, search);
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it.runIf(attention)('attention rows: one per word and the <end> step, each a distribution over the grid cells that the step used', () => {
    const f = features.slice([2, 0], [1, R]) as tf.Tensor2D;
    const [plain] = beamSearch(w, f, { ...search, beam: 3, alternatives: 1 });
    expect(plain.attention).toBeUndefined();
    for (const beam of [1, 3]) {
      const [h] = beamSearch(w, f, { ...search, beam, alternatives: 1, withAttention: true });
      expect(h.attention).toHaveLength(h.tokens.length + (h.finished ? 1 : 0));
      for (const row of h.attention!) {
        expect(row).toHaveLength(6);
        expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      }
      // Replaying the caption step by step gives the same rows.
      let s = initialState(w, f);
      const seq = [1, ...h.tokens];
      h.attention!.forEach((row, t) => {
        const r = decodeStep(w, tf.tensor1d([seq[t]], 'int32'), s);
        s = r.state;
        expect(maxAbsDiff(r.attention!, tf.tensor2d(row, [1, 6]))).toBeLessThan(1e-5);
      });
    }
    const greedy = greedyBatch(w, features, { ...search, withAttention: true });
    const [beam1] = beamSearch(w, f, { ...search, beam: 1, alternatives: 1, withAttention: true });
    expect(greedy[2].attention!.map((r) => [...r])).toEqual(beam1.attention!.map((r) => [...r]));
  });

  it.runIf(attention)('the grid matters: changing one cell changes the words\' probabilities', () => {
    const changed = features.arraySync();
    changed[0][10 + 4 * 5 + 2] += 5; // cell 4, channel 2
    const a = forwardSequence(w, features, tokens);
    const b = forwardSequence(w, tf.tensor2d(changed), tokens);
    expect(maxAbsDiff(a.slice([0, 0, 0], [1, 4, 30]), b.slice([0, 0, 0], [1, 4, 30]))).toBeGreaterThan(1e-3);
    expect(maxAbsDiff(a.slice([1, 0, 0], [2, 4, 30]), b.slice([1, 0, 0], [2, 4, 30]))).toBe(0);
  });
});
