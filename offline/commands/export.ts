import type { Quantization } from '../../shared/bundle/manifest';
import { loadBundle } from '../../shared/bundle/load';
import { writeBundle } from '../../shared/bundle/write';
import { selectBackend } from '../backend';
import { writeDirAtomic } from '../fs-atomic';
import { fileSource } from '../fs-source';

/** `offline:export`: re-encodes a bundle's weights (e.g. none → uint8) into `outDir`, atomically. */
export async function exportCommand(o: { bundleDir: string; outDir: string; quantization: Quantization }): Promise<void> {
  await selectBackend();
  const b = await loadBundle(fileSource(o.bundleDir));
  if (b.manifest.quantization !== 'none' && b.manifest.quantization !== o.quantization) {
    console.error(`warning: the source bundle is already ${b.manifest.quantization}-quantized; errors add up`);
  }
  const { format: _f, formatVersion: _v, quantization: _q, vocabulary: _voc, metrics, confidence, ...rest } = b.manifest;
  // Metrics and the confidence calibration were measured on the source's weights: they only carry over when those stay the same.
  const same = b.manifest.quantization === o.quantization;
  const manifest = same ? { ...rest, metrics, confidence } : rest;
  if (!same && metrics) console.error(`metrics of the ${b.manifest.quantization} bundle dropped; score the new one with offline:evaluate`);
  if (!same && confidence) console.error(`confidence calibration of the ${b.manifest.quantization} bundle dropped; fit it again with offline:calibrate`);
  const files = await writeBundle({ manifest, encoder: b.encoder, decoder: b.decoder, vocabulary: b.vocabulary, quantization: o.quantization });
  writeDirAtomic(o.outDir, files);
  const bytes = [...files.values()].reduce((a, x) => a + x.byteLength, 0);
  console.error(`exported ${o.quantization} bundle to ${o.outDir}: ${files.size} files, ${(bytes / 1e6).toFixed(2)} MB`);
}
