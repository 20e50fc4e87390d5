import { join } from 'node:path';
import type { BundleManifest, Normalization } from '../../shared/bundle/manifest';
import type { CaptionDataset } from '../data/captions';
import type { FeatureSet } from '../evaluate/caption-features';
import { loadFeatureEncoder, type FeatureEncoder } from './encoder';
import { precomputeFeatures, type PrecomputeStats } from './precompute';

/** The encoder grid an attention decoder reads: a layer's [rows, cols, channels] output. */
export interface GridSpec {
  layer: string;
  grid: [number, number];
  channels: number;
}

/** The grid a bundle's attention decoder reads, from its manifest (`encoder.grid`). */
export function gridSpecOf(m: BundleManifest): GridSpec | undefined {
  const g = m.encoder.grid;
  return g && { layer: g.layer, grid: [g.shape[0], g.shape[1]], channels: g.shape[2] };
}

export interface FeatureRows extends FeatureSet {
  /** The pooled feature's encoder (its id keys the cache; its model is what a bundle exports). */
  encoder: FeatureEncoder;
  /** Columns 0 … pooledSize − 1 of a row are the pooled feature; the grid (cell-major) follows. */
  pooledSize: number;
  grid?: GridSpec & { encoderId: string };
  /** Other encoders' pooled features appended to each row (`concat`), in order, every part scaled by 1/parts; empty without. */
  concatenated: { id: string; modelPath: string; layer?: string; featureSize: number }[];
  stats: PrecomputeStats;
}

/** One more encoder whose pooled feature is appended to the rows (a concatenation of teachers). */
export interface ConcatEncoder {
  modelPath: string;
  layer?: string;
  normalization: Normalization;
}

/**
 * Feature rows for the decoder: the pooled feature of `layer`, followed with `gridLayer` by that
 * layer's grid, or with `concat` by other encoders' pooled features; each computed once into the
 * cache (grids as float16). Photos missing any part are left out.
 */
export async function loadFeatureRows(o: {
  dataset: Pick<CaptionDataset, 'imageDir'>;
  names: string[];
  encoderModel: string;
  layer?: string;
  gridLayer?: string;
  normalization: Normalization;
  cacheDir: string;
  concat?: ConcatEncoder[];
}): Promise<FeatureRows> {
  // The grid's columns follow the pooled ones, so appended pooled features would land after the grid.
  if (o.gridLayer && o.concat?.length) throw new Error('an attention grid and concatenated encoders do not go together: the decoder reads [pooled | grid] rows');
  const encoder = await loadFeatureEncoder({ modelPath: o.encoderModel, layer: o.layer, normalization: o.normalization });
  const pooled = await precomputeFeatures({ dataset: o.dataset, names: o.names, encoder, cacheDir: o.cacheDir });
  if (o.concat?.length) return concatenate(o, encoder, { ...pooled, featureSize: encoder.featureSize }, o.concat);
  if (!o.gridLayer) return { names: pooled.names, matrix: pooled.matrix, featureSize: encoder.featureSize, pooledSize: encoder.featureSize, encoder, concatenated: [], stats: pooled.stats };

  const gridEncoder = await loadFeatureEncoder({ modelPath: o.encoderModel, layer: o.gridLayer, normalization: o.normalization });
  const shape = gridEncoder.model.outputs[0].shape.slice(1);
  if (shape.length !== 3 || !shape.every((n) => typeof n === 'number')) {
    gridEncoder.dispose();
    throw new Error(`--grid-layer ${o.gridLayer} gives [${shape.join(', ')}], not a [rows, cols, channels] grid`);
  }
  const [rows, cols, channels] = shape as number[];
  try {
    const grid = await precomputeFeatures({ dataset: o.dataset, names: pooled.names, encoder: gridEncoder, cacheDir: o.cacheDir, float16: true });
    const joined = joinRows({ ...pooled, featureSize: encoder.featureSize }, { ...grid, featureSize: gridEncoder.featureSize });
    return {
      ...joined,
      encoder,
      pooledSize: encoder.featureSize,
      grid: { layer: o.gridLayer, grid: [rows, cols], channels, encoderId: `${gridEncoder.id}-f16` },
      concatenated: [],
      stats: sumStats(pooled.stats, grid.stats),
    };
  } finally {
    gridEncoder.dispose();
  }
}

async function concatenate(o: { dataset: Pick<CaptionDataset, 'imageDir'>; cacheDir: string }, encoder: FeatureEncoder, first: FeatureSet & { stats: PrecomputeStats }, more: ConcatEncoder[]): Promise<FeatureRows> {
  let rows: FeatureSet = first;
  let stats = first.stats;
  const concatenated: FeatureRows['concatenated'] = [];
  for (const c of more) {
    const other = await loadFeatureEncoder({ modelPath: c.modelPath, layer: c.layer, normalization: c.normalization });
    try {
      const part = await precomputeFeatures({ dataset: o.dataset, names: rows.names, encoder: other, cacheDir: o.cacheDir });
      rows = joinRows(rows, { ...part, featureSize: other.featureSize });
      stats = sumStats(stats, part.stats);
      concatenated.push({ id: other.id, modelPath: c.modelPath, layer: c.layer, featureSize: other.featureSize });
    } finally {
      other.dispose();
    }
  }
  // Every part × 1/k: Adam moves each weight by about the learning rate whatever its input, so a
  // pre-activation moves with the sum of |feature|; k teachers side by side would otherwise step k×
  // as far as one (the plain concatenation of two diverged into "a a a …" at the recipe's rate).
  const k = 1 + more.length;
  for (let i = 0; i < rows.matrix.length; i++) rows.matrix[i] /= k;
  return { ...rows, pooledSize: rows.featureSize, encoder, concatenated, stats };
}

function sumStats(a: PrecomputeStats, b: PrecomputeStats): PrecomputeStats {
  // Photos, not cache files: a photo needing either part counts once as computed.
  const computed = Math.max(a.computed, b.computed);
  const seconds = a.seconds + b.seconds;
  return { computed, fromCache: Math.min(a.fromCache, b.fromCache), failed: [...a.failed, ...b.failed], seconds, imagesPerSecond: computed ? computed / seconds : 0 };
}

/** Rows [a | b] for the names both sets have, in a's order. */
export function joinRows(a: FeatureSet, b: FeatureSet): FeatureSet {
  const rowOfB = new Map(b.names.map((n, i) => [n, i]));
  const names = a.names.filter((n) => rowOfB.has(n));
  const F = a.featureSize + b.featureSize;
  const matrix = new Float32Array(names.length * F);
  const rowOfA = new Map(a.names.map((n, i) => [n, i]));
  names.forEach((n, i) => {
    const ra = rowOfA.get(n)!;
    const rb = rowOfB.get(n)!;
    matrix.set(a.matrix.subarray(ra * a.featureSize, (ra + 1) * a.featureSize), i * F);
    matrix.set(b.matrix.subarray(rb * b.featureSize, (rb + 1) * b.featureSize), i * F + a.featureSize);
  });
  return { names, matrix, featureSize: F };
}

/** The given rows of a feature matrix, copied into one block (a training batch). */
export function gatherRows(set: FeatureSet, rows: ArrayLike<number>): Float32Array {
  const F = set.featureSize;
  const out = new Float32Array(rows.length * F);
  for (let i = 0; i < rows.length; i++) out.set(set.matrix.subarray(rows[i] * F, (rows[i] + 1) * F), i * F);
  return out;
}

/**
 * Where a bundle's decoder reads its features from: the bundle's own encoder, or another copy of
 * it whose features are already cached (e.g. the teacher model a decoder run was trained on).
 */
export interface BundleFeatureSource {
  encoderModel?: string;
  encoderLayer?: string;
  /** The grid layer of `encoderModel` an attention decoder reads (default: the bundle's `encoder.grid.layer`). */
  gridLayer?: string;
  normalization?: Normalization;
  cacheDir: string;
}

/** The feature rows a bundle's decoder reads (pooled, and the grid for attention decoders), from the cache where it can. */
export function loadBundleFeatureRows(o: BundleFeatureSource & { bundleDir: string; manifest: BundleManifest; dataset: Pick<CaptionDataset, 'imageDir'>; names: string[] }): Promise<FeatureRows> {
  const m = o.manifest;
  return loadFeatureRows({
    dataset: o.dataset,
    names: o.names,
    encoderModel: o.encoderModel ?? join(o.bundleDir, m.encoder.modelPath),
    layer: o.encoderLayer,
    gridLayer: m.decoder.attention ? (o.gridLayer ?? m.encoder.grid?.layer) : undefined,
    normalization: o.normalization ?? m.encoder.normalization,
    cacheDir: o.cacheDir,
  });
}
