import * as tf from '@tensorflow/tfjs-core';

/**
 * An image encoder run with tfjs-core ops straight from its weights: no tfjs-layers model is
 * built, which is most of a cold isolate's model-build time (the compact VGG16 is a plain chain).
 */
export interface ChainEncoder {
  /** [height, width, channels] of one input image. */
  inputShape: number[];
  /** Shape of one image's output (the pooled feature: [n]). */
  outputShape: number[];
  /** Shape of one image's output of a named layer (without the batch axis); undefined if no such layer. */
  layerShape(name: string): number[] | undefined;
  /** The last layer's output and, when asked, the named layer's (the attention grid). Call inside tf.tidy. */
  run(x: tf.Tensor4D, gridLayer?: string): tf.Tensor[];
}

type Json = Record<string, unknown>;
type Activation = 'linear' | 'relu' | 'relu6' | 'sigmoid';
interface Step {
  name: string;
  shape: number[];
  run: (x: tf.Tensor) => tf.Tensor;
}

const ACTIVATIONS = new Set<string>(['linear', 'relu', 'relu6', 'sigmoid']);

/**
 * The encoder of a tfjs-layers topology and its named weights, when the topology is a chain of
 * the layers the compact VGG16 exports (InputLayer, Conv2D, MaxPooling2D, GlobalAveragePooling2D,
 * Dense); null otherwise, so the caller falls back to tfjs-layers (e.g. an imported TFLite
 * classifier with residual adds).
 */
export function chainEncoder(topology: unknown, weights: ReadonlyMap<string, tf.Tensor>): ChainEncoder | null {
  const layers = chainLayers(topology);
  if (!layers) return null;
  const first = layers[0];
  const inputShape = first?.class_name === 'InputLayer' ? ((first.config as Json).batch_input_shape as (number | null)[] | undefined)?.slice(1) : undefined;
  if (!inputShape || inputShape.length !== 3 || inputShape.some((d) => typeof d !== 'number')) return null;
  const steps: Step[] = [];
  let shape = inputShape as number[];
  for (const layer of layers.slice(1)) {
    const step = stepOf(layer, shape, weights);
    if (!step) return null;
    steps.push(step);
    shape = step.shape;
  }
  const shapes = new Map(steps.map((s) => [s.name, s.shape]));
  return {
    inputShape: inputShape as number[],
    outputShape: shape,
    layerShape: (name) => (name === first.name ? (inputShape as number[]) : shapes.get(name)),
    run(x, gridLayer) {
      let y: tf.Tensor = x;
      let grid: tf.Tensor | undefined = gridLayer === first.name ? x : undefined;
      for (const s of steps) {
        y = s.run(y);
        if (s.name === gridLayer) grid = y;
      }
      return grid ? [y, grid] : [y];
    },
  };
}

/** The layers in order when each takes the previous one's output (a functional chain); else null. */
function chainLayers(topology: unknown): (Json & { name: string; class_name: string })[] | null {
  const t = topology as Json | null;
  const model = (t?.model_config as Json | undefined) ?? t;
  const config = model?.config as Json | undefined;
  const layers = config?.layers as (Json & { name: string; class_name: string })[] | undefined;
  if (!Array.isArray(layers) || !layers.length || model?.class_name === 'Sequential') return null;
  for (let i = 1; i < layers.length; i++) {
    const inbound = layers[i].inbound_nodes as unknown[][][] | undefined;
    if (!Array.isArray(inbound) || inbound.length !== 1 || inbound[0].length !== 1 || inbound[0][0][0] !== layers[i - 1].name) return null;
  }
  const outputs = config?.output_layers as unknown[][] | undefined;
  if (!outputs || outputs.length !== 1 || outputs[0][0] !== layers[layers.length - 1].name) return null;
  return layers;
}

const pair = (v: unknown): [number, number] | null => {
  const a = Array.isArray(v) ? v : [v, v];
  return a.length === 2 && a.every((n) => Number.isInteger(n) && n > 0) ? (a as [number, number]) : null;
};

/** Output size along one axis, as tfjs/Keras compute it. */
const outSize = (n: number, k: number, s: number, padding: 'same' | 'valid') => (padding === 'same' ? Math.ceil(n / s) : Math.floor((n - k) / s) + 1);

function stepOf(layer: Json & { name: string; class_name: string }, [h, w, c]: number[], weights: ReadonlyMap<string, tf.Tensor>): Step | null {
  const cfg = layer.config as Json;
  const name = layer.name;
  const channelsLast = cfg.data_format === undefined || cfg.data_format === 'channels_last';
  const padding = cfg.padding === 'same' || cfg.padding === 'valid' ? cfg.padding : null;
  const activation = (cfg.activation ?? 'linear') as string;
  const bias = cfg.use_bias === false ? undefined : weights.get(`${name}/bias`);
  switch (layer.class_name) {
    case 'Conv2D': {
      const kernel = weights.get(`${name}/kernel`);
      const k = pair(cfg.kernel_size);
      const s = pair(cfg.strides ?? 1);
      const dilation = pair(cfg.dilation_rate ?? 1);
      if (!kernel || !k || !s || !padding || !channelsLast || !ACTIVATIONS.has(activation) || dilation?.join() !== '1,1') return null;
      if (kernel.shape.join() !== [k[0], k[1], c, cfg.filters].join() || (cfg.use_bias !== false && bias?.shape.join() !== String(cfg.filters))) return null;
      return {
        name,
        shape: [outSize(h, k[0], s[0], padding), outSize(w, k[1], s[1], padding), cfg.filters as number],
        run: (x) => tf.fused.conv2d({ x: x as tf.Tensor4D, filter: kernel as tf.Tensor4D, strides: s, pad: padding, bias, activation: activation as Activation }),
      };
    }
    case 'MaxPooling2D': {
      const p = pair(cfg.pool_size ?? 2);
      const s = pair(cfg.strides ?? cfg.pool_size ?? 2);
      if (!p || !s || !padding || !channelsLast) return null;
      return { name, shape: [outSize(h, p[0], s[0], padding), outSize(w, p[1], s[1], padding), c], run: (x) => tf.maxPool(x as tf.Tensor4D, p, s, padding) };
    }
    case 'GlobalAveragePooling2D':
      if (!channelsLast || cfg.keepdims === true || w === undefined) return null;
      return { name, shape: [c], run: (x) => tf.mean(x, [1, 2]) };
    case 'Dense': {
      const kernel = weights.get(`${name}/kernel`);
      // After global pooling the shape is [features]: h holds it.
      if (w !== undefined || !kernel || !ACTIVATIONS.has(activation) || kernel.shape.join() !== [h, cfg.units].join()) return null;
      if (cfg.use_bias !== false && bias?.shape.join() !== String(cfg.units)) return null;
      return { name, shape: [cfg.units as number], run: (x) => tf.fused.matMul({ a: x as tf.Tensor2D, b: kernel as tf.Tensor2D, bias, activation: activation as Activation }) };
    }
    default:
      return null;
  }
}
