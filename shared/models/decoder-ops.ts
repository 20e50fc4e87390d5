import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { DECODER_LAYER_NAMES, gridCells, type AttentionConfig } from './decoder';

/** The decoder's weights as plain tensors (tf.Variables while training). */
export interface DecoderWeights {
  initH: { kernel: tf.Tensor2D; bias: tf.Tensor1D };
  initC: { kernel: tf.Tensor2D; bias: tf.Tensor1D };
  imageProj: { kernel: tf.Tensor2D; bias: tf.Tensor1D };
  merge: { kernel: tf.Tensor2D; bias: tf.Tensor1D };
  embedding: tf.Tensor2D;
  lstm: { kernel: tf.Tensor2D; recurrentKernel: tf.Tensor2D; bias: tf.Tensor1D };
  logits: { kernel: tf.Tensor2D; bias: tf.Tensor1D };
  /** Present when the decoder attends over a grid; then each feature row is [pooled | grid]. */
  attention?: AttentionWeights;
}

export interface AttentionWeights {
  config: AttentionConfig;
  /** Pooled feature size: the grid starts at this column of a feature row. */
  pooledSize: number;
  grid: { kernel: tf.Tensor2D; bias: tf.Tensor1D };
  query: tf.Tensor2D;
  gate: { kernel: tf.Tensor2D; bias: tf.Tensor1D };
  out: tf.Tensor2D;
}

/** Per-caption decoding state: the LSTM's h and c, the image's projection added at each step, and the projected grid [N, cells, size] with attention. */
// A type, not an interface: tf.tidy can then return it (TensorContainer needs an index signature).
export type LstmState = {
  h: tf.Tensor2D;
  c: tf.Tensor2D;
  img: tf.Tensor2D;
  /** The projected grid [N, cells, size], or [1, cells, size] shared by every row (beam search over one photo). */
  grid?: tf.Tensor3D;
  /** What queries are compared with: the grid's cells at unit length (cosine scores), else the grid itself. */
  keys?: tf.Tensor3D;
};

/** Columns of one feature row: the pooled feature, plus the grid with attention. */
export function featureRowSize(w: DecoderWeights): number {
  const a = w.attention;
  return a ? a.pooledSize + gridCells(a.config) * a.config.channels : w.initH.kernel.shape[0];
}

/** The live weights of a decoder built by `buildDecoder` (variables, not copies). */
export function decoderWeights(model: tfl.LayersModel): DecoderWeights {
  const gridInput = model.inputs.find((i) => i.name.startsWith('grid'));
  const [cells] = (gridInput?.shape.slice(1) ?? []) as number[];
  const scale = model.layers.some((l) => l.name === DECODER_LAYER_NAMES.attScale) ? (model.getLayer(DECODER_LAYER_NAMES.attScale).getConfig().scale as number) : undefined;
  return assembleDecoderWeights((name) => model.getLayer(name).weights.map((w) => w.read()), gridInput ? { cells, temperature: scale } : null);
}

/** Each decoder layer's weights, in tfjs-layers' order, as `name/kernel`… in a model file. */
const WEIGHT_NAMES: Record<string, string[]> = {
  [DECODER_LAYER_NAMES.embedding]: ['embeddings'],
  [DECODER_LAYER_NAMES.lstm]: ['kernel', 'recurrent_kernel', 'bias'],
  [DECODER_LAYER_NAMES.attQuery]: ['kernel'],
  [DECODER_LAYER_NAMES.attOut]: ['kernel'],
};

/**
 * The decoder's weights from a model file's named tensors (`decodeWeightData`) and its topology,
 * without building a tfjs-layers model. Throws naming a missing weight.
 */
export function decoderWeightsFromFile(topology: unknown, weights: ReadonlyMap<string, tf.Tensor>): DecoderWeights {
  const layers = (((topology as { model_config?: unknown })?.model_config ?? topology) as { config?: { layers?: { name: string; class_name: string; config: Record<string, unknown> }[] } }).config?.layers ?? [];
  const byName = new Map(layers.map((l) => [l.name, l]));
  const gridShape = byName.get(DECODER_LAYER_NAMES.gridInput)?.config.batch_input_shape as number[] | undefined;
  const scale = byName.get(DECODER_LAYER_NAMES.attScale)?.config.scale as number | undefined;
  const vars = (layer: string) =>
    (WEIGHT_NAMES[layer] ?? ['kernel', 'bias']).map((w) => {
      const t = weights.get(`${layer}/${w}`);
      if (!t) throw new Error(`the decoder has no weight '${layer}/${w}'`);
      return t;
    });
  return assembleDecoderWeights(vars, gridShape ? { cells: gridShape[1], temperature: scale } : null);
}

/**
 * What does not fit among a decoder's weight shapes (empty when all do): a model file is read
 * without tfjs-layers checking it, so a malformed one is caught here, not mid-caption.
 */
export function decoderShapeProblems(w: DecoderWeights): string[] {
  const [V, E] = w.embedding.shape;
  const U = w.lstm.recurrentKernel.shape[0];
  const F = w.initH.kernel.shape[0];
  const M = w.merge.kernel.shape[1];
  const expect: [string, tf.Tensor, number[]][] = [
    ['lstm kernel', w.lstm.kernel, [E, 4 * U]],
    ['lstm recurrent kernel', w.lstm.recurrentKernel, [U, 4 * U]],
    ['lstm bias', w.lstm.bias, [4 * U]],
    ['init_h kernel', w.initH.kernel, [F, U]],
    ['init_h bias', w.initH.bias, [U]],
    ['init_c kernel', w.initC.kernel, [F, U]],
    ['init_c bias', w.initC.bias, [U]],
    ['image_proj kernel', w.imageProj.kernel, [F, U]],
    ['image_proj bias', w.imageProj.bias, [U]],
    ['merge_dense kernel', w.merge.kernel, [U, M]],
    ['merge_dense bias', w.merge.bias, [M]],
    ['logits kernel', w.logits.kernel, [M, V]],
    ['logits bias', w.logits.bias, [V]],
  ];
  const a = w.attention;
  if (a) {
    const S = a.config.size;
    expect.push(['att_grid bias', a.grid.bias, [S]], ['att_query kernel', a.query, [U, S]], ['att_gate kernel', a.gate.kernel, [U, S]], ['att_gate bias', a.gate.bias, [S]], ['att_out kernel', a.out, [S, U]]);
  }
  return expect.filter(([, t, shape]) => t.shape.join() !== shape.join()).map(([what, t, shape]) => `decoder ${what} is [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
}

function assembleDecoderWeights(vars: (layer: string) => tf.Tensor[], grid: { cells: number; temperature?: number } | null): DecoderWeights {
  const [hK, hB] = vars(DECODER_LAYER_NAMES.initH);
  const [cK, cB] = vars(DECODER_LAYER_NAMES.initC);
  const [pK, pB] = vars(DECODER_LAYER_NAMES.imageProj);
  const [mK, mB] = vars(DECODER_LAYER_NAMES.merge);
  const [emb] = vars(DECODER_LAYER_NAMES.embedding);
  const [lK, lR, lB] = vars(DECODER_LAYER_NAMES.lstm);
  const [oK, oB] = vars(DECODER_LAYER_NAMES.logits);
  let attention: AttentionWeights | undefined;
  if (grid) {
    const [gK, gB] = vars(DECODER_LAYER_NAMES.attGrid);
    const [qK] = vars(DECODER_LAYER_NAMES.attQuery);
    const [aK, aB] = vars(DECODER_LAYER_NAMES.attGate);
    const [outK] = vars(DECODER_LAYER_NAMES.attOut);
    const { cells, temperature } = grid;
    const side = Math.round(Math.sqrt(cells));
    attention = {
      // A model knows only the number of cells; grids are square (7×7) by construction.
      config: { grid: [side, cells / side], channels: gK.shape[0] as number, size: gK.shape[1] as number, ...(temperature !== undefined ? { temperature } : {}) },
      pooledSize: hK.shape[0],
      grid: { kernel: gK as tf.Tensor2D, bias: gB as tf.Tensor1D },
      query: qK as tf.Tensor2D,
      gate: { kernel: aK as tf.Tensor2D, bias: aB as tf.Tensor1D },
      out: outK as tf.Tensor2D,
    };
  }
  return {
    initH: { kernel: hK as tf.Tensor2D, bias: hB as tf.Tensor1D },
    initC: { kernel: cK as tf.Tensor2D, bias: cB as tf.Tensor1D },
    imageProj: { kernel: pK as tf.Tensor2D, bias: pB as tf.Tensor1D },
    merge: { kernel: mK as tf.Tensor2D, bias: mB as tf.Tensor1D },
    embedding: emb as tf.Tensor2D,
    lstm: { kernel: lK as tf.Tensor2D, recurrentKernel: lR as tf.Tensor2D, bias: lB as tf.Tensor1D },
    logits: { kernel: oK as tf.Tensor2D, bias: oB as tf.Tensor1D },
    ...(attention ? { attention } : {}),
  };
}

const dense = (x: tf.Tensor2D, w: { kernel: tf.Tensor2D; bias: tf.Tensor1D }): tf.Tensor2D =>
  tf.add(tf.matMul(x, w.kernel), w.bias);

type Activation = 'linear' | 'relu' | 'sigmoid';

/**
 * A dense layer with its activation. Decoding (no gradients) uses one fused kernel: a step of
 * beam search is ~40 small ops, so each op saved shows; training keeps the plain ops, whose
 * gradients the wasm training kernels cover.
 */
function layer(x: tf.Tensor2D, w: { kernel: tf.Tensor2D; bias: tf.Tensor1D }, activation: Activation, fused: boolean): tf.Tensor2D {
  if (fused) return tf.fused.matMul({ a: x, b: w.kernel, bias: w.bias, activation }) as tf.Tensor2D;
  const y = dense(x, w);
  return activation === 'relu' ? tf.relu(y) : activation === 'sigmoid' ? tf.sigmoid(y) : y;
}

type Drop = <R extends tf.Rank>(x: tf.Tensor<R>) => tf.Tensor<R>;
const noDrop: Drop = (x) => x;

/** Decoding state from image feature rows [N, featureRowSize]. */
export function initialState(w: DecoderWeights, features: tf.Tensor2D, drop: Drop = noDrop): LstmState {
  const a = w.attention;
  const N = features.shape[0];
  const pooled = drop(a ? (tf.slice(features, [0, 0], [N, a.pooledSize]) as tf.Tensor2D) : features);
  const state: LstmState = { h: tf.tanh(dense(pooled, w.initH)), c: tf.tanh(dense(pooled, w.initC)), img: dense(pooled, w.imageProj) };
  if (a) {
    const L = gridCells(a.config);
    const C = a.config.channels;
    const grid = drop(tf.reshape(tf.slice(features, [0, a.pooledSize], [N, L * C]), [N * L, C]) as tf.Tensor2D);
    state.grid = tf.reshape(dense(grid, a.grid), [N, L, a.config.size]);
    // Once per caption, not per word.
    state.keys = a.config.temperature === undefined ? state.grid : unit(state.grid);
  }
  return state;
}

/** Rows scaled to unit length along the last axis, as tfjs-layers' Dot({ normalize: true }) does. */
function unit<T extends tf.Tensor>(x: T): T {
  return tf.div(x, tf.sqrt(tf.maximum(tf.sum(tf.square(x), -1, true), tf.backend().epsilon()))) as T;
}

/**
 * Attention of LSTM outputs h [N, T, U] over the projected grid [N, L, S] (or one grid [1, L, S]
 * for every row, as in beam search): the weights [N, T, L] and the gated context, projected to the
 * LSTM's width [N·T, U].
 */
function attend(a: AttentionWeights, h: tf.Tensor3D, grid: tf.Tensor3D, keys: tf.Tensor3D, fused: boolean): { weights: tf.Tensor3D; context: tf.Tensor2D } {
  const [N, T, U] = h.shape;
  const [, L, S] = grid.shape;
  const flat = tf.reshape(h, [N * T, U]) as tf.Tensor2D;
  let q = tf.matMul(flat, a.query);
  if (a.config.temperature !== undefined) q = tf.mul(unit(q), a.config.temperature);
  let weights: tf.Tensor3D;
  let context: tf.Tensor2D;
  if (grid.shape[0] === 1) {
    // One grid for all rows: plain 2-D products (a batched product would first copy the grid per row).
    const w2 = tf.softmax(tf.matMul(q, tf.reshape(keys, [L, S]), false, true)) as tf.Tensor2D;
    weights = tf.reshape(w2, [N, T, L]);
    context = tf.matMul(w2, tf.reshape(grid, [L, S]));
  } else {
    weights = tf.softmax(tf.matMul(tf.reshape(q, [N, T, S]), keys, false, true)) as tf.Tensor3D;
    context = tf.reshape(tf.matMul(weights, grid), [N * T, S]) as tf.Tensor2D;
  }
  const gated = tf.mul(context, layer(flat, a.gate, 'sigmoid', fused)) as tf.Tensor2D;
  return { weights, context: tf.matMul(gated, a.out) };
}

/**
 * Word logits from LSTM outputs h [N·T, U] (T steps per caption) and each caption's state:
 * image projection, plus the attended grid context with attention.
 */
function wordLogits(w: DecoderWeights, h: tf.Tensor2D, state: LstmState, T: number, drop: Drop = noDrop, fused = false): { logits: tf.Tensor2D; attention?: tf.Tensor3D } {
  const N = state.img.shape[0];
  const U = state.img.shape[1];
  const img = T === 1 ? state.img : (tf.reshape(tf.tile(tf.expandDims(state.img, 1), [1, T, 1]), [N * T, U]) as tf.Tensor2D);
  let x = tf.add(h, img) as tf.Tensor2D;
  let attention: tf.Tensor3D | undefined;
  if (w.attention && state.grid && state.keys) {
    const r = attend(w.attention, tf.reshape(h, [N, T, U]), state.grid, state.keys, fused);
    x = tf.add(x, r.context);
    attention = r.weights;
  }
  return { logits: layer(drop(layer(x, w.merge, 'relu', fused)), w.logits, 'linear', fused), attention };
}

/** One LSTM step (Keras gate order i, f, c, o) from the input projection `xz` = x·K + b. */
function lstmCell(w: DecoderWeights, xz: tf.Tensor2D, s: LstmState): LstmState {
  const z = tf.add(xz, tf.matMul(s.h, w.lstm.recurrentKernel));
  const [i, f, g, o] = tf.split(z, 4, 1) as tf.Tensor2D[];
  const c = tf.add(tf.mul(tf.sigmoid(f), s.c), tf.mul(tf.sigmoid(i), tf.tanh(g))) as tf.Tensor2D;
  const h = tf.mul(tf.sigmoid(o), tf.tanh(c)) as tf.Tensor2D;
  return { ...s, h, c };
}

/**
 * One decoding step: previous tokens [N] → log-probabilities of the next word [N, V], the new
 * state, and with attention the weights [N, cells] behind that word.
 */
export function decodeStep(w: DecoderWeights, tokens: tf.Tensor1D, state: LstmState): { logProbs: tf.Tensor2D; state: LstmState; attention?: tf.Tensor2D } {
  const x = tf.gather(w.embedding, tokens) as tf.Tensor2D;
  const next = lstmCell(w, layer(x, w.lstm, 'linear', true), state);
  const out = wordLogits(w, next.h, next, 1, noDrop, true);
  const N = tokens.shape[0];
  return { logProbs: tf.logSoftmax(out.logits), state: next, ...(out.attention ? { attention: tf.reshape(out.attention, [N, -1]) as tf.Tensor2D } : {}) };
}

/**
 * Teacher-forced forward pass over whole sequences: feature rows [B, featureRowSize], tokens
 * [B, T] → logits [B, T, V]. Same maths as the layers model, but the input projection, the
 * attention and the output layer are one matmul each over all timesteps instead of one per step.
 * `collect.attention` receives the attention weights [B, T, cells] (attention decoders; training's
 * coverage term reads them).
 */
export function forwardSequence(w: DecoderWeights, features: tf.Tensor2D, tokens: tf.Tensor2D, dropout = 0, seed?: number, collect?: { attention?: tf.Tensor3D }): tf.Tensor3D {
  const [B, T] = tokens.shape;
  let calls = 0;
  // A seed makes the dropout masks (and so a training run) reproducible.
  const drop = <R extends tf.Rank>(x: tf.Tensor<R>): tf.Tensor<R> =>
    dropout > 0 ? (tf.dropout(x, dropout, undefined, seed === undefined ? undefined : seed + calls++) as tf.Tensor<R>) : x;
  let state = initialState(w, features, drop);
  const E = w.embedding.shape[1];
  const U = w.lstm.recurrentKernel.shape[0];
  const emb = drop(tf.reshape(tf.gather(w.embedding, tf.reshape(tokens, [B * T])), [B * T, E]) as tf.Tensor2D);
  const xz = tf.reshape(dense(emb, w.lstm), [B, T, 4 * U]);
  const steps = tf.unstack(xz, 1) as tf.Tensor2D[];
  const hs: tf.Tensor2D[] = [];
  for (const step of steps) {
    state = lstmCell(w, step, state);
    hs.push(state.h);
  }
  const h = tf.reshape(tf.stack(hs, 1), [B * T, U]) as tf.Tensor2D;
  const V = w.logits.kernel.shape[1];
  const out = wordLogits(w, h, state, T, drop);
  if (collect) collect.attention = out.attention;
  return tf.reshape(out.logits, [B, T, V]);
}
