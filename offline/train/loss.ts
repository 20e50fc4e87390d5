import * as tf from '@tensorflow/tfjs';

/** Mean cross-entropy over the scored positions (target ≠ 0) of logits [B, T, V]. */
export function maskedCrossEntropy(logits: tf.Tensor3D, targets: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    const [B, T, V] = logits.shape;
    const logp = tf.logSoftmax(tf.reshape(logits, [B * T, V]));
    const flat = tf.reshape(targets, [B * T]);
    const nll = tf.neg(tf.sum(tf.mul(logp, tf.oneHot(flat, V)), 1));
    const mask = tf.cast(tf.notEqual(flat, 0), 'float32');
    return tf.div(tf.sum(tf.mul(nll, mask)), tf.maximum(tf.sum(mask), 1)) as tf.Scalar;
  });
}

/** Scales gradients so their global L2 norm is at most `maxNorm`; returns the norm before clipping. */
export function clipByGlobalNorm(grads: tf.NamedTensorMap, maxNorm: number): { grads: tf.NamedTensorMap; norm: number } {
  const names = Object.keys(grads);
  const norm = tf.tidy(() => tf.sqrt(tf.addN(names.map((n) => tf.sum(tf.square(grads[n]))))).dataSync()[0]);
  if (!(norm > maxNorm)) return { grads, norm };
  const scale = maxNorm / norm;
  const out: tf.NamedTensorMap = {};
  for (const n of names) {
    out[n] = tf.mul(grads[n], scale);
    grads[n].dispose();
  }
  return { grads: out, norm };
}

/**
 * "Doubly stochastic" attention (Show, Attend and Tell), for our shorter captions: each caption's
 * attention summed over its words should cover the grid's cells evenly, n/L per cell for n words
 * over L cells; the mean squared shortfall or excess over cells and captions. Without it the maps
 * tend to settle on one cell for every word.
 */
export function attentionCoverage(attention: tf.Tensor3D, targets: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    const L = attention.shape[2];
    const mask = tf.cast(tf.notEqual(targets, 0), 'float32');
    const coverage = tf.sum(tf.mul(attention, tf.expandDims(mask, 2)), 1);
    const even = tf.div(tf.sum(mask, 1, true), L);
    return tf.mean(tf.square(tf.sub(coverage, even))) as tf.Scalar;
  });
}
