import * as tfl from '@tensorflow/tfjs-layers';

/**
 * The caption decoder: "init-inject" (as in Show and Tell). The image feature sets the LSTM's
 * initial state once; words then drive the LSTM, and a dense layer scores the next word.
 * Chosen over "merge" because serving needs the image only once per caption, so each decoding
 * step is one small LSTM step plus one output matmul.
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
  embedding: 'embedding',
  lstm: 'lstm',
  logits: 'logits',
} as const;

/**
 * The decoder as a tfjs-layers model: inputs `features` [B, F] and `tokens` [B, T] (int ids),
 * output next-word logits [B, T, V]. This is what the bundle stores; training and serving run the
 * same weights through the faster functions in `decoder-ops.ts`.
 */
export function buildDecoder(cfg: DecoderConfig): tfl.LayersModel {
  const features = tfl.input({ shape: [cfg.featureSize], name: 'features' });
  const tokens = tfl.input({ shape: [null], dtype: 'int32', name: 'tokens' });
  const f = tfl.layers.dropout({ rate: cfg.dropout, name: 'feature_dropout' }).apply(features) as tfl.SymbolicTensor;
  const h0 = tfl.layers.dense({ units: cfg.units, activation: 'tanh', name: DECODER_LAYER_NAMES.initH }).apply(f);
  const c0 = tfl.layers.dense({ units: cfg.units, activation: 'tanh', name: DECODER_LAYER_NAMES.initC }).apply(f);
  let x = tfl.layers
    .embedding({ inputDim: cfg.vocabSize, outputDim: cfg.embeddingSize, name: DECODER_LAYER_NAMES.embedding })
    .apply(tokens) as tfl.SymbolicTensor;
  x = tfl.layers.dropout({ rate: cfg.dropout, name: 'embedding_dropout' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers
    .lstm({
      units: cfg.units,
      returnSequences: true,
      recurrentActivation: 'sigmoid',
      // The stock 'orthogonal' initializer takes minutes on large units (QR in JS).
      recurrentInitializer: 'glorotUniform',
      name: DECODER_LAYER_NAMES.lstm,
    })
    .apply([x, h0, c0] as tfl.SymbolicTensor[]) as tfl.SymbolicTensor; // [inputs, h0, c0]: the image sets the initial state
  x = tfl.layers.dropout({ rate: cfg.dropout, name: 'lstm_dropout' }).apply(x) as tfl.SymbolicTensor;
  const logits = tfl.layers.dense({ units: cfg.vocabSize, name: DECODER_LAYER_NAMES.logits }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: [features, tokens], outputs: logits, name: 'caption_decoder' });
}
