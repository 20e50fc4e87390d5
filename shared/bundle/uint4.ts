import * as tf from '@tensorflow/tfjs-core';

/**
 * 4-bit weights with one affine range per output column (the last axis):
 * value[r, c] = code[r, c] · scale[c] + min[c], codes 0..15.
 *
 * Stored as m = ⌈n/2⌉ bytes of codes, row-major: byte i holds code i in its low nibble and code
 * i + m in its high one (halves, not neighbours: joining two halves is one block copy where
 * interleaving neighbours cost tfjs-wasm's concat a JS step per value, ≈ 80 ms in a cold isolate),
 * then `cols` float32 scales and `cols` float32 mins, little-endian. A per-tensor 4-bit range
 * missed the shipped decoder's matrices by 11–15% RMS, a per-column one by 6–12%, which left dev
 * BLEU-4 and CIDEr-D within 0.002 of uint8 (see `quantizeWeights` for where it is used).
 */
export const UINT4 = 'uint4';

/** Fractions of each column, at each end, that its range may leave outside (and clip). */
const CLIP_FRACTIONS = [0, 1e-3, 3e-3, 1e-2, 2e-2, 5e-2];

/** Whether a weight spec is stored in this encoding (tfjs's own types know only uint8/uint16/float16). */
export function isUint4(spec: tf.io.WeightsManifestEntry): boolean {
  return (spec.quantization?.dtype as string | undefined) === UINT4;
}

/** The spec of a float32 weight stored as uint4. */
export function uint4Spec(spec: tf.io.WeightsManifestEntry): tf.io.WeightsManifestEntry {
  return { ...spec, quantization: { dtype: UINT4 } as unknown as tf.io.WeightsManifestEntry['quantization'] };
}

/** Bytes a weight of this shape takes: the packed codes, then a scale and a min per column. */
export function uint4ByteLength(shape: readonly number[]): number {
  const n = shape.reduce((a, b) => a * b, 1);
  return Math.ceil(n / 2) + 8 * (shape[shape.length - 1] ?? 1);
}

/**
 * Quantizes row-major float32 weights of `shape` (rank ≥ 1). Each column takes the range, among a
 * few quantile clips, with the least squared error; returns the stored bytes and the tensor's RMS
 * error relative to its own RMS.
 */
export function quantizeUint4(values: Float32Array, shape: readonly number[]): { bytes: Uint8Array; relativeError: number } {
  const n = values.length;
  const cols = shape[shape.length - 1] ?? 1;
  const rows = n / cols;
  if (!Number.isInteger(rows) || shape.reduce((a, b) => a * b, 1) !== n) throw new RangeError(`uint4: ${n} values do not fill shape [${shape.join(', ')}]`);
  const codes = new Uint8Array(n);
  const scales = new Float32Array(cols);
  const mins = new Float32Array(cols);
  const column = new Float32Array(rows);
  let err = 0;
  let energy = 0;
  for (let c = 0; c < cols; c++) {
    for (let r = 0; r < rows; r++) column[r] = values[r * cols + c];
    const sorted = Float32Array.from(column).sort();
    let best = { min: 0, scale: 1, err: Infinity };
    for (const f of CLIP_FRACTIONS) {
      const k = Math.floor(f * rows);
      const lo = sorted[k];
      const hi = sorted[rows - 1 - k];
      // Rounded to float32 first: the error is measured with the range as stored.
      const scale = Math.fround(hi > lo ? (hi - lo) / 15 : 1);
      let e = 0;
      for (const v of sorted) e += (Math.min(15, Math.max(0, Math.round((v - lo) / scale))) * scale + lo - v) ** 2;
      if (e < best.err) best = { min: lo, scale, err: e };
    }
    scales[c] = best.scale;
    mins[c] = best.min;
    err += best.err;
    for (let r = 0; r < rows; r++) {
      codes[r * cols + c] = Math.min(15, Math.max(0, Math.round((column[r] - best.min) / best.scale)));
      energy += column[r] * column[r];
    }
  }
  return { bytes: packUint4(codes, scales, mins), relativeError: energy > 0 ? Math.sqrt(err / energy) : 0 };
}

/** The stored bytes of row-major codes (0..15) and each column's scale and min, as laid out above. */
export function packUint4(codes: Uint8Array, scales: Float32Array, mins: Float32Array): Uint8Array {
  const m = Math.ceil(codes.length / 2);
  const cols = scales.length;
  const bytes = new Uint8Array(m + 8 * cols);
  for (let i = 0; i < m; i++) bytes[i] = codes[i] | ((codes[i + m] ?? 0) << 4);
  bytes.set(new Uint8Array(scales.buffer, scales.byteOffset, 4 * cols), m);
  bytes.set(new Uint8Array(mins.buffer, mins.byteOffset, 4 * cols), m + 4 * cols);
  return bytes;
}

/**
 * The float32 tensor of stored uint4 bytes. The nibbles are split by the backend's kernels, not a
 * per-value JS loop (still interpreted in a cold isolate); `scratch`, when given, must hold ⌈n/2⌉
 * floats and may be reused once this returns.
 */
export function dequantizeUint4(bytes: Uint8Array, shape: readonly number[], scratch?: Float32Array): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const cols = shape[shape.length - 1] ?? 1;
  const m = Math.ceil(n / 2);
  if (bytes.byteLength !== uint4ByteLength(shape)) throw new RangeError(`uint4: [${shape.join(', ')}] takes ${uint4ByteLength(shape)} bytes, got ${bytes.byteLength}`);
  // A copy: the ranges need not sit at a 4-byte-aligned offset of the file.
  const ranges = new Float32Array(bytes.slice(m, m + 8 * cols).buffer);
  const packed = scratch ? scratch.subarray(0, m) : new Float32Array(m);
  packed.set(bytes.subarray(0, m));
  return tf.tidy(() => {
    const b = tf.tensor1d(packed);
    const high = tf.floor(tf.mul(b, 1 / 16));
    const low = tf.sub(b, tf.mul(high, 16));
    const codes = tf.concat([low, high]);
    const q = tf.reshape(2 * m === n ? codes : tf.slice(codes, 0, n), [n / cols, cols]);
    return tf.reshape(tf.add(tf.mul(q, tf.tensor1d(ranges.subarray(0, cols))), tf.tensor1d(ranges.subarray(cols))), [...shape]);
  });
}
