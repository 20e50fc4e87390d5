import * as tfl from '@tensorflow/tfjs-layers';

/** VGG16's convolutional layout: [filters, convolutions] per block, max-pooling after each block. */
export const VGG16_BLOCKS: ReadonlyArray<readonly [number, number]> = [
  [64, 2],
  [128, 2],
  [256, 3],
  [512, 3],
  [512, 3],
];

export interface CompactVgg16Config {
  /** Channel multiplier on VGG16's widths (1 = full VGG16, 0.25 = the ÷4 model). */
  widthMultiplier: number;
  /** Square input side in pixels (224 = VGG16's own). Must be a multiple of 16 (the last pooling floors odd sides). */
  inputSize: number;
  /** Output size of the projection after global pooling (the teacher's feature size). 0 = no projection. */
  featureSize: number;
  /** Batch-normalise after each convolution while training; folded into the convolutions on export. */
  batchNorm?: boolean;
  /**
   * 0 (default) = VGG16's own end: max-pool, global average, projection. n > 0 = a 1×1 convolution
   * to n channels on the last block's grid, averaged without the last max-pool (which drops the
   * odd row and column of a 7×7 grid), then the projection: the projection then sees n channels
   * instead of the last block's width (128 at ×0.25, a rank-128 bottleneck before 768+ features).
   */
  headChannels?: number;
}

export function blockWidths(widthMultiplier: number): number[] {
  return VGG16_BLOCKS.map(([f]) => Math.max(8, Math.round(f * widthMultiplier)));
}

function validate(cfg: CompactVgg16Config): void {
  if (!(cfg.widthMultiplier > 0 && cfg.widthMultiplier <= 1)) {
    throw new Error(`compact VGG16: widthMultiplier must be in (0, 1], got ${cfg.widthMultiplier}`);
  }
  if (!Number.isInteger(cfg.inputSize) || cfg.inputSize < 32 || cfg.inputSize % 16 !== 0) {
    throw new Error(`compact VGG16: inputSize must be a multiple of 16 (≥ 32), got ${cfg.inputSize}`);
  }
  if (!Number.isInteger(cfg.featureSize) || cfg.featureSize < 0) {
    throw new Error(`compact VGG16: featureSize must be a non-negative integer, got ${cfg.featureSize}`);
  }
  const head = cfg.headChannels ?? 0;
  if (!Number.isInteger(head) || head < 0) throw new Error(`compact VGG16: headChannels must be a non-negative integer, got ${head}`);
}

/** Names of the convolutions in order (batch-norm folding and warm starts walk them). */
export function convLayerNames(cfg: Pick<CompactVgg16Config, 'headChannels'>): string[] {
  const names = VGG16_BLOCKS.flatMap(([, convs], b) => Array.from({ length: convs }, (_, c) => `block${b + 1}_conv${c + 1}`));
  return (cfg.headChannels ?? 0) > 0 ? [...names, 'head_conv'] : names;
}

/**
 * VGG16 (13 3×3 convolutions in 5 blocks, 2×2 max-pooling between) at reduced width and input
 * size, then global average pooling and a linear projection to `featureSize`. Layer names follow
 * Keras' VGG16 (`block1_conv1` …) so real VGG16 weights can be imported into multiplier 1.
 */
export function buildCompactVgg16(cfg: CompactVgg16Config, opts: { seed?: number } = {}): tfl.LayersModel {
  validate(cfg);
  const input = tfl.input({ shape: [cfg.inputSize, cfg.inputSize, 3], name: 'image' });
  let x: tfl.SymbolicTensor = input;
  const widths = blockWidths(cfg.widthMultiplier);
  const conv = (name: string, filters: number, kernelSize: number, seed: number | undefined) => {
    x = tfl.layers
      .conv2d({
        filters,
        kernelSize,
        padding: 'same',
        activation: cfg.batchNorm ? 'linear' : 'relu',
        useBias: !cfg.batchNorm,
        // A seed makes a training run reproducible from its first step.
        kernelInitializer: tfl.initializers.heNormal({ seed }),
        name,
      })
      .apply(x) as tfl.SymbolicTensor;
    if (cfg.batchNorm) {
      x = tfl.layers.batchNormalization({ name: `${name}_bn`, momentum: 0.9 }).apply(x) as tfl.SymbolicTensor;
      x = tfl.layers.reLU({ name: `${name}_relu` }).apply(x) as tfl.SymbolicTensor;
    }
  };
  const seedFor = (offset: number) => (opts.seed === undefined ? undefined : opts.seed + offset);
  const head = cfg.headChannels ?? 0;
  VGG16_BLOCKS.forEach(([, convs], b) => {
    for (let c = 1; c <= convs; c++) conv(`block${b + 1}_conv${c}`, widths[b], 3, seedFor(b * 10 + c));
    if (head > 0 && b === VGG16_BLOCKS.length - 1) return;
    x = tfl.layers.maxPooling2d({ poolSize: 2, strides: 2, name: `block${b + 1}_pool` }).apply(x) as tfl.SymbolicTensor;
  });
  if (head > 0) conv('head_conv', head, 1, seedFor(77));
  x = tfl.layers.globalAveragePooling2d({ name: 'global_pool' }).apply(x) as tfl.SymbolicTensor;
  if (cfg.featureSize > 0) {
    x = tfl.layers
      .dense({ units: cfg.featureSize, name: 'projection', kernelInitializer: tfl.initializers.glorotUniform({ seed: opts.seed === undefined ? undefined : opts.seed + 99 }) })
      .apply(x) as tfl.SymbolicTensor;
  }
  return tfl.model({ inputs: input, outputs: x, name: 'compact_vgg16' });
}

export interface ModelCost {
  /** Trainable parameters of the inference model (batch-norm folded). */
  params: number;
  /** Floating-point operations per image (2 × multiply-adds), convolutions and projection. */
  flops: number;
}

/** Parameter and FLOP count of the inference model, computed from the configuration alone. */
export function compactVgg16Cost(cfg: CompactVgg16Config): ModelCost {
  validate(cfg);
  let params = 0;
  let flops = 0;
  let side = cfg.inputSize;
  let inCh = 3;
  const widths = blockWidths(cfg.widthMultiplier);
  const head = cfg.headChannels ?? 0;
  VGG16_BLOCKS.forEach(([, convs], b) => {
    for (let c = 0; c < convs; c++) {
      const out = widths[b];
      params += 9 * inCh * out + out;
      flops += 2 * 9 * inCh * out * side * side;
      inCh = out;
    }
    if (!(head > 0 && b === VGG16_BLOCKS.length - 1)) side = Math.floor(side / 2);
  });
  if (head > 0) {
    params += inCh * head + head;
    flops += 2 * inCh * head * side * side;
    inCh = head;
  }
  if (cfg.featureSize > 0) {
    params += inCh * cfg.featureSize + cfg.featureSize;
    flops += 2 * inCh * cfg.featureSize;
  }
  return { params, flops };
}
