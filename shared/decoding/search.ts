import * as tf from '@tensorflow/tfjs-core';
import { decodeStep, initialState, type DecoderWeights, type LstmState } from '../models/decoder-ops';

/** One decoded caption as token ids (without `<start>`/`<end>`). */
export interface Hypothesis {
  tokens: number[];
  /** Sum of the tokens' log-probabilities, `<end>` included when the caption finished. */
  logProb: number;
  /** Length-normalised score: logProb / (number of scored tokens)^lengthPenalty. What hypotheses are ranked by. */
  score: number;
  finished: boolean;
  /** With `withAttention` on an attention decoder: per word (and the `<end>` step), the weights over the grid cells. */
  attention?: Float32Array[];
}

export interface SearchOptions {
  beam: number;
  /** How many hypotheses to return (≤ beam). */
  alternatives: number;
  /** Longest caption in tokens, `<end>` included. */
  maxLength: number;
  startId: number;
  endId: number;
  /** Tokens never generated (pad, start, unknown). */
  bannedIds: readonly number[];
  /**
   * Beam scores are logProb / length^lengthPenalty: 1 (default) is the per-token mean, 0 the
   * plain sum (which favours short captions).
   */
  lengthPenalty?: number;
  /** Keep each hypothesis's attention rows (attention decoders only). */
  withAttention?: boolean;
}

function dispose(s: LstmState): void {
  s.h.dispose();
  s.c.dispose();
  s.img.dispose();
  s.grid?.dispose();
  s.keys?.dispose();
}

/** The state's rows in `rows` order (beam reordering), as new tensors. */
function gatherState(s: LstmState, rows: Int32Array): LstmState {
  return tf.tidy(() => {
    const r = tf.tensor1d(rows, 'int32');
    const g: LstmState = { h: tf.gather(s.h, r), c: tf.gather(s.c, r), img: tf.gather(s.img, r) };
    // A grid shared by every row (one photo) stays shared.
    const rowsOf = (x: tf.Tensor3D) => (x.shape[0] === 1 ? tf.clone(x) : tf.gather(x, r));
    if (s.grid) g.grid = rowsOf(s.grid);
    if (s.keys) g.keys = rowsOf(s.keys);
    return g;
  });
}

function startState(w: DecoderWeights, features: tf.Tensor2D): LstmState {
  return tf.tidy(() => initialState(w, features));
}

/**
 * Next-word log-probabilities for each row, banned tokens set to -Infinity. Step t = maxLength − 1
 * allows only `<end>`: a caption is never longer than maxLength − 1 words.
 */
function step(w: DecoderWeights, tokens: Int32Array, state: LstmState, banned: readonly number[], endId: number, t: number, maxLength: number, keepAttention: boolean): { lp: Float32Array; state: LstmState; attention?: Float32Array } {
  const out = tf.tidy(() => {
    const r = decodeStep(w, tf.tensor1d(tokens, 'int32'), state);
    // The image projections do not change between steps: keep copies owned by the new state.
    const next: LstmState = { h: r.state.h, c: r.state.c, img: tf.clone(r.state.img) };
    if (r.state.grid) next.grid = tf.clone(r.state.grid);
    if (r.state.keys) next.keys = tf.clone(r.state.keys);
    return { lp: r.logProbs, state: next, attention: r.attention };
  });
  const lp = out.lp.dataSync() as Float32Array;
  out.lp.dispose();
  const attention = keepAttention && out.attention ? (out.attention.dataSync() as Float32Array) : undefined;
  out.attention?.dispose();
  const V = lp.length / tokens.length;
  for (let r = 0; r < tokens.length; r++) {
    for (const b of banned) lp[r * V + b] = -Infinity;
    // A caption has at least one word…
    if (t === 0) lp[r * V + endId] = -Infinity;
    // …and at most maxLength − 1.
    if (t === maxLength - 1 && t > 0) for (let v = 0; v < V; v++) if (v !== endId) lp[r * V + v] = -Infinity;
  }
  return { lp, state: out.state, attention };
}

/**
 * Beam search for one image (features [1, F]), length-normalised, returning the best
 * `alternatives` hypotheses, best first. Only candidates ranked within the top `beam` may finish,
 * and the search stops once `beam` hypotheses have finished, so beam 1 is exactly greedy decoding.
 */
export function beamSearch(w: DecoderWeights, features: tf.Tensor2D, opts: SearchOptions): Hypothesis[] {
  const k = opts.beam;
  const alpha = opts.lengthPenalty ?? 1;
  let state = startState(w, features);
  const keep = Boolean(opts.withAttention && w.attention);
  let beams: { tokens: number[]; logProb: number; attention: Float32Array[] }[] = [{ tokens: [], logProb: 0, attention: [] }];
  const finished: Hypothesis[] = [];
  try {
    for (let t = 0; t < opts.maxLength && beams.length > 0 && finished.length < k; t++) {
      const last = Int32Array.from(beams, (b) => (b.tokens.length ? b.tokens[b.tokens.length - 1] : opts.startId));
      const { lp, state: next, attention } = step(w, last, state, opts.bannedIds, opts.endId, t, opts.maxLength, keep);
      dispose(state);
      state = next;
      const V = lp.length / beams.length;
      const L = attention ? attention.length / beams.length : 0;
      const rowsOf = (row: number) => (keep && attention ? [...beams[row].attention, attention.slice(row * L, (row + 1) * L)] : beams[row].attention);
      // Best 2k (beam, word) pairs: enough that k survive even if k of them end here.
      const cands = topK(lp, beams, V, 2 * k);
      const alive: { tokens: number[]; logProb: number; row: number; attention: Float32Array[] }[] = [];
      for (let rank = 0; rank < cands.length && alive.length < k; rank++) {
        const c = cands[rank];
        const tokens = beams[c.row].tokens;
        if (c.word === opts.endId) {
          // On the last step every candidate is `<end>`: all of them finish.
          if (rank < k || t === opts.maxLength - 1) finished.push(hyp(tokens, c.logProb, true, alpha, keep ? rowsOf(c.row) : undefined));
        } else {
          alive.push({ tokens: [...tokens, c.word], logProb: c.logProb, row: c.row, attention: rowsOf(c.row) });
        }
      }
      if (alive.length > 0 && finished.length < k) {
        const gathered = gatherState(state, Int32Array.from(alive, (a) => a.row));
        dispose(state);
        state = gathered;
      }
      beams = alive;
    }
  } finally {
    dispose(state);
  }
  finished.sort((a, b) => b.score - a.score);
  return dedupe(finished).slice(0, Math.max(1, Math.min(opts.alternatives, k)));
}

function hyp(tokens: number[], logProb: number, finishedWithEnd: boolean, lengthPenalty: number, attention?: Float32Array[]): Hypothesis {
  const scored = tokens.length + (finishedWithEnd ? 1 : 0);
  return { tokens, logProb, score: logProb / Math.max(1, scored) ** lengthPenalty, finished: finishedWithEnd, ...(attention ? { attention } : {}) };
}

/** Hypotheses can repeat only through different paths to the same words; keep the best of each. */
function dedupe(h: Hypothesis[]): Hypothesis[] {
  const seen = new Set<string>();
  return h.filter((x) => {
    const key = x.tokens.join(' ');
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** The n best (row, word) continuations by total log-probability, best first. */
function topK(lp: Float32Array, beams: { logProb: number }[], V: number, n: number): { row: number; word: number; logProb: number }[] {
  const best: { row: number; word: number; logProb: number }[] = [];
  for (let r = 0; r < beams.length; r++) {
    const base = beams[r].logProb;
    for (let v = 0; v < V; v++) {
      const s = base + lp[r * V + v];
      if (s === -Infinity) continue;
      if (best.length < n || s > best[best.length - 1].logProb) {
        let i = best.length < n ? best.length : n - 1;
        if (best.length < n) best.push({ row: r, word: v, logProb: s });
        while (i > 0 && best[i - 1].logProb < s) {
          best[i] = best[i - 1];
          i--;
        }
        best[i] = { row: r, word: v, logProb: s };
      }
    }
  }
  return best;
}

/** Greedy decoding of a batch: features [N, F] → one hypothesis per row. */
export function greedyBatch(w: DecoderWeights, features: tf.Tensor2D, opts: Omit<SearchOptions, 'beam' | 'alternatives'>): Hypothesis[] {
  const n = features.shape[0];
  let state = startState(w, features);
  const keep = Boolean(opts.withAttention && w.attention);
  const attentionRows: Float32Array[][] = Array.from({ length: n }, () => []);
  const tokens: number[][] = Array.from({ length: n }, () => []);
  const logProb = new Float64Array(n);
  const done = new Uint8Array(n);
  try {
    let last = new Int32Array(n).fill(opts.startId);
    for (let t = 0; t < opts.maxLength && done.some((d) => !d); t++) {
      const { lp, state: next, attention } = step(w, last, state, opts.bannedIds, opts.endId, t, opts.maxLength, keep);
      dispose(state);
      state = next;
      const V = lp.length / n;
      last = new Int32Array(n);
      for (let r = 0; r < n; r++) {
        if (done[r]) continue;
        if (keep && attention) attentionRows[r].push(attention.slice((r * attention.length) / n, ((r + 1) * attention.length) / n));
        let arg = 0;
        for (let v = 1; v < V; v++) if (lp[r * V + v] > lp[r * V + arg]) arg = v;
        logProb[r] += lp[r * V + arg];
        if (arg === opts.endId) done[r] = 1;
        else tokens[r].push(arg);
        last[r] = arg;
      }
    }
  } finally {
    dispose(state);
  }
  return tokens.map((tk, r) => hyp(tk, logProb[r], done[r] === 1, 1, keep ? attentionRows[r] : undefined));
}
