import * as tf from '@tensorflow/tfjs';

/** The grid part of a distillation target row: `cells` × `channels` values after the pooled feature. */
export interface GridTarget {
  cells: number;
  channels: number;
  /** Weight of the grid's loss next to the pooled feature's. */
  weight: number;
}

/**
 * Feature-matching loss: squared error normalised by the teacher's feature energy (so it reads
 * as a fraction of the signal), plus a weighted (1 − cosine similarity) that cares only about
 * direction, which is what the caption decoder's first layers mostly use.
 * `targetEnergy` (default: mean(teacher²) of these rows) lets a slice of a batch use the whole
 * batch's energy, so that slice losses weighted by their row counts sum to the batch's loss.
 *
 * With `grid`, each row is [pooled | grid cells] and the grid adds, weighted, the same two terms
 * per cell (spatial distillation: 49 targets per photo instead of one); `targetEnergy` is then
 * [pooled, grid].
 */
export function distillLoss(student: tf.Tensor2D, teacher: tf.Tensor2D, cosineWeight: number, targetEnergy?: number | number[], grid?: GridTarget): tf.Scalar {
  return tf.tidy(() => {
    const energies = typeof targetEnergy === 'number' ? [targetEnergy] : targetEnergy;
    if (!grid) return matchLoss(student, teacher, cosineWeight, energies?.[0]);
    const [N, W] = student.shape;
    const G = grid.cells * grid.channels;
    const P = W - G;
    const pooled = matchLoss(tf.slice(student, [0, 0], [N, P]), tf.slice(teacher, [0, 0], [N, P]), cosineWeight, energies?.[0]);
    const cells = (x: tf.Tensor2D) => tf.reshape(tf.slice(x, [0, P], [N, G]), [N * grid.cells, grid.channels]) as tf.Tensor2D;
    return tf.add(pooled, tf.mul(grid.weight, matchLoss(cells(student), cells(teacher), cosineWeight, energies?.[1]))) as tf.Scalar;
  });
}

function matchLoss(student: tf.Tensor2D, teacher: tf.Tensor2D, cosineWeight: number, targetEnergy?: number): tf.Scalar {
  const energy = targetEnergy ?? tf.mean(tf.square(teacher));
  const mse = tf.div(tf.mean(tf.square(tf.sub(student, teacher))), tf.add(energy, 1e-8));
  return tf.add(mse, tf.mul(cosineWeight, tf.sub(1, tf.mean(cosineSimilarity(student, teacher))))) as tf.Scalar;
}

/** mean(x²) of each part of target rows [pooled | grid] (one part without a grid): the batch energies distillLoss takes. */
export function targetEnergies(target: Float32Array, rowLength: number, gridSize = 0): number[] {
  const P = rowLength - gridSize;
  const sums = [0, 0];
  for (let i = 0; i < target.length; i++) sums[i % rowLength < P ? 0 : 1] += target[i] * target[i];
  const rows = target.length / rowLength;
  return gridSize ? [sums[0] / (rows * P), sums[1] / (rows * gridSize)] : [sums[0] / target.length];
}

/** Row-wise cosine similarity of two [N, F] matrices → [N]. */
export function cosineSimilarity(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => {
    const dot = tf.sum(tf.mul(a, b), 1);
    const norms = tf.mul(tf.norm(a, 'euclidean', 1), tf.norm(b, 'euclidean', 1));
    return tf.div(dot, tf.add(norms, 1e-8)) as tf.Tensor1D;
  });
}
