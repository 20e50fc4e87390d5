/** Every setting of the decoder training, in one place (overridable from the CLI). */
export interface DecoderTrainConfig {
  /** Vocabulary: words seen at least this often in the train split's captions. */
  minWordCount: number;
  /** Longest token sequence, `<start>` and `<end>` included; longer captions are truncated. */
  maxLength: number;
  embeddingSize: number;
  units: number;
  /** With a grid (`--grid-layer`): size of the projected grid the LSTM attends over. */
  attentionSize: number;
  /** Attention scores are this × cosine(query, cell): bounded, so maps stay soft enough to learn. */
  attentionTemperature: number;
  /** Weight of the coverage term (offline/train/loss.ts attentionCoverage); 0 = off. */
  attentionCoverage: number;
  dropout: number;
  batchSize: number;
  epochs: number;
  learningRate: number;
  /** Learning rate multiplied by this after each epoch. */
  lrDecay: number;
  /** Global gradient-norm clip. */
  clipNorm: number;
  /** Stop after this many epochs without a better dev CIDEr-D. */
  patience: number;
  /** Dev images scored per epoch for early stopping (0 = all). */
  devEvalImages: number;
  seed: number;
}

export const DEFAULT_DECODER_CONFIG: DecoderTrainConfig = {
  minWordCount: 5,
  maxLength: 22,
  embeddingSize: 100,
  units: 256,
  attentionSize: 256,
  attentionTemperature: 10,
  attentionCoverage: 0,
  dropout: 0.4,
  batchSize: 64,
  epochs: 12,
  learningRate: 3e-3,
  lrDecay: 0.8,
  clipNorm: 5,
  patience: 3,
  devEvalImages: 0,
  seed: 42,
};

/** Every setting of the encoder distillation (overridable from the CLI). */
export interface DistillConfig {
  widthMultiplier: number;
  inputSize: number;
  /** 1×1 head convolution's channels before pooling (0 = VGG16's own max-pool head); see CompactVgg16Config. */
  headChannels: number;
  batchSize: number;
  epochs: number;
  learningRate: number;
  /** Final learning rate as a fraction of the first (cosine decay over all steps). */
  minLearningRateFraction: number;
  /** Linear learning-rate warm-up over this many first steps (a fresh, un-normalised VGG diverges without it). */
  warmupSteps: number;
  /** Weight of (1 − cosine similarity) next to the normalised squared error. */
  cosineWeight: number;
  /** Spatial distillation (with a teacher grid layer): weight of the grid's loss next to the pooled feature's. */
  gridWeight: number;
  /** Checkpoint every this many steps (and at each epoch's end). */
  checkpointEvery: number;
  /** Dev images for the per-epoch fidelity check (0 = all). */
  devImages: number;
  /** Batch-normalise while training (folded on export): steadier, but ~2× slower steps on wasm. */
  batchNorm: boolean;
  /** Teacher targets: 'per-step' runs the teacher on every augmented view; 'cached-views' caches it for the photo and its mirror image. */
  targets: 'per-step' | 'cached-views';
  /**
   * Threads computing each step's gradients (1 = the main thread alone). More split the batch
   * over worker threads (offline/distill/parallel-grads.ts); with batch norm each thread then
   * normalises its own slice ("ghost batch norm").
   */
  threads: number;
  seed: number;
}

export const DEFAULT_DISTILL_CONFIG: DistillConfig = {
  widthMultiplier: 0.25,
  inputSize: 112,
  headChannels: 0,
  batchSize: 32,
  epochs: 8,
  learningRate: 2e-3,
  minLearningRateFraction: 0.05,
  warmupSteps: 100,
  cosineWeight: 1,
  gridWeight: 1,
  checkpointEvery: 100,
  devImages: 500,
  batchNorm: false,
  targets: 'cached-views',
  threads: 1,
  seed: 7,
};

/** Every setting of self-critical sequence training (SCST), after cross-entropy training. */
export interface ScstConfig {
  epochs: number;
  /** Photos per step; each gets `samples` sampled captions. */
  batchImages: number;
  /** Captions sampled per photo; each one's baseline is the mean reward of the others. */
  samples: number;
  learningRate: number;
  /** Learning rate multiplied by this after each epoch. */
  lrDecay: number;
  clipNorm: number;
  /** Stop after this many epochs without a better dev CIDEr-D (greedy). */
  patience: number;
  /** Checkpoint every n steps inside an epoch (an epoch takes minutes). */
  checkpointEvery: number;
  /**
   * Weight of a cross-entropy term on one reference caption per photo, added to the SCST loss
   * (0 = pure SCST). Pure SCST at lr 1e-4 lifted greedy dev CIDEr-D but lowered beam 3.
   */
  xeWeight: number;
  /** Dev images scored per epoch (0 = all). */
  devEvalImages: number;
  seed: number;
}

export const DEFAULT_SCST_CONFIG: ScstConfig = {
  epochs: 10,
  batchImages: 32,
  samples: 5,
  learningRate: 1e-4,
  lrDecay: 0.9,
  clipNorm: 5,
  patience: 3,
  checkpointEvery: 25,
  xeWeight: 0,
  devEvalImages: 0,
  seed: 42,
};

/** Every setting of caption-loss fine-tuning (encoder and decoder end to end, `offline:finetune`). */
export interface FinetuneConfig {
  epochs: number;
  /** Photos per step, each with all its reference captions. */
  batchImages: number;
  /** The encoder's learning rate: lower than the decoder's, so the distilled features move slowly. */
  encoderLearningRate: number;
  decoderLearningRate: number;
  /** Both learning rates multiplied by this after each epoch. */
  lrDecay: number;
  /** Weight of the anchor: mean squared change of the pooled feature / its mean square at the start. */
  anchorWeight: number;
  dropout: number;
  clipNorm: number;
  patience: number;
  checkpointEvery: number;
  /** Dev images scored per epoch (0 = all). */
  devEvalImages: number;
  seed: number;
}

export const DEFAULT_FINETUNE_CONFIG: FinetuneConfig = {
  epochs: 3,
  batchImages: 16,
  encoderLearningRate: 2e-5,
  decoderLearningRate: 1e-4,
  lrDecay: 0.8,
  anchorWeight: 1,
  dropout: 0.3,
  clipNorm: 5,
  patience: 2,
  checkpointEvery: 50,
  devEvalImages: 0,
  seed: 42,
};
