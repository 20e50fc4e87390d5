// BLEU-1..4 as pycocoevalcap's Bleu(4) computes it (bleu/bleu_scorer.py, option 'closest').
// Captions arrive already tokenized; the metric only splits on whitespace, no lower-casing.

export type CaptionMap<T> = Map<string, T> | Record<string, T>;
export type Bleu4 = [number, number, number, number];

export interface BleuTotals {
  correct: number[];
  guess: number[];
  testLength: number;
  refLength: number;
}

export interface BleuResult {
  bleu: Bleu4;
  perImage: Record<string, Bleu4>;
  totals: BleuTotals;
}

const N = 4;
const SMALL = 1e-9;
const TINY = 1e-15; // so that a zero count still scores ~0 when guess is 0

// The whitespace set of Python 3's str.split() with no argument (runs collapse, ends trimmed).
const PY_WHITESPACE = /[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;

export function splitWords(s: string): string[] {
  return s.split(PY_WHITESPACE).filter((w) => w.length > 0);
}

/** counts[k-1] maps each k-gram (words joined by one space) to its count, in first-seen order. */
export function ngramCounts(words: string[], n = N): Map<string, number>[] {
  const counts: Map<string, number>[] = [];
  for (let k = 1; k <= n; k++) {
    const m = new Map<string, number>();
    for (let i = 0; i + k <= words.length; i++) {
      const g = words.slice(i, i + k).join(' ');
      m.set(g, (m.get(g) ?? 0) + 1);
    }
    counts.push(m);
  }
  return counts;
}

/** Pairs each image's references with its single candidate, in the references' key order. */
export function pairCaptions(
  refs: CaptionMap<string[]>,
  cands: CaptionMap<string>,
): Array<[id: string, refs: string[], cand: string]> {
  const r = refs instanceof Map ? [...refs] : Object.entries(refs);
  const c = new Map(cands instanceof Map ? [...cands] : Object.entries(cands));
  if (r.length !== c.size) throw new Error(`metrics: ${r.length} reference sets but ${c.size} candidates`);
  return r.map(([id, rs]) => {
    const cand = c.get(id);
    if (cand === undefined) throw new Error(`metrics: no candidate for image ${id}`);
    if (typeof cand !== 'string') throw new Error(`metrics: candidate for image ${id} is not a string`);
    if (!Array.isArray(rs) || rs.length === 0) throw new Error(`metrics: image ${id} has no references`);
    return [id, rs, cand];
  });
}

// Cumulative BLEU-1..4 with the source's epsilons and its brevity penalty exp(1 - 1/ratio).
function score(correct: number[], guess: number[], testLength: number, refLength: number): Bleu4 {
  const out: number[] = [];
  let prod = 1;
  for (let k = 0; k < N; k++) {
    prod *= (correct[k] + TINY) / (guess[k] + SMALL);
    out.push(prod ** (1 / (k + 1)));
  }
  const ratio = (testLength + TINY) / (refLength + SMALL);
  if (ratio < 1) for (let k = 0; k < N; k++) out[k] *= Math.exp(1 - 1 / ratio);
  return out as Bleu4;
}

export function bleuFromTotals(totals: BleuTotals): Bleu4 {
  return score(totals.correct, totals.guess, totals.testLength, totals.refLength);
}

export function corpusBleu(refs: CaptionMap<string[]>, cands: CaptionMap<string>): BleuResult {
  const totals: BleuTotals = { correct: [0, 0, 0, 0], guess: [0, 0, 0, 0], testLength: 0, refLength: 0 };
  const perImage: Record<string, Bleu4> = {};

  for (const [id, rs, cand] of pairCaptions(refs, cands)) {
    // Clip each candidate n-gram by its largest count in any single reference.
    const maxRef = new Map<string, number>();
    const refLens: number[] = [];
    for (const ref of rs) {
      const words = splitWords(ref);
      refLens.push(words.length);
      for (const m of ngramCounts(words)) {
        for (const [g, c] of m) maxRef.set(g, Math.max(maxRef.get(g) ?? 0, c));
      }
    }

    const words = splitWords(cand);
    const testLength = words.length;
    // 'closest': min over (|len - testLength|, len), so ties go to the shorter reference.
    let refLength = refLens[0];
    for (const l of refLens) {
      const d = Math.abs(l - testLength);
      const best = Math.abs(refLength - testLength);
      if (d < best || (d === best && l < refLength)) refLength = l;
    }

    const correct = [0, 0, 0, 0];
    const guess = [0, 0, 0, 0];
    ngramCounts(words).forEach((m, k) => {
      guess[k] = Math.max(0, testLength - k);
      for (const [g, c] of m) correct[k] += Math.min(maxRef.get(g) ?? 0, c);
    });

    perImage[id] = score(correct, guess, testLength, refLength);
    totals.testLength += testLength;
    totals.refLength += refLength;
    for (let k = 0; k < N; k++) {
      totals.correct[k] += correct[k];
      totals.guess[k] += guess[k];
    }
  }

  return { bleu: bleuFromTotals(totals), perImage, totals };
}
