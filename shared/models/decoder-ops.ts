import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { DECODER_LAYER_NAMES } from './decoder';

/** The decoder's weights as plain tensors (tf.Variables while training). */
export interface DecoderWeights {
  initH: { kernel: tf.Tensor2D; bias: tf.Tensor1D };
  initC: { kernel: tf.Tensor2D; bias: tf.Tensor1D };
  imageProj: { kernel: tf.Tensor2D; bias: tf.Tensor1D };
  merge: { kernel: tf.Tensor2D; bias: tf.Tensor1D };
  embedding: tf.Tensor2D;
  lstm: { kernel: tf.Tensor2D; recurrentKernel: tf.Tensor2D; bias: tf.Tensor1D };
  logits: { kernel: tf.Tensor2D; bias: tf.Tensor1D };
}

/** Per-caption decoding state: the LSTM's h and c, and the image's projection added at each step. */
export interface LstmState {
  h: tf.Tensor2D;
  c: tf.Tensor2D;
  img: tf.Tensor2D;
}

/** The live weights of a decoder built by `buildDecoder` (variables, not copies). */
export function decoderWeights(model: tfl.LayersModel): DecoderWeights {
  const vars = (name: string) => model.getLayer(name).weights.map((w) => w.read());
  const [hK, hB] = vars(DECODER_LAYER_NAMES.initH);
  const [cK, cB] = vars(DECODER_LAYER_NAMES.initC);
  const [pK, pB] = vars(DECODER_LAYER_NAMES.imageProj);
  const [mK, mB] = vars(DECODER_LAYER_NAMES.merge);
  const [emb] = vars(DECODER_LAYER_NAMES.embedding);
  const [lK, lR, lB] = vars(DECODER_LAYER_NAMES.lstm);
  const [oK, oB] = vars(DECODER_LAYER_NAMES.logits);
  return {
    initH: { kernel: hK as tf.Tensor2D, bias: hB as tf.Tensor1D },
    initC: { kernel: cK as tf.Tensor2D, bias: cB as tf.Tensor1D },
    imageProj: { kernel: pK as tf.Tensor2D, bias: pB as tf.Tensor1D },
    merge: { kernel: mK as tf.Tensor2D, bias: mB as tf.Tensor1D },
    embedding: emb as tf.Tensor2D,
    lstm: { kernel: lK as tf.Tensor2D, recurrentKernel: lR as tf.Tensor2D, bias: lB as tf.Tensor1D },
    logits: { kernel: oK as tf.Tensor2D, bias: oB as tf.Tensor1D },
  };
}

const dense = (x: tf.Tensor2D, w: { kernel: tf.Tensor2D; bias: tf.Tensor1D }): tf.Tensor2D =>
  tf.add(tf.matMul(x, w.kernel), w.bias);

/** Decoding state from image features [N, F]. */
export function initialState(w: DecoderWeights, features: tf.Tensor2D): LstmState {
  return { h: tf.tanh(dense(features, w.initH)), c: tf.tanh(dense(features, w.initC)), img: dense(features, w.imageProj) };
}

/** Word logits from LSTM outputs [N, U] and the image projections [N, U]. */
function wordLogits(w: DecoderWeights, h: tf.Tensor2D, img: tf.Tensor2D, drop: (x: tf.Tensor2D) => tf.Tensor2D = (x) => x): tf.Tensor2D {
  return dense(drop(tf.relu(dense(tf.add(h, img) as tf.Tensor2D, w.merge))), w.logits);
}

/** One LSTM step (Keras gate order i, f, c, o) from the input projection `xz` = x·K + b. */
function lstmCell(w: DecoderWeights, xz: tf.Tensor2D, s: LstmState): LstmState {
  const z = tf.add(xz, tf.matMul(s.h, w.lstm.recurrentKernel));
  const [i, f, g, o] = tf.split(z, 4, 1) as tf.Tensor2D[];
  const c = tf.add(tf.mul(tf.sigmoid(f), s.c), tf.mul(tf.sigmoid(i), tf.tanh(g))) as tf.Tensor2D;
  const h = tf.mul(tf.sigmoid(o), tf.tanh(c)) as tf.Tensor2D;
  return { h, c, img: s.img };
}

/** One decoding step: previous tokens [N] → log-probabilities of the next word [N, V] and the new state. */
export function decodeStep(w: DecoderWeights, tokens: tf.Tensor1D, state: LstmState): { logProbs: tf.Tensor2D; state: LstmState } {
  const x = tf.gather(w.embedding, tokens) as tf.Tensor2D;
  const next = lstmCell(w, dense(x, w.lstm), state);
  return { logProbs: tf.logSoftmax(wordLogits(w, next.h, next.img)), state: next };
}

/**
 * Teacher-forced forward pass over whole sequences: features [B, F], tokens [B, T] → logits [B, T, V].
 * Same maths as the layers model, but the input projection and the output layer are one matmul
 * each over all timesteps instead of one per step.
 */
export function forwardSequence(w: DecoderWeights, features: tf.Tensor2D, tokens: tf.Tensor2D, dropout = 0, seed?: number): tf.Tensor3D {
  const [B, T] = tokens.shape;
  let calls = 0;
  // A seed makes the dropout masks (and so a training run) reproducible.
  const drop = <R extends tf.Rank>(x: tf.Tensor<R>): tf.Tensor<R> =>
    dropout > 0 ? (tf.dropout(x, dropout, undefined, seed === undefined ? undefined : seed + calls++) as tf.Tensor<R>) : x;
  let state = initialState(w, drop(features));
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
  // Each timestep of a caption gets its image's projection.
  const img = tf.reshape(tf.tile(tf.expandDims(state.img, 1), [1, T, 1]), [B * T, U]) as tf.Tensor2D;
  const V = w.logits.kernel.shape[1];
  return tf.reshape(wordLogits(w, h, img, drop), [B, T, V]);
}
