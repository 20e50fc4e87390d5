import { join } from 'node:path';
import { selectBackend } from '../backend';
import { readDataset } from '../data/captions';
import { evaluateBundle, galleryItems } from '../evaluate/evaluate-bundle';
import { galleryHtml } from '../evaluate/gallery';
import { attentionGalleryHtml, attentionItems } from '../evaluate/attention-gallery';
import { writeFileAtomic, writeJsonAtomic } from '../fs-atomic';
import { createRunDir } from '../run-folder';

export interface EvaluateCommandOptions {
  dataPath: string;
  bundleDir: string;
  beams: number[];
  images: number;
  outDir?: string;
  runsDir: string;
  /** Attention bundles: this many dev photos in attention.html, those captioned with `focusWord` first. */
  attentionPhotos?: number;
  focusWord?: string;
}

/** `offline:evaluate`: a bundle scored on the dev split exactly as the worker would caption it. */
export async function evaluateCommand(o: EvaluateCommandOptions): Promise<void> {
  const backend = await selectBackend();
  const dataset = readDataset(o.dataPath);
  const names = dataset.splits.dev.slice(0, o.images || undefined);
  const outDir = createRunDir(o.runsDir, 'evaluate', o.outDir);
  const ev = await evaluateBundle(o.bundleDir, dataset, names, o.beams);
  const summary = { bundle: o.bundleDir, backend, images: names.length, byBeam: ev.byBeam, unsupportedColours: ev.colours, msPerImage: ev.msPerImage };
  writeJsonAtomic(join(outDir, 'metrics.json'), summary);
  const items = galleryItems(ev, dataset, names, o.beams);
  writeFileAtomic(join(outDir, 'gallery.html'), galleryHtml(`Dev captions — ${o.bundleDir}`, summary, items));
  if (o.attentionPhotos) {
    const items = await attentionItems(o.bundleDir, dataset, names, o.attentionPhotos, o.focusWord);
    writeFileAtomic(join(outDir, 'attention.html'), attentionGalleryHtml(`Where it looked — ${o.bundleDir}`, items, (n) => join(dataset.imageDir, n)));
    console.error(`wrote ${join(outDir, 'attention.html')} (${items.length} photos)`);
  }
  for (const b of o.beams) {
    const s = ev.byBeam[String(b)];
    console.log(`beam ${b}: BLEU-1 ${s.bleu1.toFixed(4)} BLEU-2 ${s.bleu2.toFixed(4)} BLEU-3 ${s.bleu3.toFixed(4)} BLEU-4 ${s.bleu4.toFixed(4)} CIDEr-D ${s.ciderD.toFixed(4)}; colour words ${ev.colours[String(b)].said}, ${ev.colours[String(b)].unsupported} of them in no reference (${ev.msPerImage[String(b)].toFixed(1)} ms/image decoding)`);
  }
  console.error(`wrote ${join(outDir, 'metrics.json')} and gallery.html`);
}
