import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EncoderSpec, Normalization } from '../../shared/bundle/manifest';
import { compactVgg16Cost } from '../../shared/models/vgg16';
import { Vocabulary } from '../../shared/text/vocabulary';
import { selectBackend } from '../backend';
import type { DecoderTrainConfig } from '../config';
import { readDataset } from '../data/captions';
import { readGlove } from '../data/glove';
import { evaluateBundle, galleryItems } from '../evaluate/evaluate-bundle';
import { galleryHtml } from '../evaluate/gallery';
import { loadFeatureEncoder, type FeatureEncoder } from '../features/encoder';
import { precomputeFeatures } from '../features/precompute';
import { writeFileAtomic, writeJsonAtomic } from '../fs-atomic';
import { createRunDir } from '../run-folder';
import { encodeExamples } from '../train/batches';
import { trainDecoder } from '../train/train-decoder';
import { registerWasmTrainingKernels } from '../wasm-kernels';
import { exportBundle } from './export-bundle';

export interface TrainCommandOptions {
  dataPath: string;
  glovePath: string | null;
  encoderModel: string;
  encoderLayer?: string;
  normalization: Normalization;
  cacheDir: string;
  runsDir: string;
  runDir?: string;
  config: DecoderTrainConfig;
  /** Export and score quantized bundles after training. */
  export: boolean;
  quantizations: ('uint8' | 'float16' | 'none')[];
  /** Dev images used for the final bundle evaluation (0 = all). */
  evalImages: number;
  /** A finished decoder run to start from (its vocabulary and best weights), e.g. to adapt a decoder to a new encoder. */
  initFrom?: string;
}

const log = (l: string) => console.error(l);

/** What a user of any Flickr8k-trained bundle should know; written into the model card. */
const KNOWN_LIMITS = [
  "Knows Flickr8k's world: people, children, dogs, sports and outdoor scenes; other subjects get the nearest of those.",
  'English only; vocabulary of the training captions (words seen at least 5 times).',
  'Short, generic sentences; it does not read text, count reliably, or recognise individuals.',
  'Photos are stretched to a square before encoding, as the training photos were.',
];

/** `offline:train`: every stage it needs — features (cached), vocabulary, GloVe, training, evaluation, export. */
export async function trainCommand(o: TrainCommandOptions): Promise<string> {
  const backend = await selectBackend();
  if (backend === 'wasm') registerWasmTrainingKernels();
  const runDir = createRunDir(o.runsDir, 'decoder', o.runDir);
  log(`run folder: ${runDir}`);
  const cfg = o.config;
  writeJsonAtomic(join(runDir, 'config.json'), { ...o, backend, startedAt: new Date().toISOString() });

  const dataset = readDataset(o.dataPath);
  const train = dataset.splits.train;
  const dev = dataset.splits.dev;
  const vocabPath = join(runDir, 'vocab.json');
  const vocabFrom = existsSync(vocabPath) ? vocabPath : o.initFrom ? join(o.initFrom, 'vocab.json') : null;
  const vocab = vocabFrom
    ? Vocabulary.fromJSON(JSON.parse(readFileSync(vocabFrom, 'utf8')))
    : Vocabulary.build(train.flatMap((n) => dataset.captions.get(n) ?? []), cfg.minWordCount);
  writeJsonAtomic(vocabPath, vocab.toJSON());
  log(`vocabulary: ${vocab.size} words (min count ${cfg.minWordCount}) from ${train.length} train images`);

  const encoder = await loadFeatureEncoder({ modelPath: o.encoderModel, layer: o.encoderLayer || undefined, normalization: o.normalization });
  const feats = await precomputeFeatures({ dataset, names: [...train, ...dev], encoder, cacheDir: o.cacheDir });
  log(`features: ${feats.names.length} images (${feats.stats.computed} computed at ${feats.stats.imagesPerSecond.toFixed(1)} images/s, ${feats.stats.fromCache} from cache, ${feats.stats.failed.length} failed)`);
  const have = new Set(feats.names);

  let embeddingInit: Float32Array | undefined;
  let gloveCoverage: number | null = null;
  if (o.glovePath) {
    const g = await readGlove(o.glovePath, vocab, cfg.embeddingSize);
    embeddingInit = g.matrix;
    gloveCoverage = g.coverage;
    log(`GloVe: ${g.covered}/${vocab.size} words covered (${(100 * g.coverage).toFixed(1)}%); the rest are learned`);
  }

  const rows = new Map(feats.names.map((n, i) => [n, i]));
  const examples = encodeExamples(rows, dataset.captions, train.filter((n) => have.has(n)), vocab, cfg.maxLength);
  const devNames = dev.filter((n) => have.has(n)).slice(0, cfg.devEvalImages || undefined);
  log(`training on ${examples.length} captions; early stopping on ${devNames.length} dev images`);
  const result = await trainDecoder({
    config: cfg,
    runDir,
    vocab,
    features: { names: feats.names, matrix: feats.matrix, featureSize: encoder.featureSize },
    train: examples,
    dev: { names: devNames, references: new Map(devNames.map((n) => [n, dataset.captions.get(n) ?? []])) },
    embeddingInit,
    initDecoder: o.initFrom ? join(o.initFrom, 'best') : undefined,
  });
  const epochSeconds = result.state.history.map((h) => h.seconds);
  const summary: Record<string, unknown> = {
    runDir,
    backend,
    encoder: { id: encoder.id, model: o.encoderModel, layer: o.encoderLayer ?? null, featureSize: encoder.featureSize, imagesPerSecond: feats.stats.imagesPerSecond },
    vocabulary: vocab.size,
    gloveCoverage,
    trainCaptions: examples.length,
    bestEpoch: result.state.bestEpoch,
    bestDevCiderDGreedy: result.state.bestCiderD,
    medianEpochSeconds: median(epochSeconds),
    history: result.state.history,
  };
  writeJsonAtomic(join(runDir, 'summary.json'), summary);

  if (o.export) {
    const evalNames = dev.filter((n) => have.has(n)).slice(0, o.evalImages || undefined);
    const evaluations: Record<string, unknown> = {};
    for (const q of o.quantizations) {
      const outDir = join(runDir, `bundle-${q}`);
      const size = await exportBundle({
        outDir,
        id: `flickr8k-${encoder.id.slice(0, 8)}-lstm${cfg.units}`,
        version: new Date().toISOString().slice(0, 10),
        description: `LSTM caption decoder trained on Flickr8k features of ${o.encoderModel}`,
        encoder: encoder.model,
        encoderSpec: encoderSpec(encoder),
        decoder: result.decoder,
        decoderConfig: result.decoderConfig,
        vocabulary: vocab,
        quantization: q,
        training: { data: 'Flickr8k train split (6,000 photos, 30,000 captions); tuned on the dev split', runDir, encoderModel: o.encoderModel, initFrom: o.initFrom ?? null, bestEpoch: result.state.bestEpoch, config: cfg },
        limits: KNOWN_LIMITS,
      });
      log(`exported ${q} bundle: ${outDir} (${size.files} files, ${(size.bytes / 1e6).toFixed(2)} MB); evaluating on ${evalNames.length} dev images…`);
      const ev = await evaluateBundle(outDir, dataset, evalNames, [1, 3]);
      evaluations[q] = { bytes: size.bytes, byBeam: ev.byBeam, msPerImage: ev.msPerImage };
      recordMetrics(outDir, { split: 'Flickr8k dev', images: evalNames.length, greedy: ev.byBeam['1'], beam3: ev.byBeam['3'] });
      log(`${q}: greedy BLEU-4 ${ev.byBeam['1'].bleu4.toFixed(4)} CIDEr-D ${ev.byBeam['1'].ciderD.toFixed(4)}; beam 3 BLEU-4 ${ev.byBeam['3'].bleu4.toFixed(4)} CIDEr-D ${ev.byBeam['3'].ciderD.toFixed(4)}`);
      if (q === o.quantizations[0]) {
        const items = galleryItems(ev, dataset, evalNames, [1, 3]);
        writeFileAtomic(join(runDir, 'gallery.html'), galleryHtml(`Dev captions — ${q} bundle`, ev.byBeam, items));
      }
    }
    summary.bundles = evaluations;
    writeJsonAtomic(join(runDir, 'summary.json'), summary);
  }
  log(`done: ${join(runDir, 'summary.json')}`);
  return runDir;
}

/** Writes the measured dev metrics into the bundle's manifest (the model card serves them). */
function recordMetrics(bundleDir: string, metrics: Record<string, unknown>): void {
  const path = join(bundleDir, 'manifest.json');
  const manifest = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  writeFileAtomic(path, `${JSON.stringify({ ...manifest, metrics }, null, 2)}\n`);
}

/** Manifest entry for the encoder: a compact VGG16 is recognised by its layer names, and its cost recorded. */
function encoderSpec(e: FeatureEncoder): Omit<EncoderSpec, 'modelPath'> {
  const base = { inputSize: e.inputSize, normalization: e.normalization, featureSize: e.featureSize };
  const names = new Set(e.model.layers.map((l) => l.name));
  if (!names.has('block5_conv3') || !names.has('projection')) return { architecture: 'tfjs-layers', ...base };
  const widthMultiplier = (e.model.getLayer('block1_conv1').getConfig().filters as number) / 64;
  const cost = compactVgg16Cost({ widthMultiplier, inputSize: e.inputSize, featureSize: e.featureSize });
  return { architecture: 'compact-vgg16', ...base, widthMultiplier, params: cost.params, flops: cost.flops };
}

function median(xs: number[]): number | null {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
