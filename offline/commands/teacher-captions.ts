import { join } from 'node:path';
import { loadBundle } from '../../shared/bundle/load';
import { decoderWeights } from '../../shared/models/decoder-ops';
import { selectBackend } from '../backend';
import { readDataset } from '../data/captions';
import { captionsCsv } from '../data/extra-captions';
import * as tf from '@tensorflow/tfjs';
import { featureDecoder } from '../../shared/captioner';
import { loadBundleFeatureRows, type BundleFeatureSource } from '../features/feature-rows';
import { writeFileAtomic, writeJsonAtomic } from '../fs-atomic';
import { fileSource } from '../fs-source';
import { createProgress } from '../report/progress';
import { rng } from '../random';
import { createRunDir } from '../run-folder';
import { sampleCaptions } from '../train/sample';

export interface TeacherCaptionsCommandOptions extends BundleFeatureSource {
  dataPath: string;
  /** The teacher bundle: its decoder and vocabulary caption the train photos. */
  from: string;
  runsDir: string;
  outDir?: string;
  beam: number;
  /** Captions per photo: the beam's n best distinct ones (n ≤ beam), or n samples with `sample`. */
  perPhoto?: number;
  /**
   * Draw the captions from the decoder's distribution (temperature 1, seeded) instead of beam
   * search: a student learns the teacher's spread of captions, not only its most likely one.
   */
  sample?: boolean;
  seed?: number;
}

const log = (l: string) => console.error(l);

/**
 * `offline:teacher-captions`: a (stronger) bundle's beam-search caption of every train photo, from
 * cached features, as an `image,caption` CSV for `offline:train --extra-captions` — sequence-level
 * distillation, where a student's decoder also learns the teacher's captions.
 */
export async function teacherCaptionsCommand(o: TeacherCaptionsCommandOptions): Promise<string> {
  const perPhoto = o.perPhoto ?? 1;
  if (!(Number.isInteger(perPhoto) && perPhoto >= 1 && (o.sample || perPhoto <= o.beam))) throw new Error(`--per-photo must be an integer from 1${o.sample ? '' : ` to the beam width (${o.beam})`}, got ${perPhoto}`);
  const backend = await selectBackend();
  const outDir = createRunDir(o.runsDir, 'teacher-captions', o.outDir);
  const bundle = await loadBundle(fileSource(o.from));
  const m = bundle.manifest;
  bundle.encoder.dispose(); // the features come from the cache
  const dataset = readDataset(o.dataPath);
  const train = dataset.splits.train;
  const feats = await loadBundleFeatureRows({ ...o, bundleDir: o.from, manifest: m, dataset, names: train });
  feats.encoder.dispose();
  log(`captioning ${feats.names.length} train photos with ${o.from} (${m.id}), ${o.sample ? 'sampled' : `beam ${o.beam}`}, ${perPhoto} per photo`);
  const weights = decoderWeights(bundle.decoder);
  const decoder = featureDecoder({ weights, vocabulary: bundle.vocabulary, maxLength: m.decoder.maxLength });
  const vocab = bundle.vocabulary;
  const random = rng(o.seed ?? 1);
  const F = feats.featureSize;
  const rows: [string, string][] = [];
  const bar = createProgress(feats.names.length, 'teacher captions', { unit: 'img' });
  const chunk = 64;
  for (let i = 0; i < feats.names.length; i += chunk) {
    const n = Math.min(chunk, feats.names.length - i);
    const block = feats.matrix.subarray(i * F, (i + n) * F);
    if (o.sample) {
      for (let s = 0; s < perPhoto; s++) {
        const f = tf.tensor2d(block, [n, F]);
        const drawn = sampleCaptions(weights, f, { maxLength: m.decoder.maxLength, startId: vocab.startId, endId: vocab.endId, bannedIds: vocab.neverSaidIds }, random);
        f.dispose();
        drawn.forEach((d, k) => rows.push([feats.names[i + k], vocab.decode(d.tokens)]));
      }
    } else {
      const results = decoder.captionFeatures(block, { beam: o.beam, alternatives: perPhoto });
      results.forEach((r, k) => r.alternatives.forEach((a) => rows.push([feats.names[i + k], a.caption])));
    }
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
    beam: o.sample ? null : o.beam,
    sampled: Boolean(o.sample),
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
