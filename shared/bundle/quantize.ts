import type * as tf from '@tensorflow/tfjs-core';
import type { Quantization } from './manifest';
import { quantizeUint4, uint4Spec } from './uint4';

type WeightSpec = tf.io.WeightsManifestEntry;

/**
 * Small tensors (biases, batch-norm and depthwise kernels) stay float16 in uint8 bundles: one
 * affine range per tensor loses too much on them (measured: uint8 everywhere cost the MobileNet
 * bundle 0.034 dev CIDEr-D), and they add only a few kilobytes.
 */
export const UINT8_MIN_ELEMENTS = 16384;

/**
 * A large tensor also stays float16 when uint8 would miss it by more than this RMS fraction of
 * its own RMS. Measured: MobileNet's pointwise kernels (max |w| 12–23× their RMS) come out at
 * 2.3–3.8% and cost its bundle 0.010 beam-3 BLEU-4; the compact VGG16's and the decoder's tensors
 * come out at 0.7–1.8% and cost nothing measurable.
 */
export const UINT8_MAX_RELATIVE_ERROR = 0.02;

/**
 * In uint4 mode a large matrix falls back to uint8 when 4 bits per column would miss it by more
 * than this RMS fraction. Measured: the shipped decoder's matrices come out at 6–12%.
 */
export const UINT4_MAX_RELATIVE_ERROR = 0.13;

/**
 * How a bundle's encoder is stored when the bundle is `mode`: 'uint4' holds the decoder only. The
 * compact VGG16's convolutions at 4 bits per output channel cost 0.007 dev beam-3 CIDEr-D
 * (0.317 → 0.310) where the decoder's matrices cost nothing measurable, for 0.5 MB.
 */
export function encoderQuantization(mode: Quantization): Quantization {
  return mode === 'uint4' ? 'uint8' : mode;
}

/**
 * Quantizes float32 weights the way tfjs's converter does, so `tf.io.decodeWeights` (and so any
 * tfjs loader) reads them back: uint8 affine per tensor (value = q · scale + min), or float16.
 * 'uint4' stores large matrices 4-bit per column (uint4.ts; only our loader reads those), else as
 * 'uint8' does.
 */
export function quantizeWeights(
  specs: WeightSpec[],
  data: ArrayBuffer,
  mode: Quantization,
): { specs: WeightSpec[]; data: ArrayBuffer } {
  if (mode === 'none') return { specs, data };
  const outSpecs: WeightSpec[] = [];
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const spec of specs) {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const bytes = n * 4;
    if (spec.dtype !== 'float32') {
      // Integer weights (none in our models today) pass through unchanged.
      chunks.push(new Uint8Array(data, offset, bytes));
      outSpecs.push(spec);
    } else {
      const values = new Float32Array(data.slice(offset, offset + bytes));
      const large = (mode === 'uint8' || mode === 'uint4') && n >= UINT8_MIN_ELEMENTS;
      const u4 = large && mode === 'uint4' && spec.shape.length >= 2 ? quantizeUint4(values, spec.shape) : undefined;
      const u8 = large && !(u4 && u4.relativeError <= UINT4_MAX_RELATIVE_ERROR) ? toUint8(values) : undefined;
      if (u4 && !u8) {
        chunks.push(u4.bytes);
        outSpecs.push(uint4Spec(spec));
      } else if (u8 && u8.relativeError <= UINT8_MAX_RELATIVE_ERROR) {
        chunks.push(u8.q);
        outSpecs.push({ ...spec, quantization: { dtype: 'uint8', min: u8.min, scale: u8.scale } });
      } else {
        chunks.push(new Uint8Array(toFloat16(values).buffer));
        outSpecs.push({ ...spec, quantization: { dtype: 'float16' } });
      }
    }
    offset += bytes;
  }
  const total = chunks.reduce((a, c) => a + c.byteLength, 0);
  const out = new Uint8Array(total);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.byteLength;
  }
  return { specs: outSpecs, data: out.buffer };
}

/** Fractions of the weights, at each end, that the uint8 range may leave outside (and clip). */
const CLIP_FRACTIONS = [0, 1e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2];

/**
 * uint8 affine quantization with the range that gives the least squared error among a few
 * quantile clips: a handful of outliers would otherwise stretch the step for every other weight.
 */
function toUint8(values: Float32Array): { q: Uint8Array; min: number; scale: number; relativeError: number } {
  const n = values.length;
  const sorted = Float32Array.from(values).sort();
  let energy = 0;
  for (let i = 0; i < n; i++) energy += sorted[i] * sorted[i];
  let best = { min: 0, scale: 1, err: Infinity };
  for (const f of CLIP_FRACTIONS) {
    const k = Math.floor(f * n);
    const lo = sorted[k] ?? 0;
    const hi = sorted[n - 1 - k] ?? 0;
    const scale = hi > lo ? (hi - lo) / 255 : 1;
    let err = 0;
    for (let i = 0; i < n; i++) {
      const v = sorted[i];
      const back = Math.min(255, Math.max(0, Math.round((v - lo) / scale))) * scale + lo;
      err += (back - v) * (back - v);
    }
    if (err < best.err) best = { min: lo, scale, err };
  }
  const q = new Uint8Array(n);
  for (let i = 0; i < n; i++) q[i] = Math.min(255, Math.max(0, Math.round((values[i] - best.min) / best.scale)));
  return { q, min: best.min, scale: best.scale, relativeError: energy > 0 ? Math.sqrt(best.err / energy) : 0 };
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 → IEEE half, round to nearest even; overflow to ±Infinity, tiny values to subnormals. */
export function toFloat16(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    f32[0] = values[i];
    const x = u32[0];
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    let mant = x & 0x7fffff;
    if (exp === 0xff) {
      out[i] = sign | 0x7c00 | (mant ? 0x200 : 0);
      continue;
    }
    let e = exp - 127 + 15;
    if (e >= 0x1f) {
      out[i] = sign | 0x7c00;
      continue;
    }
    if (e <= 0) {
      if (e < -10) {
        out[i] = sign;
        continue;
      }
      mant |= 0x800000;
      const shift = 14 - e;
      let h = mant >>> shift;
      const rem = mant & ((1 << shift) - 1);
      const half = 1 << (shift - 1);
      if (rem > half || (rem === half && h & 1)) h++;
      out[i] = sign | h;
      continue;
    }
    let h = (e << 10) | (mant >>> 13);
    const rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
    out[i] = sign | h;
  }
  return out;
}

/** IEEE half → float32 (exact: every half value is a float32). */
export function fromFloat16(halves: Uint16Array): Float32Array {
  const out = new Float32Array(halves.length);
  for (let i = 0; i < halves.length; i++) {
    const h = halves[i];
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) out[i] = sign * mant * 2 ** -24;
    else if (exp === 0x1f) out[i] = mant ? NaN : sign * Infinity;
    else out[i] = sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
  return out;
}
