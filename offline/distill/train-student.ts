import * as tf from '@tensorflow/tfjs';
import * as tfl from '@tensorflow/tfjs-layers';
import { join } from 'node:path';
import { loadLayersModel, serializeLayersModel } from '../../shared/bundle/model-io';
import type { Normalization } from '../../shared/bundle/manifest';
import { concatFloat32 } from '../../shared/float-arrays';
import type { RgbImage } from '../../shared/image/types';
import { foldBatchNorm } from '../../shared/models/fold-batch-norm';
import { buildCompactVgg16, compactVgg16Cost, type CompactVgg16Config } from '../../shared/models/vgg16';
import type { DistillConfig } from '../config';
import { runEpochs, type EpochState } from '../epochs';
import { fileSource } from '../fs-source';
import { rng, shuffle } from '../random';
import { lineChartSvg } from '../report/plot';
import { augmentedView, CACHED_VIEW_AUGMENT, DEFAULT_AUGMENT, viewInput } from './augment';
import { cosineSimilarity, type GridTarget } from './loss';
import { distillStep, GradientPool } from './parallel-grads';

export interface Teacher {
  model: tf.LayersModel;
  inputSize: number;
  featureSize: number;
  normalization: Normalization;
}

export interface DistillEpoch {
  epoch: number;
  loss: number;
  seconds: number;
  imagesPerSecond: number;
  learningRate: number;
  /** Mean cosine similarity of student and teacher features on unaugmented dev images. */
  devCosine: number;
  /** Spatial distillation: mean cosine, per grid cell, of the student's projected grid and the teacher's (standardised). */
  devGridCosine?: number;
  /** Extra dev figures from the caller, e.g. the caption decoder's CIDEr-D on student features. */
  dev?: Record<string, number>;
}

export type DistillState = EpochState<DistillEpoch>;

export interface DistillInput {
  config: DistillConfig;
  runDir: string;
  teacher: Teacher;
  /** Decoded training photos (train split plus photos in no split; never dev or test). */
  train: RgbImage[];
  /**
   * Teacher features cached per view — [original, mirrored], each train.length × F — used instead
   * of running the teacher in every step (views are then full photos, mirrored or not, with mild
   * colour jitter, so the cached feature is the teacher's answer for that view).
   */
  cachedTargets?: [Float32Array, Float32Array];
  dev: { images: RgbImage[]; teacherFeatures: Float32Array };
  /** Extra per-epoch evaluation on the student's dev features (e.g. decoder CIDEr-D). */
  evaluateDev?: (studentFeatures: Float32Array) => Promise<Record<string, number>>;
  /** Stop after this many optimisation steps in this process (benchmarks). */
  maxSteps?: number;
  /** A trained student whose layers of the same name and shapes start this run (a fresh run only). */
  warmStart?: tf.LayersModel;
  /**
   * Spatial distillation: the teacher's grid of each training photo and of its mirror image, as
   * the cached views ([original, mirrored], each train.length × cells·channels, cell-major), and
   * of each dev photo; the student's last grid learns it through a 1×1 projection (trained here,
   * not exported). The mirrored photo's grid is computed, not the grid mirrored: a CNN's channels
   * are not mirror-symmetric (an edge leaning one way becomes one leaning the other way).
   */
  grid?: { targets: [Float32Array, Float32Array]; dev: Float32Array; shape: [number, number, number]; weight: number };
  log?: (line: string) => void;
}

export const STUDENT_NORMALIZATION: Normalization = { channelOrder: 'rgb', mean: [127.5, 127.5, 127.5], std: [127.5, 127.5, 127.5] };

export function studentConfig(c: DistillConfig, featureSize: number): CompactVgg16Config {
  return { widthMultiplier: c.widthMultiplier, inputSize: c.inputSize, featureSize, batchNorm: c.batchNorm, headChannels: c.headChannels };
}

/**
 * Distils a batch-normalised compact VGG16 from a teacher CNN: each step draws augmented views
 * (random resized crop, flip, colour jitter), runs the teacher on each view at its own input size
 * and trains the student to reproduce the teacher's feature. Checkpoints every `checkpointEvery`
 * steps; a run folder that has one resumes mid-epoch. The best epoch (dev CIDEr-D of the
 * teacher's decoder on the student's features when a decoder is given, else dev cosine) is kept,
 * batch-norm folded, in `<runDir>/student/`.
 */
export async function distillStudent(input: DistillInput): Promise<{ student: tf.LayersModel; state: DistillState }> {
  const workers: { pool?: GradientPool } = {};
  try {
    return await distill(input, workers);
  } finally {
    await workers.pool?.close();
  }
}

async function distill(input: DistillInput, workers: { pool?: GradientPool }): Promise<{ student: tf.LayersModel; state: DistillState }> {
  const { config: cfg, runDir, teacher } = input;
  const log = input.log ?? ((l: string) => console.error(l));
  const arch = studentConfig(cfg, teacher.featureSize);
  const optimizer = tf.train.adam(cfg.learningRate);
  const stats = featureStats(input.cachedTargets?.[0] ?? input.dev.teacherFeatures, teacher.featureSize);
  const stepsPerEpoch = Math.floor(input.train.length / cfg.batchSize);
  const totalSteps = stepsPerEpoch * cfg.epochs;
  const lrAt = (t: number) => {
    const warm = Math.min(1, (t + 1) / Math.max(1, cfg.warmupSteps));
    const min = cfg.learningRate * cfg.minLearningRateFraction;
    return warm * (min + (cfg.learningRate - min) * 0.5 * (1 + Math.cos((Math.PI * t) / totalSteps)));
  };
  const S = cfg.inputSize;
  const T = teacher.inputSize;
  const F = teacher.featureSize;
  const cached = input.cachedTargets;
  const spatial = input.grid;
  const gridTarget: GridTarget | undefined = spatial && { cells: spatial.shape[0] * spatial.shape[1], channels: spatial.shape[2], weight: spatial.weight };
  const G = gridTarget ? gridTarget.cells * gridTarget.channels : 0;
  if (spatial && !cached) throw new Error('spatial distillation needs cached teacher targets (targets: cached-views)');
  const gridStats = spatial && channelStats(spatial.targets[0], spatial.shape);
  const orders = new Map<number, number[]>();
  const orderOf = (epoch: number) => {
    if (!orders.has(epoch)) orders.set(epoch, shuffle([...input.train.keys()], rng(cfg.seed * 7777 + epoch)));
    return orders.get(epoch)!;
  };
  const batchAt = (epoch: number, step: number) => {
    const order = orderOf(epoch);
    const random = rng(cfg.seed * 1_000_003 + epoch * 10_007 + step);
    const sIn = new Float32Array(cfg.batchSize * S * S * 3);
    const tIn = cached ? new Float32Array(cfg.batchSize * F) : new Float32Array(cfg.batchSize * T * T * 3);
    const gIn = spatial ? new Float32Array(cfg.batchSize * G) : undefined;
    for (let b = 0; b < cfg.batchSize; b++) {
      const idx = order[step * cfg.batchSize + b];
      const view = augmentedView(input.train[idx], cached ? CACHED_VIEW_AUGMENT : DEFAULT_AUGMENT, random);
      viewInput(view.image, S, STUDENT_NORMALIZATION, sIn, b * S * S * 3);
      if (cached) tIn.set(cached[view.flipped ? 1 : 0].subarray(idx * F, (idx + 1) * F), b * F);
      else viewInput(view.image, T, teacher.normalization, tIn, b * T * T * 3);
      if (spatial && gIn) gIn.set(standardizeCells(spatial.targets[view.flipped ? 1 : 0].subarray(idx * G, (idx + 1) * G), gridStats!), b * G);
    }
    return { sIn, tIn, gIn };
  };
  // With worker threads, the next step's batch is made while the workers finish this one.
  let prefetched: { key: string; batch: ReturnType<typeof batchAt> } | undefined;
  let vars: tf.Variable[] = [];

  const { model, state, paused } = await runEpochs<DistillEpoch>({
    runDir,
    epochs: cfg.epochs,
    stepsPerEpoch,
    checkpointEvery: cfg.checkpointEvery,
    optimizer,
    log,
    label: 'distill epoch',
    maxSteps: input.maxSteps,
    bestDir: 'student',
    stateFile: 'distill-state.json',
    async init() {
      const cost = compactVgg16Cost(arch);
      log(`student: compact VGG16 ×${cfg.widthMultiplier} at ${cfg.inputSize}² → ${teacher.featureSize}-d: ${(cost.params / 1e6).toFixed(2)} M parameters, ${(cost.flops / 1e9).toFixed(3)} GFLOP per image`);
      const student = buildCompactVgg16(arch, { seed: cfg.seed });
      if (input.warmStart) log(`warm start: ${copyMatchingLayers(input.warmStart, student).join(', ')} copied`);
      if (!spatial) return student;
      log(`spatial distillation: ${studentGridLayer(arch)} → 1×1 projection → the teacher's ${spatial.shape.join('×')} grid (weight ${spatial.weight})`);
      return withGridHead(student, studentGridLayer(arch), spatial.shape[2], cfg.seed);
    },
    async prepare(student) {
      vars = student.trainableWeights.map((w) => w.read() as tf.Variable);
      if ((cfg.threads ?? 1) > 1) {
        workers.pool = await GradientPool.start({ threads: cfg.threads, model: student, cosineWeight: cfg.cosineWeight, grid: gridTarget });
        log(`gradients on ${cfg.threads} threads${arch.batchNorm ? ' (batch norm per thread slice: ghost batch norm)' : ''}`);
      }
    },
    async step(student, { epoch, step, globalStep }) {
      const key = `${epoch}:${step}`;
      const { sIn, tIn, gIn } = prefetched?.key === key ? prefetched.batch : batchAt(epoch, step);
      prefetched = undefined;
      orders.delete(epoch - 1);
      (optimizer as unknown as { learningRate: number }).learningRate = lrAt(globalStep);
      const standardizedTarget = () => {
        const raw = cached
          ? tf.tensor2d(tIn, [cfg.batchSize, F])
          : (tf.reshape(teacher.model.predict(tf.tensor4d(tIn, [cfg.batchSize, T, T, 3])) as tf.Tensor, [cfg.batchSize, -1]) as tf.Tensor2D);
        const pooled = tf.div(tf.sub(raw, stats.mean), stats.std) as tf.Tensor2D;
        return gIn ? (tf.concat([pooled, tf.tensor2d(gIn, [cfg.batchSize, G])], 1) as tf.Tensor2D) : pooled;
      };
      const loss = await distillStep(workers.pool, optimizer, {
        model: student,
        vars,
        x: sIn,
        target: standardizedTarget,
        cosineWeight: cfg.cosineWeight,
        grid: gridTarget,
        whileWaiting: step + 1 < stepsPerEpoch ? () => (prefetched = { key: `${epoch}:${step + 1}`, batch: batchAt(epoch, step + 1) }) : undefined,
      });
      const l = loss.dataSync()[0];
      loss.dispose();
      return { loss: l * cfg.batchSize, examples: cfg.batchSize };
    },
    async evaluate(student, end) {
      const outputs = studentFeatures(student, input.dev.images, S);
      const devFeatures = destandardize(spatial ? columns(outputs, F + G, 0, F) : outputs, stats);
      const devCosine = meanCosine(devFeatures, input.dev.teacherFeatures, teacher.featureSize);
      // Per cell, in the standardised space the projection learns.
      const devGridCosine = spatial ? meanCosine(columns(outputs, F + G, F, G), standardizeCells(spatial.dev, gridStats!), spatial.shape[2]) : undefined;
      const record: DistillEpoch = {
        epoch: end.epoch,
        loss: end.loss,
        seconds: end.seconds,
        imagesPerSecond: end.examplesPerSecond,
        learningRate: lrAt(end.epoch * stepsPerEpoch - 1),
        devCosine,
        ...(devGridCosine !== undefined ? { devGridCosine } : {}),
        dev: await input.evaluateDev?.(devFeatures),
      };
      // With a decoder to score them, keep the epoch whose features caption best: measured, dev
      // cosine and the decoder's CIDEr-D can disagree (epoch 4 of the shipped run: cosine 0.755 →
      // 0.735, CIDEr-D 0.133 → 0.154).
      const score = record.dev?.ciderD ?? devCosine;
      return { record, score, summary: `${end.examplesPerSecond.toFixed(1)} images/s, dev cosine ${devCosine.toFixed(4)}${devGridCosine !== undefined ? `, grid cosine ${devGridCosine.toFixed(4)}` : ''}${record.dev ? ` ${JSON.stringify(record.dev)}` : ''}` };
    },
    // Saved as it serves: batch norm and the target standardisation folded in.
    async artifacts(student) {
      const serving = servingStudent(spatial ? withoutGridHead(student) : student, arch, stats);
      try {
        return await serializeLayersModel(serving, '', 'none');
      } finally {
        serving.dispose();
      }
    },
    plots: distillPlots,
  });
  if (paused) return { student: model, state };
  model.dispose();
  const best = await loadLayersModel(fileSource(join(runDir, 'student')), 'model.json');
  return { student: best, state };
}

/**
 * Copies each layer of `from` into the layer of the same name in `to` when all its weight shapes
 * agree (e.g. a served, batch-norm-folded student's convolutions into a new student without batch
 * norm but with a new head). Returns the names copied; none is an error: the warm start would be
 * silently a cold one.
 */
export function copyMatchingLayers(from: tf.LayersModel, to: tf.LayersModel): string[] {
  const copied: string[] = [];
  for (const layer of to.layers) {
    const src = from.layers.find((l) => l.name === layer.name);
    const w = src?.getWeights() ?? [];
    const mine = layer.getWeights();
    if (w.length === 0 || w.length !== mine.length || w.some((t, i) => !tf.util.arraysEqual(t.shape, mine[i].shape))) continue;
    layer.setWeights(w);
    copied.push(layer.name);
  }
  if (copied.length === 0) throw new Error(`warm start: no layer of ${from.name} matches ${to.name} by name and shapes`);
  return copied;
}

/** The student layer whose 7×7 output spatial distillation matches to the teacher's grid (what an attention decoder reads). */
export function studentGridLayer(arch: CompactVgg16Config): string {
  const conv = (arch.headChannels ?? 0) > 0 ? 'head_conv' : 'block5_conv3';
  return arch.batchNorm ? `${conv}_relu` : conv;
}

/**
 * The student with a second, training-only output: its grid through a 1×1 convolution to the
 * teacher's channels, flattened cell-major after the pooled feature ([pooled | grid], one row).
 */
export function withGridHead(student: tf.LayersModel, gridLayer: string, channels: number, seed?: number): tf.LayersModel {
  const g = student.getLayer(gridLayer).output as tfl.SymbolicTensor;
  const proj = tfl.layers.conv2d({ filters: channels, kernelSize: 1, name: 'grid_proj', kernelInitializer: tfl.initializers.glorotUniform({ seed }) }).apply(g) as tfl.SymbolicTensor;
  const flat = tfl.layers.flatten({ name: 'grid_proj_cells' }).apply(proj) as tfl.SymbolicTensor;
  const out = tfl.layers.concatenate({ name: 'distill_targets' }).apply([student.outputs[0], flat]) as tfl.SymbolicTensor;
  return tfl.model({ inputs: student.inputs, outputs: out, name: 'student_with_grid_head' });
}

/** The student inside `withGridHead` (same layers, the pooled feature as its only output). */
export function withoutGridHead(model: tf.LayersModel): tf.LayersModel {
  const concat = model.getLayer('distill_targets');
  const pooled = (concat.input as tfl.SymbolicTensor[])[0];
  return tfl.model({ inputs: model.inputs, outputs: pooled, name: 'compact_vgg16' });
}

/** Per-channel mean and spread of grids (rows of [rows, cols, channels], channels last), from up to 1,000 grids. */
export function channelStats(grids: Float32Array, [rows, cols, channels]: [number, number, number]): { mean: Float32Array; std: Float32Array } {
  const values = Math.min(grids.length, 1000 * rows * cols * channels);
  const mean = new Float64Array(channels);
  const sq = new Float64Array(channels);
  for (let i = 0; i < values; i++) {
    mean[i % channels] += grids[i];
    sq[i % channels] += grids[i] * grids[i];
  }
  const n = values / channels;
  const m = Float32Array.from(mean, (s) => s / n);
  return { mean: m, std: Float32Array.from(sq, (s, c) => Math.sqrt(Math.max(0, s / n - m[c] * m[c])) + 1e-3) };
}

function standardizeCells(grid: Float32Array, stats: { mean: Float32Array; std: Float32Array }): Float32Array {
  const C = stats.mean.length;
  return Float32Array.from(grid, (v, i) => (v - stats.mean[i % C]) / stats.std[i % C]);
}

/** Columns [from, from + n) of a row-major matrix with rows of `width`. */
function columns(m: Float32Array, width: number, from: number, n: number): Float32Array {
  const rows = m.length / width;
  const out = new Float32Array(rows * n);
  for (let r = 0; r < rows; r++) out.set(m.subarray(r * width + from, r * width + from + n), r * n);
  return out;
}

/**
 * Per-dimension mean and spread of the teacher's features. The student learns standardised
 * targets: the teacher's features share a large common component (all post-ReLU, cosine ≈ 0.7
 * to their mean), and on raw targets a student that outputs the mean already scores well and
 * stalls there. The standardisation is folded back into the projection layer on export.
 */
export function featureStats(matrix: Float32Array, F: number): { mean: tf.Tensor1D; std: tf.Tensor1D } {
  return tf.tidy(() => {
    const m = tf.tensor2d(matrix, [matrix.length / F, F]);
    const { mean, variance } = tf.moments(m, 0);
    return { mean: mean as tf.Tensor1D, std: tf.add(tf.sqrt(variance), 1e-3) as tf.Tensor1D };
  });
}

function destandardize(f: Float32Array, stats: { mean: tf.Tensor1D; std: tf.Tensor1D }): Float32Array {
  const F = stats.mean.shape[0];
  return tf.tidy(() => tf.add(tf.mul(tf.tensor2d(f, [f.length / F, F]), stats.std), stats.mean).dataSync() as Float32Array);
}

/**
 * The student as it serves: batch norm folded into the convolutions and the target
 * standardisation into the projection, so it outputs teacher-scale features.
 */
export function servingStudent(student: tf.LayersModel, arch: CompactVgg16Config, stats: { mean: tf.Tensor1D; std: tf.Tensor1D }): tf.LayersModel {
  const folded = arch.batchNorm ? foldBatchNorm(student, arch) : buildCompactVgg16({ ...arch, batchNorm: false });
  if (!arch.batchNorm) folded.setWeights(student.getWeights());
  foldStandardization(folded, stats);
  return folded;
}

/** projection(x)·σ + μ as one layer: W' = W·diag(σ), b' = b·σ + μ. */
function foldStandardization(model: tf.LayersModel, stats: { mean: tf.Tensor1D; std: tf.Tensor1D }): void {
  const layer = model.getLayer('projection');
  const [w, b] = layer.getWeights();
  const folded = tf.tidy(() => [tf.mul(w, stats.std), tf.add(tf.mul(b, stats.std), stats.mean)]);
  layer.setWeights(folded);
  tf.dispose(folded);
}

/** Student features of unaugmented images (inference mode), row-major. */
export function studentFeatures(student: tf.LayersModel, images: RgbImage[], size: number, batch = 32): Float32Array {
  const out: Float32Array[] = [];
  for (let i = 0; i < images.length; i += batch) {
    const chunk = images.slice(i, i + batch);
    const x = new Float32Array(chunk.length * size * size * 3);
    chunk.forEach((img, k) => viewInput(img, size, STUDENT_NORMALIZATION, x, k * size * size * 3));
    out.push(tf.tidy(() => (student.predict(tf.tensor4d(x, [chunk.length, size, size, 3])) as tf.Tensor).dataSync() as Float32Array));
  }
  return concatFloat32(out);
}

export function meanCosine(a: Float32Array, b: Float32Array, F: number): number {
  return tf.tidy(() => tf.mean(cosineSimilarity(tf.tensor2d(a, [a.length / F, F]), tf.tensor2d(b, [b.length / F, F]))).dataSync()[0]);
}

async function distillPlots(history: DistillEpoch[]): Promise<Record<string, string>> {
  const loss = await lineChartSvg({ title: 'Distillation loss', xLabel: 'epoch', yLabel: 'loss', series: [{ name: 'train', points: history.map((h) => [h.epoch, h.loss]) }] });
  const series = [{ name: 'dev cosine to teacher', points: history.map((h) => [h.epoch, h.devCosine] as [number, number]) }];
  const extra = Object.keys(history[history.length - 1]?.dev ?? {});
  for (const k of extra) series.push({ name: `dev ${k}`, points: history.filter((h) => h.dev?.[k] !== undefined).map((h) => [h.epoch, h.dev![k]] as [number, number]) });
  return { 'distill-loss.svg': loss, 'distill-fidelity.svg': await lineChartSvg({ title: 'Student fidelity on dev', xLabel: 'epoch', yLabel: 'score', series }) };
}
