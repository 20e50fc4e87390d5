/** Every setting of the decoder training, in one place (overridable from the CLI). */
export interface DecoderTrainConfig {
  /** Vocabulary: words seen at least this often in the train split's captions. */
  minWordCount: number;
  /** Longest token sequence, `<start>` and `<end>` included; longer captions are truncated. */
  maxLength: number;
  embeddingSize: number;
  units: number;
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
