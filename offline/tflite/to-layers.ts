import * as tf from '@tensorflow/tfjs';
import type { Normalization } from '../../shared/bundle/manifest';
import { readTflite, type TfliteModel, type TfliteOperator, type TfliteTensor } from './read';

/** What the import made: a float tfjs-layers model and how to feed it. */
export interface ImportedTflite {
  model: tf.LayersModel;
  /** Pixel normalisation equivalent to the model's quantized input (real = scale·(q − zero point)). */
  normalization: Normalization | null;
  inputSize: number;
  /** Every operator's output: TFLite tensor name → layer name and output shape (for `--layer`). */
  layers: { tensor: string; layer: string; op: string; shape: (number | null)[] }[];
  /** The global-pooling output (the usual feature) and the grid it pools, when found. */
  pooled: string | null;
  grid: string | null;
}

type Sym = tf.SymbolicTensor;

const PADDING = ['same', 'valid'] as const;
const ACTIVATIONS = ['NONE', 'RELU', 'RELU_N1_TO_1', 'RELU6', 'TANH'] as const;

/**
 * Builds the float tfjs-layers equivalent of a TFLite image model: weights dequantized
 * (per tensor or per channel), activations run in float32. Fails on an operator it does not know,
 * naming the operator and the node.
 */
export function tfliteToLayers(bytes: Uint8Array): ImportedTflite {
  const m = readTflite(bytes);
  if (m.inputs.length !== 1) throw new Error(`expected one image input, the model has ${m.inputs.length}`);
  const input = m.tensors[m.inputs[0]];
  if (input.shape.length !== 4 || input.shape[3] !== 3) throw new Error(`expected an image input [1, h, w, 3], got [${input.shape.join(', ')}] (${input.name})`);
  const x = tf.input({ shape: input.shape.slice(1), name: 'input' });
  const values = new Map<number, Sym>([[input.index, x]]);
  const layers: ImportedTflite['layers'] = [];
  const used = new Set<string>(['input']);
  const weights: { layer: tf.layers.Layer; values: tf.Tensor[] }[] = [];
  let pooled: string | null = null;
  let grid: string | null = null;

  const nameFor = (t: TfliteTensor, suffix = '') => {
    const base = (t.name.split(';')[0] || `tensor_${t.index}`).replace(/[^A-Za-z0-9_.-]/g, '_') + suffix;
    let name = base;
    for (let i = 2; used.has(name); i++) name = `${base}_${i}`;
    used.add(name);
    return name;
  };
  const valueOf = (op: TfliteOperator, i: number): Sym => {
    const v = values.get(op.inputs[i]);
    if (!v) throw new Error(`${describe(m, op)}: input ${i} (${m.tensors[op.inputs[i]]?.name ?? op.inputs[i]}) is not computed by an earlier operator`);
    return v;
  };
  const constant = (op: TfliteOperator, i: number): tf.Tensor | null => (op.inputs[i] === undefined || op.inputs[i] < 0 ? null : dequantize(m.tensors[op.inputs[i]]));

  for (const op of m.operators) {
    const out = m.tensors[op.outputs[0]];
    const o = op.options;
    let y: Sym;
    let fused = 'NONE';
    switch (op.op) {
      case 'CONV_2D': {
        const w = constant(op, 1)!; // [out, kh, kw, in]
        const b = constant(op, 2);
        const [filters, kh, kw] = w.shape;
        const layer = tf.layers.conv2d({ filters, kernelSize: [kh, kw], strides: [o?.int32(2, 1) ?? 1, o?.int32(1, 1) ?? 1], padding: padding(m, op, o?.int8(0) ?? 0), dilationRate: [o?.int32(5, 1) ?? 1, o?.int32(4, 1) ?? 1], useBias: b !== null, name: nameFor(out) });
        y = layer.apply(valueOf(op, 0)) as Sym;
        weights.push({ layer, values: [tf.transpose(w, [1, 2, 3, 0]), ...(b ? [b] : [])] });
        tf.dispose(w);
        fused = ACTIVATIONS[o?.int8(3) ?? 0];
        break;
      }
      case 'DEPTHWISE_CONV_2D': {
        const w = constant(op, 1)!; // [1, kh, kw, in·multiplier]
        const b = constant(op, 2);
        const inChannels = valueOf(op, 0).shape[3]!;
        const [, kh, kw, total] = w.shape;
        const multiplier = total / inChannels;
        const layer = tf.layers.depthwiseConv2d({ kernelSize: [kh, kw], depthMultiplier: multiplier, strides: [o?.int32(2, 1) ?? 1, o?.int32(1, 1) ?? 1], padding: padding(m, op, o?.int8(0) ?? 0), dilationRate: [o?.int32(6, 1) ?? 1, o?.int32(5, 1) ?? 1], useBias: b !== null, name: nameFor(out) });
        y = layer.apply(valueOf(op, 0)) as Sym;
        weights.push({ layer, values: [tf.reshape(w, [kh, kw, inChannels, multiplier]), ...(b ? [b] : [])] });
        tf.dispose(w);
        fused = ACTIVATIONS[o?.int8(4) ?? 0];
        break;
      }
      case 'FULLY_CONNECTED': {
        const w = constant(op, 1)!; // [out, in]
        const b = constant(op, 2);
        let v = valueOf(op, 0);
        if (v.shape.length > 2) v = tf.layers.flatten({ name: nameFor(out, '_flatten') }).apply(v) as Sym;
        const layer = tf.layers.dense({ units: w.shape[0], useBias: b !== null, name: nameFor(out) });
        y = layer.apply(v) as Sym;
        weights.push({ layer, values: [tf.transpose(w), ...(b ? [b] : [])] });
        tf.dispose(w);
        fused = ACTIVATIONS[o?.int8(0) ?? 0];
        break;
      }
      case 'ADD':
      case 'MUL': {
        const merge = op.op === 'ADD' ? tf.layers.add : tf.layers.multiply;
        y = merge({ name: nameFor(out) }).apply([valueOf(op, 0), valueOf(op, 1)]) as Sym;
        fused = ACTIVATIONS[o?.int8(0) ?? 0];
        break;
      }
      case 'AVERAGE_POOL_2D':
      case 'MAX_POOL_2D': {
        const pool = op.op === 'AVERAGE_POOL_2D' ? tf.layers.averagePooling2d : tf.layers.maxPooling2d;
        const v = valueOf(op, 0);
        y = pool({ poolSize: [o?.int32(4, 1) ?? 1, o?.int32(3, 1) ?? 1], strides: [o?.int32(2, 1) ?? 1, o?.int32(1, 1) ?? 1], padding: padding(m, op, o?.int8(0) ?? 0), name: nameFor(out) }).apply(v) as Sym;
        if (op.op === 'AVERAGE_POOL_2D' && y.shape[1] === 1 && y.shape[2] === 1) {
          pooled = (y.sourceLayer as tf.layers.Layer).name;
          grid = (v.sourceLayer as tf.layers.Layer).name;
        }
        fused = ACTIVATIONS[o?.int8(5) ?? 0];
        break;
      }
      case 'MEAN': {
        const axes = m.tensors[op.inputs[1]] ? Array.from(new Int32Array(copy(m.tensors[op.inputs[1]].data).buffer)) : [];
        const v = valueOf(op, 0);
        if (axes.join() !== '1,2') throw new Error(`${describe(m, op)}: MEAN over axes [${axes}] is not supported (only the spatial mean, axes [1, 2])`);
        y = tf.layers.globalAveragePooling2d({ name: nameFor(out) }).apply(v) as Sym;
        if (o?.uint8(0)) y = tf.layers.reshape({ targetShape: [1, 1, y.shape[1]!], name: nameFor(out, '_keepdims') }).apply(y) as Sym;
        pooled = (y.sourceLayer as tf.layers.Layer).name;
        grid = (v.sourceLayer as tf.layers.Layer).name;
        break;
      }
      case 'RESHAPE':
      case 'SQUEEZE': {
        const v = valueOf(op, 0);
        const target = op.op === 'SQUEEZE' ? squeezed(v.shape, o?.int32s(0) ?? []) : reshaped(m, op, v.shape);
        y = tf.layers.reshape({ targetShape: target, name: nameFor(out) }).apply(v) as Sym;
        break;
      }
      case 'SOFTMAX':
        y = tf.layers.softmax({ name: nameFor(out) }).apply(valueOf(op, 0)) as Sym;
        break;
      case 'RELU':
      case 'RELU6':
        y = tf.layers.reLU({ maxValue: op.op === 'RELU6' ? 6 : undefined, name: nameFor(out) }).apply(valueOf(op, 0)) as Sym;
        break;
      case 'LOGISTIC':
        y = tf.layers.activation({ activation: 'sigmoid', name: nameFor(out) }).apply(valueOf(op, 0)) as Sym;
        break;
      case 'CONCATENATION': {
        const inputs = op.inputs.map((_, i) => valueOf(op, i));
        const axis = o?.int32(0) ?? -1;
        y = tf.layers.concatenate({ axis: axis < 0 ? axis : axis, name: nameFor(out) }).apply(inputs) as Sym;
        fused = ACTIVATIONS[o?.int8(1) ?? 0];
        break;
      }
      case 'QUANTIZE':
      case 'DEQUANTIZE':
        // In float these are the identity.
        values.set(out.index, valueOf(op, 0));
        continue;
      default:
        throw new Error(`${describe(m, op)}: operator ${op.op} is not supported (supported: CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, ADD, MUL, AVERAGE_POOL_2D, MAX_POOL_2D, MEAN, RESHAPE, SQUEEZE, SOFTMAX, RELU, RELU6, LOGISTIC, CONCATENATION, QUANTIZE, DEQUANTIZE)`);
    }
    if (fused === 'RELU' || fused === 'RELU6') y = tf.layers.reLU({ maxValue: fused === 'RELU6' ? 6 : undefined, name: nameFor(out, `_${fused.toLowerCase()}`) }).apply(y) as Sym;
    else if (fused === 'TANH') y = tf.layers.activation({ activation: 'tanh', name: nameFor(out, '_tanh') }).apply(y) as Sym;
    else if (fused !== 'NONE') throw new Error(`${describe(m, op)}: fused activation ${fused} is not supported`);
    values.set(out.index, y);
    layers.push({ tensor: out.name, layer: (y.sourceLayer as tf.layers.Layer).name, op: op.op, shape: y.shape });
  }

  const outputs = m.outputs.map((i) => {
    const v = values.get(i);
    if (!v) throw new Error(`model output ${m.tensors[i].name} is not computed by any operator`);
    return v;
  });
  const model = tf.model({ inputs: x, outputs: outputs.length === 1 ? outputs[0] : outputs, name: 'tflite_import' });
  for (const { layer, values: v } of weights) {
    layer.setWeights(v);
    tf.dispose(v);
  }
  const q = input.quantization;
  const normalization: Normalization | null = q
    ? { channelOrder: 'rgb', mean: [q.zeroPoint[0], q.zeroPoint[0], q.zeroPoint[0]], std: [1 / q.scale[0], 1 / q.scale[0], 1 / q.scale[0]] }
    : null;
  return { model, normalization, inputSize: input.shape[1], layers, pooled, grid };
}

function describe(m: TfliteModel, op: TfliteOperator): string {
  return `node ${op.index} (${op.op} → ${m.tensors[op.outputs[0]]?.name.split(';')[0] ?? '?'})`;
}

function padding(m: TfliteModel, op: TfliteOperator, code: number): 'same' | 'valid' {
  const p = PADDING[code];
  if (!p) throw new Error(`${describe(m, op)}: unknown padding ${code}`);
  return p;
}

/** Shape without the squeezed axes (all size-1 axes when none are named), batch excluded. */
function squeezed(shape: (number | null)[], dims: number[]): number[] {
  const rank = shape.length;
  const drop = new Set(dims.length ? dims.map((d) => (d < 0 ? d + rank : d)) : shape.map((s, i) => (i > 0 && s === 1 ? i : -1)));
  return shape.slice(1).filter((_, i) => !drop.has(i + 1)) as number[];
}

/** RESHAPE's target without the batch axis, from its options or its shape input. */
function reshaped(m: TfliteModel, op: TfliteOperator, inShape: (number | null)[]): number[] {
  let target = op.options?.int32s(0) ?? [];
  if (!target.length && op.inputs[1] !== undefined && op.inputs[1] >= 0) target = Array.from(new Int32Array(copy(m.tensors[op.inputs[1]].data).buffer));
  if (!target.length) throw new Error(`${describe(m, op)}: RESHAPE without a target shape`);
  const size = (inShape.slice(1) as number[]).reduce((a, b) => a * b, 1);
  const rest = target.slice(1);
  const known = rest.filter((d) => d > 0).reduce((a, b) => a * b, 1);
  return rest.map((d) => (d < 0 ? size / known : d));
}

/** Aligned copy of a buffer slice (flatbuffer data need not be 4-byte aligned). */
function copy(b: Uint8Array): Uint8Array {
  return new Uint8Array(b);
}

/** A constant tensor as float32: real = scale · (q − zero point), per tensor or per channel. */
export function dequantize(t: TfliteTensor): tf.Tensor {
  const n = t.shape.reduce((a, b) => a * b, 1);
  const raw = copy(t.data);
  let q: ArrayLike<number>;
  switch (t.type) {
    case 'FLOAT32':
      return tf.tensor(new Float32Array(raw.buffer, 0, n), t.shape);
    case 'UINT8':
      q = raw;
      break;
    case 'INT8':
      q = new Int8Array(raw.buffer, 0, n);
      break;
    case 'INT32':
      q = new Int32Array(raw.buffer, 0, n);
      break;
    case 'INT16':
      q = new Int16Array(raw.buffer, 0, n);
      break;
    default:
      throw new Error(`tensor ${t.name}: constant of type ${t.type} is not supported`);
  }
  if (q.length !== n) throw new Error(`tensor ${t.name}: ${q.length} values for shape [${t.shape}]`);
  const out = new Float32Array(n);
  const qp = t.quantization;
  if (!qp) {
    for (let i = 0; i < n; i++) out[i] = q[i];
    return tf.tensor(out, t.shape);
  }
  // Per channel: the scale index is the coordinate along quantizedDimension.
  const axis = qp.scale.length > 1 ? qp.quantizedDimension : -1;
  const inner = axis < 0 ? 1 : t.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const channels = axis < 0 ? 1 : t.shape[axis];
  if (axis >= 0 && channels !== qp.scale.length) throw new Error(`tensor ${t.name}: ${qp.scale.length} scales for ${channels} channels on axis ${axis}`);
  for (let i = 0; i < n; i++) {
    const c = axis < 0 ? 0 : Math.floor(i / inner) % channels;
    out[i] = qp.scale[c] * (q[i] - (qp.zeroPoint[c] ?? qp.zeroPoint[0] ?? 0));
  }
  return tf.tensor(out, t.shape);
}
