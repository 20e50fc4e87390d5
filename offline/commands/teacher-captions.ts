import { join } from 'node:path';
import type { Normalization } from '../../shared/bundle/manifest';
import { loadBundle } from '../../shared/bundle/load';
import { decoderWeights } from '../../shared/models/decoder-ops';
import { selectBackend } from '../backend';
import { readDataset } from '../data/captions';
import { captionsCsv } from '../data/extra-captions';
import { featureDecoder } from '../../shared/captioner';
import { loadFeatureRows } from '../features/feature-rows';
import { writeFileAtomic, writeJsonAtomic } from '../fs-atomic';
import { fileSource } from '../fs-source';
import { createProgress } from '../report/progress';
import { createRunDir } from '../run-folder';

export interface TeacherCaptionsCommandOptions {
  dataPath: string;
  /** The teacher bundle: its decoder and vocabulary caption the train photos. */
  from: string;
  /** Features from another copy of the bundle's encoder (e.g. the teacher model, already cached). */
  encoderModel?: string;
  encoderLayer?: string;
  gridLayer?: string;
  normalization?: Normalization;
  cacheDir: string;
  runsDir: string;
  outDir?: string;
  beam: number;
  /** Captions per photo: the beam's n best distinct ones (n ≤ beam). */
  perPhoto?: number;
}

const log = (l: string) => console.error(l);

/**
 * `offline:teacher-captions`: a (stronger) bundle's beam-search caption of every train photo, from
 * cached features, as an `image,caption` CSV for `offline:train --extra-captions` — sequence-level
 * distillation, where a student's decoder also learns the teacher's captions.
 */
export async function teacherCaptionsCommand(o: TeacherCaptionsCommandOptions): Promise<string> {
  const perPhoto = o.perPhoto ?? 1;
  if (!(Number.isInteger(perPhoto) && perPhoto >= 1 && perPhoto <= o.beam)) throw new Error(`--per-photo must be an integer from 1 to the beam width (${o.beam}), got ${perPhoto}`);
  const backend = await selectBackend();
  const outDir = createRunDir(o.runsDir, 'teacher-captions', o.outDir);
  const bundle = await loadBundle(fileSource(o.from));
  const m = bundle.manifest;
  bundle.encoder.dispose(); // the features come from the cache
  const dataset = readDataset(o.dataPath);
  const train = dataset.splits.train;
  const feats = await loadFeatureRows({
    dataset,
    names: train,
    encoderModel: o.encoderModel ?? join(o.from, m.encoder.modelPath),
    layer: o.encoderLayer,
    gridLayer: m.decoder.attention ? (o.gridLayer ?? m.encoder.grid?.layer) : undefined,
    normalization: o.normalization ?? m.encoder.normalization,
    cacheDir: o.cacheDir,
  });
  feats.encoder.dispose();
  log(`captioning ${feats.names.length} train photos with ${o.from} (${m.id}), beam ${o.beam}, ${perPhoto} per photo`);
  const decoder = featureDecoder({ weights: decoderWeights(bundle.decoder), vocabulary: bundle.vocabulary, maxLength: m.decoder.maxLength });
  const F = feats.featureSize;
  const rows: [string, string][] = [];
  const bar = createProgress(feats.names.length, 'teacher captions', { unit: 'img' });
  const chunk = 64;
  for (let i = 0; i < feats.names.length; i += chunk) {
    const n = Math.min(chunk, feats.names.length - i);
    const results = decoder.captionFeatures(feats.matrix.subarray(i * F, (i + n) * F), { beam: o.beam, alternatives: perPhoto });
    results.forEach((r, k) => r.alternatives.forEach((a) => rows.push([feats.names[i + k], a.caption])));
    bar.tick(n);
  }
  bar.stop();
  bundle.decoder.dispose();
  const csv = join(outDir, 'captions.csv');
  writeFileAtomic(csv, captionsCsv(rows));
  const texts = rows.map(([, c]) => c);
  const summary = {
    from: o.from,
    id: m.id,
    backend,
    beam: o.beam,
    perPhoto,
    photos: feats.names.length,
    captions: texts.length,
    distinct: new Set(texts).size,
    meanWords: texts.reduce((a, t) => a + t.split(' ').length, 0) / Math.max(1, texts.length),
  };
  writeJsonAtomic(join(outDir, 'summary.json'), summary);
  log(`wrote ${csv}: ${summary.captions} captions of ${summary.photos} photos, ${summary.distinct} distinct, ${summary.meanWords.toFixed(1)} words on average`);
  return csv;
}
