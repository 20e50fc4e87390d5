import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { validateManifest, type Normalization } from '../../shared/bundle/manifest';
import { Vocabulary } from '../../shared/text/vocabulary';
import type { DecoderTrainConfig } from '../config';
import { readDataset } from '../data/captions';
import { readExtraCaptions, withExtraCaptions } from '../data/extra-captions';
import { readGlove } from '../data/glove';
import { evaluateOnFeatures } from '../evaluate/evaluate-features';
import { loadFeatureRows, type ConcatEncoder } from '../features/feature-rows';
import { writeJsonAtomic } from '../fs-atomic';
import { openTrainingRun } from '../run-folder';
import { encodeExamples } from '../train/batches';
import { trainDecoder } from '../train/train-decoder';
import { TRAINING_DATA, writeSummaryAndBundles, type BundleExportOptions } from './export-scored';

export interface TrainCommandOptions extends BundleExportOptions {
  dataPath: string;
  glovePath: string | null;
  encoderModel: string;
  encoderLayer?: string;
  /** Attend over this encoder layer's grid (e.g. block5_conv3), as well as the pooled feature. */
  gridLayer?: string;
  normalization: Normalization;
  cacheDir: string;
  runsDir: string;
  runDir?: string;
  config: DecoderTrainConfig;
  /** A finished decoder run to start from (its vocabulary and best weights), e.g. to adapt a decoder to a new encoder. */
  initFrom?: string;
  /** An image,caption CSV of more captions for train photos (e.g. a teacher's: sequence-level distillation). */
  extraCaptions?: string;
  /**
   * Other encoders whose pooled features are appended to the encoder's (a concatenation of
   * teachers). A bundle holds one encoder, so such a run is scored on the cached dev features
   * instead of exported.
   */
  concat?: ConcatEncoder[];
}

const log = (l: string) => console.error(l);

/** `offline:train`: every stage it needs — features (cached), vocabulary, GloVe, training, evaluation, export. */
export async function trainCommand(o: TrainCommandOptions): Promise<string> {
  const { backend, runDir } = await openTrainingRun('decoder', o, log);
  const cfg = o.config;

  const dataset = readDataset(o.dataPath);
  const train = dataset.splits.train;
  const dev = dataset.splits.dev;
  const vocabPath = join(runDir, 'vocab.json');
  const init = o.initFrom ? initSource(o.initFrom) : null;
  const vocabFrom = existsSync(vocabPath) ? vocabPath : (init?.vocab ?? null);
  const vocab = vocabFrom
    ? Vocabulary.fromJSON(JSON.parse(readFileSync(vocabFrom, 'utf8')))
    : Vocabulary.build(train.flatMap((n) => dataset.captions.get(n) ?? []), cfg.minWordCount);
  writeJsonAtomic(vocabPath, vocab.toJSON());
  log(`vocabulary: ${vocab.size} words (min count ${cfg.minWordCount}) from ${train.length} train images`);

  const feats = await loadFeatureRows({ dataset, names: [...train, ...dev], encoderModel: o.encoderModel, layer: o.encoderLayer, gridLayer: o.gridLayer, normalization: o.normalization, cacheDir: o.cacheDir, concat: o.concat });
  const encoder = feats.encoder;
  const grid = feats.grid;
  if (feats.concatenated.length) log(`features: ${encoder.featureSize} of ${o.encoderModel} + ${feats.concatenated.map((c) => `${c.featureSize} of ${c.modelPath}`).join(' + ')} = ${feats.featureSize} per photo`);
  log(`features: ${feats.names.length} images (${feats.stats.computed} computed at ${feats.stats.imagesPerSecond.toFixed(1)} images/s, ${feats.stats.fromCache} from cache, ${feats.stats.failed.length} failed)${grid ? `; attending over ${grid.layer}'s ${grid.grid.join('×')}×${grid.channels} grid` : ''}`);
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
  const extra = o.extraCaptions ? readExtraCaptions(o.extraCaptions, train) : null;
  if (extra) log(`extra captions: ${[...extra.values()].reduce((a, c) => a + c.length, 0)} for ${extra.size} train photos from ${o.extraCaptions}`);
  const trainCaptions = extra ? withExtraCaptions(dataset.captions, extra) : dataset.captions;
  const examples = encodeExamples(rows, trainCaptions, train.filter((n) => have.has(n)), vocab, cfg.maxLength);
  const devNames = dev.filter((n) => have.has(n)).slice(0, cfg.devEvalImages || undefined);
  log(`training on ${examples.length} captions; early stopping on ${devNames.length} dev images`);
  const result = await trainDecoder({
    config: cfg,
    runDir,
    vocab,
    features: feats,
    attention: grid && { grid: grid.grid, channels: grid.channels, size: cfg.attentionSize, temperature: cfg.attentionTemperature },
    train: examples,
    dev: { names: devNames, references: new Map(devNames.map((n) => [n, dataset.captions.get(n) ?? []])) },
    embeddingInit,
    initDecoder: init?.decoderDir,
  });
  const epochSeconds = result.state.history.map((h) => h.seconds);
  const summary: Record<string, unknown> = {
    runDir,
    backend,
    encoder: { id: encoder.id, model: o.encoderModel, layer: o.encoderLayer ?? null, featureSize: encoder.featureSize, imagesPerSecond: feats.stats.imagesPerSecond, grid: grid ?? null, concatenated: feats.concatenated },
    vocabulary: vocab.size,
    gloveCoverage,
    trainCaptions: examples.length,
    extraCaptions: o.extraCaptions ?? null,
    bestEpoch: result.state.bestEpoch,
    bestDevCiderDGreedy: result.state.bestScore,
    medianEpochSeconds: median(epochSeconds),
    history: result.state.history,
  };
  const evalNames = dev.filter((n) => have.has(n)).slice(0, o.evalImages || undefined);
  if (feats.concatenated.length && o.export) {
    log(`no bundle: it holds one encoder, this decoder reads ${1 + feats.concatenated.length}; scoring the cached dev features at beam 1 and 3`);
    summary.devFromFeatures = evaluateOnFeatures({ decoder: result.decoder, vocab, features: feats, names: evalNames, references: dataset.captions, maxLength: cfg.maxLength, beams: [1, 3] });
  }
  await writeSummaryAndBundles(runDir, summary, o.export && !feats.concatenated.length && {
    runDir,
    dataset,
    evalNames,
    quantizations: o.quantizations,
    encoder,
    grid,
    decoder: result.decoder,
    decoderConfig: result.decoderConfig,
    vocabulary: vocab,
    id: `flickr8k-${encoder.id.slice(0, 8)}-lstm${cfg.units}${grid ? '-att' : ''}`,
    description: `LSTM caption decoder${grid ? ` attending over ${grid.layer}` : ''} trained on Flickr8k features of ${o.encoderModel}`,
    training: { data: TRAINING_DATA, runDir, encoderModel: o.encoderModel, initFrom: o.initFrom ?? null, extraCaptions: o.extraCaptions ?? null, bestEpoch: result.state.bestEpoch, config: cfg },
    log,
  });
  log(`done: ${join(runDir, 'summary.json')}`);
  return runDir;
}

/**
 * Where `--init-from` finds a vocabulary and decoder weights: a bundle folder (manifest.json, e.g.
 * assets/model) or a decoder run folder (vocab.json and best/).
 */
export function initSource(path: string): { vocab: string; decoderDir: string } {
  const manifestPath = join(path, 'manifest.json');
  if (existsSync(manifestPath)) {
    const m = validateManifest(JSON.parse(readFileSync(manifestPath, 'utf8')));
    return { vocab: join(path, m.vocabulary.path), decoderDir: dirname(join(path, m.decoder.modelPath)) };
  }
  if (existsSync(join(path, 'vocab.json')) && existsSync(join(path, 'best', 'model.json'))) return { vocab: join(path, 'vocab.json'), decoderDir: join(path, 'best') };
  throw new Error(`--init-from ${path}: neither a bundle folder (manifest.json) nor a decoder run folder (vocab.json and best/model.json)`);
}

function median(xs: number[]): number | null {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
