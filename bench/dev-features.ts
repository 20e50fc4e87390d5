/**
 * What the decoder benchmarks share: a bundle, the dev split's encoder features from the feature
 * cache (computed once if missing, so a decoder variant takes seconds, not minutes), and the
 * references normalised as training and offline:evaluate score them.
 */
import type { Command } from 'commander';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { loadBundle, type LoadedBundle } from '../shared/bundle/load';
import { selectBackend } from '../offline/backend';
import { readDataset } from '../offline/data/captions';
import type { FeatureSet } from '../offline/evaluate/caption-features';
import { loadFeatureEncoder, mirroredEncoder } from '../offline/features/encoder';
import { precomputeFeatures } from '../offline/features/precompute';
import { fileSource } from '../offline/fs-source';
import { defaultPaths } from '../offline/paths';
import { UNIT_RANGE_NORMALIZATION } from '../shared/image/normalize';
import { normalizeCaption } from '../shared/text/tokenizer';

export interface DevFeatures {
  bundle: LoadedBundle;
  encoderId: string;
  set: FeatureSet;
  /** The same photos mirrored left to right (only when asked for). */
  mirrored?: FeatureSet;
  refs: Map<string, string[]>;
}

export interface DevFeatureArgs {
  bundle: string;
  encoder: string;
  layer: string;
  cache: string;
  data: string;
  images: number;
  mirrored?: boolean;
}

/** The command-line options of `DevFeatureArgs`, and `--out` for the JSON report. */
export function devFeatureOptions(cmd: Command, defaultOut: string): Command {
  const paths = defaultPaths();
  return cmd
    .requiredOption('--bundle <dir>', 'float32 bundle whose decoder is scored')
    .option('--encoder <model.json>', 'the encoder the decoder was trained on (features come from the cache)', paths.teacherModel)
    .option('--layer <name>', "encoder layer ('' = the model's output)", 'global_average_pooling2d_1')
    .option('--cache <dir>', 'feature cache', paths.cacheDir)
    .option('--data <dir>', 'Flickr8k folder', paths.dataDir)
    .option('--images <n>', 'dev images (0 = all)', (v) => Number(v), 0)
    .option('--out <file>', 'JSON report', defaultOut);
}

/** Selects the tfjs backend, then loads the bundle and the dev features it is scored on. */
export async function loadDevFeatures(o: DevFeatureArgs): Promise<DevFeatures> {
  await selectBackend();
  const bundle = await loadBundle(fileSource(o.bundle));
  const dataset = readDataset(o.data);
  const names = dataset.splits.dev.slice(0, o.images || undefined);
  const encoder = await loadFeatureEncoder({ modelPath: o.encoder, layer: o.layer || undefined, normalization: UNIT_RANGE_NORMALIZATION });
  const feats = await precomputeFeatures({ dataset, names, encoder, cacheDir: o.cache });
  const set = { names: feats.names, matrix: feats.matrix, featureSize: encoder.featureSize };
  let mirrored: FeatureSet | undefined;
  if (o.mirrored) {
    const m = await precomputeFeatures({ dataset, names: feats.names, encoder: mirroredEncoder(encoder), cacheDir: o.cache });
    if (m.names.length !== feats.names.length) throw new Error('mirrored features are missing for some dev photos');
    mirrored = { names: m.names, matrix: m.matrix, featureSize: encoder.featureSize };
  }
  const refs = new Map(feats.names.map((n) => [n, (dataset.captions.get(n) ?? []).map(normalizeCaption)]));
  return { bundle, encoderId: encoder.id, set, mirrored, refs };
}

/** Writes a benchmark's rows with the bundle and image count they were measured on. */
export function writeDevReport(out: string, dev: DevFeatures, bundle: string, rows: Record<string, unknown>[]): void {
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ bundle, images: dev.set.names.length, rows }, null, 2));
}
