import * as tf from '@tensorflow/tfjs';
import { decoderWeights, forwardSequence, type DecoderWeights } from '../../shared/models/decoder-ops';
import type { Vocabulary } from '../../shared/text/vocabulary';
import type { ScstConfig } from '../config';
import { loadBest, runEpochs, type EpochState } from '../epochs';
import { captionFeatureSet, selectRows, type FeatureSet } from '../evaluate/caption-features';
import { gatherRows } from '../features/feature-rows';
import { CiderDScorer, scoreCaptions } from '../metrics';
import { rng, shuffle } from '../random';
import { devMetricsSvg, lineChartSvg } from '../report/plot';
import { clipByGlobalNorm, maskedCrossEntropy } from './loss';
import { sampleCaptions, type SampledCaption } from './sample';
import { teacherForcing } from './batches';

export interface ScstEpoch {
  epoch: number;
  learningRate: number;
  /** Mean CIDEr-D (train references) of the captions sampled this epoch. */
  meanSampleReward: number;
  seconds: number;
  samplesPerSecond: number;
  dev: { bleu1: number; bleu2: number; bleu3: number; bleu4: number; ciderD: number; distinct: number };
}

export interface ScstInput {
  config: ScstConfig;
  runDir: string;
  vocab: Vocabulary;
  /** The decoder's maxLength (tokens, `<end>` included), as in the manifest. */
  maxLength: number;
  /** Features of every photo used (train and dev), one row each. */
  features: FeatureSet;
  /** Train photos (names in `features`) and their normalised reference captions. */
  train: { names: string[]; references: Map<string, string[]> };
  /** Dev photos and their normalised references. */
  dev: { names: string[]; references: Map<string, string[]> };
  /** The cross-entropy decoder to start from (called on a fresh run only). */
  initDecoder(): Promise<tf.LayersModel>;
  log?: (line: string) => void;
}

/**
 * Self-critical sequence training (Rennie et al. 2017) with the multi-sample baseline: per photo,
 * `samples` captions drawn from the decoder; each one's reward is its CIDEr-D against the photo's
 * references (document frequencies from all training captions) minus the mean reward of the
 * photo's other samples; the loss is −advantage × the caption's log-probability (per token).
 * Greedy dev CIDEr-D picks the best epoch; resumable mid-epoch through `runEpochs`.
 */
export async function trainScst(input: ScstInput): Promise<{ decoder: tf.LayersModel; state: EpochState<ScstEpoch> }> {
  const { config: cfg, vocab, features } = input;
  const log = input.log ?? ((l: string) => console.error(l));
  const F = features.featureSize;
  const rowOf = new Map(features.names.map((n, i) => [n, i]));
  const devSet = selectRows(features, input.dev.names);
  const scorer = new CiderDScorer(input.train.references);
  const search = { maxLength: input.maxLength, startId: vocab.startId, endId: vocab.endId, bannedIds: vocab.neverSaidIds };
  const optimizer = tf.train.adam(cfg.learningRate);
  const lrAt = (epoch: number) => cfg.learningRate * Math.pow(cfg.lrDecay, epoch - 1);
  const stepsPerEpoch = Math.floor(input.train.names.length / cfg.batchImages);
  const orders = new Map<number, string[]>();
  const orderOf = (epoch: number) => {
    if (!orders.has(epoch)) orders.set(epoch, shuffle([...input.train.names], rng(cfg.seed * 7777 + epoch)));
    return orders.get(epoch)!;
  };
  let weights!: DecoderWeights;
  let vars!: tf.Variable[];

  const { model, state } = await runEpochs<ScstEpoch>({
    runDir: input.runDir,
    epochs: cfg.epochs,
    patience: cfg.patience,
    stepsPerEpoch,
    checkpointEvery: cfg.checkpointEvery,
    optimizer,
    log,
    label: 'scst epoch',
    lossName: 'mean sample CIDEr-D',
    init: () => input.initDecoder(),
    prepare(model) {
      weights = decoderWeights(model);
      vars = model.trainableWeights.map((v) => v.read() as tf.Variable);
    },
    step(_model, { epoch, step }) {
      (optimizer as unknown as { learningRate: number }).learningRate = lrAt(epoch);
      const names = orderOf(epoch).slice(step * cfg.batchImages, (step + 1) * cfg.batchImages);
      // Each photo's row k times: samples of one photo are adjacent.
      const rows = Int32Array.from(names.flatMap((n) => Array<number>(cfg.samples).fill(rowOf.get(n)!)));
      const f = tf.tensor2d(gatherRows(features, rows), [rows.length, F]);
      try {
        const samples = sampleCaptions(weights, f, search, rng(cfg.seed * 1_000_003 + epoch * 10_007 + step));
        const rewards = samples.map((s, i) => scorer.score(names[Math.floor(i / cfg.samples)], vocab.decode(s.tokens)));
        const advantages = leaveOneOutAdvantages(rewards, cfg.samples);
        const xe = cfg.xeWeight > 0 ? referenceBatch(names, input.train.references, vocab, input.maxLength, rng(cfg.seed * 31 + epoch * 10_007 + step)) : null;
        tf.tidy(() => {
          const loss = () => {
            const rl = scstLoss(weights, f, samples, advantages, vocab.startId, vocab.endId);
            if (!xe) return rl;
            // One row per photo: every `samples`-th row of f.
            const photos = tf.gather(f, tf.range(0, names.length * cfg.samples, cfg.samples, 'int32')) as tf.Tensor2D;
            const logits = forwardSequence(weights, photos, tf.tensor2d(xe.inputs, [names.length, xe.steps], 'int32'));
            return tf.add(rl, tf.mul(cfg.xeWeight, maskedCrossEntropy(logits, tf.tensor2d(xe.targets, [names.length, xe.steps], 'int32')))) as tf.Scalar;
          };
          const { grads } = tf.variableGrads(loss, vars);
          const clipped = clipByGlobalNorm(grads, cfg.clipNorm).grads;
          optimizer.applyGradients(Object.entries(clipped).map(([name, tensor]) => ({ name, tensor })));
        });
        orders.delete(epoch - 1);
        return { loss: rewards.reduce((a, b) => a + b, 0), examples: rewards.length };
      } finally {
        f.dispose();
      }
    },
    async evaluate(_model, end) {
      const caps = captionFeatureSet(weights, vocab, devSet, { beam: 1, maxLength: input.maxLength });
      const s = scoreCaptions(input.dev.references, caps);
      const distinct = new Set(caps.values()).size;
      const record: ScstEpoch = {
        epoch: end.epoch,
        learningRate: lrAt(end.epoch),
        meanSampleReward: end.loss,
        seconds: end.seconds,
        samplesPerSecond: end.examplesPerSecond,
        dev: { bleu1: s.bleu1, bleu2: s.bleu2, bleu3: s.bleu3, bleu4: s.bleu4, ciderD: s.ciderD, distinct },
      };
      return { record, score: s.ciderD, summary: `dev greedy BLEU-4 ${s.bleu4.toFixed(4)} CIDEr-D ${s.ciderD.toFixed(4)}, ${distinct} distinct captions — e.g. "${caps.get(devSet.names[0])}"` };
    },
    plots: scstPlots,
  });
  model.dispose();
  return { decoder: await loadBest(input.runDir), state };
}

/** One reference caption per photo, drawn at random, as teacher-forcing inputs and targets. */
function referenceBatch(names: string[], refs: Map<string, string[]>, vocab: Vocabulary, maxLength: number, random: () => number): { inputs: Int32Array; targets: Int32Array; steps: number } {
  const ids = names.map((n) => {
    const r = refs.get(n)!;
    return vocab.encode(r[Math.floor(random() * r.length)], maxLength);
  });
  return teacherForcing(ids);
}

/** reward − mean reward of the same photo's other samples (groups of `k` adjacent entries). */
export function leaveOneOutAdvantages(rewards: number[], k: number): Float32Array {
  if (k < 2) throw new Error('SCST needs at least 2 samples per photo for its baseline');
  if (rewards.length % k !== 0) throw new Error(`${rewards.length} rewards are not groups of ${k}`);
  const out = new Float32Array(rewards.length);
  for (let g = 0; g < rewards.length; g += k) {
    let sum = 0;
    for (let i = g; i < g + k; i++) sum += rewards[i];
    for (let i = g; i < g + k; i++) out[i] = rewards[i] - (sum - rewards[i]) / (k - 1);
  }
  return out;
}

/**
 * −Σ advantage × log p(token) over the sampled captions' tokens (`<end>` included when drawn),
 * divided by the number of tokens: the REINFORCE loss with a baseline.
 */
export function scstLoss(w: DecoderWeights, features: tf.Tensor2D, samples: SampledCaption[], advantages: Float32Array, startId: number, endId: number): tf.Scalar {
  const B = samples.length;
  const T = Math.max(...samples.map((s) => s.tokens.length + (s.finished ? 1 : 0)));
  const inputs = new Int32Array(B * T);
  const targets = new Int32Array(B * T);
  const weights = new Float32Array(B * T);
  let count = 0;
  samples.forEach((s, b) => {
    const seq = s.finished ? [...s.tokens, endId] : s.tokens;
    seq.forEach((tok, t) => {
      inputs[b * T + t] = t === 0 ? startId : seq[t - 1];
      targets[b * T + t] = tok;
      weights[b * T + t] = advantages[b];
      count++;
    });
  });
  return tf.tidy(() => {
    const logits = forwardSequence(w, features, tf.tensor2d(inputs, [B, T], 'int32'));
    const V = logits.shape[2];
    const logp = tf.logSoftmax(tf.reshape(logits, [B * T, V]));
    const picked = tf.sum(tf.mul(logp, tf.oneHot(tf.tensor1d(targets, 'int32'), V)), 1);
    // Padding has weight 0, so it adds nothing.
    return tf.div(tf.neg(tf.sum(tf.mul(picked, tf.tensor1d(weights)))), Math.max(1, count)) as tf.Scalar;
  });
}

async function scstPlots(history: ScstEpoch[]): Promise<Record<string, string>> {
  const reward = await lineChartSvg({ title: 'SCST: mean CIDEr-D of sampled captions (train)', xLabel: 'epoch', yLabel: 'CIDEr-D', series: [{ name: 'samples', points: history.map((h) => [h.epoch, h.meanSampleReward]) }] });
  const dev = await devMetricsSvg(history);
  return { 'reward.svg': reward, 'dev-metrics.svg': dev };
}
