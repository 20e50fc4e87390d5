import type * as tfl from '@tensorflow/tfjs-layers';
import type { Vocabulary } from '../text/vocabulary';
import { BUNDLE_FORMAT, BUNDLE_FORMAT_VERSION, validateManifest, type BundleManifest, type Quantization } from './manifest';
import { serializeLayersModel } from './model-io';
import { encoderQuantization } from './quantize';

export interface BundleContents {
  manifest: Omit<BundleManifest, 'format' | 'formatVersion' | 'quantization' | 'vocabulary' | 'createdAt'> & { createdAt?: string };
  encoder: tfl.LayersModel;
  decoder: tfl.LayersModel;
  vocabulary: Vocabulary;
  quantization: Quantization;
}

/** Serialises a bundle to path → bytes; the caller writes them (atomically) wherever they go. */
export async function writeBundle(c: BundleContents): Promise<Map<string, Uint8Array>> {
  const manifest: BundleManifest = {
    ...c.manifest,
    format: BUNDLE_FORMAT,
    formatVersion: BUNDLE_FORMAT_VERSION,
    createdAt: c.manifest.createdAt ?? new Date().toISOString(),
    encoder: { ...c.manifest.encoder, modelPath: 'encoder/model.json' },
    decoder: { ...c.manifest.decoder, modelPath: 'decoder/model.json' },
    vocabulary: { path: 'vocab.json', specialTokens: c.vocabulary.toJSON().specialTokens },
    quantization: c.quantization,
  };
  validateManifest(manifest);
  const enc = new TextEncoder();
  const files = new Map<string, Uint8Array>([
    ['manifest.json', enc.encode(JSON.stringify(manifest, null, 2))],
    ['vocab.json', enc.encode(JSON.stringify(c.vocabulary.toJSON()))],
  ]);
  for (const [p, b] of await serializeLayersModel(c.encoder, 'encoder', encoderQuantization(c.quantization))) files.set(p, b);
  for (const [p, b] of await serializeLayersModel(c.decoder, 'decoder', c.quantization)) files.set(p, b);
  return files;
}
