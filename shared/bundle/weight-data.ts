import * as tf from '@tensorflow/tfjs-core';
import { dequantizeUint4, isUint4, uint4ByteLength } from './uint4';

/**
 * A model file's weights as named tensors (uint4 per column, uint8/uint16 affine, float16,
 * float32), from bytes that may be a view into a larger buffer; too little data is an error naming
 * the first weight that does not fit, not a silent short read.
 */
export function decodeWeightData(specs: readonly tf.io.WeightsManifestEntry[], data: Uint8Array): Map<string, tf.Tensor> {
  let offset = 0;
  const parts: { spec: tf.io.WeightsManifestEntry; bytes: Uint8Array }[] = [];
  for (const spec of specs) {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const q = spec.quantization?.dtype;
    const bytesPer = q ? { uint8: 1, uint16: 2, float16: 2 }[q as string] : { float32: 4, int32: 4, bool: 1 }[spec.dtype as string];
    const size = isUint4(spec) && spec.dtype === 'float32' ? uint4ByteLength(spec.shape) : bytesPer && n * bytesPer;
    if (!size) throw new Error(`weight '${spec.name}': unsupported ${q ? `quantization ${q}` : `dtype ${spec.dtype}`}`);
    if (offset + size > data.byteLength) throw new Error(`weight '${spec.name}' [${spec.shape.join(', ')}] runs past the end of the weight data (${data.byteLength} bytes)`);
    parts.push({ spec, bytes: data.subarray(offset, offset + size) });
    offset += size;
  }
  const out = new Map<string, tf.Tensor>();
  // One float buffer for every quantized tensor, sized to the largest: a fresh one per tensor
  // (≈ 12 MB in all for the shipped bundle) made the cold isolate collect garbage mid-request.
  const largest = Math.max(0, ...parts.map((p) => scratchLength(p.spec)));
  const scratch = new Float32Array(largest);
  try {
    for (const { spec, bytes } of parts) out.set(spec.name, decodeOne(spec, bytes, scratch));
  } catch (e) {
    tf.dispose([...out.values()]);
    throw e;
  }
  return out;
}

/** Floats of scratch a weight's dequantization needs (0: none). */
function scratchLength(spec: tf.io.WeightsManifestEntry): number {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  if (isUint4(spec)) return Math.ceil(n / 2);
  return isAffine(spec) ? n : 0;
}

/** uint8/uint16 affine quantization of a float32 weight: dequantized by `decodeOne`'s fast path. */
function isAffine(spec: tf.io.WeightsManifestEntry): boolean {
  const q = spec.quantization;
  return (q?.dtype === 'uint8' || q?.dtype === 'uint16') && spec.dtype === 'float32' && q.scale !== undefined && q.min !== undefined;
}

function decodeOne(spec: tf.io.WeightsManifestEntry, bytes: Uint8Array, scratch: Float32Array): tf.Tensor {
  if (isUint4(spec)) return dequantizeUint4(bytes, spec.shape, scratch);
  const q = spec.quantization;
  if (q && isAffine(spec)) {
    // Not tf.io.decodeWeights' per-value JS loop: in a cold isolate that loop is still
    // interpreted and took ≈ 55 ms for the shipped bundle's 3 M weights. The typed-array
    // conversion is native and the affine map runs in the backend's kernels.
    const ints = q.dtype === 'uint8' ? bytes : new Uint16Array(bytes.slice().buffer);
    const floats = scratch.subarray(0, ints.length);
    floats.set(ints);
    // Ops run eagerly: the multiply has read the buffer before the next weight overwrites it.
    return tf.tidy(() => tf.add(tf.mul(tf.tensor(floats, spec.shape, 'float32'), q.scale!), q.min!));
  }
  const own = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes.buffer : bytes.slice().buffer;
  return tf.io.decodeWeights(own as ArrayBuffer, [spec])[spec.name];
}
