import type * as tf from '@tensorflow/tfjs';
import type { BundleManifest, EncoderSpec, Quantization } from '../../shared/bundle/manifest';
import { writeBundle } from '../../shared/bundle/write';
import type { DecoderConfig } from '../../shared/models/decoder';
import type { Vocabulary } from '../../shared/text/vocabulary';
import { writeDirAtomic } from '../fs-atomic';

export interface ExportInput {
  outDir: string;
  id: string;
  version: string;
  description: string;
  encoder: tf.LayersModel;
  encoderSpec: Omit<EncoderSpec, 'modelPath'>;
  decoder: tf.LayersModel;
  decoderConfig: DecoderConfig;
  vocabulary: Vocabulary;
  quantization: Quantization;
  training?: Record<string, unknown>;
  metrics?: Record<string, unknown>;
  limits?: string[];
}

/** The decoder configuration a bundle's manifest records (what `exportBundle` wrote), to rebuild it for more training. */
export function decoderConfigOf(m: BundleManifest): DecoderConfig {
  const d = m.decoder;
  return { vocabSize: d.vocabSize, featureSize: m.encoder.featureSize, embeddingSize: d.embeddingSize, units: d.units, maxLength: d.maxLength, dropout: 0, ...(d.attention ? { attention: d.attention } : {}) };
}

/** Writes a bundle directory atomically: a reader sees the previous bundle or the whole new one. */
export async function exportBundle(e: ExportInput): Promise<{ files: number; bytes: number }> {
  const files = await writeBundle({
    manifest: {
      id: e.id,
      version: e.version,
      description: e.description,
      encoder: { ...e.encoderSpec, modelPath: 'encoder/model.json' },
      decoder: {
        architecture: e.decoderConfig.attention ? 'lstm-attention' : 'lstm-inject-merge',
        ...(e.decoderConfig.attention ? { attention: e.decoderConfig.attention } : {}),
        modelPath: 'decoder/model.json',
        vocabSize: e.decoderConfig.vocabSize,
        embeddingSize: e.decoderConfig.embeddingSize,
        units: e.decoderConfig.units,
        maxLength: e.decoderConfig.maxLength,
      },
      training: e.training,
      metrics: e.metrics,
      limits: e.limits,
    },
    encoder: e.encoder,
    decoder: e.decoder,
    vocabulary: e.vocabulary,
    quantization: e.quantization,
  });
  writeDirAtomic(e.outDir, files);
  return { files: files.size, bytes: [...files.values()].reduce((a, b) => a + b.byteLength, 0) };
}
