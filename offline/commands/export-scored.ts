import type * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import type { EncoderSpec, Quantization } from '../../shared/bundle/manifest';
import type { DecoderConfig } from '../../shared/models/decoder';
import { compactVgg16Cost } from '../../shared/models/vgg16';
import type { Vocabulary } from '../../shared/text/vocabulary';
import { updateBundleManifest } from '../bundle-manifest';
import type { CaptionDataset } from '../data/captions';
import { evaluateBundle, galleryItems } from '../evaluate/evaluate-bundle';
import { galleryHtml } from '../evaluate/gallery';
import type { FeatureEncoder } from '../features/encoder';
import type { GridSpec } from '../features/feature-rows';
import { writeFileAtomic, writeJsonAtomic } from '../fs-atomic';
import { exportBundle } from './export-bundle';

export const TRAINING_DATA = 'Flickr8k train split (6,000 photos, 30,000 captions); tuned on the dev split';

/** What a user of any Flickr8k-trained bundle should know; written into the model card. */
export const KNOWN_LIMITS = [
  "Knows Flickr8k's world: people, children, dogs, sports and outdoor scenes; other subjects get the nearest of those.",
  'English only; vocabulary of the training captions (words seen at least 5 times).',
  'Short, generic sentences; it does not read text, count reliably, or recognise individuals.',
  'Photos are stretched to a square before encoding, as the training photos were.',
];

/** What every training command does at its end: export (or not) which bundles, scored on how many dev photos. */
export interface BundleExportOptions {
  /** Export and score quantized bundles after training. */
  export: boolean;
  quantizations: Quantization[];
  /** Dev images used for the final bundle evaluation (0 = all). */
  evalImages: number;
}

export interface ExportScoredInput {
  runDir: string;
  dataset: CaptionDataset;
  /** Dev photos scored end to end. */
  evalNames: string[];
  quantizations: Quantization[];
  encoder: FeatureEncoder;
  /** The grid an attention decoder reads (a layer of `encoder`'s model). */
  grid?: GridSpec;
  decoder: tf.LayersModel;
  decoderConfig: DecoderConfig;
  vocabulary: Vocabulary;
  id: string;
  description: string;
  training: Record<string, unknown>;
  log: (line: string) => void;
}

/**
 * Exports `<runDir>/bundle-<q>` for each quantization, scores each end to end on dev (greedy and
 * beam 3, JPEG bytes in), writes the figures into its manifest, and a gallery for the first.
 */
export async function exportScoredBundles(o: ExportScoredInput): Promise<Record<string, unknown>> {
  const evaluations: Record<string, unknown> = {};
  for (const q of o.quantizations) {
    const outDir = join(o.runDir, `bundle-${q}`);
    const size = await exportBundle({
      outDir,
      id: o.id,
      version: new Date().toISOString().slice(0, 10),
      description: o.description,
      encoder: o.encoder.model,
      encoderSpec: { ...encoderSpec(o.encoder), ...(o.grid ? { grid: { layer: o.grid.layer, shape: [...o.grid.grid, o.grid.channels] as [number, number, number] } } : {}) },
      decoder: o.decoder,
      decoderConfig: o.decoderConfig,
      vocabulary: o.vocabulary,
      quantization: q,
      training: o.training,
      limits: KNOWN_LIMITS,
    });
    o.log(`exported ${q} bundle: ${outDir} (${size.files} files, ${(size.bytes / 1e6).toFixed(2)} MB); evaluating on ${o.evalNames.length} dev images…`);
    const ev = await evaluateBundle(outDir, o.dataset, o.evalNames, [1, 3]);
    const distinct = Object.fromEntries(Object.entries(ev.captions).map(([beam, caps]) => [beam, new Set(caps.values()).size]));
    evaluations[q] = { bytes: size.bytes, byBeam: ev.byBeam, distinctCaptions: distinct, unsupportedColours: ev.colours, msPerImage: ev.msPerImage };
    updateBundleManifest(outDir, () => ({ metrics: { split: 'Flickr8k dev', images: o.evalNames.length, greedy: ev.byBeam['1'], beam3: ev.byBeam['3'], distinctCaptions: distinct, unsupportedColours: ev.colours } }));
    o.log(`${q}: greedy BLEU-4 ${ev.byBeam['1'].bleu4.toFixed(4)} CIDEr-D ${ev.byBeam['1'].ciderD.toFixed(4)}; beam 3 BLEU-4 ${ev.byBeam['3'].bleu4.toFixed(4)} CIDEr-D ${ev.byBeam['3'].ciderD.toFixed(4)}; distinct captions ${JSON.stringify(distinct)}; colour words no reference uses ${JSON.stringify(Object.fromEntries(Object.entries(ev.colours).map(([b, c]) => [b, c.unsupported])))}`);
    if (q === o.quantizations[0]) {
      const items = galleryItems(ev, o.dataset, o.evalNames, [1, 3]);
      writeFileAtomic(join(o.runDir, 'gallery.html'), galleryHtml(`Dev captions — ${q} bundle`, ev.byBeam, items));
    }
  }
  return evaluations;
}

/**
 * The end of every training command: `summary.json` at once (so a failing export loses nothing),
 * then, when asked, the scored bundles, recorded in the summary as `bundles`.
 */
export async function writeSummaryAndBundles(runDir: string, summary: Record<string, unknown>, exportInput: ExportScoredInput | false): Promise<void> {
  writeJsonAtomic(join(runDir, 'summary.json'), summary);
  if (!exportInput) return;
  summary.bundles = await exportScoredBundles(exportInput);
  writeJsonAtomic(join(runDir, 'summary.json'), summary);
}

/** Manifest entry for the encoder: a compact VGG16 is recognised by its layer names, and its cost recorded. */
function encoderSpec(e: FeatureEncoder): Omit<EncoderSpec, 'modelPath'> {
  const base = { inputSize: e.inputSize, normalization: e.normalization, featureSize: e.featureSize };
  const names = new Set(e.model.layers.map((l) => l.name));
  if (!names.has('block5_conv3') || !names.has('projection')) return { architecture: 'tfjs-layers', ...base };
  const widthMultiplier = (e.model.getLayer('block1_conv1').getConfig().filters as number) / 64;
  const headChannels = names.has('head_conv') ? (e.model.getLayer('head_conv').getConfig().filters as number) : 0;
  const cost = compactVgg16Cost({ widthMultiplier, inputSize: e.inputSize, featureSize: e.featureSize, headChannels });
  return { architecture: 'compact-vgg16', ...base, widthMultiplier, ...(headChannels ? { headChannels } : {}), params: cost.params, flops: cost.flops };
}
