import * as tf from '@tensorflow/tfjs-core';
import { fromFloat16 } from './quantize';

/**
 * A model file's weights as named tensors, dequantized the way `tf.io.decodeWeights` does
 * (uint8/uint16 affine: q · scale + min; float16) but with plain loops: tfjs's per-element
 * callbacks cost ~100 ms for the decoder's 2.3 MB in a cold isolate, these ~10.
 */
export function decodeWeightData(specs: readonly tf.io.WeightsManifestEntry[], data: Uint8Array): Map<string, tf.Tensor> {
  const out = new Map<string, tf.Tensor>();
  let offset = 0;
  try {
    for (const spec of specs) {
      const n = spec.shape.reduce((a, b) => a * b, 1);
      const q = spec.quantization;
      const bytesPer = q ? { uint8: 1, uint16: 2, float16: 2 }[q.dtype as string] : { float32: 4, int32: 4, bool: 1 }[spec.dtype as string];
      if (!bytesPer) throw new Error(`weight '${spec.name}': unsupported ${q ? `quantization ${q.dtype}` : `dtype ${spec.dtype}`}`);
      const bytes = n * bytesPer;
      if (offset + bytes > data.byteLength) throw new Error(`weight '${spec.name}' [${spec.shape.join(', ')}] runs past the end of the weight data (${data.byteLength} bytes)`);
      // A copy when unaligned: typed-array views need offsets that are multiples of their element size.
      const start = data.byteOffset + offset;
      const [buffer, base] = start % bytesPer === 0 ? [data.buffer, start] : [data.slice(offset, offset + bytes).buffer, 0];
      let values: Float32Array | Int32Array | Uint8Array;
      if (q?.dtype === 'float16') values = fromFloat16(new Uint16Array(buffer, base, n));
      else if (q) {
        const raw = q.dtype === 'uint8' ? new Uint8Array(buffer, base, n) : new Uint16Array(buffer, base, n);
        const { scale = 1, min = 0 } = q;
        const f = new Float32Array(n);
        for (let i = 0; i < n; i++) f[i] = raw[i] * scale + min;
        values = f;
      } else if (spec.dtype === 'float32') values = new Float32Array(buffer.slice(base, base + bytes));
      else if (spec.dtype === 'int32') values = new Int32Array(buffer.slice(base, base + bytes));
      else values = new Uint8Array(buffer.slice(base, base + bytes));
      out.set(spec.name, tf.tensor(values, spec.shape, spec.dtype === 'int32' ? 'int32' : spec.dtype === 'bool' ? 'bool' : 'float32'));
      offset += bytes;
    }
  } catch (e) {
    tf.dispose([...out.values()]);
    throw e;
  }
  return out;
}
