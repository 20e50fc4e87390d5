import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../offline/backend';
import { DEFAULT_DISTILL_CONFIG } from '../offline/config';
import { distillLoss } from '../offline/distill/loss';
import { GradientPool, parallelGradients } from '../offline/distill/parallel-grads';
import { distillStudent, studentFeatures, withGridHead } from '../offline/distill/train-student';
import { rng } from '../offline/random';
import { registerWasmTrainingKernels } from '../offline/wasm-kernels';
import { UNIT_RANGE_NORMALIZATION } from '../shared/image/normalize';
import type { RgbImage } from '../shared/image/types';
import { buildCompactVgg16 } from '../shared/models/vgg16';

const TINY = { widthMultiplier: 1 / 16, inputSize: 32, featureSize: 8 };
const root = mkdtempSync(join(tmpdir(), 'parallel-grads-'));
beforeAll(async () => {
  if ((await selectBackend('wasm')) === 'wasm') registerWasmTrainingKernels();
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function photo(seed: number, size = 40): RgbImage {
  const r = rng(seed);
  const data = new Uint8Array(size * size * 3);
  const [a, b, period] = [r() * 255, r() * 255, 3 + r() * 10];
  for (let i = 0; i < size * size; i++) for (let c = 0; c < 3; c++) data[i * 3 + c] = (Math.sin((i % size) / period + c) > 0 ? a : b) * (0.5 + 0.5 * r());
  return { width: size, height: size, data };
}

const relativeError = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.norm(tf.sub(a, b)).dataSync()[0] / Math.max(1e-12, tf.norm(b).dataSync()[0]));

describe('parallel gradients', () => {
  it('averaged over 2 threads equal the full batch\'s gradients (no batch norm)', async () => {
    const model = buildCompactVgg16(TINY, { seed: 3 });
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const N = 5; // uneven split: 2 rows here, 3 in the worker
    const x = tf.randomUniform([N, 32, 32, 3], -1, 1, 'float32', 1).dataSync() as Float32Array;
    const target = tf.randomNormal([N, 8], 0, 1, 'float32', 2) as tf.Tensor2D;
    const full = tf.variableGrads(() => distillLoss(model.apply(tf.tensor4d(x, [N, 32, 32, 3]), { training: true }) as tf.Tensor2D, target, 1), vars);
    const pool = await GradientPool.start({ threads: 2, model, cosineWeight: 1 });
    try {
      const par = await parallelGradients(pool, { model, vars, x, target, cosineWeight: 1 });
      expect(par.value.dataSync()[0]).toBeCloseTo(full.value.dataSync()[0], 5);
      vars.forEach((v, i) => expect(relativeError(par.grads[i], full.grads[v.name]), v.name).toBeLessThan(1e-4));
      // Twice in a row: the same workers answer again.
      const again = await parallelGradients(pool, { model, vars, x, target, cosineWeight: 1 });
      expect(relativeError(again.grads[0], par.grads[0])).toBeLessThan(1e-6);
    } finally {
      await pool.close();
    }
  });

  it('with a grid head (spatial distillation), averaged over 2 threads equal the full batch\'s gradients', async () => {
    const model = withGridHead(buildCompactVgg16(TINY, { seed: 3 }), 'block5_conv3', 6, 4);
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const grid = { cells: 4, channels: 6, weight: 0.7 };
    const N = 5;
    const x = tf.randomUniform([N, 32, 32, 3], -1, 1, 'float32', 1).dataSync() as Float32Array;
    const target = tf.randomNormal([N, 8 + 24], 0, 1, 'float32', 2) as tf.Tensor2D;
    const full = tf.variableGrads(() => distillLoss(model.apply(tf.tensor4d(x, [N, 32, 32, 3]), { training: true }) as tf.Tensor2D, target, 1, undefined, grid), vars);
    // The grid term counts: without it the loss differs.
    const pooledOnly = distillLoss(tf.slice(model.predict(tf.tensor4d(x, [N, 32, 32, 3])) as tf.Tensor2D, [0, 0], [N, 8]), tf.slice(target, [0, 0], [N, 8]), 1);
    expect(Math.abs(full.value.dataSync()[0] - pooledOnly.dataSync()[0])).toBeGreaterThan(0.1);
    const pool = await GradientPool.start({ threads: 2, model, cosineWeight: 1, grid });
    try {
      const par = await parallelGradients(pool, { model, vars, x, target, cosineWeight: 1, grid });
      expect(par.value.dataSync()[0]).toBeCloseTo(full.value.dataSync()[0], 5);
      vars.forEach((v, i) => expect(relativeError(par.grads[i], full.grads[v.name]), v.name).toBeLessThan(1e-4));
    } finally {
      await pool.close();
    }
  });

  it('a worker that throws makes the step reject with its message; a worker that cannot start fails start()', async () => {
    const model = buildCompactVgg16(TINY, { seed: 3 });
    const pool = await GradientPool.start({ threads: 2, model, cosineWeight: 1 });
    try {
      // Fresh arrays for each step: the pool transfers them to the worker.
      const weights = () => model.trainableWeights.map((w) => w.read().dataSync().slice() as Float32Array);
      // 7 values of pixels announced as 2 rows: tf.tensor() in the worker throws.
      const bad = pool.run(weights(), [{ x: new Float32Array(7), target: new Float32Array(16), rows: 2, energy: [1] }]);
      await expect(bad).rejects.toThrow(/gradient worker 1: .*shape/);
      // The worker survives a failed step.
      const ok = await pool.run(weights(), [{ x: new Float32Array(2 * 32 * 32 * 3), target: new Float32Array(16).fill(1), rows: 2, energy: [1] }]);
      expect(ok[0].grads.map((g) => g.length)).toEqual(model.trainableWeights.map((w) => w.read().size));
      // Arrays already handed over cannot be sent again: the step rejects instead of hanging.
      const sent = weights();
      await pool.run(sent, [{ x: new Float32Array(2 * 32 * 32 * 3), target: new Float32Array(16).fill(1), rows: 2, energy: [1] }]);
      await expect(pool.run(sent, [{ x: new Float32Array(2 * 32 * 32 * 3), target: new Float32Array(16).fill(1), rows: 2, energy: [1] }])).rejects.toThrow();
      // A worker that dies mid-step (here: terminated from outside) fails the step, and every later one.
      const step = pool.run(weights(), [{ x: new Float32Array(2 * 32 * 32 * 3), target: new Float32Array(16), rows: 2, energy: [1] }]);
      void (pool as unknown as { workers: { worker: { terminate(): Promise<number> } }[] }).workers[0].worker.terminate();
      await expect(step).rejects.toThrow(/gradient worker 1 exited/);
      await expect(pool.run(weights(), [{ x: new Float32Array(2 * 32 * 32 * 3), target: new Float32Array(16), rows: 2, energy: [1] }])).rejects.toThrow(/gradient worker 1 exited/);
    } finally {
      await pool.close();
    }
    const broken = { toJSON: () => ({ class_name: 'NoSuchModel', config: {} }), trainableWeights: [] } as unknown as tf.LayersModel;
    await expect(GradientPool.start({ threads: 2, model: broken, cosineWeight: 1 })).rejects.toThrow(/gradient worker 1: /);
  });
});

describe('distillation with threads: 2', () => {
  it('trains, checkpoints and resumes', async () => {
    const teacher = buildCompactVgg16(TINY, { seed: 11 });
    const train = Array.from({ length: 16 }, (_, i) => photo(i + 1));
    const dev = Array.from({ length: 4 }, (_, i) => photo(100 + i));
    const teacherDev = studentFeatures(teacher, dev, 32);
    const config = { ...DEFAULT_DISTILL_CONFIG, widthMultiplier: 1 / 16, inputSize: 32, batchSize: 4, epochs: 5, learningRate: 3e-3, checkpointEvery: 2, devImages: 0, warmupSteps: 2, threads: 2 };
    const runDir = join(root, 'run');
    const input = { config, runDir, teacher: { model: teacher, inputSize: 32, featureSize: 8, normalization: UNIT_RANGE_NORMALIZATION }, train, dev: { images: dev, teacherFeatures: teacherDev } };
    const partial = await distillStudent({ ...input, maxSteps: 3, log: () => {} });
    expect(partial.state.globalStep).toBe(3);
    expect(existsSync(join(runDir, 'checkpoint/optimizer.bin'))).toBe(true);
    expect(JSON.parse(readFileSync(join(runDir, 'distill-state.json'), 'utf8')).step).toBe(3);
    const lines: string[] = [];
    const { state } = await distillStudent({ ...input, log: (l) => lines.push(l) });
    expect(lines[0]).toMatch(/resuming .* epoch 1, step 3/);
    expect(state.globalStep).toBe(4 * config.epochs);
    const h = state.history;
    expect((h[h.length - 1].loss + h[h.length - 2].loss) / 2).toBeLessThan(h[0].loss);
    expect(existsSync(join(runDir, 'student/model.json'))).toBe(true);
  });
});
