import * as tf from '@tensorflow/tfjs';
import type { BundleManifest } from '../../shared/bundle/manifest';
import { colourCheckWeights, encodeColourCheckWeights, type ColourCheck } from '../../shared/colour-check';
import { buildDecoder, DECODER_LAYER_NAMES } from '../../shared/models/decoder';

/** The decoder's layers that read the pooled feature, each a linear map before its activation. */
const FEATURE_READERS: readonly string[] = [DECODER_LAYER_NAMES.initH, DECODER_LAYER_NAMES.initC, DECODER_LAYER_NAMES.imageProj];

export interface FoldedBundle {
  manifest: BundleManifest;
  encoder: tf.LayersModel;
  decoder: tf.LayersModel;
  /** Weights the bundle no longer stores. */
  weightsRemoved: number;
}

/**
 * Folds the encoder's last layer — a linear Dense after global pooling, e.g. the compact VGG16's
 * `projection` to the teacher's 1280 features — into every linear map that reads its output: the
 * decoder's init_h, init_c and image_proj, and the colour check's rows for the pooled feature.
 * W' = P·W and b' = b_P·W + b give the same pre-activations in exact arithmetic. The projection
 * exists for distillation (the teacher's feature size); served, it is 1280 × 512 weights plus three
 * 1280-row maps where three 512-row maps do: ≈ 1.25 M fewer weights to fetch, upload and pack
 * on every cold start.
 */
export function foldProjection(b: { manifest: BundleManifest; encoder: tf.LayersModel; decoder: tf.LayersModel }): FoldedBundle {
  const proj = b.encoder.outputs[0].sourceLayer;
  const cfg = proj.getConfig();
  if (proj.getClassName() !== 'Dense' || (cfg.activation !== 'linear' && cfg.activation !== undefined)) {
    throw new Error(`nothing to fold: the encoder's feature comes from '${proj.name}' (${proj.getClassName()}${cfg.activation ? `, ${cfg.activation}` : ''}), not a linear Dense layer`);
  }
  const pooled = proj.input as tf.SymbolicTensor;
  const inSize = pooled.shape[pooled.shape.length - 1] as number;
  const [P, bP] = proj.getWeights() as [tf.Tensor2D, tf.Tensor1D?];
  const outSize = P.shape[1];
  if (inSize >= outSize) throw new Error(`nothing to gain: '${proj.name}' maps ${inSize} pooled values to ${outSize} features, so folding it would not shrink what reads them`);
  const encoder = tf.model({ inputs: b.encoder.inputs, outputs: [pooled, ...b.encoder.outputs.slice(1)], name: b.encoder.name });

  const m = b.manifest;
  const dropout = b.decoder.getLayer('feature_dropout').getConfig().rate as number;
  // The score scale lives in the decoder's layers (the manifest's attention block may not carry it).
  const scale = b.decoder.layers.find((l) => l.name === DECODER_LAYER_NAMES.attScale)?.getConfig().scale as number | undefined;
  const decoder = buildDecoder({
    vocabSize: m.decoder.vocabSize,
    featureSize: inSize,
    embeddingSize: m.decoder.embeddingSize,
    units: m.decoder.units,
    maxLength: m.decoder.maxLength,
    dropout,
    ...(m.decoder.attention ? { attention: { ...m.decoder.attention, temperature: scale } } : {}),
  });
  for (const layer of decoder.layers) {
    if (!layer.weights.length) continue;
    const from = b.decoder.getLayer(layer.name).getWeights();
    if (FEATURE_READERS.includes(layer.name)) {
      const folded = foldLinear(P, bP, from[0] as tf.Tensor2D, from[1] as tf.Tensor1D | undefined);
      layer.setWeights(folded);
      tf.dispose(folded);
    } else {
      layer.setWeights(from);
    }
  }

  const removed = P.size + (bP?.size ?? 0) + FEATURE_READERS.reduce((a, n) => a + (outSize - inSize) * (b.decoder.getLayer(n).getWeights()[0].shape[1] as number), 0);
  const manifest: BundleManifest = {
    ...m,
    id: `${m.id}-folded`, // other weights under the same name would be a different model with the same id
    encoder: {
      ...m.encoder,
      featureSize: inSize,
      ...(m.encoder.params !== undefined ? { params: m.encoder.params - P.size - (bP?.size ?? 0) } : {}),
      ...(m.encoder.flops !== undefined ? { flops: m.encoder.flops - 2 * P.size } : {}),
    },
    training: { ...m.training, projectionFolded: { layer: proj.name, from: outSize, to: inSize } },
    ...(m.colourCheck ? { colourCheck: foldColourCheck(m.colourCheck, P, bP) } : {}),
  };
  return { manifest, encoder, decoder, weightsRemoved: removed };
}

/** A linear map W (+ bias) that read the projection's output, made to read its input: [P·W, bias + b_P·W]. */
function foldLinear(P: tf.Tensor2D, bP: tf.Tensor1D | undefined, W: tf.Tensor2D, bias: tf.Tensor1D | undefined): [tf.Tensor2D, tf.Tensor1D] {
  return tf.tidy(() => {
    const b0 = bias ?? tf.zeros([W.shape[1]]);
    const shift = bP ? tf.matMul(bP.reshape([1, P.shape[1]]), W).reshape([W.shape[1]]) : tf.zeros([W.shape[1]]);
    return [tf.matMul(P, W), tf.add(b0, shift) as tf.Tensor1D];
  });
}

/** The colour check's regressions on the folded feature: its rows for the pooled feature folded as the decoder's maps are. */
function foldColourCheck(check: ColourCheck, P: tf.Tensor2D, bP: tf.Tensor1D | undefined): ColourCheck {
  const words = check.words.length;
  const [inSize, outSize] = P.shape;
  if (check.featureSize !== outSize) throw new Error(`the colour check reads ${check.featureSize} features, the projection gives ${outSize}`);
  const all = colourCheckWeights(check);
  const bins = all.length / words - outSize;
  return tf.tidy(() => {
    const [W, bias] = foldLinear(P, bP, tf.tensor2d(all.subarray(0, outSize * words), [outSize, words]), tf.tensor1d(check.bias));
    const weights = new Float32Array((inSize + bins) * words);
    weights.set(W.dataSync());
    weights.set(all.subarray(outSize * words), inSize * words);
    return { ...check, featureSize: inSize, weights: encodeColourCheckWeights(weights), bias: Array.from(bias.dataSync()) };
  });
}
