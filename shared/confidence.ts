import type { Normalization } from './bundle/manifest';

/**
 * How far a caption can be trusted, as a number in [0, 1], from what the model already knows:
 * the caption's mean per-word log-probability, its length, and how much the image looks like a
 * photo of the kind the model was trained on (six low-level statistics of the encoder's input,
 * their Mahalanobis distance to the training photos'). A logistic regression fitted on the dev
 * split (`offline:calibrate`) turns them into the probability that the caption scores above the
 * dev median CIDEr-D; images further from the training photos than any of them (blank, text
 * screenshots) are scaled down further. Measured: the encoder's own features of a blank image
 * look like any photo's (mean squared z-score 0.8, dev median 0.86), the statistics do not.
 */
export interface ConfidenceModel {
  version: 1;
  /**
   * Training photos' image statistics: mean, inverse covariance and the largest Mahalanobis
   * distance among them; and each statistic's range and spread, because a non-photo often sits
   * outside the range of one statistic (noise: neighbour correlation) while its distance is typical.
   */
  imageStats: { mean: number[]; inverseCovariance: number[][]; limit: number; min: number[]; max: number[]; std: number[] };
  /** Logistic regression on standardised [score, words, log(1 + distance)]. */
  logistic: { center: number[]; scale: number[]; weights: number[]; bias: number };
  /** Where it was fitted and how well it ranks held-out captions (Spearman ρ with per-image CIDEr-D). */
  fittedOn?: string;
  spearman?: number;
}

export const IMAGE_STAT_NAMES = ['log pixel std', 'log mean gradient', 'log mean saturation', 'white fraction', 'sharp-edge fraction', 'log(1 − neighbour correlation)'] as const;

/**
 * Six statistics of the encoder's input (HWC, normalised with `norm`; values mapped back to 0..255):
 * contrast, texture, colour, blank-white area, hard edges, and how unlike its neighbours a pixel is (noise).
 */
export function imageStats(input: Float32Array, size: number, norm: Normalization): number[] {
  const n = size * size;
  const gray = new Float32Array(n);
  const bgr = norm.channelOrder === 'bgr';
  let sum = 0;
  let sumSq = 0;
  let sat = 0;
  let white = 0;
  for (let i = 0; i < n; i++) {
    const c0 = input[i * 3] * norm.std[0] + norm.mean[0];
    const g = input[i * 3 + 1] * norm.std[1] + norm.mean[1];
    const c2 = input[i * 3 + 2] * norm.std[2] + norm.mean[2];
    const r = bgr ? c2 : c0;
    const b = bgr ? c0 : c2;
    sum += r + g + b;
    sumSq += r * r + g * g + b * b;
    const hi = Math.max(r, g, b);
    const lo = Math.min(r, g, b);
    sat += hi - lo;
    if (lo > 235) white++;
    gray[i] = (r + g + b) / 3;
  }
  const mean = sum / (3 * n);
  const std = Math.sqrt(Math.max(0, sumSq / (3 * n) - mean * mean));
  let grad = 0;
  let sharp = 0;
  for (let y = 0; y < size - 1; y++)
    for (let x = 0; x < size - 1; x++) {
      const d = Math.abs(gray[y * size + x + 1] - gray[y * size + x]) + Math.abs(gray[(y + 1) * size + x] - gray[y * size + x]);
      grad += d;
      if (d > 80) sharp++;
    }
  // Neighbouring pixels of a photo are strongly correlated (ρ ≈ 0.9); of noise, not at all.
  let cov = 0;
  let pairs = 0;
  const gm = mean;
  for (let y = 0; y < size - 1; y++)
    for (let x = 0; x < size - 1; x++) {
      const v = gray[y * size + x] - gm;
      cov += v * (gray[y * size + x + 1] - gm) + v * (gray[(y + 1) * size + x] - gm);
      pairs += 2;
    }
  let grayVar = 0;
  for (let i = 0; i < n; i++) grayVar += (gray[i] - gm) ** 2;
  grayVar /= n;
  const rho = grayVar > 1e-6 ? cov / pairs / grayVar : 1;
  const g = grad / (size - 1) ** 2;
  return [Math.log1p(std), Math.log1p(g), Math.log1p(sat / n), white / n, sharp / n, Math.log(Math.max(1e-3, 1 - rho))];
}

/** Mahalanobis distance of image statistics to the training photos'. */
export function statsDistance(stats: number[], model: Pick<ConfidenceModel['imageStats'], 'mean' | 'inverseCovariance'>): number {
  const d = stats.map((v, i) => v - model.mean[i]);
  let t = 0;
  for (let i = 0; i < d.length; i++) for (let j = 0; j < d.length; j++) t += d[i] * model.inverseCovariance[i][j] * d[j];
  return Math.sqrt(Math.max(0, t));
}

/** The regression's inputs for one caption. */
export function confidenceInputs(score: number, caption: string, distance: number): number[] {
  return [score, caption.split(' ').filter(Boolean).length, Math.log1p(distance)];
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

/** Confidence in [0, 1] of one caption of an image at `distance` from the training photos. */
export function captionConfidence(model: ConfidenceModel, score: number, caption: string, distance: number): number {
  const { center, scale, weights, bias } = model.logistic;
  const x = confidenceInputs(score, caption, distance);
  const p = sigmoid(bias + x.reduce((z, v, i) => z + (weights[i] * (v - center[i])) / scale[i], 0));
  // Beyond the most unusual training photo the regression has no data: shrink with the excess.
  const excess = Math.max(distance, 0) / model.imageStats.limit;
  return excess > 1 ? p / excess ** 4 : p;
}

/**
 * How far outside the training photos an image's statistics are, as one number for
 * `captionConfidence`: the Mahalanobis distance, raised to limit × (1 + d/σ) when a statistic
 * lies d outside its training range (σ its spread), whichever is larger.
 */
export function photoDistance(stats: number[], model: ConfidenceModel['imageStats']): number {
  let worst = 1;
  stats.forEach((v, j) => {
    const outside = Math.max(0, model.min[j] - v, v - model.max[j]);
    worst = Math.max(worst, 1 + outside / model.std[j]);
  });
  return Math.max(statsDistance(stats, model), worst > 1 ? model.limit * worst : 0);
}

/** Checks a manifest's `confidence` entry; returns the problems (empty when it fits). */
export function confidenceModelProblems(v: unknown): string[] {
  const isNumArray = (a: unknown, n: number) => Array.isArray(a) && a.length === n && a.every((x) => typeof x === 'number' && Number.isFinite(x));
  const o = (typeof v === 'object' && v !== null ? v : {}) as Record<string, Record<string, unknown>>;
  const k = IMAGE_STAT_NAMES.length;
  const problems: string[] = [];
  if ((v as { version?: unknown })?.version !== 1) problems.push('confidence.version must be 1');
  const s = o.imageStats ?? {};
  if (!isNumArray(s.mean, k)) problems.push(`confidence.imageStats.mean must be ${k} numbers`);
  if (!(Array.isArray(s.inverseCovariance) && s.inverseCovariance.length === k && s.inverseCovariance.every((r) => isNumArray(r, k)))) problems.push(`confidence.imageStats.inverseCovariance must be ${k}×${k} numbers`);
  if (!(typeof s.limit === 'number' && s.limit > 0)) problems.push('confidence.imageStats.limit must be a positive number');
  if (!isNumArray(s.min, k) || !isNumArray(s.max, k) || !isNumArray(s.std, k) || (s.std as number[]).some((x) => x <= 0)) {
    problems.push(`confidence.imageStats.min, max and std must be ${k} numbers each (std positive)`);
  }
  const l = o.logistic ?? {};
  if (!isNumArray(l.center, 3) || !isNumArray(l.scale, 3) || !isNumArray(l.weights, 3) || typeof l.bias !== 'number') problems.push('confidence.logistic must hold center, scale and weights (3 numbers each) and a bias');
  else if ((l.scale as number[]).some((x) => x <= 0)) problems.push('confidence.logistic.scale must be positive');
  return problems;
}
