/**
 * Which decoder tensors can take uint8? Scores a bundle's decoder on the dev split from cached
 * encoder features (no encoder run, so a variant takes seconds, not minutes), with its float32
 * weights and with each quantization policy: everything as the bundle writer does it, and with
 * one tensor at a time kept float16. Prints BLEU-4 / CIDEr-D deltas and the bytes each costs.
 *
 *   npx tsx bench/quantization.ts --bundle runs/decoder-mobilenet/bundle-none \
 *     --encoder ../shared/data/mobilenet_v1_0.75_224/model.json --layer global_average_pooling2d_1
 */
import * as tf from '@tensorflow/tfjs';
import { Command } from 'commander';
import { quantizeWeights, UINT8_MIN_ELEMENTS } from '../shared/bundle/quantize';
import { decoderWeights } from '../shared/models/decoder-ops';
import { captionFeatureSet } from '../offline/evaluate/caption-features';
import { scoreCaptions } from '../offline/metrics';
import { devFeatureOptions, loadDevFeatures, writeDevReport, type DevFeatureArgs } from './dev-features';

const args = devFeatureOptions(new Command(), 'runs/quantization.json').option('--beams <list>', 'beam widths', '1,3').parse().opts();
const dev = await loadDevFeatures(args as DevFeatureArgs);
const { bundle, encoderId, set, refs } = dev;
const beams = String(args.beams).split(',').map(Number);
const decoder = bundle.decoder;
const original = decoder.getWeights().map((w) => w.clone());
const weightNames = decoder.weights.map((w) => w.originalName);

/** Sets the decoder's weights to `policy`'s quantize → dequantize round trip; returns its byte size. */
function applyPolicy(keepFloat16: Set<string>, uint8: boolean): number {
  let bytes = 0;
  const next = original.map((t, i) => {
    const name = weightNames[i];
    const mode = !uint8 ? 'none' : keepFloat16.has(name) ? 'float16' : 'uint8';
    const spec = [{ name, shape: t.shape, dtype: 'float32' as const }];
    const q = quantizeWeights(spec, (t.dataSync() as Float32Array).slice().buffer, mode);
    bytes += q.data.byteLength;
    return tf.io.decodeWeights(q.data, q.specs)[name];
  });
  decoder.setWeights(next);
  next.forEach((t) => t.dispose());
  return bytes;
}

function score(): Record<string, { bleu4: number; ciderD: number }> {
  const w = decoderWeights(decoder);
  const out: Record<string, { bleu4: number; ciderD: number }> = {};
  for (const beam of beams) {
    const s = scoreCaptions(refs, captionFeatureSet(w, bundle.vocabulary, set, { beam, maxLength: bundle.manifest.decoder.maxLength }));
    out[`beam${beam}`] = { bleu4: s.bleu4, ciderD: s.ciderD };
  }
  return out;
}

const large = weightNames.filter((_, i) => original[i].size >= UINT8_MIN_ELEMENTS);
const variants: { name: string; keep: string[]; uint8: boolean }[] = [
  { name: 'float32', keep: [], uint8: false },
  { name: 'uint8 (tensors ≥ 16384 elements)', keep: [], uint8: true },
  ...large.map((n) => ({ name: `uint8, ${n} float16`, keep: [n], uint8: true })),
];
const rows: Record<string, unknown>[] = [];
let base: Record<string, { bleu4: number; ciderD: number }> | undefined;
for (const v of variants) {
  const bytes = applyPolicy(new Set(v.keep), v.uint8);
  const s = score();
  base ??= s;
  const row: Record<string, unknown> = { variant: v.name, decoderKB: Math.round(bytes / 1024) };
  for (const [k, m] of Object.entries(s)) {
    row[`${k} B4`] = m.bleu4.toFixed(4);
    row[`${k} ΔB4`] = (m.bleu4 - base[k].bleu4).toFixed(4);
    row[`${k} C`] = m.ciderD.toFixed(4);
    row[`${k} ΔC`] = (m.ciderD - base[k].ciderD).toFixed(4);
  }
  rows.push(row);
  console.error(JSON.stringify(row));
}
console.log(`decoder of ${args.bundle} on ${set.names.length} dev images (cached ${encoderId} features)`);
console.table(rows);
writeDevReport(args.out, dev, args.bundle, rows);
