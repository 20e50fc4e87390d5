import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadCaptioner } from '../../shared/captioner';
import { decodeImage } from '../../shared/image/decode';
import { normalizeCaption } from '../../shared/text/tokenizer';
import type { CaptionDataset } from '../data/captions';
import { fileSource } from '../fs-source';
import { scoreCaptions, unsupportedColours, type CaptionScores, type ColourTally } from '../metrics';
import { createProgress } from '../report/progress';
import type { GalleryItem } from './gallery';

export interface BundleEvaluation {
  images: number;
  /** Metrics per beam width, e.g. { "1": {...}, "3": {...} }. */
  byBeam: Record<string, Omit<CaptionScores, 'perImage'>>;
  /** Colour words said that no reference of the photo uses, per beam width. */
  colours: Record<string, ColourTally>;
  captions: Record<string, Map<string, string>>;
  perImage: Record<string, CaptionScores['perImage']>;
  msPerImage: Record<string, number>;
}

/**
 * Scores a bundle end to end exactly as the worker runs it: JPEG bytes → decode → resize →
 * encoder → search, for each beam width, against the dataset's references.
 */
export async function evaluateBundle(bundleDir: string, dataset: CaptionDataset, names: string[], beams: number[]): Promise<BundleEvaluation> {
  const captioner = await loadCaptioner(fileSource(bundleDir));
  const refs = new Map(names.map((n) => [n, (dataset.captions.get(n) ?? []).map(normalizeCaption)]));
  const out: BundleEvaluation = { images: names.length, byBeam: {}, colours: {}, captions: {}, perImage: {}, msPerImage: {} };
  const feats: Float32Array[] = [];
  const bar = createProgress(names.length, 'encode dev images');
  for (const n of names) {
    feats.push(captioner.encode(decodeImage(new Uint8Array(readFileSync(join(dataset.imageDir, n))))));
    bar.tick(1);
  }
  bar.stop();
  const F = captioner.featureRowSize;
  const matrix = new Float32Array(names.length * F);
  feats.forEach((f, i) => matrix.set(f, i * F));
  for (const beam of beams) {
    const t0 = Date.now();
    const results = captioner.captionFeatures(matrix, { beam });
    const caps = new Map(results.map((r, i) => [names[i], r.caption]));
    const { perImage, ...scores } = scoreCaptions(refs, caps);
    out.byBeam[String(beam)] = scores;
    out.colours[String(beam)] = unsupportedColours(refs, caps);
    out.captions[String(beam)] = caps;
    out.perImage[String(beam)] = perImage;
    out.msPerImage[String(beam)] = (Date.now() - t0) / names.length;
  }
  captioner.dispose();
  return out;
}

/** Gallery rows for an evaluation: each image with its caption per beam width, scores and references. */
export function galleryItems(ev: BundleEvaluation, dataset: CaptionDataset, names: string[], beams: number[]): GalleryItem[] {
  return names.map((n) => ({
    name: n,
    imagePath: join(dataset.imageDir, n),
    references: dataset.captions.get(n) ?? [],
    captions: beams.map((b) => {
      const k = String(b);
      return { label: b === 1 ? 'greedy' : `beam ${b}`, text: ev.captions[k].get(n) ?? '', ciderD: ev.perImage[k][n]?.ciderD, bleu4: ev.perImage[k][n]?.bleu4 };
    }),
  }));
}
