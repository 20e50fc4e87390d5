import * as tf from '@tensorflow/tfjs-core';

/**
 * A model file's weights as named tensors (`tf.io.decodeWeights`: uint8/uint16 affine, float16),
 * from bytes that may be a view into a larger buffer; too little data is an error naming the
 * first weight that does not fit, not a silent short read.
 */
export function decodeWeightData(specs: readonly tf.io.WeightsManifestEntry[], data: Uint8Array): Map<string, tf.Tensor> {
  let offset = 0;
  for (const spec of specs) {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const q = spec.quantization?.dtype;
    const bytesPer = q ? { uint8: 1, uint16: 2, float16: 2 }[q as string] : { float32: 4, int32: 4, bool: 1 }[spec.dtype as string];
    if (!bytesPer) throw new Error(`weight '${spec.name}': unsupported ${q ? `quantization ${q}` : `dtype ${spec.dtype}`}`);
    offset += n * bytesPer;
    if (offset > data.byteLength) throw new Error(`weight '${spec.name}' [${spec.shape.join(', ')}] runs past the end of the weight data (${data.byteLength} bytes)`);
  }
  const whole = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength;
  return new Map(Object.entries(tf.io.decodeWeights((whole ? data.buffer : data.slice().buffer) as ArrayBuffer, [...specs])));
}
