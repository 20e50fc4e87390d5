import type { RgbImage } from './types';

/**
 * Resizes to outW × outH and returns HWC RGB floats in 0..255.
 * Shrinking an axis averages areas exactly (each output pixel is the coverage-weighted mean of
 * the input pixels under it); enlarging an axis is bilinear with half-pixel centres. Separable,
 * streamed one input row at a time: only two resized rows exist besides the output.
 */
export function resizeToFloat(img: RgbImage, outW: number, outH: number): Float32Array {
  const { width: inW, height: inH, data } = img;
  if (!(Number.isInteger(outW) && Number.isInteger(outH) && outW > 0 && outH > 0)) {
    throw new RangeError(`resize target must be positive integers, got ${outW}x${outH}`);
  }
  if (!(inW > 0 && inH > 0) || data.length < inW * inH * 3) {
    throw new RangeError(`invalid source image ${inW}x${inH} with ${data.length} bytes`);
  }
  const xs = axisWeights(inW, outW);
  const ys = axisWeights(inH, outH);
  const out = new Float32Array(outW * outH * 3);
  const rowLen = outW * 3;

  // Two-entry cache of horizontally resized input rows; row indices only ever increase.
  const cache = [new Float32Array(rowLen), new Float32Array(rowLen)];
  const cachedRow = [-1, -1];
  let next = 0;
  const hRow = (y: number): Float32Array => {
    if (cachedRow[0] === y) return cache[0];
    if (cachedRow[1] === y) return cache[1];
    const slot = next;
    next ^= 1;
    cachedRow[slot] = y;
    resizeRow(data, y * inW * 3, xs, cache[slot]);
    return cache[slot];
  };

  for (let oy = 0; oy < outH; oy++) {
    const o = oy * rowLen;
    for (let k = ys.start[oy]; k < ys.start[oy + 1]; k++) {
      const row = hRow(ys.index[k]);
      const w = ys.weight[k];
      for (let i = 0; i < rowLen; i++) out[o + i] += w * row[i];
    }
  }
  return out;
}

/** Contributions per output index in CSR form: input `index[k]` with `weight[k]` for k in [start[o], start[o+1]). */
interface Weights {
  start: Int32Array;
  index: Int32Array;
  weight: Float64Array;
}

function axisWeights(n: number, m: number): Weights {
  const idx: number[] = [];
  const wt: number[] = [];
  const start = new Int32Array(m + 1);
  for (let o = 0; o < m; o++) {
    start[o] = idx.length;
    if (m <= n) {
      // Area: output o covers [o·n/m, (o+1)·n/m) of the input.
      const a = (o * n) / m;
      const b = ((o + 1) * n) / m;
      const scale = m / n;
      for (let i = Math.floor(a); i < Math.min(n, Math.ceil(b)); i++) {
        const overlap = Math.min(b, i + 1) - Math.max(a, i);
        if (overlap > 1e-12) {
          idx.push(i);
          wt.push(overlap * scale);
        }
      }
    } else {
      const src = Math.min(Math.max(((o + 0.5) * n) / m - 0.5, 0), n - 1);
      const i0 = Math.floor(src);
      const f = src - i0;
      idx.push(i0);
      wt.push(1 - f);
      if (f > 0) {
        idx.push(i0 + 1);
        wt.push(f);
      }
    }
  }
  start[m] = idx.length;
  return { start, index: Int32Array.from(idx), weight: Float64Array.from(wt) };
}

function resizeRow(src: Uint8Array, offset: number, xs: Weights, dst: Float32Array): void {
  const m = xs.start.length - 1;
  for (let ox = 0; ox < m; ox++) {
    let r = 0;
    let g = 0;
    let b = 0;
    for (let k = xs.start[ox]; k < xs.start[ox + 1]; k++) {
      const s = offset + xs.index[k] * 3;
      const w = xs.weight[k];
      r += w * src[s];
      g += w * src[s + 1];
      b += w * src[s + 2];
    }
    dst[ox * 3] = r;
    dst[ox * 3 + 1] = g;
    dst[ox * 3 + 2] = b;
  }
}
