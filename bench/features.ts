/**
 * Teacher (MobileNet v1 0.75) feature throughput on Flickr8k.
 *   npx tsx bench/features.ts                 # first 200 train images, fresh temp cache: pure compute rate
 *   npx tsx bench/features.ts --all           # train + dev + unsplit into the shared cache (what training reads)
 * Options: --limit N, --batch N, --cache-dir DIR. Backend: wasm unless TFJS_BACKEND says otherwise.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { selectBackend } from '../offline/backend';
import { readFlickr8k } from '../offline/data/captions';
import { loadFeatureEncoder } from '../offline/features/encoder';
import { precomputeFeatures } from '../offline/features/precompute';
import { defaultPaths } from '../offline/paths';
import { UNIT_RANGE_NORMALIZATION } from '../shared/image/normalize';

const { values: args } = parseArgs({
  options: {
    all: { type: 'boolean', default: false },
    limit: { type: 'string', default: '200' },
    batch: { type: 'string', default: '16' },
    'cache-dir': { type: 'string' },
  },
});

const paths = defaultPaths();
const backend = await selectBackend(process.env.TFJS_BACKEND || 'wasm');
const dataset = readFlickr8k(paths.dataDir);
const { train, dev, unsplit } = dataset.splits;
const names = args.all ? [...train, ...dev, ...unsplit] : train.slice(0, Number(args.limit));
const tempCache = !args.all && !args['cache-dir'] ? mkdtempSync(join(tmpdir(), 'bench-features-')) : undefined;
const cacheDir = args['cache-dir'] ?? tempCache ?? paths.cacheDir;

const encoder = await loadFeatureEncoder({ modelPath: paths.teacherModel, layer: 'global_average_pooling2d_1', normalization: UNIT_RANGE_NORMALIZATION });
console.log(`encoder ${encoder.id}: ${paths.teacherModel} @ global_average_pooling2d_1 → ${encoder.featureSize}-d, ${encoder.inputSize}² input`);
console.log(`cache: ${join(cacheDir, encoder.id)}${tempCache ? ' (temporary)' : ''}; ${names.length} images, batch ${args.batch}, backend ${backend}`);

// Warm-up outside the timing (wasm kernel setup, first-call allocation).
encoder.encodeBatch([{ width: 8, height: 8, data: new Uint8Array(8 * 8 * 3) }]);

const r = await precomputeFeatures({ dataset, names, encoder, cacheDir, batchSize: Number(args.batch) });
const s = r.stats;
console.log(
  `${r.names.length} images with features: ${s.computed} computed, ${s.fromCache} from cache, ${s.failed.length} failed, ` +
    `${s.seconds.toFixed(1)} s → ${s.imagesPerSecond.toFixed(1)} images/s (backend ${backend}, batch ${args.batch})`,
);
for (const f of s.failed.slice(0, 10)) console.log(`  failed: ${f.name}: ${f.reason}`);
if (tempCache) rmSync(tempCache, { recursive: true, force: true });
