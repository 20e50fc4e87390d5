// CIDEr-D as coco-caption's `Cider` scorer computes it (cider/cider_scorer.py: n=4, sigma=6).
import { type CaptionMap, ngramCounts, pairCaptions, splitWords } from './bleu';

export interface CiderResult {
  score: number;
  perImage: Record<string, number>;
}

const N = 4;
const SIGMA = 6;

interface TfIdf {
  vec: Map<string, number>[];
  norm: number[];
  length: number;
}

/**
 * CIDEr-D with document frequencies fixed by a reference corpus: one image's references each.
 * `ciderD` builds one over the evaluated images (as coco-caption does); self-critical training
 * builds one over the training captions and scores many sampled captions against it.
 */
export class CiderDScorer {
  private readonly df = new Map<string, number>();
  private readonly refLen: number;
  private readonly refVecs = new Map<string, TfIdf[]>();

  constructor(refs: CaptionMap<string[]>) {
    const entries = refs instanceof Map ? [...refs] : Object.entries(refs);
    const counts = entries.map(([id, rs]) => [id, rs.map((r) => ngramCounts(splitWords(r), N))] as const);
    // An n-gram counts once per image.
    for (const [, rs] of counts) {
      const seen = new Set<string>();
      for (const ref of rs) for (const m of ref) for (const g of m.keys()) seen.add(g);
      for (const g of seen) this.df.set(g, (this.df.get(g) ?? 0) + 1);
    }
    // With a single image this is 0, so every weight is 0 and CIDEr-D is 0 (as in the source).
    this.refLen = Math.log(counts.length);
    for (const [id, rs] of counts) this.refVecs.set(id, rs.map((r) => this.toVec(r)));
  }

  /** CIDEr-D (×10, as reported) of `candidate` against image `id`'s references. */
  score(id: string, candidate: string): number {
    const refs = this.refVecs.get(id);
    if (!refs) throw new Error(`CIDEr-D: no references for image '${id}'`);
    if (!refs.length) return 0;
    const hyp = this.toVec(ngramCounts(splitWords(candidate), N));
    const sums = new Array<number>(N).fill(0);
    for (const ref of refs) sim(hyp, ref).forEach((v, n) => (sums[n] += v));
    return (sums.reduce((a, b) => a + b, 0) / N / refs.length) * 10;
  }

  private toVec(counts: Map<string, number>[]): TfIdf {
    const vec: Map<string, number>[] = [];
    const norm: number[] = [];
    let length = 0;
    counts.forEach((m, n) => {
      const v = new Map<string, number>();
      let sq = 0;
      for (const [g, tf] of m) {
        const w = tf * (this.refLen - Math.log(Math.max(1, this.df.get(g) ?? 0)));
        v.set(g, w);
        sq += w * w;
        // The source takes "length" from the bigram count (index 1); its differences equal the
        // word-count differences whenever both captions are non-empty.
        if (n === 1) length += tf;
      }
      vec.push(v);
      norm.push(Math.sqrt(sq));
    });
    return { vec, norm, length };
  }
}

function sim(hyp: TfIdf, ref: TfIdf): number[] {
  const delta = hyp.length - ref.length;
  const penalty = Math.exp(-(delta * delta) / (2 * SIGMA * SIGMA));
  return hyp.vec.map((vh, n) => {
    let val = 0;
    for (const [g, h] of vh) {
      const r = ref.vec[n].get(g) ?? 0;
      val += Math.min(h, r) * r; // the "-D" clipping
    }
    if (hyp.norm[n] !== 0 && ref.norm[n] !== 0) val /= hyp.norm[n] * ref.norm[n];
    return val * penalty;
  });
}

/** Corpus CIDEr-D, document frequencies from the evaluated images' references (coco-caption). */
export function ciderD(refs: CaptionMap<string[]>, cands: CaptionMap<string>): CiderResult {
  const pairs = pairCaptions(refs, cands);
  const scorer = new CiderDScorer(new Map(pairs.map(([id, rs]) => [id, rs])));
  const perImage: Record<string, number> = {};
  let total = 0;
  for (const [id, , cand] of pairs) {
    perImage[id] = scorer.score(id, cand);
    total += perImage[id];
  }
  return { score: pairs.length ? total / pairs.length : NaN, perImage };
}
