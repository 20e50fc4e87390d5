import * as tf from '@tensorflow/tfjs';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadLayersModel, serializeLayersModel } from '../../shared/bundle/model-io';
import { buildDecoder, type DecoderConfig } from '../../shared/models/decoder';
import { decoderWeights, forwardSequence } from '../../shared/models/decoder-ops';
import { normalizeCaption } from '../../shared/text/tokenizer';
import type { Vocabulary } from '../../shared/text/vocabulary';
import type { DecoderTrainConfig } from '../config';
import { captionFeatureSet, type FeatureSet } from '../evaluate/caption-features';
import { scoreCaptions } from '../metrics';
import { fileSource } from '../fs-source';
import { hasCheckpoint, loadCheckpoint, saveCheckpoint } from '../checkpoint';
import { writeDirAtomic, writeFileAtomic, writeJsonAtomic } from '../fs-atomic';
import { rng } from '../random';
import { createProgress } from '../report/progress';
import { lineChartSvg } from '../report/plot';
import { makeBatches, type Example } from './batches';
import { clipByGlobalNorm, maskedCrossEntropy } from './loss';

export interface EpochRecord {
  epoch: number;
  learningRate: number;
  trainLoss: number;
  seconds: number;
  examplesPerSecond: number;
  dev: { bleu1: number; bleu2: number; bleu3: number; bleu4: number; ciderD: number };
}

export interface TrainState {
  epoch: number;
  bestEpoch: number;
  bestCiderD: number;
  history: EpochRecord[];
  done: boolean;
}

export interface TrainDecoderInput {
  config: DecoderTrainConfig;
  runDir: string;
  vocab: Vocabulary;
  /** Features of every image used (train and dev), one row each. */
  features: FeatureSet;
  train: Example[];
  /** Dev images (names in `features`) and their reference captions. */
  dev: { names: string[]; references: Map<string, string[]> };
  /** GloVe rows for the vocabulary (vocab.size × embeddingSize), if any. */
  embeddingInit?: Float32Array;
  /** Start from this decoder's weights (a folder with model.json; same vocabulary and sizes). */
  initDecoder?: string;
  log?: (line: string) => void;
}

export interface TrainDecoderResult {
  /** The best epoch's decoder (by dev CIDEr-D). */
  decoder: tf.LayersModel;
  decoderConfig: DecoderConfig;
  state: TrainState;
}

const CHECKPOINT = 'checkpoint';
const BEST = 'best';

/**
 * Trains the caption decoder on precomputed features: teacher forcing on whole sequences, Adam with
 * a per-epoch decay and gradient clipping, dev CIDEr-D (greedy) after every epoch, early stopping.
 * A checkpoint (weights, optimizer state, history) is written after each epoch, and a run folder
 * that has one resumes from it.
 */
export async function trainDecoder(input: TrainDecoderInput): Promise<TrainDecoderResult> {
  const { config: cfg, runDir, vocab, features } = input;
  const log = input.log ?? ((l: string) => console.error(l));
  const decoderConfig: DecoderConfig = {
    vocabSize: vocab.size,
    featureSize: features.featureSize,
    embeddingSize: cfg.embeddingSize,
    units: cfg.units,
    maxLength: cfg.maxLength,
    dropout: cfg.dropout,
  };
  const statePath = join(runDir, 'state.json');
  let state: TrainState = { epoch: 0, bestEpoch: 0, bestCiderD: -1, history: [], done: false };
  let model: tf.LayersModel;
  const optimizer = tf.train.adam(cfg.learningRate);
  if (hasCheckpoint(join(runDir, CHECKPOINT))) {
    const ck = await loadCheckpoint<TrainState>(join(runDir, CHECKPOINT), optimizer);
    model = ck.model;
    state = ck.state ?? (JSON.parse(readFileSync(statePath, 'utf8')) as TrainState);
    if (state.done && state.epoch < cfg.epochs && state.epoch - state.bestEpoch < cfg.patience) {
      // Finished its epochs (not early-stopped) and asked for more: go on, the schedule continues.
      state.done = false;
      log(`extending ${runDir} from ${state.epoch} to ${cfg.epochs} epochs`);
    }
    log(`resuming ${runDir} after epoch ${state.epoch} (best dev CIDEr-D ${state.bestCiderD.toFixed(4)} at epoch ${state.bestEpoch})`);
  } else {
    model = buildDecoder(decoderConfig, { seed: cfg.seed });
    if (input.initDecoder) {
      const init = await loadLayersModel(fileSource(input.initDecoder), 'model.json');
      for (const layer of model.layers) if (layer.weights.length) layer.setWeights(init.getLayer(layer.name).getWeights());
      init.dispose();
      log(`initialised from ${input.initDecoder}`);
    } else if (input.embeddingInit) {
      const emb = model.getLayer('embedding');
      emb.setWeights([tf.tensor2d(input.embeddingInit, [vocab.size, cfg.embeddingSize])]);
    }
  }
  const weights = decoderWeights(model);
  const vars = model.trainableWeights.map((v) => v.read() as tf.Variable);
  const featureMatrix = tf.tensor2d(features.matrix, [features.names.length, features.featureSize]);
  const rowOf = new Map(features.names.map((n, i) => [n, i]));
  const devSet: FeatureSet = {
    names: input.dev.names,
    featureSize: features.featureSize,
    matrix: gatherRows(features, input.dev.names.map((n) => rowOf.get(n)!)),
  };
  const devRefs = new Map([...input.dev.references].map(([k, v]) => [k, v.map(normalizeCaption)]));

  try {
    for (let epoch = state.epoch + 1; epoch <= cfg.epochs && !state.done; epoch++) {
      const lr = cfg.learningRate * Math.pow(cfg.lrDecay, epoch - 1);
      (optimizer as unknown as { learningRate: number }).learningRate = lr;
      const batches = makeBatches(input.train, cfg.batchSize, rng(cfg.seed * 1000 + epoch));
      const bar = createProgress(batches.length, `epoch ${epoch}/${cfg.epochs}`);
      const t0 = Date.now();
      let lossSum = 0;
      let examples = 0;
      batches.forEach((b, step) => {
        const loss = tf.tidy(() => {
          const f = tf.gather(featureMatrix, tf.tensor1d(b.rows, 'int32')) as tf.Tensor2D;
          const inputs = tf.tensor2d(b.inputs, [b.size, b.steps], 'int32');
          const targets = tf.tensor2d(b.targets, [b.size, b.steps], 'int32');
          const { value, grads } = tf.variableGrads(() => maskedCrossEntropy(forwardSequence(weights, f, inputs, cfg.dropout, cfg.seed * 7919 + epoch * 100003 + step * 7), targets), vars);
          const clipped = clipByGlobalNorm(grads, cfg.clipNorm).grads;
          optimizer.applyGradients(Object.entries(clipped).map(([name, tensor]) => ({ name, tensor })));
          return value;
        });
        lossSum += loss.dataSync()[0] * b.size;
        loss.dispose();
        examples += b.size;
        bar.tick(1);
      });
      bar.stop();
      const seconds = (Date.now() - t0) / 1000;
      const devCaps = captionFeatureSet(weights, vocab, devSet, { beam: 1, maxLength: cfg.maxLength });
      const scores = scoreCaptions(devRefs, devCaps);
      const rec: EpochRecord = {
        epoch,
        learningRate: lr,
        trainLoss: lossSum / examples,
        seconds,
        examplesPerSecond: examples / seconds,
        dev: { bleu1: scores.bleu1, bleu2: scores.bleu2, bleu3: scores.bleu3, bleu4: scores.bleu4, ciderD: scores.ciderD },
      };
      state.history.push(rec);
      state.epoch = epoch;
      log(`epoch ${epoch}: loss ${rec.trainLoss.toFixed(4)}, ${seconds.toFixed(0)} s (${rec.examplesPerSecond.toFixed(0)} captions/s), dev BLEU-4 ${scores.bleu4.toFixed(4)} CIDEr-D ${scores.ciderD.toFixed(4)} — e.g. "${devCaps.get(devSet.names[0])}"`);
      if (scores.ciderD > state.bestCiderD) {
        state.bestCiderD = scores.ciderD;
        state.bestEpoch = epoch;
        writeDirAtomic(join(runDir, BEST), await serializeLayersModel(model, '', 'none'));
      } else if (epoch - state.bestEpoch >= cfg.patience) {
        log(`early stop: no better dev CIDEr-D for ${cfg.patience} epochs`);
        state.done = true;
      }
      if (epoch === cfg.epochs) state.done = true;
      await saveCheckpoint(join(runDir, CHECKPOINT), model, optimizer, state);
      // A copy for people and tools; resuming reads the one inside the checkpoint.
      writeJsonAtomic(statePath, state);
      await writePlots(runDir, state.history);
    }
  } finally {
    featureMatrix.dispose();
  }
  model.dispose();
  const best = await loadLayersModel(fileSource(join(runDir, BEST)), 'model.json');
  return { decoder: best, decoderConfig, state };
}

function gatherRows(set: FeatureSet, rows: number[]): Float32Array {
  const F = set.featureSize;
  const out = new Float32Array(rows.length * F);
  rows.forEach((r, i) => out.set(set.matrix.subarray(r * F, (r + 1) * F), i * F));
  return out;
}

async function writePlots(runDir: string, history: EpochRecord[]): Promise<void> {
  const loss = await lineChartSvg({ title: 'Decoder training loss', xLabel: 'epoch', yLabel: 'cross-entropy', series: [{ name: 'train', points: history.map((h) => [h.epoch, h.trainLoss]) }] });
  const dev = await lineChartSvg({
    title: 'Dev metrics (greedy)',
    xLabel: 'epoch',
    yLabel: 'score',
    series: [
      { name: 'CIDEr-D', points: history.map((h) => [h.epoch, h.dev.ciderD]) },
      { name: 'BLEU-4', points: history.map((h) => [h.epoch, h.dev.bleu4]) },
      { name: 'BLEU-1', points: history.map((h) => [h.epoch, h.dev.bleu1]) },
    ],
  });
  writeFileAtomic(join(runDir, 'loss.svg'), loss);
  writeFileAtomic(join(runDir, 'dev-metrics.svg'), dev);
}
