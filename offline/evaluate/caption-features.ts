import { featureDecoder } from '../../shared/captioner';
import type { DecoderWeights } from '../../shared/models/decoder-ops';
import type { Vocabulary } from '../../shared/text/vocabulary';

export interface FeatureSet {
  /** Image names, one per row of `matrix`. */
  names: string[];
  matrix: Float32Array;
  featureSize: number;
}

/** The rows of `set` for `names`, in that order (every name must be in the set). */
export function selectRows(set: FeatureSet, names: string[]): FeatureSet {
  const rowOf = new Map(set.names.map((n, i) => [n, i]));
  const F = set.featureSize;
  const matrix = new Float32Array(names.length * F);
  names.forEach((n, i) => {
    const r = rowOf.get(n);
    if (r === undefined) throw new Error(`no features for '${n}'`);
    matrix.set(set.matrix.subarray(r * F, (r + 1) * F), i * F);
  });
  return { names, featureSize: F, matrix };
}

/**
 * Captions a named feature set through the serving path (`featureDecoder`), for training-time dev
 * scores and benchmarks. `maxLength` is the decoder's, in tokens with `<end>`, as in the manifest.
 */
export function captionFeatureSet(
  w: DecoderWeights,
  vocab: Vocabulary,
  set: FeatureSet,
  opts: { beam: number; maxLength: number; lengthPenalty?: number; onProgress?: (done: number) => void },
): Map<string, string> {
  const decoder = featureDecoder({ weights: w, vocabulary: vocab, maxLength: opts.maxLength });
  const F = set.featureSize;
  if (decoder.featureRowSize !== F) throw new Error(`the decoder reads rows of ${decoder.featureRowSize} features, the set has ${F}`);
  const out = new Map<string, string>();
  const chunk = 256; // progress granularity
  for (let i = 0; i < set.names.length; i += chunk) {
    const n = Math.min(chunk, set.names.length - i);
    const results = decoder.captionFeatures(set.matrix.subarray(i * F, (i + n) * F), { beam: opts.beam, lengthPenalty: opts.lengthPenalty });
    results.forEach((r, k) => out.set(set.names[i + k], r.caption));
    opts.onProgress?.(i + n);
  }
  return out;
}
