import * as tf from '@tensorflow/tfjs';
import { loadLayersModel } from '../../shared/bundle/model-io';
import { buildDecoder, DECODER_LAYER_NAMES, gridCells, type AttentionConfig, type DecoderConfig } from '../../shared/models/decoder';
import { decoderWeights, forwardSequence, type DecoderWeights } from '../../shared/models/decoder-ops';
import { normalizeCaption } from '../../shared/text/tokenizer';
import type { Vocabulary } from '../../shared/text/vocabulary';
import type { DecoderTrainConfig } from '../config';
import { captionFeatureSet, selectRows, type FeatureSet } from '../evaluate/caption-features';
import { gatherRows } from '../features/feature-rows';
import { scoreCaptions } from '../metrics';
import { fileSource } from '../fs-source';
import { loadBest, runEpochs, type EpochState } from '../epochs';
import { rng } from '../random';
import { devMetricsSvg, lineChartSvg } from '../report/plot';
import { makeBatches, type Example } from './batches';
import { attentionCoverage, clipByGlobalNorm, maskedCrossEntropy } from './loss';

export interface EpochRecord {
  epoch: number;
  learningRate: number;
  trainLoss: number;
  seconds: number;
  examplesPerSecond: number;
  dev: { bleu1: number; bleu2: number; bleu3: number; bleu4: number; ciderD: number };
}

export type TrainState = EpochState<EpochRecord>;

export interface TrainDecoderInput {
  config: DecoderTrainConfig;
  runDir: string;
  vocab: Vocabulary;
  /** Features of every image used (train and dev), one row each: [pooled | grid] with attention. */
  features: FeatureSet;
  /** Attend over the grid that follows the pooled feature in each row. */
  attention?: AttentionConfig;
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

/**
 * Trains the caption decoder on precomputed features: teacher forcing on whole sequences, Adam with
 * a per-epoch decay and gradient clipping, dev CIDEr-D (greedy) after every epoch, early stopping;
 * resume, checkpoints and best/last through `runEpochs`.
 */
export async function trainDecoder(input: TrainDecoderInput): Promise<TrainDecoderResult> {
  const { config: cfg, runDir, vocab, features } = input;
  const log = input.log ?? ((l: string) => console.error(l));
  const gridSize = input.attention ? gridCells(input.attention) * input.attention.channels : 0;
  const decoderConfig: DecoderConfig = {
    vocabSize: vocab.size,
    featureSize: features.featureSize - gridSize,
    embeddingSize: cfg.embeddingSize,
    units: cfg.units,
    maxLength: cfg.maxLength,
    dropout: cfg.dropout,
    ...(input.attention ? { attention: input.attention } : {}),
  };
  const optimizer = tf.train.adam(cfg.learningRate);
  const devSet = selectRows(features, input.dev.names);
  const devRefs = new Map([...input.dev.references].map(([k, v]) => [k, v.map(normalizeCaption)]));
  // Batches are a pure function of (seed, epoch), so a resumed epoch replays the same order.
  const batchesOf = new Map<number, ReturnType<typeof makeBatches>>();
  const batches = (epoch: number) => {
    if (!batchesOf.has(epoch)) batchesOf.set(epoch, makeBatches(input.train, cfg.batchSize, rng(cfg.seed * 1000 + epoch)));
    return batchesOf.get(epoch)!;
  };
  let weights!: DecoderWeights;
  let vars!: tf.Variable[];

  const { model, state } = await runEpochs<EpochRecord>({
    runDir,
    epochs: cfg.epochs,
    patience: cfg.patience,
    stepsPerEpoch: batches(1).length,
    optimizer,
    log,
    progressUnit: 'batch',
    async init() {
      const model = buildDecoder(decoderConfig, { seed: cfg.seed });
      if (input.initDecoder) {
        const fresh = await copyDecoderWeights(input.initDecoder, model);
        log(`initialised from ${input.initDecoder}${fresh.length ? `; new: ${fresh.join(', ')}` : ''}`);
        if (fresh.includes(DECODER_LAYER_NAMES.attOut)) {
          // A pooled decoder grows attention: the context starts silent, so training starts from that decoder's captions.
          const out = model.getLayer(DECODER_LAYER_NAMES.attOut);
          out.setWeights(out.getWeights().map((w) => tf.zerosLike(w)));
        }
      } else if (input.embeddingInit) {
        model.getLayer('embedding').setWeights([tf.tensor2d(input.embeddingInit, [vocab.size, cfg.embeddingSize])]);
      }
      return model;
    },
    prepare(model) {
      weights = decoderWeights(model);
      vars = model.trainableWeights.map((v) => v.read() as tf.Variable);
    },
    step(_model, { epoch, step }) {
      (optimizer as unknown as { learningRate: number }).learningRate = cfg.learningRate * Math.pow(cfg.lrDecay, epoch - 1);
      const b = batches(epoch)[step];
      const loss = tf.tidy(() => {
        // Rows are gathered in JS: grids of every photo (1.8 GB for 7×7×1280) need not fit the wasm heap.
        const f = tf.tensor2d(gatherRows(features, b.rows), [b.size, features.featureSize]);
        const inputs = tf.tensor2d(b.inputs, [b.size, b.steps], 'int32');
        const targets = tf.tensor2d(b.targets, [b.size, b.steps], 'int32');
        const dropoutSeed = cfg.seed * 7919 + epoch * 100003 + step * 7;
        const { value, grads } = tf.variableGrads(() => {
          const seen: { attention?: tf.Tensor3D } = {};
          const ce = maskedCrossEntropy(forwardSequence(weights, f, inputs, cfg.dropout, dropoutSeed, seen), targets);
          return seen.attention && cfg.attentionCoverage > 0 ? (tf.add(ce, tf.mul(cfg.attentionCoverage, attentionCoverage(seen.attention, targets))) as tf.Scalar) : ce;
        }, vars);
        const clipped = clipByGlobalNorm(grads, cfg.clipNorm).grads;
        optimizer.applyGradients(Object.entries(clipped).map(([name, tensor]) => ({ name, tensor })));
        return value;
      });
      const mean = loss.dataSync()[0];
      loss.dispose();
      batchesOf.delete(epoch - 1);
      return { loss: mean * b.size, examples: b.size };
    },
    async evaluate(_model, end) {
      const devCaps = captionFeatureSet(weights, vocab, devSet, { beam: 1, maxLength: cfg.maxLength });
      const s = scoreCaptions(devRefs, devCaps);
      const record: EpochRecord = {
        epoch: end.epoch,
        learningRate: cfg.learningRate * Math.pow(cfg.lrDecay, end.epoch - 1),
        trainLoss: end.loss,
        seconds: end.seconds,
        examplesPerSecond: end.examplesPerSecond,
        dev: { bleu1: s.bleu1, bleu2: s.bleu2, bleu3: s.bleu3, bleu4: s.bleu4, ciderD: s.ciderD },
      };
      return { record, score: s.ciderD, summary: `${end.examplesPerSecond.toFixed(0)} captions/s, dev BLEU-4 ${s.bleu4.toFixed(4)} CIDEr-D ${s.ciderD.toFixed(4)} — e.g. "${devCaps.get(devSet.names[0])}"` };
    },
    plots: (history) => plots(history),
  });
  model.dispose();
  return { decoder: await loadBest(runDir), decoderConfig, state };
}

/**
 * Copies a decoder's weights into `model`, layer by layer (same names and sizes). Returns the
 * layers left as initialised: attention layers `from` does not have (a pooled decoder
 * warm-starting an attention one), and `att_grid` when the grids differ in channels (a decoder
 * moving to another encoder's grid: only that projection depends on them). Anything else that
 * does not fit is an error.
 */
export function copyLayerWeights(from: tf.LayersModel, model: tf.LayersModel): string[] {
  const have = new Set(from.layers.map((l) => l.name));
  const attention = new Set<string>([DECODER_LAYER_NAMES.attGrid, DECODER_LAYER_NAMES.attQuery, DECODER_LAYER_NAMES.attGate, DECODER_LAYER_NAMES.attOut]);
  const fresh: string[] = [];
  for (const layer of model.layers) {
    if (!layer.weights.length) continue;
    if (have.has(layer.name)) {
      const weights = from.getLayer(layer.name).getWeights();
      const fits = weights.length === layer.weights.length && weights.every((w, i) => w.shape.join() === layer.weights[i].shape.join());
      if (fits) layer.setWeights(weights);
      else if (layer.name === DECODER_LAYER_NAMES.attGrid) fresh.push(layer.name);
      else throw new Error(`decoder warm start: layer '${layer.name}' has weights [${weights.map((w) => w.shape.join('×')).join(', ')}] in ${from.name}, [${layer.weights.map((w) => w.shape.join('×')).join(', ')}] here`);
    } else if (attention.has(layer.name)) fresh.push(layer.name);
    else throw new Error(`decoder warm start: ${from.name} has no layer '${layer.name}'`);
  }
  return fresh;
}

/** Copies a saved decoder's weights (a folder with model.json, quantized or not) into `model`; returns the layers left new. */
export async function copyDecoderWeights(dir: string, model: tf.LayersModel): Promise<string[]> {
  const init = await loadLayersModel(fileSource(dir), 'model.json');
  try {
    return copyLayerWeights(init, model);
  } finally {
    init.dispose();
  }
}

async function plots(history: EpochRecord[]): Promise<Record<string, string>> {
  const loss = await lineChartSvg({ title: 'Decoder training loss', xLabel: 'epoch', yLabel: 'cross-entropy', series: [{ name: 'train', points: history.map((h) => [h.epoch, h.trainLoss]) }] });
  const dev = await devMetricsSvg(history);
  return { 'loss.svg': loss, 'dev-metrics.svg': dev };
}
