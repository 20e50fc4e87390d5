import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import jpeg from 'jpeg-js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { serializeLayersModel } from '../shared/bundle/model-io';
import { fromFloat16, toFloat16 } from '../shared/bundle/quantize';
import { decodeImage } from '../shared/image/decode';
import { UNIT_RANGE_NORMALIZATION } from '../shared/image/normalize';
import { FeatureCache, imageKey } from '../offline/features/cache';
import { loadFeatureEncoder } from '../offline/features/encoder';
import { precomputeFeatures } from '../offline/features/precompute';

let tmp: string;
beforeAll(async () => {
  await tf.setBackend('cpu');
  tmp = mkdtempSync(join(tmpdir(), 'feature-cache-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('FeatureCache', () => {
  it('puts atomically and gets back the same floats', () => {
    const cache = new FeatureCache(join(tmp, 'c1'), 'enc1', 5);
    const key = imageKey(new Uint8Array([1, 2, 3]));
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    expect(cache.has(key)).toBe(false);
    expect(cache.get(key)).toBeUndefined();
    const f = new Float32Array([0.5, -1, 3.25, 1e-8, 42]);
    cache.put(key, f);
    expect(cache.pathOf(key)).toBe(join(tmp, 'c1', 'enc1', key.slice(0, 2), `${key}.f32`));
    expect(readdirSync(join(tmp, 'c1', 'enc1', key.slice(0, 2)))).toEqual([`${key}.f32`]); // no tmp files left
    expect(cache.has(key)).toBe(true);
    expect(Array.from(cache.get(key)!)).toEqual(Array.from(f));
    expect(() => cache.put(key, new Float32Array(4))).toThrow(/expected 5 features/);
  });

  it('treats a file of the wrong size as missing and deletes it', () => {
    const cache = new FeatureCache(join(tmp, 'c2'), 'enc1', 5);
    const key = imageKey(new Uint8Array([9]));
    mkdirSync(join(tmp, 'c2', 'enc1', key.slice(0, 2)), { recursive: true });
    writeFileSync(cache.pathOf(key), new Uint8Array(12)); // truncated: 3 floats
    expect(cache.has(key)).toBe(false);
    expect(cache.get(key)).toBeUndefined();
    expect(existsSync(cache.pathOf(key))).toBe(false);
  });
});

/** A tiny random conv net saved as tfjs-layers model.json + weights.bin. */
async function saveTinyModel(dir: string): Promise<string> {
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [16, 16, 3], filters: 4, kernelSize: 3, strides: 2, activation: 'relu', name: 'conv' }),
      tf.layers.globalAveragePooling2d({ name: 'gap' }),
      tf.layers.dense({ units: 2, activation: 'softmax', name: 'head' }),
    ],
  });
  for (const [path, bytes] of await serializeLayersModel(model, '', 'none')) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, path), bytes);
  }
  model.dispose();
  return join(dir, 'model.json');
}

function randomJpeg(seed: number, w = 24, h = 20): Uint8Array {
  const data = Buffer.alloc(w * h * 4);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + seed * 97 + ((i * seed) % 13) * 17) & 255;
  return jpeg.encode({ width: w, height: h, data }, 90).data;
}

describe('precomputeFeatures', () => {
  it('computes, caches, resumes after lost entries, and skips bad images', async () => {
    const modelPath = await saveTinyModel(join(tmp, 'model'));
    const encoder = await loadFeatureEncoder({ modelPath, layer: 'gap', normalization: UNIT_RANGE_NORMALIZATION });
    expect(encoder.inputSize).toBe(16);
    expect(encoder.featureSize).toBe(4);
    expect(encoder.id).toMatch(/^[0-9a-f]{16}$/);
    const other = await loadFeatureEncoder({ modelPath, normalization: UNIT_RANGE_NORMALIZATION });
    expect(other.featureSize).toBe(2);
    expect(other.id).not.toBe(encoder.id);
    await expect(loadFeatureEncoder({ modelPath, layer: 'nope', normalization: UNIT_RANGE_NORMALIZATION })).rejects.toThrow(/no layer 'nope'.*gap/);

    const imageDir = join(tmp, 'images');
    mkdirSync(imageDir);
    const good = ['p0.jpg', 'p1.jpg', 'p2.jpg', 'p3.jpg', 'p4.jpg'];
    good.forEach((n, i) => writeFileSync(join(imageDir, n), randomJpeg(i + 1)));
    writeFileSync(join(imageDir, 'corrupt.jpg'), new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]));
    const names = ['p0.jpg', 'corrupt.jpg', 'p1.jpg', 'p2.jpg', 'absent.jpg', 'p3.jpg', 'p4.jpg'];
    const cacheDir = join(tmp, 'cache');
    const opts = { dataset: { imageDir }, names, encoder, cacheDir, batchSize: 2, progress: false };

    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const onProgress = vi.fn();
    const first = await precomputeFeatures({ ...opts, onProgress });
    expect(first.names).toEqual(good);
    expect(first.matrix.length).toBe(good.length * 4);
    expect(first.stats.computed).toBe(5);
    expect(first.stats.fromCache).toBe(0);
    expect(first.stats.failed.map((f) => f.name)).toEqual(['corrupt.jpg', 'absent.jpg']);
    expect(first.stats.failed[0].reason).toMatch(/^undecodable/);
    expect(first.stats.failed[1].reason).toMatch(/^unreadable/);
    expect(first.stats.imagesPerSecond).toBeGreaterThan(0);
    expect(onProgress).toHaveBeenLastCalledWith({ done: 6, toCompute: 6, fromCache: 0, failed: 2 });
    // The cached rows equal what encodeBatch gives for the same image.
    const direct = encoder.encodeBatch([decodeImage(randomJpeg(3))]);
    expect(Array.from(first.matrix.subarray(8, 12))).toEqual(Array.from(direct));

    // Lose two cache entries (one deleted, one truncated): only those are recomputed.
    const cache = new FeatureCache(cacheDir, encoder.id, encoder.featureSize);
    const keyOf = (n: string) => imageKey(readFileSync(join(imageDir, n)));
    rmSync(cache.pathOf(keyOf('p1.jpg')));
    writeFileSync(cache.pathOf(keyOf('p4.jpg')), new Uint8Array(3));
    const second = await precomputeFeatures(opts);
    expect(second.stats.computed).toBe(2);
    expect(second.stats.fromCache).toBe(3);
    expect(second.names).toEqual(good);
    expect(Array.from(second.matrix)).toEqual(Array.from(first.matrix));

    const third = await precomputeFeatures(opts);
    expect(third.stats.computed).toBe(0);
    expect(third.stats.fromCache).toBe(5);
    expect(warn).toHaveBeenCalled();
    warn.mockRestore();
    encoder.dispose();
    other.dispose();
  });
});

describe('7×7 grids: float16 cache, filled without holding every grid in memory', () => {
  it('stores half-size files whose values round-trip within float16 precision, under their own folder', async () => {
    const modelPath = await saveTinyModel(join(tmp, 'grid-model'));
    const grid = await loadFeatureEncoder({ modelPath, layer: 'conv', normalization: UNIT_RANGE_NORMALIZATION });
    expect(grid.featureSize).toBe(7 * 7 * 4); // the conv's 7×7×4 output, flattened
    const imageDir = join(tmp, 'grid-images');
    mkdirSync(imageDir);
    const names = ['g0.jpg', 'g1.jpg', 'g2.jpg'];
    names.forEach((n, i) => writeFileSync(join(imageDir, n), randomJpeg(i + 11)));
    const cacheDir = join(tmp, 'grid-cache');
    const r = await precomputeFeatures({ dataset: { imageDir }, names, encoder: grid, cacheDir, float16: true, collect: false, progress: false });
    expect(r.names).toEqual(names);
    expect(r.matrix.length).toBe(0);
    expect(r.stats.computed).toBe(3);
    const cache = new FeatureCache(cacheDir, `${grid.id}-f16`, grid.featureSize, 'f16');
    const key = imageKey(readFileSync(join(imageDir, 'g1.jpg')));
    expect(readFileSync(cache.pathOf(key)).byteLength).toBe(grid.featureSize * 2);
    const exact = grid.encodeBatch([decodeImage(readFileSync(join(imageDir, 'g1.jpg')))]);
    const stored = cache.get(key)!;
    for (let i = 0; i < exact.length; i++) expect(Math.abs(stored[i] - exact[i])).toBeLessThanOrEqual(Math.abs(exact[i]) * 2 ** -11 + 1e-7);
    // A second run finds them all without reading them.
    const again = await precomputeFeatures({ dataset: { imageDir }, names, encoder: grid, cacheDir, float16: true, collect: false, progress: false });
    expect(again.stats.fromCache).toBe(3);
    expect(again.stats.computed).toBe(0);
    grid.dispose();
  });

  it('fromFloat16 inverts toFloat16 on every representable half', () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i).filter((h) => (h & 0x7c00) !== 0x7c00 || (h & 0x3ff) === 0); // no NaNs
    expect(Array.from(toFloat16(fromFloat16(all)))).toEqual(Array.from(all));
  });
});

