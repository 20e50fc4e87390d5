import * as tf from '@tensorflow/tfjs';
import { beamSearch, greedyBatch } from '../../shared/decoding/search';
import type { DecoderWeights } from '../../shared/models/decoder-ops';
import type { Vocabulary } from '../../shared/text/vocabulary';

export interface FeatureSet {
  /** Image names, one per row of `matrix`. */
  names: string[];
  matrix: Float32Array;
  featureSize: number;
}

/**
 * Captions precomputed features with the serving code's search: greedy in batches of 256,
 * or beam search one image at a time.
 */
export function captionFeatureSet(
  w: DecoderWeights,
  vocab: Vocabulary,
  set: FeatureSet,
  opts: { beam: number; maxLength: number; lengthPenalty?: number; onProgress?: (done: number) => void },
): Map<string, string> {
  const F = set.featureSize;
  const search = { maxLength: opts.maxLength, startId: vocab.startId, endId: vocab.endId, bannedIds: [vocab.padId, vocab.startId, vocab.unknownId] };
  const out = new Map<string, string>();
  const chunk = opts.beam === 1 ? 256 : 1;
  for (let i = 0; i < set.names.length; i += chunk) {
    const n = Math.min(chunk, set.names.length - i);
    const f = tf.tensor2d(set.matrix.subarray(i * F, (i + n) * F), [n, F]);
    try {
      const hyps = opts.beam === 1 ? greedyBatch(w, f, search) : beamSearch(w, f, { ...search, beam: opts.beam, alternatives: 1, lengthPenalty: opts.lengthPenalty });
      hyps.forEach((h, k) => out.set(set.names[i + k], vocab.decode(h.tokens)));
    } finally {
      f.dispose();
    }
    opts.onProgress?.(i + n);
  }
  return out;
}
