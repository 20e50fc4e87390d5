import type { Quantization } from '../../shared/bundle/manifest';
import { loadBundle } from '../../shared/bundle/load';
import { writeBundle } from '../../shared/bundle/write';
import { selectBackend } from '../backend';
import { foldProjection } from '../export/fold-projection';
import { writeDirAtomic } from '../fs-atomic';
import { fileSource } from '../fs-source';

/**
 * `offline:export`: re-encodes a bundle's weights (e.g. none → uint8) into `outDir`, atomically;
 * with `foldProjection`, first folds the encoder's projection into what reads it (fold-projection.ts).
 */
export async function exportCommand(o: { bundleDir: string; outDir: string; quantization: Quantization; foldProjection?: boolean }): Promise<void> {
  await selectBackend();
  const loaded = await loadBundle(fileSource(o.bundleDir));
  if (loaded.manifest.quantization !== 'none' && loaded.manifest.quantization !== o.quantization) {
    console.error(`warning: the source bundle is already ${loaded.manifest.quantization}-quantized; errors add up`);
  }
  const folded = o.foldProjection ? foldProjection(loaded) : null;
  if (folded) console.error(`folded the encoder's projection: features ${loaded.manifest.encoder.featureSize} → ${folded.manifest.encoder.featureSize}, ${folded.weightsRemoved.toLocaleString('en')} weights fewer`);
  const b = folded ? { ...loaded, ...folded } : loaded;
  const { format: _f, formatVersion: _v, quantization: _q, vocabulary: _voc, metrics, confidence, ...rest } = b.manifest;
  // Metrics and the confidence calibration were measured on the source's weights: they only carry over when those stay the same.
  const same = loaded.manifest.quantization === o.quantization && !folded;
  const manifest = same ? { ...rest, metrics, confidence } : rest;
  const why = folded ? 'the folded weights' : `the ${loaded.manifest.quantization} bundle`;
  if (!same && metrics) console.error(`metrics of ${why} dropped; score the new one with offline:evaluate`);
  if (!same && confidence) console.error(`confidence calibration of ${why} dropped; fit it again with offline:calibrate`);
  const files = await writeBundle({ manifest, encoder: b.encoder, decoder: b.decoder, vocabulary: b.vocabulary, quantization: o.quantization });
  writeDirAtomic(o.outDir, files);
  const bytes = [...files.values()].reduce((a, x) => a + x.byteLength, 0);
  console.error(`exported ${o.quantization} bundle to ${o.outDir}: ${files.size} files, ${(bytes / 1e6).toFixed(2)} MB`);
}
