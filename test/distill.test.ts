import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileSource } from '../offline/fs-source';
import { selectBackend } from '../offline/backend';
import { DEFAULT_DISTILL_CONFIG } from '../offline/config';
import { augmentedView, CACHED_VIEW_AUGMENT, DEFAULT_AUGMENT, mirrored } from '../offline/distill/augment';
import { copyMatchingLayers, distillStudent, meanCosine, studentFeatures } from '../offline/distill/train-student';
import { rng } from '../offline/random';
import { registerWasmTrainingKernels } from '../offline/wasm-kernels';
import { UNIT_RANGE_NORMALIZATION } from '../shared/image/normalize';
import { loadLayersModel } from '../shared/bundle/model-io';
import type { RgbImage } from '../shared/image/types';
import { foldBatchNorm } from '../shared/models/fold-batch-norm';
import { buildCompactVgg16 } from '../shared/models/vgg16';

// A fixed teacher: a random one made the loss curve, and so this test, differ from run to run.
const TEACHER_SEED = 11;
const root = mkdtempSync(join(tmpdir(), 'distill-'));
beforeAll(async () => {
  if ((await selectBackend()) === 'wasm') registerWasmTrainingKernels();
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A synthetic photo with its own colours and stripe direction, so a teacher tells them apart. */
function photo(seed: number, size = 48): RgbImage {
  const r = rng(seed);
  const base = [r() * 255, r() * 255, r() * 255];
  const other = [r() * 255, r() * 255, r() * 255];
  const angle = r() * Math.PI;
  const period = 4 + r() * 12;
  const data = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      const t = 0.5 + 0.5 * Math.sin(((x * Math.cos(angle) + y * Math.sin(angle)) / period) * 2 * Math.PI);
      for (let c = 0; c < 3; c++) data[(y * size + x) * 3 + c] = Math.round(base[c] * t + other[c] * (1 - t));
    }
  return { width: size, height: size, data };
}

/** Mean training loss of the last two epochs: one epoch is only 4 noisy, augmented steps. */
const lateLoss = (h: { loss: number }[]) => (h[h.length - 1].loss + h[h.length - 2].loss) / 2;

describe('batch-norm folding', () => {
  it.each([0, 12])('the folded plain VGG16 (head %i) computes what the batch-normalised one does at inference', (headChannels) => {
    const cfg = { widthMultiplier: 1 / 16, inputSize: 32, featureSize: 6, batchNorm: true, headChannels };
    const bn = buildCompactVgg16(cfg);
    // Non-trivial statistics, as training would leave them.
    for (const l of bn.layers.filter((l) => l.name.endsWith('_bn'))) {
      const [g, b, m, v] = l.getWeights();
      l.setWeights([tf.randomUniform(g.shape, 0.5, 1.5), tf.randomNormal(b.shape, 0, 0.2), tf.randomNormal(m.shape, 0, 0.3), tf.randomUniform(v.shape, 0.5, 2)]);
    }
    const plain = foldBatchNorm(bn, cfg);
    expect(plain.layers.some((l) => l.name.endsWith('_bn'))).toBe(false);
    const x = tf.randomUniform([2, 32, 32, 3], -1, 1);
    const a = bn.predict(x) as tf.Tensor;
    const b = plain.predict(x) as tf.Tensor;
    const scale = tf.max(tf.abs(a)).dataSync()[0];
    expect(tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]).toBeLessThan(1e-4 * Math.max(1, scale));
  });
});

describe('warm start', () => {
  it('copies the layers that match by name and shapes and leaves the new head alone', () => {
    const served = buildCompactVgg16({ widthMultiplier: 1 / 16, inputSize: 32, featureSize: 6 }, { seed: 1 });
    const next = buildCompactVgg16({ widthMultiplier: 1 / 16, inputSize: 32, featureSize: 10, headChannels: 12 }, { seed: 2 });
    const before = next.getLayer('head_conv').getWeights()[0].dataSync().slice();
    const copied = copyMatchingLayers(served, next);
    expect(copied).toHaveLength(13);
    expect(copied).not.toContain('projection');
    expect(next.getLayer('block5_conv3').getWeights()[0].dataSync()).toEqual(served.getLayer('block5_conv3').getWeights()[0].dataSync());
    expect(next.getLayer('head_conv').getWeights()[0].dataSync()).toEqual(before);
    // Same grid features up to the last block: the copied convolutions compute what they did.
    const x = tf.randomUniform([1, 32, 32, 3], -1, 1);
    const grid = (m: tf.LayersModel) => tf.model({ inputs: m.inputs, outputs: m.getLayer('block5_conv3').output as tf.SymbolicTensor }).predict(x) as tf.Tensor;
    expect(tf.max(tf.abs(tf.sub(grid(served), grid(next)))).dataSync()[0]).toBe(0);
    const other = buildCompactVgg16({ widthMultiplier: 1 / 4, inputSize: 32, featureSize: 6 });
    expect(() => copyMatchingLayers(other, buildCompactVgg16({ widthMultiplier: 1 / 16, inputSize: 32, featureSize: 7 }))).toThrow(/no layer/);
  });
});

describe('augmentation', () => {
  it('crops within bounds, is deterministic per seed, and changes pixels', () => {
    const img = photo(3, 64);
    const a = augmentedView(img, DEFAULT_AUGMENT, rng(5));
    const b = augmentedView(img, DEFAULT_AUGMENT, rng(5));
    expect(a).toEqual(b);
    expect(a.image.width).toBeLessThanOrEqual(64);
    expect(a.image.width * a.image.height).toBeGreaterThanOrEqual(Math.floor(0.4 * 64 * 64));
    const c = augmentedView(img, DEFAULT_AUGMENT, rng(6));
    expect(c.image.data).not.toEqual(a.image.data);
    // Cached-view mode keeps the whole photo, mirrored or not, so the cached teacher feature fits.
    for (let s = 0; s < 6; s++) {
      const v = augmentedView(img, CACHED_VIEW_AUGMENT, rng(s));
      expect([v.image.width, v.image.height]).toEqual([64, 64]);
    }
    expect(mirrored(mirrored(img))).toEqual(img);
  });
});

describe('distillation', () => {
  it('learns the teacher\'s features, checkpoints, and resumes mid-epoch', async () => {
    const teacher = buildCompactVgg16({ widthMultiplier: 1 / 16, inputSize: 32, featureSize: 8 }, { seed: TEACHER_SEED });
    const train = Array.from({ length: 16 }, (_, i) => photo(i + 1));
    const dev = Array.from({ length: 4 }, (_, i) => photo(100 + i));
    const teacherDev = studentFeatures(teacher, dev, 32);
    const config = { ...DEFAULT_DISTILL_CONFIG, widthMultiplier: 1 / 16, inputSize: 32, batchSize: 4, epochs: 6, learningRate: 3e-3, checkpointEvery: 2, devImages: 0, warmupSteps: 2 };
    const runDir = join(root, 'run');
    const t = { model: teacher, inputSize: 32, featureSize: 8, normalization: UNIT_RANGE_NORMALIZATION };
    // Stop part-way through epoch 1, as a kill would, then resume in a new call.
    const partial = await distillStudent({ config, runDir, teacher: t, train, dev: { images: dev, teacherFeatures: teacherDev }, maxSteps: 3, log: () => {} });
    expect(partial.state.globalStep).toBe(3);
    expect(JSON.parse(readFileSync(join(runDir, 'distill-state.json'), 'utf8')).step).toBe(3);
    const lines: string[] = [];
    const { student, state } = await distillStudent({ config, runDir, teacher: t, train, dev: { images: dev, teacherFeatures: teacherDev }, log: (l) => lines.push(l) });
    expect(lines[0]).toMatch(/resuming .* epoch 1, step 3/);
    expect(state.globalStep).toBe(4 * config.epochs);
    expect(state.history).toHaveLength(config.epochs);
    expect(lateLoss(state.history)).toBeLessThan(state.history[0].loss);
    for (const f of ['student/model.json', 'checkpoint/optimizer.bin', 'distill-loss.svg', 'distill-fidelity.svg']) expect(existsSync(join(runDir, f)), f).toBe(true);
    expect(student.layers.some((l) => l.name.endsWith('_bn'))).toBe(false);
    expect(student.outputs[0].shape).toEqual([null, 8]);
    // A finished run asked for more epochs goes on from where it stopped.
    const more = await distillStudent({ config: { ...config, epochs: config.epochs + 1 }, runDir, teacher: t, train, dev: { images: dev, teacherFeatures: teacherDev }, log: () => {} });
    expect(more.state.history.map((h) => h.epoch)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(more.state.globalStep).toBe(4 * 7);
  });

  it('trains from teacher features cached per view (photo and mirror image)', async () => {
    const teacher = buildCompactVgg16({ widthMultiplier: 1 / 16, inputSize: 32, featureSize: 8 }, { seed: TEACHER_SEED });
    const train = Array.from({ length: 16 }, (_, i) => photo(i + 1));
    const targets: [Float32Array, Float32Array] = [studentFeatures(teacher, train, 32), studentFeatures(teacher, train.map(mirrored), 32)];
    const dev = train.slice(0, 2);
    const config = { ...DEFAULT_DISTILL_CONFIG, widthMultiplier: 1 / 16, inputSize: 32, batchSize: 4, epochs: 6, learningRate: 3e-3, devImages: 0, warmupSteps: 2, batchNorm: true };
    const t = { model: teacher, inputSize: 32, featureSize: 8, normalization: UNIT_RANGE_NORMALIZATION };
    // A decoder's dev CIDEr-D, when given, picks the epoch that is kept (here: the second).
    let evaluated = 0;
    const evaluateDev = async () => ({ ciderD: ++evaluated === 2 ? 0.5 : 0.1 });
    const { state, student } = await distillStudent({ config, runDir: join(root, 'cached'), teacher: t, train, cachedTargets: targets, dev: { images: dev, teacherFeatures: targets[0].slice(0, 16) }, evaluateDev, log: () => {} });
    expect(state.bestEpoch).toBe(2);
    expect(lateLoss(state.history)).toBeLessThan(state.history[0].loss);
    // The saved, batch-norm-folded student answers in the teacher's own (unstandardised) feature
    // space: its dev cosine is what the training model scored at its best epoch.
    const saved = studentFeatures(student, dev, 32);
    const best = state.history[state.bestEpoch - 1].devCosine;
    expect(meanCosine(saved, targets[0].slice(0, saved.length), 8)).toBeCloseTo(best, 3);
    // last/ is the final epoch's student, whichever epoch was kept as the best.
    const last = await loadLayersModel(fileSource(join(root, 'cached', 'last')), 'model.json');
    const lastCosine = meanCosine(studentFeatures(last, dev, 32), targets[0].slice(0, saved.length), 8);
    expect(lastCosine).toBeCloseTo(state.history[state.history.length - 1].devCosine, 3);
    expect(lastCosine).not.toBeCloseTo(best, 3);
  });

  it('spatial distillation: the student\'s grid learns the teacher\'s through a 1×1 projection that is not exported', async () => {
    const teacher = buildCompactVgg16({ widthMultiplier: 1 / 16, inputSize: 32, featureSize: 8 }, { seed: TEACHER_SEED });
    const train = Array.from({ length: 16 }, (_, i) => photo(i + 1));
    const targets: [Float32Array, Float32Array] = [studentFeatures(teacher, train, 32), studentFeatures(teacher, train.map(mirrored), 32)];
    // The teacher's own 2×2×32 block5 grid as the grid target.
    const gridOf = tf.model({ inputs: teacher.inputs, outputs: teacher.getLayer('block5_conv3').output as tf.SymbolicTensor });
    const grids = studentFeatures(gridOf, train, 32);
    const mirroredGrids = studentFeatures(gridOf, train.map(mirrored), 32);
    const dev = train.slice(0, 4);
    const config = { ...DEFAULT_DISTILL_CONFIG, widthMultiplier: 1 / 16, inputSize: 32, batchSize: 4, epochs: 6, learningRate: 3e-3, devImages: 0, warmupSteps: 2 };
    const t = { model: teacher, inputSize: 32, featureSize: 8, normalization: UNIT_RANGE_NORMALIZATION };
    const grid = { targets: [grids, mirroredGrids] as [Float32Array, Float32Array], dev: grids.slice(0, 4 * 128), shape: [2, 2, 32] as [number, number, number], weight: 1 };
    const runDir = join(root, 'spatial');
    const { state, student } = await distillStudent({ config, runDir, teacher: t, train, cachedTargets: targets, dev: { images: dev, teacherFeatures: targets[0].slice(0, 32) }, grid, log: () => {} });
    expect(state.history.every((h) => typeof h.devGridCosine === 'number')).toBe(true);
    expect(state.history[state.history.length - 1].devGridCosine!).toBeGreaterThan(state.history[0].devGridCosine!);
    expect(lateLoss(state.history)).toBeLessThan(state.history[0].loss);
    // The saved student is a plain compact VGG16: no projection, one pooled output, as the worker serves it.
    expect(student.layers.map((l) => l.name)).not.toContain('grid_proj');
    expect(student.outputs).toHaveLength(1);
    expect(studentFeatures(student, dev, 32).length).toBe(4 * 8);
    // The checkpoint holds the training model, projection included, so a resumed run keeps it.
    const ckpt = await loadLayersModel(fileSource(join(runDir, 'checkpoint')), 'model.json');
    expect(ckpt.layers.map((l) => l.name)).toContain('grid_proj');
  });
});
