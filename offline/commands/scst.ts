import { join } from 'node:path';
import type { Normalization } from '../../shared/bundle/manifest';
import { loadBundle } from '../../shared/bundle/load';
import { buildDecoder } from '../../shared/models/decoder';
import { normalizeCaption } from '../../shared/text/tokenizer';
import type { ScstConfig } from '../config';
import { readDataset } from '../data/captions';
import { loadBundleFeatureRows, type BundleFeatureSource } from '../features/feature-rows';
import { fileSource } from '../fs-source';
import { openTrainingRun } from '../run-folder';
import { trainScst } from '../train/scst';
import { copyLayerWeights } from '../train/train-decoder';
import { decoderConfigOf } from './export-bundle';
import { TRAINING_DATA, writeSummaryAndBundles, type BundleExportOptions } from './export-scored';

export interface ScstCommandOptions extends BundleExportOptions, BundleFeatureSource {
  dataPath: string;
  /** The cross-entropy bundle to start from (its vocabulary, decoder and, by default, encoder). */
  from: string;
  runsDir: string;
  runDir?: string;
  config: ScstConfig;
}

const log = (l: string) => console.error(l);

/** `offline:scst`: self-critical training of a bundle's decoder on CIDEr-D, then export and evaluation. */
export async function scstCommand(o: ScstCommandOptions): Promise<string> {
  const { backend, runDir } = await openTrainingRun('scst', o, log);

  const bundle = await loadBundle(fileSource(o.from));
  const m = bundle.manifest;
  bundle.encoder.dispose(); // the features come from the cache, keyed by the encoder's files
  const vocab = bundle.vocabulary;
  const dataset = readDataset(o.dataPath);
  const attention = m.decoder.attention;
  const gridLayer = o.gridLayer ?? m.encoder.grid?.layer;
  const feats = await loadBundleFeatureRows({ ...o, bundleDir: o.from, manifest: m, dataset, names: [...dataset.splits.train, ...dataset.splits.dev] });
  const encoder = feats.encoder;
  if (encoder.featureSize !== m.encoder.featureSize) throw new Error(`the encoder gives ${encoder.featureSize}-d features; ${o.from}'s decoder expects ${m.encoder.featureSize}`);
  if (attention && (feats.grid?.channels !== attention.channels || feats.grid.grid.join() !== attention.grid.join())) {
    throw new Error(`${o.from}'s decoder attends over a ${attention.grid.join('×')}×${attention.channels} grid; ${gridLayer} gives ${feats.grid ? `${feats.grid.grid.join('×')}×${feats.grid.channels}` : 'none'}`);
  }
  const have = new Set(feats.names);
  const refsOf = (names: string[]) => new Map(names.map((n) => [n, (dataset.captions.get(n) ?? []).map(normalizeCaption)]));
  const train = dataset.splits.train.filter((n) => have.has(n) && (dataset.captions.get(n)?.length ?? 0) > 0);
  const dev = dataset.splits.dev.filter((n) => have.has(n));
  const devEval = dev.slice(0, o.config.devEvalImages || undefined);
  log(`SCST from ${o.from} (${m.id}) on ${train.length} train photos × ${o.config.samples} samples; dev ${devEval.length} photos`);

  const decoderConfig = decoderConfigOf(m);
  const result = await trainScst({
    config: o.config,
    runDir,
    vocab,
    maxLength: m.decoder.maxLength,
    features: feats,
    train: { names: train, references: refsOf(train) },
    dev: { names: devEval, references: refsOf(devEval) },
    async initDecoder() {
      const model = buildDecoder(decoderConfig, { seed: o.config.seed });
      copyLayerWeights(bundle.decoder, model);
      return model;
    },
    log,
  });
  bundle.decoder.dispose();
  const summary: Record<string, unknown> = {
    runDir,
    backend,
    from: { path: o.from, id: m.id, metrics: m.metrics ?? null },
    encoder: { id: encoder.id, model: encoder.modelPath, featureSize: encoder.featureSize, grid: feats.grid ?? null },
    bestEpoch: result.state.bestEpoch,
    bestDevCiderDGreedy: result.state.bestScore,
    history: result.state.history,
  };
  await writeSummaryAndBundles(runDir, summary, o.export && {
    runDir,
    dataset,
    evalNames: dev.slice(0, o.evalImages || undefined),
    quantizations: o.quantizations,
    encoder,
    grid: feats.grid,
    decoder: result.decoder,
    decoderConfig,
    vocabulary: vocab,
    id: `${m.id}-scst`,
    description: `${m.description ?? m.id}; then self-critical training on CIDEr-D`,
    training: { data: TRAINING_DATA, runDir, from: o.from, fromTraining: m.training ?? null, scst: { bestEpoch: result.state.bestEpoch, config: o.config } },
    log,
  });
  encoder.dispose();
  log(`done: ${join(runDir, 'summary.json')}`);
  return runDir;
}
