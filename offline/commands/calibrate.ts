import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadCaptioner } from '../../shared/captioner';
import { captionConfidence, confidenceInputs, imageStats, photoDistance, type ConfidenceModel } from '../../shared/confidence';
import { decodeImage } from '../../shared/image/decode';
import { toEncoderInput } from '../../shared/image/normalize';
import type { RgbImage } from '../../shared/image/types';
import { normalizeCaption } from '../../shared/text/tokenizer';
import { selectBackend } from '../backend';
import { updateBundleManifest } from '../bundle-manifest';
import { fitImageStats, fitLogistic, spearman } from '../calibrate/fit';
import { nonPhotos } from '../calibrate/non-photos';
import { readDataset } from '../data/captions';
import { writeJsonAtomic } from '../fs-atomic';
import { fileSource } from '../fs-source';
import { ciderD } from '../metrics';
import { createProgress } from '../report/progress';
import { createRunDir } from '../run-folder';

export interface CalibrateOptions {
  dataPath: string;
  bundleDir: string;
  runsDir: string;
  runDir?: string;
  /** Training photos whose image statistics define "a photo like the training ones". */
  trainImages: number;
  /** Beam width the dev captions are made with (the API's default: 3). */
  beam: number;
}

const log = (l: string) => console.error(l);

/**
 * `offline:calibrate`: fits the bundle's caption confidence on the dev split and writes it into
 * its manifest. Reports the Spearman correlation of held-out confidences (two folds) with
 * per-image CIDEr-D, next to the raw score's, and the confidence of non-photos against the lowest
 * of the dev photos'.
 */
export async function calibrateCommand(o: CalibrateOptions): Promise<string> {
  const backend = await selectBackend();
  const runDir = createRunDir(o.runsDir, 'calibrate', o.runDir);
  log(`run folder: ${runDir}`);
  const dataset = readDataset(o.dataPath);
  const captioner = await loadCaptioner(fileSource(o.bundleDir));
  const { inputSize: size, normalization } = captioner.manifest.encoder;
  const statsOf = (img: RgbImage) => imageStats(toEncoderInput(img, size, normalization), size, normalization);
  const load = (n: string) => decodeImage(new Uint8Array(readFileSync(join(dataset.imageDir, n))));

  const trainNames = dataset.splits.train.slice(0, o.trainImages || undefined);
  let bar = createProgress(trainNames.length, 'image statistics of training photos', { unit: 'img' });
  const trainStats = trainNames.map((n) => {
    const s = statsOf(load(n));
    bar.tick(1);
    return s;
  });
  bar.stop();
  const imageStatsModel = fitImageStats(trainStats);

  const dev = dataset.splits.dev;
  bar = createProgress(dev.length, `caption dev photos (beam ${o.beam})`, { unit: 'img' });
  const rows = dev.map((n) => {
    const img = load(n);
    const r = captioner.caption(img, { beam: o.beam });
    bar.tick(1);
    return { name: n, caption: r.caption, score: r.score, distance: photoDistance(statsOf(img), imageStatsModel) };
  });
  bar.stop();
  const refs = new Map(dev.map((n) => [n, (dataset.captions.get(n) ?? []).map(normalizeCaption)]));
  const perImage = ciderD(refs, new Map(rows.map((r) => [r.name, r.caption]))).perImage;
  const cider = rows.map((r) => perImage[r.name]);
  const median = [...cider].sort((a, b) => a - b)[Math.floor(cider.length / 2)];
  const x = rows.map((r) => confidenceInputs(r.score, r.caption, r.distance));
  const y = cider.map((c) => (c >= median ? 1 : 0));

  // Two folds (alternate photos): each half's confidences come from a fit on the other half.
  const heldOut = new Array<number>(rows.length);
  for (const fold of [0, 1]) {
    const fitIdx = rows.map((_, i) => i).filter((i) => i % 2 !== fold);
    const model: ConfidenceModel = { version: 1, imageStats: imageStatsModel, logistic: fitLogistic(fitIdx.map((i) => x[i]), fitIdx.map((i) => y[i])) };
    rows.forEach((r, i) => {
      if (i % 2 === fold) heldOut[i] = captionConfidence(model, r.score, r.caption, r.distance);
    });
  }
  const rho = spearman(heldOut, cider);
  const rhoScore = spearman(rows.map((r) => r.score), cider);
  const model: ConfidenceModel = {
    version: 1,
    imageStats: imageStatsModel,
    logistic: fitLogistic(x, y),
    fittedOn: `${dataset.splits.dev.length} dev photos (beam ${o.beam}); image statistics of ${trainNames.length} training photos`,
    spearman: rho,
  };
  const devConfidence = rows.map((r) => captionConfidence(model, r.score, r.caption, r.distance));
  const minDev = Math.min(...devConfidence);
  const odd = nonPhotos().map(({ name, image }) => {
    const r = captioner.caption(image, { beam: o.beam });
    const distance = photoDistance(statsOf(image), imageStatsModel);
    return { name, caption: r.caption, score: r.score, distance, confidence: captionConfidence(model, r.score, r.caption, distance) };
  });
  captioner.dispose();

  const manifestPath = updateBundleManifest(o.bundleDir, () => ({ confidence: model }));
  const quantile = (a: number[], q: number) => [...a].sort((p, s) => p - s)[Math.floor(q * (a.length - 1))];
  const summary = {
    bundle: o.bundleDir,
    backend,
    devImages: rows.length,
    medianCiderD: median,
    spearmanHeldOut: rho,
    spearmanScoreAlone: rhoScore,
    devConfidence: { min: minDev, q10: quantile(devConfidence, 0.1), median: quantile(devConfidence, 0.5), q90: quantile(devConfidence, 0.9) },
    nonPhotos: odd.map((r) => ({ ...r, belowEveryDevPhoto: r.confidence < minDev })),
    model,
  };
  writeJsonAtomic(join(runDir, 'summary.json'), summary);
  log(`Spearman ρ with per-image CIDEr-D (held out): confidence ${rho.toFixed(3)}, score alone ${rhoScore.toFixed(3)}`);
  log(`dev confidence: min ${minDev.toFixed(4)}, median ${summary.devConfidence.median.toFixed(3)}`);
  for (const r of odd) log(`  ${r.name}: confidence ${r.confidence.toFixed(4)} (distance ${r.distance.toFixed(1)}, limit ${imageStatsModel.limit.toFixed(1)}) "${r.caption}"${r.confidence < minDev ? '' : '  ← not below every dev photo'}`);
  log(`wrote confidence into ${manifestPath}; summary in ${join(runDir, 'summary.json')}`);
  return runDir;
}
