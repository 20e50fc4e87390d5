import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDecoder } from '../shared/models/decoder';
import { decoderWeights, forwardSequence, type DecoderWeights } from '../shared/models/decoder-ops';
import { Vocabulary } from '../shared/text/vocabulary';
import { selectBackend } from '../offline/backend';
import { DEFAULT_SCST_CONFIG } from '../offline/config';
import { CiderDScorer, ciderD } from '../offline/metrics';
import { rng } from '../offline/random';
import { sampleCaptions } from '../offline/train/sample';
import { leaveOneOutAdvantages, scstLoss, trainScst } from '../offline/train/scst';
import { TINY_WORDS } from './helpers/tiny-bundle';

const root = mkdtempSync(join(tmpdir(), 'scst-'));
beforeAll(() => selectBackend('cpu'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const vocab = new Vocabulary(['<pad>', '<start>', '<end>', '<unk>', ...TINY_WORDS]);
const F = 6;
const decoder = (seed = 3) => buildDecoder({ vocabSize: vocab.size, featureSize: F, embeddingSize: 8, units: 16, maxLength: 8, dropout: 0 }, { seed });
const search = { maxLength: 8, startId: vocab.startId, endId: vocab.endId, bannedIds: [vocab.padId, vocab.startId, vocab.unknownId] };
const features = (n: number) => tf.tensor2d(Float32Array.from({ length: n * F }, (_, i) => Math.cos(i * 0.9)), [n, F]);

/** log p(caption | features) under the decoder, `<end>` included. */
function logProbOf(w: DecoderWeights, f: tf.Tensor2D, tokens: number[]): number {
  return tf.tidy(() => {
    const seq = [...tokens, vocab.endId];
    const logits = forwardSequence(w, f, tf.tensor2d([[vocab.startId, ...tokens]], [1, seq.length], 'int32'));
    const lp = tf.logSoftmax(logits).arraySync() as number[][][];
    return seq.reduce((a, tok, t) => a + lp[0][t][tok], 0);
  });
}

/** trainScst on a toy set: every photo its own references, features from a sine pattern. */
function toyRun(runDir: string, refs: Map<string, string[]>, config: Partial<typeof DEFAULT_SCST_CONFIG>, seed: number, featureFreq: number, amp = 1) {
  const names = [...refs.keys()];
  const matrix = Float32Array.from({ length: names.length * F }, (_, i) => Math.sin(i * featureFreq) * amp);
  return trainScst({
    config: { ...DEFAULT_SCST_CONFIG, ...config },
    runDir,
    vocab,
    maxLength: 8,
    features: { names, matrix, featureSize: F },
    train: { names, references: refs },
    dev: { names, references: refs },
    initDecoder: async () => decoder(seed),
    log: () => {},
  });
}

describe('self-critical training', () => {
  it('baseline: each reward minus the mean of the same photo\'s other samples', () => {
    expect(Array.from(leaveOneOutAdvantages([1, 2, 3, 0, 0, 3], 3))).toEqual([1 - 2.5, 2 - 2, 3 - 1.5, 0 - 1.5, 0 - 1.5, 3 - 0]);
    expect(() => leaveOneOutAdvantages([1, 2], 1)).toThrow(/at least 2 samples/);
    expect(() => leaveOneOutAdvantages([1, 2, 3], 2)).toThrow(/not groups of 2/);
  });

  it('samples are reproducible per seed, vary between seeds, and never use banned tokens or end empty', () => {
    const m = decoder();
    const w = decoderWeights(m);
    const f = features(40);
    const a = sampleCaptions(w, f, search, rng(1));
    const b = sampleCaptions(w, f, search, rng(1));
    const c = sampleCaptions(w, f, search, rng(2));
    expect(a).toEqual(b);
    expect(c).not.toEqual(a);
    for (const s of [...a, ...c]) {
      expect(s.tokens.length).toBeGreaterThan(0);
      expect(s.tokens.length + (s.finished ? 1 : 0)).toBeLessThanOrEqual(search.maxLength);
      for (const t of s.tokens) expect(search.bannedIds.includes(t) || t === vocab.endId).toBe(false);
    }
    expect(new Set(a.map((s) => s.tokens.join(' '))).size).toBeGreaterThan(5);
    f.dispose();
    m.dispose();
  });

  it('one step on the loss makes a caption with positive advantage likelier and one with negative advantage less likely', () => {
    const m = decoder();
    const w = decoderWeights(m);
    const vars = m.trainableWeights.map((v) => v.read() as tf.Variable);
    const f = features(2);
    const good = [vocab.idOf('dog'), vocab.idOf('runs')];
    const bad = [vocab.idOf('cat'), vocab.idOf('sits'), vocab.idOf('on')];
    const before = [logProbOf(w, f.slice(0, 1), good), logProbOf(w, f.slice(1, 1), bad)];
    const opt = tf.train.sgd(0.5);
    opt.minimize(() => scstLoss(w, f, [{ tokens: good, finished: true }, { tokens: bad, finished: true }], Float32Array.from([1, -1]), vocab.startId, vocab.endId), false, vars);
    expect(logProbOf(w, f.slice(0, 1), good)).toBeGreaterThan(before[0]);
    expect(logProbOf(w, f.slice(1, 1), bad)).toBeLessThan(before[1]);
    f.dispose();
    m.dispose();
  });

  it('a CIDEr-D scorer over a fixed corpus scores like corpus CIDEr-D, and names a photo it has no references for', () => {
    const refs = { a: ['a dog runs on the grass', 'the dog runs'], b: ['a cat sits on the mat', 'a cat on a mat'], c: ['a man with a red ball'] };
    const cands = { a: 'a dog runs', b: 'a cat sits', c: 'a red ball' };
    const scorer = new CiderDScorer(refs);
    const corpus = ciderD(refs, cands);
    for (const id of Object.keys(refs)) expect(scorer.score(id, cands[id as keyof typeof cands])).toBeCloseTo(corpus.perImage[id], 12);
    expect(() => scorer.score('zzz', 'a dog')).toThrow(/no references for image 'zzz'/);
  });

  it('raises the sampled captions\' CIDEr-D on a toy task, keeps the best epoch, and resumes a finished run without redoing it', async () => {
    // Six "photos", each with its own references; random features tell them apart.
    const names = ['p0', 'p1', 'p2', 'p3', 'p4', 'p5'];
    const sentences = ['a dog runs on the grass', 'a cat sits on the mat', 'a man on the grass', 'a red ball on the mat', 'the dog sits', 'a man runs'];
    const refs = new Map(names.map((n, i) => [n, [sentences[i], sentences[i]]]));
    const runDir = join(root, 'toy');
    const run = () => toyRun(runDir, refs, { epochs: 20, batchImages: 3, samples: 8, learningRate: 0.01, lrDecay: 1, patience: 8, checkpointEvery: 4 }, 5, 1.7, 2);
    const r = await run();
    const h = r.state.history;
    expect(h).toHaveLength(20);
    const mean = (xs: { meanSampleReward: number }[]) => xs.reduce((a, e) => a + e.meanSampleReward, 0) / xs.length;
    // Sampling makes single epochs noisy; the trend over the run is what must hold.
    expect(mean(h.slice(-5))).toBeGreaterThan(1.4 * mean(h.slice(0, 5)));
    expect(r.state.bestScore).toBe(Math.max(...h.map((e) => e.dev.ciderD)));
    expect(existsSync(join(runDir, 'reward.svg'))).toBe(true);
    r.decoder.dispose();
    const again = await run();
    expect(again.state.history).toEqual(h);
    again.decoder.dispose();
  });

  it('with a cross-entropy term on the references, training runs and moves the model differently from pure SCST', async () => {
    const names = ['p0', 'p1', 'p2'];
    const refs = new Map(names.map((n, i) => [n, [['a dog runs', 'a cat sits', 'a man on the grass'][i]]]));
    const run = (xeWeight: number) => toyRun(join(root, `xe-${xeWeight}`), refs, { epochs: 1, batchImages: 3, samples: 2, learningRate: 0.02, checkpointEvery: 10, xeWeight }, 7, 1.3);
    const pure = await run(0);
    const mixed = await run(1);
    const flat = (m: tf.LayersModel) => m.getWeights().flatMap((w) => Array.from(w.dataSync()));
    const a = flat(pure.decoder);
    const b = flat(mixed.decoder);
    expect(a.length).toBe(b.length);
    expect(a.some((v, i) => Math.abs(v - b[i]) > 1e-6)).toBe(true);
    expect(b.every(Number.isFinite)).toBe(true);
    pure.decoder.dispose();
    mixed.decoder.dispose();
  });
});
