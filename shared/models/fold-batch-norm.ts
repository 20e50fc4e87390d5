import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { buildCompactVgg16, convLayerNames, type CompactVgg16Config } from './vgg16';

/**
 * The inference form of a batch-normalised compact VGG16: each convolution followed by its
 * batch-norm becomes one convolution with bias (W·γ/σ, β − μ·γ/σ), so serving runs plain VGG16.
 */
export function foldBatchNorm(trained: tfl.LayersModel, cfg: CompactVgg16Config): tfl.LayersModel {
  const plain = buildCompactVgg16({ ...cfg, batchNorm: false });
  for (const name of convLayerNames(cfg)) {
    const [kernel] = trained.getLayer(name).getWeights();
    const bn = trained.getLayer(`${name}_bn`);
    const [gamma, beta, mean, variance] = bn.getWeights();
    const eps = (bn.getConfig().epsilon as number | undefined) ?? 1e-3;
    const folded = tf.tidy(() => {
      const scale = tf.div(gamma, tf.sqrt(tf.add(variance, eps)));
      return [tf.mul(kernel, scale), tf.sub(beta, tf.mul(mean, scale))];
    });
    plain.getLayer(name).setWeights(folded);
    tf.dispose(folded);
  }
  if (cfg.featureSize > 0) plain.getLayer('projection').setWeights(trained.getLayer('projection').getWeights());
  return plain;
}
