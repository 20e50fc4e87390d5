import { createHash } from 'node:crypto';
import { basename, dirname } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { Normalization } from '../../shared/bundle/manifest';
import { loadLayersModel } from '../../shared/bundle/model-io';
import type { BundleSource } from '../../shared/bundle/source';
import { toEncoderInput } from '../../shared/image/normalize';
import type { RgbImage } from '../../shared/image/types';
import { mirrored } from '../distill/augment';
import { fileSource } from '../fs-source';

export interface FeatureEncoderOptions {
  /** A tfjs-layers model.json on disk (weight shards next to it). */
  modelPath: string;
  /** Cut the model at this layer's output; default: the model's own output. */
  layer?: string;
  normalization: Normalization;
  /** Square input side; default: the model's input shape. */
  inputSize?: number;
}

export interface FeatureEncoder {
  /** Short sha256 of model.json + weights + layer + normalization + inputSize: the cache namespace. */
  id: string;
  modelPath: string;
  layer?: string;
  inputSize: number;
  featureSize: number;
  normalization: Normalization;
  /** The (cut) model: image [batch, inputSize, inputSize, 3] → features. */
  model: tf.LayersModel;
  /** Features of a batch, images.length × featureSize, row-major. */
  encodeBatch(images: RgbImage[]): Float32Array;
  dispose(): void;
}

/**
 * The same encoder run on each photo's mirror image, cached under its own id: distillation's
 * second target view, and the mirror-averaging variant of bench:search.
 */
export function mirroredEncoder(encoder: FeatureEncoder): FeatureEncoder {
  return { ...encoder, id: `${encoder.id}-mirror`, encodeBatch: (imgs) => encoder.encodeBatch(imgs.map(mirrored)) };
}

export async function loadFeatureEncoder(opts: FeatureEncoderOptions): Promise<FeatureEncoder> {
  const { modelPath, normalization } = opts;
  // '' (the CLI's "no layer") and undefined mean the same model, so they must share one cache id.
  const layer = opts.layer || undefined;
  // Hash exactly the bytes tfjs loads, in the order it reads them.
  const hash = createHash('sha256');
  const files = fileSource(dirname(modelPath));
  const hashing: BundleSource = {
    description: files.description,
    async read(path) {
      const bytes = await files.read(path);
      hash.update(path).update(bytes);
      return bytes;
    },
  };
  const full = await loadLayersModel(hashing, basename(modelPath));

  let model: tf.LayersModel = full;
  if (layer) {
    const names = full.layers.map((l) => l.name);
    if (!names.includes(layer)) {
      full.dispose();
      throw new Error(`${modelPath} has no layer '${layer}'; its last layers are ${names.slice(-8).join(', ')}`);
    }
    model = tf.model({ inputs: full.inputs, outputs: full.getLayer(layer).output as tf.SymbolicTensor });
  }

  const inShape = model.inputs[0].shape; // [null, h, w, 3]
  if (inShape.length !== 4 || inShape[3] !== 3) throw new Error(`${modelPath}: expected an image input [batch, h, w, 3], got [${inShape.join(', ')}]`);
  const fixed = inShape[1] !== null && inShape[1] === inShape[2] ? inShape[1] : undefined;
  if (opts.inputSize !== undefined && fixed !== undefined && opts.inputSize !== fixed) {
    throw new Error(`${modelPath} takes ${fixed}×${fixed} images, not ${opts.inputSize}×${opts.inputSize}`);
  }
  const inputSize = opts.inputSize ?? fixed;
  if (!inputSize) throw new Error(`${modelPath}: input size is not fixed by the model; pass inputSize`);

  const outShape = model.outputs[0].shape.slice(1);
  const featureSize = outShape.every((n): n is number => typeof n === 'number' && n > 0)
    ? outShape.reduce((a, b) => a * b, 1)
    : tf.tidy(() => (model.predict(tf.zeros([1, inputSize, inputSize, 3])) as tf.Tensor).size);

  hash.update(JSON.stringify({ layer: layer ?? null, normalization, inputSize }));
  const id = hash.digest('hex').slice(0, 16);

  return {
    id,
    modelPath,
    layer,
    inputSize,
    featureSize,
    normalization,
    model,
    encodeBatch(images) {
      if (!images.length) return new Float32Array(0);
      const px = inputSize * inputSize * 3;
      const input = new Float32Array(images.length * px);
      // The same preprocessing the worker applies at serving time.
      images.forEach((img, i) => input.set(toEncoderInput(img, inputSize, normalization), i * px));
      return tf.tidy(() => {
        const x = tf.tensor4d(input, [images.length, inputSize, inputSize, 3]);
        const y = model.predict(x, { batchSize: images.length }) as tf.Tensor;
        return y.reshape([images.length, featureSize]).dataSync() as Float32Array;
      });
    },
    dispose() {
      full.dispose();
    },
  };
}
