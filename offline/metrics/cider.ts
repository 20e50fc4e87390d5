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

export function ciderD(refs: CaptionMap<string[]>, cands: CaptionMap<string>): CiderResult {
  const images = pairCaptions(refs, cands).map(([id, rs, cand]) => ({
    id,
    refs: rs.map((r) => ngramCounts(splitWords(r), N)),
    cand: ngramCounts(splitWords(cand), N),
  }));

  // Document frequency over the evaluated images' references: an n-gram counts once per image.
  const df = new Map<string, number>();
  for (const img of images) {
    const seen = new Set<string>();
    for (const ref of img.refs) for (const m of ref) for (const g of m.keys()) seen.add(g);
    for (const g of seen) df.set(g, (df.get(g) ?? 0) + 1);
  }
  // With a single image this is 0, so every weight is 0 and CIDEr-D is 0 (as in the source).
  const refLen = Math.log(images.length);

  const toVec = (counts: Map<string, number>[]): TfIdf => {
    const vec: Map<string, number>[] = [];
    const norm: number[] = [];
    let length = 0;
    counts.forEach((m, n) => {
      const v = new Map<string, number>();
      let sq = 0;
      for (const [g, tf] of m) {
        const w = tf * (refLen - Math.log(Math.max(1, df.get(g) ?? 0)));
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
  };

  const sim = (hyp: TfIdf, ref: TfIdf): number[] => {
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
  };

  const perImage: Record<string, number> = {};
  let total = 0;
  for (const img of images) {
    const hyp = toVec(img.cand);
    const sums = new Array<number>(N).fill(0);
    for (const ref of img.refs) sim(hyp, toVec(ref)).forEach((v, n) => (sums[n] += v));
    const s = (sums.reduce((a, b) => a + b, 0) / N / img.refs.length) * 10;
    perImage[img.id] = s;
    total += s;
  }
  return { score: images.length ? total / images.length : NaN, perImage };
}
