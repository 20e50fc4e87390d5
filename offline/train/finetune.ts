import * as tf from '@tensorflow/tfjs';
import * as tfl from '@tensorflow/tfjs-layers';
import { concatFloat32 } from '../../shared/float-arrays';
import { decoderWeights, forwardSequence, type DecoderWeights } from '../../shared/models/decoder-ops';
import type { Vocabulary } from '../../shared/text/vocabulary';
import type { FinetuneConfig } from '../config';
import { loadBest, runEpochs, type EpochState } from '../epochs';
import { captionFeatureSet } from '../evaluate/caption-features';
import { scoreCaptions } from '../metrics';
import { rng, shuffle } from '../random';
import { devMetricsSvg, lineChartSvg } from '../report/plot';
import { teacherForcing } from './batches';
import { clipByGlobalNorm, maskedCrossEntropy } from './loss';
import { SplitAdam } from './split-adam';

const ENCODER = 'image_encoder';
const DECODER = 'caption_decoder';

/**
 * Image → caption logits as one layers model (what checkpoints hold): the encoder (with its grid
 * as a second output when the decoder attends) feeding the decoder.
 */
export function captionerModel(encoder: tf.LayersModel, decoder: tf.LayersModel, gridLayer?: string): tf.LayersModel {
  const outputs = gridLayer ? [encoder.outputs[0], encoder.getLayer(gridLayer).output as tfl.SymbolicTensor] : encoder.outputs;
  const enc = tfl.model({ inputs: encoder.inputs, outputs, name: ENCODER });
  const dec = tfl.model({ inputs: decoder.inputs, outputs: decoder.outputs, name: DECODER });
  const image = tfl.input({ shape: encoder.inputs[0].shape.slice(1) as number[], name: 'image' });
  const tokens = tfl.input({ shape: [null], dtype: 'int32', name: 'tokens' });
  const out = [enc.apply(image)].flat() as tfl.SymbolicTensor[];
  if (gridLayer) {
    const [r, c, ch] = out[1].shape.slice(1) as number[];
    out[1] = tfl.layers.reshape({ targetShape: [r * c, ch], name: 'grid_cells' }).apply(out[1]) as tfl.SymbolicTensor;
  }
  const logits = dec.apply([...out, tokens]) as tfl.SymbolicTensor;
  return tfl.model({ inputs: [image, tokens], outputs: logits, name: 'captioner' });
}

/** The encoder (feature, and grid with attention) and decoder inside a `captionerModel`. */
export function captionerParts(model: tf.LayersModel): { encoder: tf.LayersModel; decoder: tf.LayersModel } {
  return { encoder: model.getLayer(ENCODER) as unknown as tf.LayersModel, decoder: model.getLayer(DECODER) as unknown as tf.LayersModel };
}

export interface FinetuneEpoch {
  epoch: number;
  learningRate: { encoder: number; decoder: number };
  trainLoss: number;
  seconds: number;
  imagesPerSecond: number;
  /** Mean squared change of the dev photos' pooled features, relative to their mean square at the start. */
  devFeatureDrift: number;
  dev: { bleu1: number; bleu2: number; bleu3: number; bleu4: number; ciderD: number };
}

export interface FinetuneInput {
  config: FinetuneConfig;
  runDir: string;
  vocab: Vocabulary;
  maxLength: number;
  /** The starting captioner (`captionerModel`), called on a fresh run only. */
  init(): Promise<tf.LayersModel>;
  inputSize: number;
  /** Pooled feature size (the anchor's width). */
  featureSize: number;
  /** Encoder inputs of the training photos (normalised, inputSize² × 3 each) and their captions as ids. */
  train: { inputs: Float32Array[]; captions: number[][][] };
  /** The starting encoder's pooled features of each training photo: as is, and mirrored. */
  anchors: [Float32Array, Float32Array];
  dev: { names: string[]; inputs: Float32Array[]; references: Map<string, string[]>; anchors: Float32Array };
  log?: (line: string) => void;
}

/** Mirrors an HWC image array left to right. */
export function mirrorInput(x: Float32Array, size: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let y = 0; y < size; y++)
    for (let i = 0; i < size; i++) {
      const from = (y * size + i) * 3;
      const to = (y * size + size - 1 - i) * 3;
      out[to] = x[from];
      out[to + 1] = x[from + 1];
      out[to + 2] = x[from + 2];
    }
  return out;
}

/** Feature rows [pooled | grid] for a batch of encoder inputs. */
export function encodeRows(encoder: tf.LayersModel, x: tf.Tensor4D, training = false): { rows: tf.Tensor2D; pooled: tf.Tensor2D } {
  const out = [encoder.apply(x, { training })].flat() as tf.Tensor[];
  const B = x.shape[0];
  const pooled = out[0] as tf.Tensor2D;
  const rows = out.length > 1 ? (tf.concat([pooled, tf.reshape(out[1], [B, -1])], 1) as tf.Tensor2D) : pooled;
  return { rows, pooled };
}

/**
 * Caption-loss fine-tuning of encoder and decoder together: per step a batch of training photos
 * (mirrored at random) with all their reference captions, cross-entropy through the decoder into
 * the encoder, plus an anchor keeping the pooled feature near the starting encoder's (the
 * distillation target the decoder was trained on): weight × mean squared change / mean square.
 * The encoder gets its own, lower learning rate. Greedy dev CIDEr-D picks the best epoch;
 * checkpoints mid-epoch and resumes as every training run.
 */
export async function finetuneCaptioner(input: FinetuneInput): Promise<{ model: tf.LayersModel; state: EpochState<FinetuneEpoch> }> {
  const { config: cfg, vocab } = input;
  const log = input.log ?? ((l: string) => console.error(l));
  const S = input.inputSize;
  const F = input.featureSize;
  const N = input.train.inputs.length;
  const stepsPerEpoch = Math.floor(N / cfg.batchImages);
  const lrs = (epoch: number) => ({ encoder: cfg.encoderLearningRate * cfg.lrDecay ** (epoch - 1), decoder: cfg.decoderLearningRate * cfg.lrDecay ** (epoch - 1) });
  const encoderAdam = tf.train.adam(cfg.encoderLearningRate);
  const decoderAdam = tf.train.adam(cfg.decoderLearningRate);
  let encoderVars = new Set<string>();
  const optimizer = new SplitAdam(encoderAdam, decoderAdam, (name) => encoderVars.has(name));
  const anchorScale = meanSquare(input.anchors[0]);
  const orders = new Map<number, number[]>();
  const orderOf = (epoch: number) => {
    if (!orders.has(epoch)) orders.set(epoch, shuffle([...Array(N).keys()], rng(cfg.seed * 7777 + epoch)));
    return orders.get(epoch)!;
  };
  let parts!: { encoder: tf.LayersModel; decoder: tf.LayersModel };
  let weights!: DecoderWeights;
  let vars!: tf.Variable[];

  const batchAt = (epoch: number, step: number) => {
    const random = rng(cfg.seed * 1_000_003 + epoch * 10_007 + step);
    const photos = orderOf(epoch).slice(step * cfg.batchImages, (step + 1) * cfg.batchImages);
    const x = new Float32Array(photos.length * S * S * 3);
    const anchor = new Float32Array(photos.length * F);
    const seqs: { photo: number; ids: number[] }[] = [];
    photos.forEach((p, b) => {
      const flip = random() < 0.5;
      x.set(flip ? mirrorInput(input.train.inputs[p], S) : input.train.inputs[p], b * S * S * 3);
      anchor.set(input.anchors[flip ? 1 : 0].subarray(p * F, (p + 1) * F), b * F);
      for (const ids of input.train.captions[p]) seqs.push({ photo: b, ids });
    });
    const { inputs, targets, steps } = teacherForcing(seqs.map((s) => s.ids));
    return { x, anchor, photos: photos.length, rowOf: Int32Array.from(seqs, (s) => s.photo), inputs, targets, T: steps };
  };

  const { model, state } = await runEpochs<FinetuneEpoch>({
    runDir: input.runDir,
    epochs: cfg.epochs,
    patience: cfg.patience,
    stepsPerEpoch,
    checkpointEvery: cfg.checkpointEvery,
    optimizer,
    log,
    label: 'finetune epoch',
    progressUnit: 'batch',
    init: () => input.init(),
    prepare(model) {
      parts = captionerParts(model);
      weights = decoderWeights(parts.decoder);
      const enc = parts.encoder.trainableWeights.map((w) => w.read() as tf.Variable);
      encoderVars = new Set(enc.map((v) => v.name));
      vars = [...enc, ...parts.decoder.trainableWeights.map((w) => w.read() as tf.Variable)];
      log(`fine-tuning ${enc.length} encoder and ${vars.length - enc.length} decoder weight tensors`);
    },
    step(_model, { epoch, step }) {
      const lr = lrs(epoch);
      (encoderAdam as unknown as { learningRate: number }).learningRate = lr.encoder;
      (decoderAdam as unknown as { learningRate: number }).learningRate = lr.decoder;
      const b = batchAt(epoch, step);
      orders.delete(epoch - 1);
      const loss = tf.tidy(() => {
        const x = tf.tensor4d(b.x, [b.photos, S, S, 3]);
        const dropoutSeed = cfg.seed * 7919 + epoch * 100003 + step * 7;
        const { value, grads } = tf.variableGrads(() => {
          const { rows, pooled } = encodeRows(parts.encoder, x, true);
          const perCaption = tf.gather(rows, tf.tensor1d(b.rowOf, 'int32')) as tf.Tensor2D;
          const logits = forwardSequence(weights, perCaption, tf.tensor2d(b.inputs, [b.rowOf.length, b.T], 'int32'), cfg.dropout, dropoutSeed);
          const ce = maskedCrossEntropy(logits, tf.tensor2d(b.targets, [b.rowOf.length, b.T], 'int32'));
          const drift = tf.div(tf.mean(tf.square(tf.sub(pooled, tf.tensor2d(b.anchor, [b.photos, F])))), anchorScale);
          return tf.add(ce, tf.mul(cfg.anchorWeight, drift)) as tf.Scalar;
        }, vars);
        const clipped = clipByGlobalNorm(grads, cfg.clipNorm).grads;
        optimizer.applyGradients(clipped);
        return value;
      });
      const l = loss.dataSync()[0];
      loss.dispose();
      return { loss: l * b.photos, examples: b.photos };
    },
    async evaluate(_model, end) {
      const rows = devRows(parts.encoder, input.dev.inputs, S);
      const R = rows.matrix.length / input.dev.inputs.length;
      const caps = captionFeatureSet(weights, vocab, { names: input.dev.names, matrix: rows.matrix, featureSize: R }, { beam: 1, maxLength: input.maxLength });
      const s = scoreCaptions(input.dev.references, caps);
      const drift = meanSquaredDiff(rows.pooled, input.dev.anchors) / meanSquare(input.dev.anchors);
      const record: FinetuneEpoch = {
        epoch: end.epoch,
        learningRate: lrs(end.epoch),
        trainLoss: end.loss,
        seconds: end.seconds,
        imagesPerSecond: end.examplesPerSecond,
        devFeatureDrift: drift,
        dev: { bleu1: s.bleu1, bleu2: s.bleu2, bleu3: s.bleu3, bleu4: s.bleu4, ciderD: s.ciderD },
      };
      return { record, score: s.ciderD, summary: `${end.examplesPerSecond.toFixed(1)} images/s, dev greedy BLEU-4 ${s.bleu4.toFixed(4)} CIDEr-D ${s.ciderD.toFixed(4)}, feature drift ${drift.toFixed(4)} — e.g. "${caps.get(input.dev.names[0])}"` };
    },
    plots: finetunePlots,
  });
  model.dispose();
  optimizer.dispose();
  return { model: await loadBest(input.runDir), state };
}

/** Feature rows (and the pooled part alone) of unaugmented inputs, in inference mode. */
export function devRows(encoder: tf.LayersModel, inputs: Float32Array[], size: number, batch = 32): { matrix: Float32Array; pooled: Float32Array } {
  const rows: Float32Array[] = [];
  const pooled: Float32Array[] = [];
  for (let i = 0; i < inputs.length; i += batch) {
    const chunk = inputs.slice(i, i + batch);
    const x = new Float32Array(chunk.length * size * size * 3);
    chunk.forEach((c, k) => x.set(c, k * size * size * 3));
    tf.tidy(() => {
      const r = encodeRows(encoder, tf.tensor4d(x, [chunk.length, size, size, 3]));
      rows.push(r.rows.dataSync() as Float32Array);
      pooled.push(r.pooled.dataSync() as Float32Array);
    });
  }
  return { matrix: concatFloat32(rows), pooled: concatFloat32(pooled) };
}

function meanSquare(x: Float32Array): number {
  let s = 0;
  for (const v of x) s += v * v;
  return s / Math.max(1, x.length);
}

function meanSquaredDiff(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return s / Math.max(1, a.length);
}

async function finetunePlots(history: FinetuneEpoch[]): Promise<Record<string, string>> {
  const loss = await lineChartSvg({ title: 'Fine-tuning loss (cross-entropy + anchor)', xLabel: 'epoch', yLabel: 'loss', series: [{ name: 'train', points: history.map((h) => [h.epoch, h.trainLoss]) }] });
  return { 'loss.svg': loss, 'dev-metrics.svg': await devMetricsSvg(history) };
}
