import * as tf from '@tensorflow/tfjs';
import { decodeStep, initialState, type DecoderWeights } from '../../shared/models/decoder-ops';

export interface SampledCaption {
  /** Word ids, without `<start>` / `<end>`. */
  tokens: number[];
  /** Whether the caption ended with `<end>` (else it ran out of length). */
  finished: boolean;
}

export interface SampleOptions {
  /** Most tokens per caption, `<end>` included. */
  maxLength: number;
  startId: number;
  endId: number;
  /** Tokens never drawn (pad, start, unknown), as in search. */
  bannedIds: readonly number[];
}

/**
 * Draws one caption per feature row [N, F] from the decoder's own distribution (temperature 1),
 * with a seeded generator in JS rather than a backend op, so runs replay exactly on any backend.
 */
export function sampleCaptions(w: DecoderWeights, features: tf.Tensor2D, opts: SampleOptions, random: () => number): SampledCaption[] {
  const n = features.shape[0];
  const out: SampledCaption[] = Array.from({ length: n }, () => ({ tokens: [], finished: false }));
  const banned = new Set(opts.bannedIds);
  const init = tf.tidy(() => initialState(w, features));
  let { h, c } = init;
  const { img, grid, keys } = init;
  let last = new Int32Array(n).fill(opts.startId);
  try {
    for (let t = 0; t < opts.maxLength && out.some((s) => !s.finished); t++) {
      const next = tf.tidy(() => {
        const r = decodeStep(w, tf.tensor1d(last, 'int32'), { h, c, img, grid, keys });
        return { lp: r.logProbs, h: r.state.h, c: r.state.c };
      });
      h.dispose();
      c.dispose();
      ({ h, c } = next);
      const lp = next.lp.dataSync() as Float32Array;
      next.lp.dispose();
      const V = lp.length / n;
      last = new Int32Array(n);
      for (let r = 0; r < n; r++) {
        if (out[r].finished) continue;
        // As in search: at least one word, and `<end>` forced at the last step.
        const excluded = (v: number) => banned.has(v) || (t === 0 && v === opts.endId) || (t > 0 && t === opts.maxLength - 1 && v !== opts.endId);
        const word = draw(lp, r * V, V, excluded, random);
        if (word === opts.endId) out[r].finished = true;
        else out[r].tokens.push(word);
        last[r] = word;
      }
    }
  } finally {
    h.dispose();
    c.dispose();
    img.dispose();
    grid?.dispose();
    if (keys !== grid) keys?.dispose();
  }
  return out;
}

/** One index drawn from the log-probabilities lp[offset … offset+V), skipping excluded ones. */
function draw(lp: Float32Array, offset: number, V: number, excluded: (v: number) => boolean, random: () => number): number {
  let total = 0;
  for (let v = 0; v < V; v++) if (!excluded(v)) total += Math.exp(lp[offset + v]);
  let u = random() * total;
  let lastAllowed = -1;
  for (let v = 0; v < V; v++) {
    if (excluded(v)) continue;
    lastAllowed = v;
    u -= Math.exp(lp[offset + v]);
    if (u <= 0) return v;
  }
  return lastAllowed; // rounding left a sliver at the end
}
