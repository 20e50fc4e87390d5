import * as tfl from '@tensorflow/tfjs-layers';

/**
 * The caption decoder: "init-inject + merge". The image feature sets the LSTM's initial state
 * (as in Show and Tell) and is also added, projected, to the LSTM's output at every step before
 * the word scores (as in the "merge" models). Init-inject alone, measured on Flickr8k with
 * MobileNet features, learned a language model that mostly ignored the image (14 distinct greedy
 * captions for 200 dev photos); the per-step merge path keeps the image in every prediction.
 * Serving stays cheap: the image projections are computed once per caption.
 */
export interface DecoderConfig {
  vocabSize: number;
  featureSize: number;
  embeddingSize: number;
  units: number;
  /** Longest token sequence including `<start>` and `<end>`. */
  maxLength: number;
  dropout: number;
}

export const DECODER_LAYER_NAMES = {
  initH: 'init_h',
  initC: 'init_c',
  imageProj: 'image_proj',
  merge: 'merge_dense',
  embedding: 'embedding',
  lstm: 'lstm',
  logits: 'logits',
} as const;

/**
 * The decoder as a tfjs-layers model: inputs `features` [B, F] and `tokens` [B, T] (int ids),
 * output next-word logits [B, T, V]. This is what the bundle stores; training and serving run the
 * same weights through the faster functions in `decoder-ops.ts`.
 */
export function buildDecoder(cfg: DecoderConfig, opts: { seed?: number } = {}): tfl.LayersModel {
  // A seed makes the initial weights, and so a whole training run, reproducible.
  let k = 0;
  const glorot = () => tfl.initializers.glorotUniform({ seed: opts.seed === undefined ? undefined : opts.seed * 31 + k++ });
  const features = tfl.input({ shape: [cfg.featureSize], name: 'features' });
  const tokens = tfl.input({ shape: [null], dtype: 'int32', name: 'tokens' });
  const f = tfl.layers.dropout({ rate: cfg.dropout, name: 'feature_dropout' }).apply(features) as tfl.SymbolicTensor;
  const h0 = tfl.layers.dense({ units: cfg.units, activation: 'tanh', kernelInitializer: glorot(), name: DECODER_LAYER_NAMES.initH }).apply(f);
  const c0 = tfl.layers.dense({ units: cfg.units, activation: 'tanh', kernelInitializer: glorot(), name: DECODER_LAYER_NAMES.initC }).apply(f);
  let x = tfl.layers
    .embedding({
      inputDim: cfg.vocabSize,
      outputDim: cfg.embeddingSize,
      embeddingsInitializer: tfl.initializers.randomUniform({ minval: -0.05, maxval: 0.05, seed: opts.seed === undefined ? undefined : opts.seed * 31 + k++ }),
      name: DECODER_LAYER_NAMES.embedding,
    })
    .apply(tokens) as tfl.SymbolicTensor;
  x = tfl.layers.dropout({ rate: cfg.dropout, name: 'embedding_dropout' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers
    .lstm({
      units: cfg.units,
      returnSequences: true,
      recurrentActivation: 'sigmoid',
      // The stock 'orthogonal' initializer takes minutes on large units (QR in JS).
      recurrentInitializer: glorot(),
      kernelInitializer: glorot(),
      name: DECODER_LAYER_NAMES.lstm,
    })
    .apply([x, h0, c0] as tfl.SymbolicTensor[]) as tfl.SymbolicTensor; // [inputs, h0, c0]: the image sets the initial state
  const img = tfl.layers.dense({ units: cfg.units, kernelInitializer: glorot(), name: DECODER_LAYER_NAMES.imageProj }).apply(f) as tfl.SymbolicTensor;
  const img3 = tfl.layers.reshape({ targetShape: [1, cfg.units], name: 'image_proj_per_step' }).apply(img) as tfl.SymbolicTensor;
  x = tfl.layers.add({ name: 'merge' }).apply([x, img3]) as tfl.SymbolicTensor;
  x = tfl.layers.dense({ units: cfg.units, activation: 'relu', kernelInitializer: glorot(), name: DECODER_LAYER_NAMES.merge }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.dropout({ rate: cfg.dropout, name: 'merge_dropout' }).apply(x) as tfl.SymbolicTensor;
  const logits = tfl.layers.dense({ units: cfg.vocabSize, kernelInitializer: glorot(), name: DECODER_LAYER_NAMES.logits }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: [features, tokens], outputs: logits, name: 'caption_decoder' });
}
