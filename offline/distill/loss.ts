import * as tf from '@tensorflow/tfjs';

/**
 * Feature-matching loss: squared error normalised by the teacher's feature energy (so it reads
 * as a fraction of the signal), plus a weighted (1 − cosine similarity) that cares only about
 * direction, which is what the caption decoder's first layers mostly use.
 * `targetEnergy` (default: mean(teacher²) of these rows) lets a slice of a batch use the whole
 * batch's energy, so that slice losses weighted by their row counts sum to the batch's loss.
 */
export function distillLoss(student: tf.Tensor2D, teacher: tf.Tensor2D, cosineWeight: number, targetEnergy?: number): tf.Scalar {
  return tf.tidy(() => {
    const energy = targetEnergy ?? tf.mean(tf.square(teacher));
    const mse = tf.div(tf.mean(tf.square(tf.sub(student, teacher))), tf.add(energy, 1e-8));
    return tf.add(mse, tf.mul(cosineWeight, tf.sub(1, tf.mean(cosineSimilarity(student, teacher))))) as tf.Scalar;
  });
}

/** Row-wise cosine similarity of two [N, F] matrices → [N]. */
export function cosineSimilarity(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => {
    const dot = tf.sum(tf.mul(a, b), 1);
    const norms = tf.mul(tf.norm(a, 'euclidean', 1), tf.norm(b, 'euclidean', 1));
    return tf.div(dot, tf.add(norms, 1e-8)) as tf.Tensor1D;
  });
}
