import { join } from 'node:path';
import type { Normalization } from '../../shared/bundle/manifest';
import { loadBundle } from '../../shared/bundle/load';
import { decoderWeights } from '../../shared/models/decoder-ops';
import { selectBackend } from '../backend';
import { readDataset } from '../data/captions';
import { captionsCsv } from '../data/extra-captions';
import { captionFeatureSet } from '../evaluate/caption-features';
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
}

const log = (l: string) => console.error(l);

/**
 * `offline:teacher-captions`: a (stronger) bundle's beam-search caption of every train photo, from
 * cached features, as an `image,caption` CSV for `offline:train --extra-captions` — sequence-level
 * distillation, where a student's decoder also learns the teacher's captions.
 */
export async function teacherCaptionsCommand(o: TeacherCaptionsCommandOptions): Promise<string> {
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
  log(`captioning ${feats.names.length} train photos with ${o.from} (${m.id}), beam ${o.beam}`);
  const bar = createProgress(feats.names.length, 'teacher captions', { unit: 'img' });
  let done = 0;
  const captions = captionFeatureSet(decoderWeights(bundle.decoder), bundle.vocabulary, feats, {
    beam: o.beam,
    maxLength: m.decoder.maxLength,
    onProgress: (n) => (bar.tick(n - done), (done = n)),
  });
  bar.stop();
  bundle.decoder.dispose();
  const csv = join(outDir, 'captions.csv');
  writeFileAtomic(csv, captionsCsv(captions));
  const texts = [...captions.values()];
  const summary = {
    from: o.from,
    id: m.id,
    backend,
    beam: o.beam,
    photos: texts.length,
    distinct: new Set(texts).size,
    meanWords: texts.reduce((a, t) => a + t.split(' ').length, 0) / Math.max(1, texts.length),
  };
  writeJsonAtomic(join(outDir, 'summary.json'), summary);
  log(`wrote ${csv}: ${summary.photos} captions, ${summary.distinct} distinct, ${summary.meanWords.toFixed(1)} words on average`);
  return csv;
}
