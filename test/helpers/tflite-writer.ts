import { Builder } from 'flatbuffers';

// Writes small TFLite flatbuffers for tests, field numbers as in tensorflow/lite/schema/schema.fbs.

export interface WTensor {
  name: string;
  shape: number[];
  /** Schema TensorType: 0 FLOAT32, 2 INT32, 3 UINT8, 9 INT8. */
  type: number;
  data?: Uint8Array;
  quantization?: { scale: number[]; zeroPoint: number[]; quantizedDimension?: number };
}

export interface WOperator {
  /** Builtin operator code (3 CONV_2D, 4 DEPTHWISE_CONV_2D, 0 ADD, 1 AVERAGE_POOL_2D, 22 RESHAPE, 43 SQUEEZE, 25 SOFTMAX, 9 FULLY_CONNECTED, …). */
  code: number;
  inputs: number[];
  outputs: number[];
  /** Options table fields: field number → [kind, value]. */
  options?: Record<number, ['int8' | 'int32', number] | ['int32s', number[]]>;
}

export function writeTflite(tensors: WTensor[], operators: WOperator[], inputs: number[], outputs: number[]): Uint8Array {
  const b = new Builder(1024);
  const int32Vector = (xs: number[]) => {
    b.startVector(4, xs.length, 4);
    for (let i = xs.length - 1; i >= 0; i--) b.addInt32(xs[i]);
    return b.endVector();
  };
  const offsetVector = (xs: number[]) => {
    b.startVector(4, xs.length, 4);
    for (let i = xs.length - 1; i >= 0; i--) b.addOffset(xs[i]);
    return b.endVector();
  };
  // Buffer 0 is the empty buffer, by convention.
  const bufferData = [new Uint8Array(0), ...tensors.map((t) => t.data ?? new Uint8Array(0))];
  const buffers = bufferData.map((d) => {
    const data = d.length ? (b.startVector(1, d.length, 16), [...d].reverse().forEach((x) => b.addInt8(x)), b.endVector()) : 0;
    b.startObject(3);
    if (data) b.addFieldOffset(0, data, 0);
    return b.endObject();
  });
  const tensorOffsets = tensors.map((t, i) => {
    const name = b.createString(t.name);
    const shape = int32Vector(t.shape);
    let quant = 0;
    if (t.quantization) {
      const scale = (b.startVector(4, t.quantization.scale.length, 4), [...t.quantization.scale].reverse().forEach((x) => b.addFloat32(x)), b.endVector());
      const zp = (b.startVector(8, t.quantization.zeroPoint.length, 8), [...t.quantization.zeroPoint].reverse().forEach((x) => b.addInt64(BigInt(x))), b.endVector());
      b.startObject(7);
      b.addFieldOffset(2, scale, 0);
      b.addFieldOffset(3, zp, 0);
      b.addFieldInt32(6, t.quantization.quantizedDimension ?? 0, 0);
      quant = b.endObject();
    }
    b.startObject(8);
    b.addFieldOffset(0, shape, 0);
    b.addFieldInt8(1, t.type, -1);
    b.addFieldInt32(2, t.data?.length ? i + 1 : 0, -1);
    b.addFieldOffset(3, name, 0);
    if (quant) b.addFieldOffset(4, quant, 0);
    return b.endObject();
  });
  const codes = [...new Set(operators.map((o) => o.code))];
  const codeOffsets = codes.map((c) => {
    b.startObject(4);
    b.addFieldInt8(0, Math.min(c, 127), -1);
    b.addFieldInt32(2, 1, -1);
    b.addFieldInt32(3, c, -1);
    return b.endObject();
  });
  const opOffsets = operators.map((o) => {
    const ins = int32Vector(o.inputs);
    const outs = int32Vector(o.outputs);
    let options = 0;
    if (o.options) {
      const vectors = new Map<number, number>();
      for (const [f, [kind, v]] of Object.entries(o.options)) if (kind === 'int32s') vectors.set(Number(f), int32Vector(v as number[]));
      b.startObject(8);
      for (const [f, [kind, v]] of Object.entries(o.options)) {
        if (kind === 'int8') b.addFieldInt8(Number(f), v as number, -1);
        else if (kind === 'int32') b.addFieldInt32(Number(f), v as number, -1);
        else b.addFieldOffset(Number(f), vectors.get(Number(f))!, 0);
      }
      options = b.endObject();
    }
    b.startObject(5);
    b.addFieldInt32(0, codes.indexOf(o.code), -1);
    b.addFieldOffset(1, ins, 0);
    b.addFieldOffset(2, outs, 0);
    b.addFieldInt8(3, 1, 0); // the union type; the reader takes the table as the operator's options
    if (options) b.addFieldOffset(4, options, 0);
    return b.endObject();
  });
  const subgraph = (() => {
    const t = offsetVector(tensorOffsets);
    const i = int32Vector(inputs);
    const o = int32Vector(outputs);
    const ops = offsetVector(opOffsets);
    const name = b.createString('main');
    b.startObject(5);
    b.addFieldOffset(0, t, 0);
    b.addFieldOffset(1, i, 0);
    b.addFieldOffset(2, o, 0);
    b.addFieldOffset(3, ops, 0);
    b.addFieldOffset(4, name, 0);
    return b.endObject();
  })();
  const codesVec = offsetVector(codeOffsets);
  const subgraphs = offsetVector([subgraph]);
  const buffersVec = offsetVector(buffers);
  const description = b.createString('written by a test');
  b.startObject(5);
  b.addFieldInt32(0, 3, -1);
  b.addFieldOffset(1, codesVec, 0);
  b.addFieldOffset(2, subgraphs, 0);
  b.addFieldOffset(3, description, 0);
  b.addFieldOffset(4, buffersVec, 0);
  b.finish(b.endObject(), 'TFL3');
  return b.asUint8Array();
}

/** uint8 quantization of float values with a per-tensor scale and zero point. */
export function quantizeUint8(values: Float32Array): { data: Uint8Array; scale: number; zeroPoint: number } {
  const lo = Math.min(0, ...values);
  const hi = Math.max(0, ...values);
  const scale = (hi - lo) / 255 || 1;
  const zeroPoint = Math.round(-lo / scale);
  return { data: Uint8Array.from(values, (v) => Math.max(0, Math.min(255, Math.round(v / scale) + zeroPoint))), scale, zeroPoint };
}

/** int8 per-channel (symmetric) quantization along axis 0 of [channels, …]. */
export function quantizeInt8PerChannel(values: Float32Array, channels: number): { data: Uint8Array; scales: number[] } {
  const per = values.length / channels;
  const scales: number[] = [];
  const q = new Int8Array(values.length);
  for (let c = 0; c < channels; c++) {
    const slice = values.subarray(c * per, (c + 1) * per);
    const s = Math.max(...slice.map(Math.abs)) / 127 || 1;
    scales.push(s);
    for (let i = 0; i < per; i++) q[c * per + i] = Math.round(slice[i] / s);
  }
  return { data: new Uint8Array(q.buffer), scales };
}

export const int32Bytes = (xs: number[]) => new Uint8Array(Int32Array.from(xs).buffer);
export const float32Bytes = (xs: Float32Array) => new Uint8Array(xs.buffer.slice(xs.byteOffset, xs.byteOffset + xs.byteLength));
