import * as tf from '@tensorflow/tfjs-core';
import { BundleError, type BundleManifest } from './bundle/manifest';
import { now } from './clock';
import { COLOUR_BINS, colourCheckInput, colourCheckWeights, colourFractions, unlikelyColours, type ColourCheck } from './colour-check';
import { concatFloat32 } from './float-arrays';
import { captionConfidence, imageStats, photoDistance } from './confidence';
import { loadServingBundle } from './bundle/load';
import type { BundleSource } from './bundle/source';
import { beamSearch, greedyBatch, type Hypothesis } from './decoding/search';
import { toEncoderInput } from './image/normalize';
import type { RgbImage } from './image/types';
import { featureRowSize, type DecoderWeights } from './models/decoder-ops';
import type { Vocabulary } from './text/vocabulary';

export interface CaptionOptions {
  /** Beam width; 1 = greedy. Default 3. */
  beam?: number;
  /** How many captions to return, best first (≤ beam). Default 1. */
  alternatives?: number;
  /** Longest caption in words (default and ceiling: the bundle's maxLength − 1). */
  maxLength?: number;
  /** Beam ranking: logProb / length^lengthPenalty (0–2). Default 1, the per-word mean. */
  lengthPenalty?: number;
  /** Return where the decoder looked for each word (attention bundles only). Default false. */
  attention?: boolean;
}

/** Per word of the caption (split on spaces), its weights over the encoder's grid cells (row-major), summing to 1. */
export interface AttentionMap {
  grid: [number, number];
  weights: number[][];
}

export interface ScoredCaption {
  caption: string;
  /** Length-normalised log-probability (mean per word); higher is better. */
  score: number;
  logProb: number;
  /** In [0, 1]: how far the caption can be trusted (shared/confidence.ts); absent when the bundle is not calibrated. */
  confidence?: number;
}

export interface CaptionResult extends ScoredCaption {
  alternatives: ScoredCaption[];
  /** With `attention: true`: the best caption's attention map. */
  attention?: AttentionMap;
  timings: { preprocessMs: number; encoderMs: number; decoderMs: number };
}

export const MAX_BEAM = 10;

export class CaptionOptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CaptionOptionError';
  }
}

export interface Captioner {
  readonly manifest: BundleManifest;
  readonly vocabulary: Vocabulary;
  /** Bytes of the bundle files loaded. */
  readonly bundleBytes: number;
  /** Where loading went: reading files, building the models (parse, dequantise, upload), the warm-up pass (0 until one ran). */
  readonly loadTimings: { readMs: number; buildMs: number; warmupMs: number };
  /**
   * One tiny caption of a gray image, so the next real one pays no kernel set-up; runs once, and not
   * at all after a real caption. True when it ran (its time goes to `loadTimings.warmupMs`).
   */
  warmUp(): boolean;
  /** Checks options against this bundle (beam, length, attention); throws a CaptionOptionError naming the valid range. */
  resolve(options: CaptionOptions): Required<CaptionOptions>;
  /** Image → caption(s). */
  caption(image: RgbImage, options?: CaptionOptions): CaptionResult;
  /**
   * Image → its feature row: the encoder's feature, then its grid for attention bundles, then,
   * with a colour check, the photo's colour fractions.
   */
  encode(image: RgbImage): Float32Array;
  /** Length of a feature row (`encode`'s output). */
  readonly featureRowSize: number;
  /** Precomputed feature rows [N·featureRowSize] → one result per image (what evaluation uses); `extraBanned[i]`: word ids row i may not use either. */
  captionFeatures(features: Float32Array, options?: CaptionOptions, extraBanned?: readonly (readonly number[])[]): CaptionResult[];
  dispose(): void;
}

/** Resolves options against the bundle; throws a CaptionOptionError naming the valid range. */
function resolveOptions(opts: CaptionOptions, maxWords: number, attends: boolean): Required<CaptionOptions> {
  const beam = opts.beam ?? 3;
  const alternatives = opts.alternatives ?? 1;
  const maxLength = opts.maxLength ?? maxWords;
  const intIn = (v: number, lo: number, hi: number) => Number.isInteger(v) && v >= lo && v <= hi;
  if (!intIn(beam, 1, MAX_BEAM)) throw new CaptionOptionError(`beam must be an integer from 1 to ${MAX_BEAM}, got ${beam}`);
  if (!intIn(alternatives, 1, beam)) throw new CaptionOptionError(`alternatives must be an integer from 1 to beam (${beam}), got ${alternatives}`);
  if (!intIn(maxLength, 1, maxWords)) throw new CaptionOptionError(`maxLength must be an integer from 1 to ${maxWords}, got ${maxLength}`);
  const lengthPenalty = opts.lengthPenalty ?? 1;
  if (!(lengthPenalty >= 0 && lengthPenalty <= 2)) throw new CaptionOptionError(`lengthPenalty must be a number from 0 to 2, got ${lengthPenalty}`);
  const attention = opts.attention ?? false;
  if (attention && !attends) throw new CaptionOptionError('attention maps need a bundle with an attention decoder (decoder.architecture lstm-attention); this one has none');
  return { beam, alternatives, maxLength, lengthPenalty, attention };
}

/**
 * Loads a bundle once and returns a captioner; a warm-up pass runs here (unless `warmup: false`) so
 * the first real request pays no kernel set-up. A server loading on a request's path skips it: that
 * request's own caption warms up for about half the cost.
 *
 * @example
 * const captioner = await loadCaptioner(fileSource('assets/model'));
 * captioner.caption(image, { beam: 3, alternatives: 3 }).caption; // "a dog runs through the grass"
 */
export async function loadCaptioner(source: BundleSource, { warmup = true }: { warmup?: boolean } = {}): Promise<Captioner> {
  const t0 = now();
  const bundle = await loadServingBundle(source);
  const { manifest, vocabulary, bytes, readMs } = bundle;
  const size = manifest.encoder.inputSize;
  const calibration = manifest.confidence;
  const weights = bundle.decoder;
  const features = featureDecoder({ weights, vocabulary, maxLength: manifest.decoder.maxLength });

  const encodeBatch = (inputs: Float32Array[]): Float32Array =>
    tf.tidy(() => {
      const x = tf.tensor4d(concatFloat32(inputs), [inputs.length, size, size, 3]);
      const out = bundle.encode(x);
      if (out.length === 1) return out[0].dataSync() as Float32Array;
      // [feature | grid] per image: the row layout the attention decoder reads.
      return tf.concat(out.map((t) => tf.reshape(t, [inputs.length, -1])), 1).dataSync() as Float32Array;
    });

  const colours = manifest.colourCheck ? colourCheckOf(manifest.colourCheck, vocabulary) : null;
  const D = features.featureRowSize;
  const rowSize = D + (colours ? COLOUR_BINS.length : 0);
  const P = manifest.encoder.featureSize;
  /** Per row of [decoder row | colour fractions]: the decoder rows and each row's banned colour ids. */
  const splitRows = (rows: Float32Array): { decoderRows: Float32Array; banned?: number[][] } => {
    if (!colours) return { decoderRows: rows };
    const n = rows.length / rowSize;
    const decoderRows = new Float32Array(n * D);
    const banned: number[][] = [];
    for (let i = 0; i < n; i++) {
      const row = rows.subarray(i * rowSize, (i + 1) * rowSize);
      decoderRows.set(row.subarray(0, D), i * D);
      banned.push(colours.banned(row.subarray(0, P), row.subarray(D)));
    }
    return { decoderRows, banned };
  };
  const withColours = (row: Float32Array, image: RgbImage): Float32Array => {
    if (!colours) return row;
    const out = new Float32Array(rowSize);
    out.set(row);
    out.set(colourFractions(image), D);
    return out;
  };

  const loadTimings = { readMs, buildMs: now() - t0 - readMs, warmupMs: 0 };
  let warmed = false;
  const captioner: Captioner = {
    manifest,
    vocabulary,
    bundleBytes: bytes,
    loadTimings,
    featureRowSize: rowSize,
    resolve: (options) => features.resolve(options),
    encode(image) {
      return withColours(encodeBatch([toEncoderInput(image, size, manifest.encoder.normalization)]), image);
    },
    caption(image, options = {}) {
      features.resolve(options); // a bad option fails before any work
      const t0 = now();
      const input = toEncoderInput(image, size, manifest.encoder.normalization);
      const distance = calibration ? photoDistance(imageStats(input, size, manifest.encoder.normalization), calibration.imageStats) : 0;
      const t1 = now();
      const f = encodeBatch([input]);
      const t2 = now();
      const [r] = features.captionFeatures(f, options, colours ? [colours.banned(f.subarray(0, P), colourFractions(image))] : undefined);
      const t3 = now();
      const rated = (c: ScoredCaption): ScoredCaption => (calibration ? { ...c, confidence: captionConfidence(calibration, c.score, c.caption, distance) } : c);
      const alternatives = r.alternatives.map(rated);
      warmed = true; // a real caption warms as well as the warm-up pass would
      return { ...alternatives[0], alternatives, ...(r.attention ? { attention: r.attention } : {}), timings: { preprocessMs: t1 - t0, encoderMs: t2 - t1, decoderMs: t3 - t2 } };
    },
    captionFeatures(rows, options, extraBanned) {
      if (rows.length % rowSize !== 0) throw new CaptionOptionError(`features length ${rows.length} is not a multiple of ${rowSize}`);
      const { decoderRows, banned } = splitRows(rows);
      const merged = extraBanned && banned ? banned.map((b, i) => [...b, ...(extraBanned[i] ?? [])]) : (banned ?? extraBanned);
      return features.captionFeatures(decoderRows, options, merged);
    },
    warmUp() {
      if (warmed) return false;
      const t1 = now();
      const gray: RgbImage = { width: size, height: size, data: new Uint8Array(size * size * 3).fill(128) };
      captioner.caption(gray, { beam: 2, maxLength: Math.min(3, features.maxWords) });
      loadTimings.warmupMs = now() - t1;
      return true;
    },
    dispose() {
      bundle.dispose();
    },
  };
  if (warmup) captioner.warmUp();
  return captioner;
}

export interface FeatureDecoder {
  /** Longest caption in words: the decoder's maxLength (tokens, `<end>` included) − 1. */
  readonly maxWords: number;
  /** Columns of a feature row: the pooled feature, plus the grid for attention decoders. */
  readonly featureRowSize: number;
  /** Checks options against this decoder; throws a CaptionOptionError naming the valid range. */
  resolve(options: CaptionOptions): Required<CaptionOptions>;
  /** Precomputed features [N·F] → one result per image: greedy in batches, beam one image at a time. */
  /** `extraBanned[i]`: word ids row i may not use (the colour check's), on top of pad, start and unknown. */
  captionFeatures(features: Float32Array, options?: CaptionOptions, extraBanned?: readonly (readonly number[])[]): CaptionResult[];
}

/**
 * Features → captions: the one path for serving, evaluation, training-time dev scores and
 * benchmarks, so banned tokens, length limits and ranking cannot drift between them.
 */
export function featureDecoder(parts: { weights: DecoderWeights; vocabulary: Vocabulary; maxLength: number }): FeatureDecoder {
  const { weights, vocabulary } = parts;
  const F = featureRowSize(weights);
  const grid = weights.attention?.config.grid;
  const maxWords = parts.maxLength - 1;
  const banned = vocabulary.neverSaidIds;
  const toText = (h: Hypothesis): ScoredCaption => ({ caption: vocabulary.decode(h.tokens), score: h.score, logProb: h.logProb });
  const GREEDY_BATCH = 256;

  const decode = (features: Float32Array, o: Required<CaptionOptions>, extraBanned?: readonly (readonly number[])[]): Hypothesis[][] => {
    const n = features.length / F;
    const out: Hypothesis[][] = [];
    // Rows with their own banned words are searched one at a time.
    const chunk = o.beam === 1 && !extraBanned ? GREEDY_BATCH : 1;
    for (let i = 0; i < n; i += chunk) {
      const m = Math.min(chunk, n - i);
      const bannedIds = extraBanned?.[i]?.length ? [...banned, ...extraBanned[i]] : banned;
      const search = { maxLength: o.maxLength + 1, startId: vocabulary.startId, endId: vocabulary.endId, bannedIds, withAttention: o.attention };
      const f = tf.tensor2d(features.subarray(i * F, (i + m) * F), [m, F]);
      try {
        if (o.beam === 1) out.push(...greedyBatch(weights, f, search).map((h) => [h]));
        else out.push(beamSearch(weights, f, { ...search, beam: o.beam, alternatives: o.alternatives, lengthPenalty: o.lengthPenalty }));
      } finally {
        f.dispose();
      }
    }
    return out;
  };

  return {
    maxWords,
    featureRowSize: F,
    resolve: (options) => resolveOptions(options, maxWords, Boolean(grid)),
    captionFeatures(features, options = {}, extraBanned) {
      const o = resolveOptions(options, maxWords, Boolean(grid));
      if (features.length % F !== 0) throw new CaptionOptionError(`features length ${features.length} is not a multiple of ${F}`);
      const t0 = now();
      const all = decode(features, o, extraBanned);
      const ms = (now() - t0) / Math.max(1, all.length);
      return all.map((hyps) => {
        const texts = hyps.map(toText);
        const best = hyps[0];
        const attention = grid && best.attention ? { attention: attentionMap(grid, best) } : {};
        return { ...texts[0], alternatives: texts, ...attention, timings: { preprocessMs: 0, encoderMs: 0, decoderMs: ms } };
      });
    },
  };
}

/**
 * One row per word, rounded to 3 decimals (the `<end>` step's row dropped). Vocabulary words have
 * no spaces, so rows line up with `caption.split(' ')`.
 */
function attentionMap(grid: [number, number], h: Hypothesis): AttentionMap {
  return { grid, weights: (h.attention ?? []).slice(0, h.tokens.length).map((r) => Array.from(r, (x) => Math.round(x * 1000) / 1000)) };
}

/** A bundle's colour check, ready to use: its words' ids and decoded weights. */
function colourCheckOf(check: ColourCheck, vocabulary: Vocabulary): { banned(pooled: Float32Array, fractions: Float32Array): number[] } {
  const missing = check.words.filter((w) => vocabulary.idOf(w) === vocabulary.unknownId);
  if (missing.length) throw new BundleError(`manifest.json: colourCheck.words not in the vocabulary: ${missing.join(', ')}`);
  const weights = colourCheckWeights(check);
  const idOf = new Map(check.words.map((w) => [w, vocabulary.idOf(w)]));
  return { banned: (pooled, fractions) => unlikelyColours(check, weights, colourCheckInput(pooled, fractions)).map((w) => idOf.get(w)!) };
}
