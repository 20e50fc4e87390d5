import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { VGG16_BLOCKS } from '../../shared/models/vgg16';
import { readKerasWeightFile, type KerasWeightFile, type WeightArray } from './h5-weights';

/** Keras VGG16's convolution layer names, `block1_conv1` … `block5_conv3`. */
export const VGG16_CONV_LAYERS: readonly string[] = VGG16_BLOCKS.flatMap(([, convs], b) => Array.from({ length: convs }, (_, c) => `block${b + 1}_conv${c + 1}`));
/** The classifier on top, present in the full weight file and absent from `_notop`. */
export const VGG16_TOP_LAYERS = ['fc1', 'fc2', 'predictions'] as const;

export type KerasVgg16Output = 'pooled' | 'fc2' | 'predictions';
/** The layer whose output each `output` mode returns (what `--layer` / `--teacher-layer` name). */
export const KERAS_VGG16_OUTPUT_LAYER: Record<KerasVgg16Output, string> = { pooled: 'global_average_pooling', fc2: 'fc2', predictions: 'predictions' };

export interface LayerWeights {
  kernel: WeightArray;
  bias: WeightArray;
}

export interface KerasVgg16Weights {
  path: string;
  /** The 13 convolutions and whichever of fc1, fc2, predictions the file has, by Keras layer name. */
  layers: Map<string, LayerWeights>;
}

const fmt = (shape: number[]) => `[${shape.join(', ')}]`;

/**
 * Reads a Keras VGG16 HDF5 weight file (full or `_notop`, tf dim ordering) and checks it is VGG16:
 * all 13 3×3 convolutions, each taking the previous one's channels, and fc layers that chain.
 * Widths come from the file, so a narrower net of the same layout reads too.
 */
export async function readKerasVgg16(path: string): Promise<KerasVgg16Weights> {
  const file = await readKerasWeightFile(path);
  const layers = new Map<string, LayerWeights>();
  let channels = 3;
  for (const name of VGG16_CONV_LAYERS) {
    const w = layerWeights(file, name);
    const k = w.kernel.shape;
    if (k.length !== 4 || k[0] !== 3 || k[1] !== 3 || k[2] !== channels) {
      const theano = k.length === 4 && k[2] === 3 && k[3] === 3 ? ' (channels-first kernels? use the tf_dim_ordering_tf_kernels file)' : '';
      throw new Error(`${path}: layer ${name} has kernel shape ${fmt(k)}; expected [3, 3, ${channels}, filters]${theano}`);
    }
    checkBias(path, name, w, k[3]);
    channels = k[3];
    layers.set(name, w);
  }
  let units: number | undefined;
  for (const [i, name] of VGG16_TOP_LAYERS.entries()) {
    if (!file.weights.has(name)) continue;
    if (i > 0 && !layers.has(VGG16_TOP_LAYERS[i - 1])) throw new Error(`${path}: layer ${name} is present but ${VGG16_TOP_LAYERS[i - 1]} is not`);
    const w = layerWeights(file, name);
    const k = w.kernel.shape;
    // fc1's input size depends on the input image size; it is checked when the model is built.
    if (k.length !== 2 || (units !== undefined && k[0] !== units)) {
      throw new Error(`${path}: layer ${name} has kernel shape ${fmt(k)}; expected [${units ?? 'inputs'}, units]`);
    }
    checkBias(path, name, w, k[1]);
    units = k[1];
    layers.set(name, w);
  }
  return { path, layers };
}

function layerWeights(file: KerasWeightFile, name: string): LayerWeights {
  const arrays = file.weights.get(name);
  if (!arrays) {
    const why = file.layerNames.includes(name) ? 'has no weights' : 'is missing';
    throw new Error(`${file.path}: layer ${name} ${why} (layers with weights: ${[...file.weights.keys()].join(', ') || 'none'})`);
  }
  const kernel = arrays.filter((a) => a.shape.length > 1);
  const bias = arrays.filter((a) => a.shape.length === 1);
  if (arrays.length !== 2 || kernel.length !== 1 || bias.length !== 1) {
    throw new Error(`${file.path}: layer ${name} should hold a kernel and a bias; it holds ${arrays.map((a) => fmt(a.shape)).join(', ')}`);
  }
  return { kernel: kernel[0], bias: bias[0] };
}

function checkBias(path: string, name: string, w: LayerWeights, units: number): void {
  if (w.bias.shape[0] !== units) throw new Error(`${path}: layer ${name} has bias shape ${fmt(w.bias.shape)}; expected [${units}]`);
}

export interface KerasVgg16ModelOptions {
  /** Square input side. Default: 224 for 'pooled'; for the fc outputs, the size fc1 was trained for. */
  inputSize?: number;
  /** 'pooled': global average pooling after block5 (any input size, notop file fine); 'fc2' / 'predictions' need the full file. */
  output?: KerasVgg16Output;
}

const POOLS = VGG16_BLOCKS.length;
const pooledSide = (inputSize: number) => {
  let s = inputSize;
  for (let i = 0; i < POOLS; i++) s = Math.floor(s / 2);
  return s;
};

/**
 * VGG16 as Keras lays it out (same layer names: `block{b}_conv{c}` with ReLU and same padding,
 * `block{b}_pool`, then `flatten`, `fc1`, `fc2`, `predictions`), holding the file's weights; the
 * 'pooled' output replaces the classifier with `global_average_pooling`. Input is a caffe-normalised
 * BGR image [batch, inputSize, inputSize, 3].
 */
export function kerasVgg16Model(weights: KerasVgg16Weights, opts: KerasVgg16ModelOptions = {}): tfl.LayersModel {
  const output = opts.output ?? 'pooled';
  const top = output === 'pooled' ? [] : VGG16_TOP_LAYERS.slice(0, output === 'fc2' ? 2 : 3);
  const missing = top.filter((n) => !weights.layers.has(n));
  if (missing.length) {
    throw new Error(`${weights.path} has no ${missing.join(', ')} (a _notop file?): output '${output}' needs the full VGG16 weight file; output 'pooled' works without`);
  }
  const channels = weights.layers.get(VGG16_CONV_LAYERS[VGG16_CONV_LAYERS.length - 1])!.kernel.shape[3];
  const inputSize = opts.inputSize ?? (top.length ? fcInputSize(weights, channels) : 224);
  if (!Number.isInteger(inputSize) || inputSize < 2 ** POOLS) throw new Error(`VGG16 input size must be an integer ≥ ${2 ** POOLS}, got ${inputSize}`);
  if (top.length) {
    const side = pooledSide(inputSize);
    const fcIn = weights.layers.get('fc1')!.kernel.shape[0];
    if (side * side * channels !== fcIn) {
      throw new Error(`fc1 takes ${fcIn} inputs; input size ${inputSize} gives ${side}×${side}×${channels} = ${side * side * channels}: use input size ${fcInputSize(weights, channels)}`);
    }
  }

  const input = tfl.input({ shape: [inputSize, inputSize, 3], name: 'image' });
  let x: tfl.SymbolicTensor = input;
  let conv = 0;
  VGG16_BLOCKS.forEach(([, convs], b) => {
    for (let c = 0; c < convs; c++) {
      const name = VGG16_CONV_LAYERS[conv++];
      const filters = weights.layers.get(name)!.kernel.shape[3];
      // Zero initialisers: the file's weights replace them, and random ones for 138 M parameters cost seconds.
      x = tfl.layers.conv2d({ filters, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: 'zeros', name }).apply(x) as tfl.SymbolicTensor;
    }
    x = tfl.layers.maxPooling2d({ poolSize: 2, strides: 2, name: `block${b + 1}_pool` }).apply(x) as tfl.SymbolicTensor;
  });
  if (!top.length) {
    x = tfl.layers.globalAveragePooling2d({ name: KERAS_VGG16_OUTPUT_LAYER.pooled }).apply(x) as tfl.SymbolicTensor;
  } else {
    x = tfl.layers.flatten({ name: 'flatten' }).apply(x) as tfl.SymbolicTensor;
    for (const name of top) {
      const units = weights.layers.get(name)!.kernel.shape[1];
      const activation = name === 'predictions' ? 'softmax' : 'relu';
      x = tfl.layers.dense({ units, activation, kernelInitializer: 'zeros', name }).apply(x) as tfl.SymbolicTensor;
    }
  }
  const model = tfl.model({ inputs: input, outputs: x, name: 'vgg16' });
  for (const name of [...VGG16_CONV_LAYERS, ...top]) {
    const { kernel, bias } = weights.layers.get(name)!;
    tf.tidy(() => model.getLayer(name).setWeights([tf.tensor(kernel.values, kernel.shape), tf.tensor(bias.values, bias.shape)]));
  }
  return model;
}

/** The input size whose block5 output flattens to fc1's input (224 for real VGG16). */
function fcInputSize(weights: KerasVgg16Weights, channels: number): number {
  const fcIn = weights.layers.get('fc1')!.kernel.shape[0];
  const side = Math.round(Math.sqrt(fcIn / channels));
  if (side < 1 || side * side * channels !== fcIn) throw new Error(`${weights.path}: fc1 takes ${fcIn} inputs, which is not side × side × ${channels} (block5's channels)`);
  return side * 2 ** POOLS;
}
