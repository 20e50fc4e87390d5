import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { loadLayersModel } from '../../shared/bundle/model-io';
import type { Normalization } from '../../shared/bundle/manifest';
import { loadBundle } from '../../shared/bundle/load';
import { decodeImage } from '../../shared/image/decode';
import type { RgbImage } from '../../shared/image/types';
import { decoderWeights } from '../../shared/models/decoder-ops';
import { compactVgg16Cost } from '../../shared/models/vgg16';
import { normalizeCaption } from '../../shared/text/tokenizer';
import type { DistillConfig } from '../config';
import { readDataset } from '../data/captions';
import { distillStudent, studentConfig } from '../distill/train-student';
import { captionFeatureSet } from '../evaluate/caption-features';
import { loadFeatureEncoder, mirroredEncoder } from '../features/encoder';
import { precomputeFeatures } from '../features/precompute';
import { writeJsonAtomic } from '../fs-atomic';
import { fileSource } from '../fs-source';
import { scoreCaptions } from '../metrics';
import { createProgress } from '../report/progress';
import { openTrainingRun } from '../run-folder';

export interface DistillCommandOptions {
  dataPath: string;
  teacherModel: string;
  teacherLayer?: string;
  /** Spatial distillation: the teacher layer whose 7×7 grid the student's last grid learns (cached as float16). */
  teacherGridLayer?: string;
  teacherNormalization: Normalization;
  cacheDir: string;
  runsDir: string;
  runDir?: string;
  config: DistillConfig;
  /** A bundle whose decoder was trained on the teacher's features: dev CIDEr-D on student features each epoch. */
  decoderBundle?: string;
  /** A student model.json (e.g. a bundle's encoder) whose matching layers start a fresh run. */
  initStudent?: string;
  maxSteps?: number;
}

const log = (l: string) => console.error(l);

function decodeAll(dir: string, names: string[], label: string): RgbImage[] {
  const bar = createProgress(names.length, label, { unit: 'img' });
  const out = names.map((n) => {
    const img = decodeImage(new Uint8Array(readFileSync(join(dir, n))));
    bar.tick(1);
    return img;
  });
  bar.stop();
  return out;
}

/** `offline:distill`: a compact VGG16 student trained to reproduce the teacher's features. */
export async function distillCommand(o: DistillCommandOptions): Promise<string> {
  const { backend, runDir } = await openTrainingRun('distill', o, log);
  const dataset = readDataset(o.dataPath);
  // Train split plus the photos in no split; dev only for measuring, test never.
  const trainNames = [...dataset.splits.train, ...dataset.splits.unsplit];
  const devNames = dataset.splits.dev.slice(0, o.config.devImages || undefined);
  const teacher = await loadFeatureEncoder({ modelPath: o.teacherModel, layer: o.teacherLayer, normalization: o.teacherNormalization });
  const devTeacher = await precomputeFeatures({ dataset, names: devNames, encoder: teacher, cacheDir: o.cacheDir });
  let cachedTargets: [Float32Array, Float32Array] | undefined;
  let usedNames = trainNames;
  if (o.config.targets === 'cached-views') {
    // The teacher's answer for each photo and its mirror image, computed once into the feature cache.
    const plain = await precomputeFeatures({ dataset, names: trainNames, encoder: teacher, cacheDir: o.cacheDir });
    const flipped = await precomputeFeatures({ dataset, names: plain.names, encoder: mirroredEncoder(teacher), cacheDir: o.cacheDir });
    if (flipped.names.length !== plain.names.length) throw new Error('mirrored teacher features are missing for some photos');
    usedNames = plain.names;
    cachedTargets = [plain.matrix, flipped.matrix];
    log(`teacher targets cached for ${usedNames.length} photos and their mirror images`);
  }
  let grid: { targets: [Float32Array, Float32Array]; dev: Float32Array; shape: [number, number, number]; weight: number } | undefined;
  if (o.teacherGridLayer) {
    const gridEncoder = await loadFeatureEncoder({ modelPath: o.teacherModel, layer: o.teacherGridLayer, normalization: o.teacherNormalization });
    const shape = gridEncoder.model.outputs[0].shape.slice(1) as [number, number, number];
    const trainGrids = await precomputeFeatures({ dataset, names: usedNames, encoder: gridEncoder, cacheDir: o.cacheDir, float16: true });
    const mirrorGrids = await precomputeFeatures({ dataset, names: usedNames, encoder: mirroredEncoder(gridEncoder), cacheDir: o.cacheDir, float16: true });
    const devGrids = await precomputeFeatures({ dataset, names: devTeacher.names, encoder: gridEncoder, cacheDir: o.cacheDir, float16: true });
    if ([trainGrids, mirrorGrids].some((g) => g.names.length !== usedNames.length) || devGrids.names.length !== devTeacher.names.length) throw new Error(`teacher grids of ${o.teacherGridLayer} are missing for some photos`);
    grid = { targets: [trainGrids.matrix, mirrorGrids.matrix], dev: devGrids.matrix, shape, weight: o.config.gridWeight };
    log(`teacher grids (${o.teacherGridLayer}, ${shape.join('×')}) for ${usedNames.length} train and ${devGrids.names.length} dev photos`);
    gridEncoder.dispose();
  }
  const train = decodeAll(dataset.imageDir, usedNames, 'decode train photos');
  const dev = decodeAll(dataset.imageDir, devTeacher.names, 'decode dev photos');

  let evaluateDev: ((f: Float32Array) => Promise<Record<string, number>>) | undefined;
  let teacherCiderD: number | null = null;
  if (o.decoderBundle) {
    const bundleDir = o.decoderBundle;
    const refs = new Map(devTeacher.names.map((n) => [n, (dataset.captions.get(n) ?? []).map(normalizeCaption)]));
    let cider: ((matrix: Float32Array) => number) | null = null;
    // Loaded at the first epoch's end when it exists by then: the decoder may still be training.
    const ensure = async (): Promise<boolean> => {
      if (cider) return true;
      if (!existsSync(join(bundleDir, 'manifest.json'))) return false;
      const b = await loadBundle(fileSource(bundleDir));
      const w = decoderWeights(b.decoder);
      cider = (matrix) =>
        scoreCaptions(refs, captionFeatureSet(w, b.vocabulary, { names: devTeacher.names, matrix, featureSize: teacher.featureSize }, { beam: 1, maxLength: b.manifest.decoder.maxLength })).ciderD;
      teacherCiderD = cider(devTeacher.matrix);
      log(`decoder ${bundleDir}: dev CIDEr-D (greedy) on teacher features ${teacherCiderD.toFixed(4)}`);
      return true;
    };
    await ensure();
    evaluateDev = async (f) => ((await ensure()) && cider ? { ciderD: cider(f), teacherCiderD: teacherCiderD! } : ({} as Record<string, number>));
  }
  const warmStart = o.initStudent ? await loadLayersModel(fileSource(dirname(o.initStudent)), basename(o.initStudent)) : undefined;
  const { state } = await distillStudent({
    config: o.config,
    runDir,
    teacher: { model: teacher.model, inputSize: teacher.inputSize, featureSize: teacher.featureSize, normalization: teacher.normalization },
    train,
    cachedTargets,
    dev: { images: dev, teacherFeatures: devTeacher.matrix },
    evaluateDev,
    maxSteps: o.maxSteps,
    warmStart,
    grid,
  });
  warmStart?.dispose();
  const cost = compactVgg16Cost(studentConfig(o.config, teacher.featureSize));
  writeJsonAtomic(join(runDir, 'summary.json'), {
    runDir,
    backend,
    teacher: { model: o.teacherModel, layer: o.teacherLayer, gridLayer: o.teacherGridLayer ?? null, id: teacher.id },
    initStudent: o.initStudent ?? null,
    student: { ...studentConfig(o.config, teacher.featureSize), params: cost.params, flops: cost.flops },
    trainImages: train.length,
    devImages: dev.length,
    teacherDevCiderD: teacherCiderD,
    bestEpoch: state.bestEpoch,
    bestDevCosine: state.history[state.bestEpoch - 1]?.devCosine ?? null,
    history: state.history,
  });
  return runDir;
}
