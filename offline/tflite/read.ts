import { ByteBuffer } from 'flatbuffers';

// A reader for the parts of the TFLite flatbuffer schema (tensorflow/lite/schema/schema.fbs) that
// image classifiers use. Field numbers are the schema's; a table field lives at vtable offset 4 + 2·i.

/** The builtin operators this importer knows, by schema code. */
export const BUILTIN_OPERATORS: Record<number, string> = {
  0: 'ADD',
  1: 'AVERAGE_POOL_2D',
  2: 'CONCATENATION',
  3: 'CONV_2D',
  4: 'DEPTHWISE_CONV_2D',
  6: 'DEQUANTIZE',
  9: 'FULLY_CONNECTED',
  14: 'LOGISTIC',
  17: 'MAX_POOL_2D',
  18: 'MUL',
  19: 'RELU',
  21: 'RELU6',
  22: 'RESHAPE',
  25: 'SOFTMAX',
  34: 'PAD',
  40: 'MEAN',
  43: 'SQUEEZE',
  114: 'QUANTIZE',
};

export const TENSOR_TYPES = ['FLOAT32', 'FLOAT16', 'INT32', 'UINT8', 'INT64', 'STRING', 'BOOL', 'INT16', 'COMPLEX64', 'INT8'] as const;

export interface TfliteQuantization {
  scale: Float32Array;
  zeroPoint: number[];
  /** The axis `scale` runs along when there is one scale per channel. */
  quantizedDimension: number;
}

export interface TfliteTensor {
  index: number;
  name: string;
  shape: number[];
  type: string;
  /** The constant data (weights, biases, shapes); empty for activations. */
  data: Uint8Array;
  quantization: TfliteQuantization | null;
}

export interface TfliteOperator {
  index: number;
  /** Builtin operator name, e.g. 'CONV_2D' ('CUSTOM:<name>' or 'BUILTIN_<code>' when unknown). */
  op: string;
  inputs: number[];
  outputs: number[];
  /** The options table as a reader: field i → its value, or undefined when absent. */
  options: TableReader | null;
}

export interface TfliteModel {
  version: number;
  description: string;
  tensors: TfliteTensor[];
  inputs: number[];
  outputs: number[];
  operators: TfliteOperator[];
}

/** Typed access to one flatbuffer table's fields by field number. */
export class TableReader {
  constructor(
    private readonly bb: ByteBuffer,
    readonly pos: number,
  ) {}

  private at(field: number): number {
    return this.bb.__offset(this.pos, 4 + 2 * field);
  }

  has(field: number): boolean {
    return this.at(field) !== 0;
  }

  int8(field: number, fallback = 0): number {
    return this.scalar(field, fallback, (p) => this.bb.readInt8(p));
  }

  uint8(field: number, fallback = 0): number {
    return this.scalar(field, fallback, (p) => this.bb.readUint8(p));
  }

  int32(field: number, fallback = 0): number {
    return this.scalar(field, fallback, (p) => this.bb.readInt32(p));
  }

  uint32(field: number, fallback = 0): number {
    return this.scalar(field, fallback, (p) => this.bb.readUint32(p));
  }

  float32(field: number, fallback = 0): number {
    return this.scalar(field, fallback, (p) => this.bb.readFloat32(p));
  }

  private scalar(field: number, fallback: number, read: (pos: number) => number): number {
    const o = this.at(field);
    return o ? read(this.pos + o) : fallback;
  }

  string(field: number): string {
    const o = this.at(field);
    return o ? (this.bb.__string(this.pos + o) as string) : '';
  }

  table(field: number): TableReader | null {
    const o = this.at(field);
    return o ? new TableReader(this.bb, this.bb.__indirect(this.pos + o)) : null;
  }

  tables(field: number): TableReader[] {
    const o = this.at(field);
    if (!o) return [];
    const start = this.bb.__vector(this.pos + o);
    return Array.from({ length: this.bb.__vector_len(this.pos + o) }, (_, i) => new TableReader(this.bb, this.bb.__indirect(start + 4 * i)));
  }

  int32s(field: number): number[] {
    return this.scalars(field, 4, (p) => this.bb.readInt32(p));
  }

  float32s(field: number): Float32Array {
    return Float32Array.from(this.scalars(field, 4, (p) => this.bb.readFloat32(p)));
  }

  int64s(field: number): number[] {
    return this.scalars(field, 8, (p) => Number(this.bb.readInt64(p)));
  }

  bytes(field: number): Uint8Array {
    const o = this.at(field);
    if (!o) return new Uint8Array(0);
    const start = this.bb.__vector(this.pos + o);
    return this.bb.bytes().subarray(start, start + this.bb.__vector_len(this.pos + o));
  }

  private scalars(field: number, size: number, read: (pos: number) => number): number[] {
    const o = this.at(field);
    if (!o) return [];
    const start = this.bb.__vector(this.pos + o);
    return Array.from({ length: this.bb.__vector_len(this.pos + o) }, (_, i) => read(start + size * i));
  }
}

/** Parses a TFLite flatbuffer (first subgraph), naming what it cannot read. */
export function readTflite(bytes: Uint8Array): TfliteModel {
  if (bytes.byteLength < 8 || String.fromCharCode(...bytes.subarray(4, 8)) !== 'TFL3') {
    throw new Error("not a TFLite model: the file identifier at bytes 4–8 is not 'TFL3'");
  }
  const bb = new ByteBuffer(bytes);
  const model = new TableReader(bb, bb.readInt32(bb.position()) + bb.position());
  const buffers = model.tables(4).map((b) => {
    if (b.has(1)) throw new Error('TFLite buffers stored outside the flatbuffer (offset/size) are not supported');
    return b.bytes(0);
  });
  const codes = model.tables(1).map((c) => {
    const builtin = Math.max(c.int8(0), c.int32(3));
    if (builtin === 32) return `CUSTOM:${c.string(1)}`;
    return BUILTIN_OPERATORS[builtin] ?? `BUILTIN_${builtin}`;
  });
  const subgraphs = model.tables(2);
  if (subgraphs.length === 0) throw new Error('the TFLite model has no subgraph');
  const g = subgraphs[0];
  const tensors: TfliteTensor[] = g.tables(0).map((t, index) => {
    const q = t.table(4);
    const scale = q?.float32s(2) ?? new Float32Array(0);
    return {
      index,
      name: t.string(3),
      shape: t.int32s(0),
      type: TENSOR_TYPES[t.int8(1)] ?? `TYPE_${t.int8(1)}`,
      data: buffers[t.uint32(2)] ?? new Uint8Array(0),
      quantization: q && scale.length ? { scale, zeroPoint: q.int64s(3), quantizedDimension: q.int32(6) } : null,
    };
  });
  const operators: TfliteOperator[] = g.tables(3).map((op, index) => ({
    index,
    op: codes[op.uint32(0)] ?? `OPCODE_${op.uint32(0)}`,
    inputs: op.int32s(1),
    outputs: op.int32s(2),
    options: op.table(4),
  }));
  return { version: model.uint32(0), description: model.string(3), tensors, inputs: g.int32s(1), outputs: g.int32s(2), operators };
}
