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
  /** Soft attention over the encoder's last grid (absent: the pooled feature only). */
  attention?: AttentionConfig;
}

/**
 * Attention over a grid of `cells` image regions with `channels` features each (e.g. 7×7×128).
 * The decoder's input row is then [pooled feature | grid, cell-major], featureSize + cells·channels.
 */
export interface AttentionConfig {
  /** Grid rows and columns (cells = rows × cols). */
  grid: [number, number];
  channels: number;
  /** Size of the projected grid the LSTM output attends over. */
  size: number;
  /**
   * Scores = temperature × cosine(query, cell), bounded, so the softmax cannot saturate (with an
   * unbounded dot product, training drove every map to one cell, the same for every word). Absent:
   * the plain dot product of the first attention runs.
   */
  temperature?: number;
}

export const gridCells = (a: AttentionConfig): number => a.grid[0] * a.grid[1];

export const DECODER_LAYER_NAMES = {
  initH: 'init_h',
  initC: 'init_c',
  imageProj: 'image_proj',
  merge: 'merge_dense',
  embedding: 'embedding',
  lstm: 'lstm',
  logits: 'logits',
  attGrid: 'att_grid',
  attQuery: 'att_query',
  attGate: 'att_gate',
  attOut: 'att_out',
  attScale: 'att_scale',
  /** The attention decoder's grid input. */
  gridInput: 'grid',
} as const;

/**
 * The decoder as a tfjs-layers model: inputs `features` [B, F] (+ `grid` [B, cells, channels] with
 * attention) and `tokens` [B, T] (int ids), output next-word logits [B, T, V]. This is what the
 * bundle stores; training and serving run the same weights through the faster functions in
 * `decoder-ops.ts`.
 *
 * Attention follows the "spatial attention" of Lu et al. 2017 (Knowing When to Look): the LSTM's
 * output h_t queries the projected grid (temperature × cosine), and the gated context joins h_t and
 * the pooled image in the merge before the word scores. The query is the current h_t, not the
 * previous one (Show, Attend and Tell), so teacher-forced training computes every step's attention
 * in one batched product after the LSTM instead of inside its loop.
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
  const merged: tfl.SymbolicTensor[] = [x, img3];
  const inputs = [features, tokens];
  if (cfg.attention) {
    const a = cfg.attention;
    const grid = tfl.input({ shape: [gridCells(a), a.channels], name: DECODER_LAYER_NAMES.gridInput });
    inputs.splice(1, 0, grid);
    const g = tfl.layers.dropout({ rate: cfg.dropout, name: 'grid_dropout' }).apply(grid) as tfl.SymbolicTensor;
    const v = tfl.layers.dense({ units: a.size, kernelInitializer: glorot(), name: DECODER_LAYER_NAMES.attGrid }).apply(g) as tfl.SymbolicTensor;
    // Initial scores ~ unit scale, so the softmax starts spread over the grid rather than saturated.
    const small = tfl.initializers.varianceScaling({ scale: 1 / a.size, mode: 'fanAvg', distribution: 'uniform', seed: opts.seed === undefined ? undefined : opts.seed * 31 + k++ });
    const q = tfl.layers.dense({ units: a.size, useBias: false, kernelInitializer: small, name: DECODER_LAYER_NAMES.attQuery }).apply(x) as tfl.SymbolicTensor;
    let scores = tfl.layers.dot({ axes: [2, 2], normalize: a.temperature !== undefined, name: 'att_scores' }).apply([q, v]) as tfl.SymbolicTensor; // [B, T, cells]
    if (a.temperature !== undefined) scores = tfl.layers.rescaling({ scale: a.temperature, name: DECODER_LAYER_NAMES.attScale }).apply(scores) as tfl.SymbolicTensor;
    const alpha = tfl.layers.softmax({ axis: -1, name: 'att_weights' }).apply(scores) as tfl.SymbolicTensor;
    const context = tfl.layers.dot({ axes: [2, 1], name: 'att_context' }).apply([alpha, v]) as tfl.SymbolicTensor; // [B, T, size]
    const gate = tfl.layers.dense({ units: a.size, activation: 'sigmoid', kernelInitializer: glorot(), name: DECODER_LAYER_NAMES.attGate }).apply(x) as tfl.SymbolicTensor;
    const gated = tfl.layers.multiply({ name: 'att_gated' }).apply([context, gate]) as tfl.SymbolicTensor;
    merged.push(tfl.layers.dense({ units: cfg.units, useBias: false, kernelInitializer: glorot(), name: DECODER_LAYER_NAMES.attOut }).apply(gated) as tfl.SymbolicTensor);
  }
  x = tfl.layers.add({ name: 'merge' }).apply(merged) as tfl.SymbolicTensor;
  x = tfl.layers.dense({ units: cfg.units, activation: 'relu', kernelInitializer: glorot(), name: DECODER_LAYER_NAMES.merge }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.dropout({ rate: cfg.dropout, name: 'merge_dropout' }).apply(x) as tfl.SymbolicTensor;
  const logits = tfl.layers.dense({ units: cfg.vocabSize, kernelInitializer: glorot(), name: DECODER_LAYER_NAMES.logits }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs, outputs: logits, name: 'caption_decoder' });
}
