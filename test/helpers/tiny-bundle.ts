import * as tf from '@tensorflow/tfjs';
import type { Quantization } from '../../shared/bundle/manifest';
import { imageStats, type ConfidenceModel } from '../../shared/confidence';
import type { RgbImage } from '../../shared/image/types';
import { toEncoderInput } from '../../shared/image/normalize';
import { writeBundle } from '../../shared/bundle/write';
import { UNIT_RANGE_NORMALIZATION } from '../../shared/image/normalize';
import { buildDecoder } from '../../shared/models/decoder';
import { blockWidths, buildCompactVgg16, compactVgg16Cost } from '../../shared/models/vgg16';
import { Vocabulary } from '../../shared/text/vocabulary';

/** The tiny encoder's last grid: block5_conv3 of a 32² input. */
export const TINY_GRID: [number, number] = [2, 2];

export const TINY_WORDS = ['a', 'dog', 'cat', 'runs', 'sits', 'on', 'the', 'grass', 'mat', 'red', 'ball', 'man'];

/**
 * A random-weight bundle built with the project's own model code: a ÷16-width compact VGG16 at
 * 32² and a small LSTM decoder. Tests use it so they never depend on a trained model.
 */
export async function tinyBundle(
  opts: { quantization?: Quantization; seed?: number; neverEnds?: boolean; confidence?: ConfidenceModel; attention?: boolean; featureSize?: number; widthMultiplier?: number; units?: number; extraWords?: number } = {},
): Promise<Map<string, Uint8Array>> {
  // extraWords, units and widthMultiplier make tensors large enough to be quantized (≥ 16,384 weights).
  const vocab = new Vocabulary(['<pad>', '<start>', '<end>', '<unk>', ...TINY_WORDS, ...Array.from({ length: opts.extraWords ?? 0 }, (_, i) => `word${i}`)]);
  const featureSize = opts.featureSize ?? 24;
  const units = opts.units ?? 16;
  const vgg = { widthMultiplier: opts.widthMultiplier ?? 1 / 16, inputSize: 32, featureSize };
  const encoder = buildCompactVgg16(vgg, { seed: 1 });
  // With attention: over block5_conv3, the last 2×2 grid (32 channels) of the 32² input.
  // A high temperature: maps that visibly differ per cell even with random weights.
  const channels = blockWidths(vgg.widthMultiplier).at(-1)!;
  const attention = opts.attention ? { grid: TINY_GRID, channels, size: 8, temperature: 10 } : undefined;
  const decoder = buildDecoder({ vocabSize: vocab.size, featureSize, embeddingSize: 8, units, maxLength: 8, dropout: 0, attention });
  // Larger random weights than the initialisers give, so captions vary with the image.
  let s = opts.seed ?? 1;
  for (const layer of decoder.layers) {
    layer.setWeights(layer.getWeights().map((w) => tf.randomNormal(w.shape, 0, 0.8, 'float32', s++)));
  }
  if (opts.neverEnds) {
    // <end> made (almost) impossible: every caption runs to the length limit.
    const logits = decoder.getLayer('logits');
    const [k, b] = logits.getWeights();
    logits.setWeights([k, tf.add(b, tf.oneHot(vocab.endId, vocab.size).mul(-60))]);
  }
  const cost = compactVgg16Cost(vgg);
  const files = await writeBundle({
    manifest: {
      id: 'tiny-test',
      version: '0.0.1',
      description: 'random weights for tests',
      encoder: {
        architecture: 'compact-vgg16',
        modelPath: 'encoder/model.json',
        inputSize: 32,
        normalization: UNIT_RANGE_NORMALIZATION,
        featureSize,
        widthMultiplier: vgg.widthMultiplier,
        params: cost.params,
        flops: cost.flops,
        ...(attention ? { grid: { layer: 'block5_conv3', shape: [...TINY_GRID, channels] as [number, number, number] } } : {}),
      },
      decoder: {
        architecture: attention ? 'lstm-attention' : 'lstm-inject-merge',
        modelPath: 'decoder/model.json',
        vocabSize: vocab.size,
        embeddingSize: 8,
        units,
        maxLength: 8,
        ...(attention ? { attention } : {}),
      },
      ...(opts.confidence ? { confidence: opts.confidence } : {}),
    },
    encoder,
    decoder,
    vocabulary: vocab,
    quantization: opts.quantization ?? 'none',
  });
  encoder.dispose();
  decoder.dispose();
  return files;
}

/** The tiny bundle's encoder input size and normalisation, for image statistics in tests. */
export const TINY_INPUT = { size: 32, normalization: UNIT_RANGE_NORMALIZATION };

/**
 * A hand-set confidence model for the tiny bundle: a neutral regression (0.5 for every caption)
 * and "training photos" = the given images, so anything further from their mean statistics than
 * the furthest of them × `slack` is shrunk (shared/confidence.ts).
 */
export function tinyConfidence(photos: RgbImage[], slack = 1.1): ConfidenceModel {
  const stats = photos.map((p) => imageStats(toEncoderInput(p, TINY_INPUT.size, TINY_INPUT.normalization), TINY_INPUT.size, TINY_INPUT.normalization));
  const k = stats[0].length;
  const mean = Array.from({ length: k }, (_, j) => stats.reduce((a, s) => a + s[j], 0) / stats.length);
  const inverseCovariance = Array.from({ length: k }, (_, i) => Array.from({ length: k }, (_, j) => (i === j ? 1 : 0)));
  const limit = slack * Math.max(...stats.map((s) => Math.hypot(...s.map((v, j) => v - mean[j]))), 1e-3);
  // Ranges wide enough that only the distance decides (the range check has its own tests).
  const min = mean.map(() => -1e9);
  const max = mean.map(() => 1e9);
  const std = mean.map(() => 1);
  return { version: 1, imageStats: { mean, inverseCovariance, limit, min, max, std }, logistic: { center: [0, 0, 0], scale: [1, 1, 1], weights: [0, 0, 0], bias: 0 } };
}
