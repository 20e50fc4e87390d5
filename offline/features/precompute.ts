import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeImage } from '../../shared/image/decode';
import type { RgbImage } from '../../shared/image/types';
import type { CaptionDataset } from '../data/captions';
import { createProgress } from '../report/progress';
import { FeatureCache, imageKey } from './cache';
import type { FeatureEncoder } from './encoder';

export interface PrecomputeProgress {
  /** Images computed so far (cache misses handled), out of `toCompute`. */
  done: number;
  toCompute: number;
  fromCache: number;
  failed: number;
}

export interface PrecomputeOptions {
  dataset: Pick<CaptionDataset, 'imageDir'>;
  /** Image file names, relative to dataset.imageDir. */
  names: string[];
  encoder: FeatureEncoder;
  cacheDir: string;
  batchSize?: number;
  onProgress?: (p: PrecomputeProgress) => void;
  /** Show the progress bar / progress lines on stderr (default true). */
  progress?: boolean;
  /** Store as float16 (`.f16`, under its own cache folder): for 7×7 grids. */
  float16?: boolean;
  /** false: only fill the cache; the result's matrix stays empty (grids of every photo do not fit in memory). */
  collect?: boolean;
}

export interface PrecomputeStats {
  computed: number;
  fromCache: number;
  failed: { name: string; reason: string }[];
  seconds: number;
  /** Newly computed images per wall-clock second (reading + decoding + encoding + writing). */
  imagesPerSecond: number;
}

export interface PrecomputeResult {
  /** The names that have features, in input order. */
  names: string[];
  /** names.length × encoder.featureSize, row-major (empty when not collected). */
  matrix: Float32Array;
  stats: PrecomputeStats;
}

/**
 * Encoder features for `names`, computing only those not yet in the content-keyed cache
 * (so an interrupted run resumes). Unreadable or undecodable images are reported and skipped.
 */
export async function precomputeFeatures(opts: PrecomputeOptions): Promise<PrecomputeResult> {
  const { dataset, names, encoder, batchSize = 16, onProgress } = opts;
  const t0 = performance.now();
  const collect = opts.collect ?? true;
  const cacheId = opts.float16 ? `${encoder.id}-f16` : encoder.id;
  const cache = new FeatureCache(opts.cacheDir, cacheId, encoder.featureSize, opts.float16 ? 'f16' : 'f32');
  cache.writeInfo({ modelPath: encoder.modelPath, layer: encoder.layer ?? null, inputSize: encoder.inputSize, normalization: encoder.normalization });

  const features: (Float32Array | undefined)[] = new Array(names.length);
  const failed: { index: number; name: string; reason: string }[] = [];
  const todo: { index: number; key: string }[] = [];
  const read = (index: number): Uint8Array | undefined => {
    try {
      return readFileSync(join(dataset.imageDir, names[index]));
    } catch (e) {
      failed.push({ index, name: names[index], reason: `unreadable: ${message(e)}` });
      return undefined;
    }
  };

  // Pass 1: hash every file and take what the cache has, so the bar below counts real work only.
  let fromCache = 0;
  for (let index = 0; index < names.length; index++) {
    const bytes = read(index);
    if (!bytes) continue;
    const key = imageKey(bytes);
    const hit = collect ? cache.get(key) : cache.has(key) ? EMPTY : undefined;
    if (hit) {
      features[index] = hit;
      fromCache++;
    } else todo.push({ index, key });
  }

  // Pass 2: decode + encode the misses in batches (files are read again to keep memory flat).
  const bar = opts.progress === false ? undefined : createProgress(todo.length, `features ${cacheId}`, { unit: 'img' });
  let computed = 0;
  let done = 0;
  try {
    for (let b = 0; b < todo.length; b += batchSize) {
      const batch: { index: number; key: string; image: RgbImage }[] = [];
      for (const item of todo.slice(b, b + batchSize)) {
        const bytes = read(item.index);
        if (!bytes) continue;
        try {
          batch.push({ ...item, image: decodeImage(bytes) });
        } catch (e) {
          failed.push({ index: item.index, name: names[item.index], reason: `undecodable: ${message(e)}` });
        }
      }
      const out = encoder.encodeBatch(batch.map((x) => x.image));
      batch.forEach(({ index, key }, i) => {
        const f = out.slice(i * encoder.featureSize, (i + 1) * encoder.featureSize);
        cache.put(key, f);
        features[index] = collect ? f : EMPTY;
      });
      computed += batch.length;
      const n = Math.min(batchSize, todo.length - b);
      done += n;
      bar?.tick(n);
      onProgress?.({ done, toCompute: todo.length, fromCache, failed: failed.length });
    }
  } finally {
    bar?.stop();
  }

  const kept: string[] = [];
  const matrix = new Float32Array(collect ? names.length * encoder.featureSize : 0);
  features.forEach((f, index) => {
    if (!f) return;
    if (collect) matrix.set(f, kept.length * encoder.featureSize);
    kept.push(names[index]);
  });
  const seconds = (performance.now() - t0) / 1000;
  failed.sort((a, b) => a.index - b.index);
  if (failed.length) {
    const shown = failed.slice(0, 3).map((f) => `${f.name} (${f.reason})`);
    console.warn(`warning: ${failed.length} image(s) skipped: ${shown.join('; ')}${failed.length > 3 ? '; …' : ''}`);
  }
  return {
    names: kept,
    matrix: !collect || kept.length === names.length ? matrix : matrix.slice(0, kept.length * encoder.featureSize),
    stats: {
      computed,
      fromCache,
      failed: failed.map(({ name, reason }) => ({ name, reason })),
      seconds,
      imagesPerSecond: computed / seconds,
    },
  };
}

/** Marks "in the cache" when features are not collected. */
const EMPTY = new Float32Array(0);

function message(e: unknown): string {
  return String(e instanceof Error ? e.message : e).split('\n')[0];
}
