import type { ConfidenceModel } from '../../shared/confidence';
import { statsDistance } from '../../shared/confidence';

/** Mean, inverse covariance and the largest Mahalanobis distance of rows of statistics. */
export function fitImageStats(rows: number[][]): ConfidenceModel['imageStats'] {
  const k = rows[0].length;
  const n = rows.length;
  const mean = Array.from({ length: k }, (_, j) => rows.reduce((a, r) => a + r[j], 0) / n);
  // A small ridge keeps the inverse finite when a statistic barely varies (e.g. the white fraction).
  const cov = Array.from({ length: k }, (_, i) =>
    Array.from({ length: k }, (_, j) => rows.reduce((a, r) => a + (r[i] - mean[i]) * (r[j] - mean[j]), 0) / n + (i === j ? 1e-6 : 0)),
  );
  const inverseCovariance = invert(cov);
  const limit = Math.max(...rows.map((r) => statsDistance(r, { mean, inverseCovariance })));
  const column = (j: number) => rows.map((r) => r[j]);
  return {
    mean,
    inverseCovariance,
    limit,
    min: mean.map((_, j) => Math.min(...column(j))),
    max: mean.map((_, j) => Math.max(...column(j))),
    std: mean.map((_, j) => Math.sqrt(cov[j][j])),
  };
}

/** Gauss–Jordan inverse with partial pivoting. */
export function invert(m: number[][]): number[][] {
  const k = m.length;
  const a = m.map((r, i) => [...r, ...Array.from({ length: k }, (_, j) => (i === j ? 1 : 0))]);
  for (let i = 0; i < k; i++) {
    let p = i;
    for (let r = i + 1; r < k; r++) if (Math.abs(a[r][i]) > Math.abs(a[p][i])) p = r;
    if (Math.abs(a[p][i]) < 1e-15) throw new Error('invert: singular matrix');
    [a[i], a[p]] = [a[p], a[i]];
    const d = a[i][i];
    for (let j = 0; j < 2 * k; j++) a[i][j] /= d;
    for (let r = 0; r < k; r++) {
      if (r === i) continue;
      const f = a[r][i];
      for (let j = 0; j < 2 * k; j++) a[r][j] -= f * a[i][j];
    }
  }
  return a.map((r) => r.slice(k));
}

/**
 * Logistic regression (standardised inputs, a little L2, full-batch gradient descent: three
 * inputs and a thousand rows need nothing more) → P(y = 1 | x).
 */
export function fitLogistic(x: number[][], y: number[], { l2 = 1e-3, steps = 3000, lr = 0.5 } = {}): ConfidenceModel['logistic'] {
  const k = x[0].length;
  const n = x.length;
  const center = Array.from({ length: k }, (_, j) => x.reduce((a, r) => a + r[j], 0) / n);
  const scale = Array.from({ length: k }, (_, j) => Math.sqrt(x.reduce((a, r) => a + (r[j] - center[j]) ** 2, 0) / n) || 1);
  const z = x.map((r) => r.map((v, j) => (v - center[j]) / scale[j]));
  const w = new Array(k).fill(0);
  let b = 0;
  for (let s = 0; s < steps; s++) {
    const gw = new Array(k).fill(0);
    let gb = 0;
    for (let i = 0; i < n; i++) {
      const p = 1 / (1 + Math.exp(-(b + z[i].reduce((a, v, j) => a + v * w[j], 0))));
      const e = p - y[i];
      gb += e;
      for (let j = 0; j < k; j++) gw[j] += e * z[i][j];
    }
    b -= (lr * gb) / n;
    for (let j = 0; j < k; j++) w[j] -= lr * (gw[j] / n + l2 * w[j]);
  }
  return { center, scale, weights: w, bias: b };
}

/** Ranks from 1, ties sharing their mean rank. */
function ranks(a: number[]): number[] {
  const order = a.map((v, i) => [v, i] as const).sort((p, q) => p[0] - q[0]);
  const out = new Array<number>(a.length);
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && order[j + 1][0] === order[i][0]) j++;
    for (let t = i; t <= j; t++) out[order[t][1]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return out;
}

/** Spearman's rank correlation (Pearson on ranks, ties averaged). */
export function spearman(a: number[], b: number[]): number {
  if (a.length !== b.length || a.length < 2) throw new Error('spearman: need two equally long samples of at least 2');
  const ra = ranks(a);
  const rb = ranks(b);
  const m = (a.length + 1) / 2;
  let num = 0;
  let da = 0;
  let db = 0;
  for (let i = 0; i < a.length; i++) {
    num += (ra[i] - m) * (rb[i] - m);
    da += (ra[i] - m) ** 2;
    db += (rb[i] - m) ** 2;
  }
  return da && db ? num / Math.sqrt(da * db) : 0;
}
