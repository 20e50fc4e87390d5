/**
 * Decoder time per photo for one or more bundles, in this process on the wasm backend: the same
 * 40 dev photos encoded once per bundle, then captioned 3 times each (after a warm-up round) at beam 3 (with and without
 * attention maps for attention bundles) and greedy; medians. Side by side in one run, so the
 * ratio holds even on a busy machine.
 *   npx tsx bench/decoder-speed.ts assets/model runs/<other>/bundle-uint8
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readDataset } from '../offline/data/captions';
import { fileSource } from '../offline/fs-source';
import { defaultPaths } from '../offline/paths';
import { loadCaptioner } from '../shared/captioner';
import { decodeImage } from '../shared/image/decode';
import { median } from './stats';

await tf.setBackend('wasm');
const ds = readDataset(defaultPaths().dataDir);
const images = ds.splits.dev.slice(0, 40).map((n) => decodeImage(new Uint8Array(readFileSync(join(ds.imageDir, n)))));
const rows: Record<string, unknown>[] = [];
for (const dir of process.argv.slice(2)) {
  const c = await loadCaptioner(fileSource(dir));
  const features = images.map((im) => c.encode(im));
  const attends = c.manifest.decoder.architecture === 'lstm-attention';
  for (const [beam, attention] of [[3, false], [3, true], [1, false]] as const) {
    if (attention && !attends) continue;
    const ms: number[] = [];
    // Round 0 warms the kernels and the JIT for this setting; it is not counted.
    for (let round = 0; round < 4; round++)
      for (const f of features) {
        const t = performance.now();
        c.captionFeatures(f, { beam, attention });
        if (round > 0) ms.push(performance.now() - t);
      }
    rows.push({ bundle: dir, decoder: c.manifest.decoder.architecture, beam, maps: attention, medianMs: Number(median(ms).toFixed(2)) });
  }
  c.dispose();
}
console.table(rows);
