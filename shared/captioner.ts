import * as tf from '@tensorflow/tfjs-core';
import type { BundleManifest } from './bundle/manifest';
import { loadBundle } from './bundle/load';
import type { BundleSource } from './bundle/source';
import { beamSearch, greedyBatch, type Hypothesis } from './decoding/search';
import { toEncoderInput } from './image/normalize';
import type { RgbImage } from './image/types';
import { decoderWeights } from './models/decoder-ops';
import type { Vocabulary } from './text/vocabulary';

export interface CaptionOptions {
  /** Beam width; 1 = greedy. Default 3. */
  beam?: number;
  /** How many captions to return, best first (≤ beam). Default 1. */
  alternatives?: number;
  /** Longest caption in words (default and ceiling: the bundle's maxLength − 1). */
  maxLength?: number;
}

export interface ScoredCaption {
  caption: string;
  /** Length-normalised log-probability (mean per word); higher is better. */
  score: number;
  logProb: number;
}

export interface CaptionResult extends ScoredCaption {
  alternatives: ScoredCaption[];
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
  /** Image → caption(s). */
  caption(image: RgbImage, options?: CaptionOptions): CaptionResult;
  /** Image → encoder feature vector. */
  encode(image: RgbImage): Float32Array;
  /** Precomputed features [N·F] → one result per image (what evaluation uses). */
  captionFeatures(features: Float32Array, options?: CaptionOptions): CaptionResult[];
  dispose(): void;
}

const now = (): number => (typeof performance !== 'undefined' ? performance.now() : Date.now());

/** Resolves options against the bundle; throws a CaptionOptionError naming the valid range. */
export function resolveOptions(opts: CaptionOptions, maxWords: number): Required<CaptionOptions> {
  const beam = opts.beam ?? 3;
  const alternatives = opts.alternatives ?? 1;
  const maxLength = opts.maxLength ?? maxWords;
  const intIn = (v: number, lo: number, hi: number) => Number.isInteger(v) && v >= lo && v <= hi;
  if (!intIn(beam, 1, MAX_BEAM)) throw new CaptionOptionError(`beam must be an integer from 1 to ${MAX_BEAM}, got ${beam}`);
  if (!intIn(alternatives, 1, beam)) throw new CaptionOptionError(`alternatives must be an integer from 1 to beam (${beam}), got ${alternatives}`);
  if (!intIn(maxLength, 1, maxWords)) throw new CaptionOptionError(`maxLength must be an integer from 1 to ${maxWords}, got ${maxLength}`);
  return { beam, alternatives, maxLength };
}

/**
 * Loads a bundle once and returns a captioner; a warm-up pass runs here so the first real request
 * pays no kernel set-up.
 *
 * @example
 * const captioner = await loadCaptioner(fileSource('assets/model'));
 * captioner.caption(image, { beam: 3, alternatives: 3 }).caption; // "a dog runs through the grass"
 */
export async function loadCaptioner(source: BundleSource, { warmup = true } = {}): Promise<Captioner> {
  const { manifest, encoder, decoder, vocabulary, bytes } = await loadBundle(source);
  const weights = decoderWeights(decoder);
  const size = manifest.encoder.inputSize;
  const F = manifest.encoder.featureSize;
  const maxWords = manifest.decoder.maxLength - 1;
  const banned = [vocabulary.padId, vocabulary.startId, vocabulary.unknownId];

  const toText = (h: Hypothesis): ScoredCaption => ({ caption: vocabulary.decode(h.tokens), score: h.score, logProb: h.logProb });

  const encodeBatch = (inputs: Float32Array[]): Float32Array =>
    tf.tidy(() => {
      const x = tf.tensor4d(concat(inputs), [inputs.length, size, size, 3]);
      return (encoder.predict(x) as tf.Tensor).dataSync() as Float32Array;
    });

  const decode = (features: Float32Array, o: Required<CaptionOptions>): Hypothesis[][] => {
    const n = features.length / F;
    const search = { maxLength: o.maxLength + 1, startId: vocabulary.startId, endId: vocabulary.endId, bannedIds: banned };
    if (o.beam === 1) {
      const f = tf.tensor2d(features, [n, F]);
      try {
        return greedyBatch(weights, f, search).map((h) => [h]);
      } finally {
        f.dispose();
      }
    }
    const out: Hypothesis[][] = [];
    for (let i = 0; i < n; i++) {
      const f = tf.tensor2d(features.subarray(i * F, (i + 1) * F), [1, F]);
      try {
        out.push(beamSearch(weights, f, { ...search, beam: o.beam, alternatives: o.alternatives }));
      } finally {
        f.dispose();
      }
    }
    return out;
  };

  const result = (hyps: Hypothesis[], timings: CaptionResult['timings']): CaptionResult => {
    const all = hyps.map(toText);
    return { ...all[0], alternatives: all, timings };
  };

  const captioner: Captioner = {
    manifest,
    vocabulary,
    bundleBytes: bytes,
    encode(image) {
      return encodeBatch([toEncoderInput(image, size, manifest.encoder.normalization)]);
    },
    caption(image, options = {}) {
      const o = resolveOptions(options, maxWords);
      const t0 = now();
      const input = toEncoderInput(image, size, manifest.encoder.normalization);
      const t1 = now();
      const features = encodeBatch([input]);
      const t2 = now();
      const hyps = decode(features, o)[0];
      const t3 = now();
      return result(hyps, { preprocessMs: t1 - t0, encoderMs: t2 - t1, decoderMs: t3 - t2 });
    },
    captionFeatures(features, options = {}) {
      const o = resolveOptions(options, maxWords);
      if (features.length % F !== 0) throw new CaptionOptionError(`features length ${features.length} is not a multiple of ${F}`);
      const t0 = now();
      const all = decode(features, o);
      const ms = (now() - t0) / Math.max(1, all.length);
      return all.map((h) => result(h, { preprocessMs: 0, encoderMs: 0, decoderMs: ms }));
    },
    dispose() {
      encoder.dispose();
      decoder.dispose();
    },
  };
  if (warmup) {
    const gray: RgbImage = { width: size, height: size, data: new Uint8Array(size * size * 3).fill(128) };
    captioner.caption(gray, { beam: 2, maxLength: Math.min(3, maxWords) });
  }
  return captioner;
}

function concat(arrays: Float32Array[]): Float32Array {
  if (arrays.length === 1) return arrays[0];
  const out = new Float32Array(arrays.reduce((a, b) => a + b.length, 0));
  let o = 0;
  for (const a of arrays) {
    out.set(a, o);
    o += a.length;
  }
  return out;
}
