import * as tf from '@tensorflow/tfjs';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadBundle } from '../../shared/bundle/load';
import { loadLayersModel, serializeLayersModel } from '../../shared/bundle/model-io';
import { decodeImage } from '../../shared/image/decode';
import { toEncoderInput } from '../../shared/image/normalize';
import { normalizeCaption } from '../../shared/text/tokenizer';
import type { FinetuneConfig } from '../config';
import { readDataset } from '../data/captions';
import { loadFeatureEncoder } from '../features/encoder';
import { gridSpecOf } from '../features/feature-rows';
import { writeDirAtomic, writeFileAtomic } from '../fs-atomic';
import { fileSource } from '../fs-source';
import { createProgress } from '../report/progress';
import { openTrainingRun } from '../run-folder';
import { captionerModel, captionerParts, devRows, finetuneCaptioner, mirrorInput } from '../train/finetune';
import { decoderConfigOf } from './export-bundle';
import { TRAINING_DATA, writeSummaryAndBundles, type BundleExportOptions } from './export-scored';

export interface FinetuneCommandOptions extends BundleExportOptions {
  dataPath: string;
  /** The bundle to fine-tune: a compact VGG16 encoder and its decoder (pooled or attention). */
  from: string;
  runsDir: string;
  runDir?: string;
  config: FinetuneConfig;
}

const log = (l: string) => console.error(l);

/** `offline:finetune`: a bundle's encoder and decoder trained together on caption cross-entropy, then export and evaluation. */
export async function finetuneCommand(o: FinetuneCommandOptions): Promise<string> {
  const { backend, runDir } = await openTrainingRun('finetune', o, log);
  const bundle = await loadBundle(fileSource(o.from));
  const m = bundle.manifest;
  bundle.encoder.dispose(); // loaded again below without the grid output
  if (m.encoder.architecture !== 'compact-vgg16') throw new Error(`${o.from}: fine-tuning needs a compact-vgg16 encoder, this one is '${m.encoder.architecture}'`);
  const encoder = await loadLayersModel(fileSource(o.from), m.encoder.modelPath);
  const S = m.encoder.inputSize;
  const F = m.encoder.featureSize;
  const vocab = bundle.vocabulary;

  const dataset = readDataset(o.dataPath);
  const trainNames = dataset.splits.train.filter((n) => (dataset.captions.get(n)?.length ?? 0) > 0);
  const devNames = dataset.splits.dev.slice(0, o.config.devEvalImages || undefined);
  const inputsOf = (names: string[], label: string) => {
    const bar = createProgress(names.length, label, { unit: 'img' });
    const out = names.map((n) => {
      const x = toEncoderInput(decodeImage(new Uint8Array(readFileSync(join(dataset.imageDir, n)))), S, m.encoder.normalization);
      bar.tick(1);
      return x;
    });
    bar.stop();
    return out;
  };
  const trainInputs = inputsOf(trainNames, 'train photos');
  const devInputs = inputsOf(devNames, 'dev photos');
  // The starting encoder's pooled features: the anchor. Saved in the run, so a resumed run keeps the first run's.
  const anchor = (file: string, inputs: () => Float32Array[]) => {
    const path = join(runDir, file);
    if (existsSync(path)) return new Float32Array(new Uint8Array(readFileSync(path)).buffer);
    const f = devRows(encoder, inputs(), S).pooled;
    writeFileAtomic(path, new Uint8Array(f.buffer));
    return f;
  };
  log('anchor features of the starting encoder…');
  const anchors: [Float32Array, Float32Array] = [anchor('anchor-train.f32', () => trainInputs), anchor('anchor-train-mirror.f32', () => trainInputs.map((x) => mirrorInput(x, S)))];
  const devAnchors = anchor('anchor-dev.f32', () => devInputs);

  const maxLength = m.decoder.maxLength;
  log(`fine-tuning ${o.from} (${m.id}) end to end on ${trainNames.length} photos × their captions; dev ${devNames.length} photos`);
  const result = await finetuneCaptioner({
    config: o.config,
    runDir,
    vocab,
    maxLength,
    init: async () => captionerModel(encoder, bundle.decoder, m.encoder.grid?.layer),
    inputSize: S,
    featureSize: F,
    train: { inputs: trainInputs, captions: trainNames.map((n) => (dataset.captions.get(n) ?? []).map((c) => vocab.encode(c, maxLength))) },
    anchors,
    dev: { names: devNames, inputs: devInputs, references: new Map(devNames.map((n) => [n, (dataset.captions.get(n) ?? []).map(normalizeCaption)])), anchors: devAnchors },
    log,
  });

  // The best epoch's encoder as a plain model (its feature output; the grid stays a named layer inside).
  const parts = captionerParts(result.model);
  const plain = tf.model({ inputs: parts.encoder.inputs, outputs: parts.encoder.outputs[0], name: 'compact_vgg16' });
  writeDirAtomic(join(runDir, 'encoder'), await serializeLayersModel(plain, '', 'none'));
  const fineEncoder = await loadFeatureEncoder({ modelPath: join(runDir, 'encoder', 'model.json'), normalization: m.encoder.normalization });
  const summary: Record<string, unknown> = {
    runDir,
    backend,
    from: { path: o.from, id: m.id, metrics: m.metrics ?? null },
    bestEpoch: result.state.bestEpoch,
    bestDevCiderDGreedy: result.state.bestScore,
    history: result.state.history,
  };
  await writeSummaryAndBundles(runDir, summary, o.export && {
    runDir,
    dataset,
    evalNames: dataset.splits.dev.slice(0, o.evalImages || undefined),
    quantizations: o.quantizations,
    encoder: fineEncoder,
    grid: gridSpecOf(m),
    decoder: parts.decoder,
    decoderConfig: decoderConfigOf(m),
    vocabulary: vocab,
    id: `${m.id}-ft`,
    description: `${m.description ?? m.id}; then encoder and decoder fine-tuned together on caption cross-entropy`,
    training: { data: TRAINING_DATA, runDir, from: o.from, fromTraining: m.training ?? null, finetune: { bestEpoch: result.state.bestEpoch, config: o.config } },
    log,
  });
  fineEncoder.dispose();
  result.model.dispose();
  log(`done: ${join(runDir, 'summary.json')}`);
  return runDir;
}
