import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fitImageStats, fitLogistic, invert, spearman } from '../offline/calibrate/fit';
import { calibrateCommand } from '../offline/commands/calibrate';
import { rng } from '../offline/random';
import { validateManifest } from '../shared/bundle/manifest';
import { photoDistance, statsDistance } from '../shared/confidence';
import { tinyBundle } from './helpers/tiny-bundle';
import { writeTinyFlickr } from './helpers/tiny-dataset';

const root = mkdtempSync(join(tmpdir(), 'calibrate-'));
beforeAll(async () => {
  await tf.setBackend('cpu');
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('confidence fitting', () => {
  it('spearman: ±1 for monotone relations, ties averaged, ~0 for unrelated samples', () => {
    expect(spearman([1, 2, 3, 4], [10, 20, 30, 400])).toBeCloseTo(1, 12);
    expect(spearman([1, 2, 3, 4], [4, 3, 2, 1])).toBeCloseTo(-1, 12);
    // scipy.stats.spearmanr([1, 2, 2, 3], [1, 3, 2, 4]) = 0.9486832980505138
    expect(spearman([1, 2, 2, 3], [1, 3, 2, 4])).toBeCloseTo(0.9486832980505138, 12);
    const r = rng(3);
    const a = Array.from({ length: 2000 }, () => r());
    const b = Array.from({ length: 2000 }, () => r());
    expect(Math.abs(spearman(a, b))).toBeLessThan(0.06);
  });

  it('invert: A·A⁻¹ = I', () => {
    const m = [[4, 1, 0.5], [1, 3, 0.2], [0.5, 0.2, 2]];
    const inv = invert(m);
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) expect(m[i].reduce((s, v, k) => s + v * inv[k][j], 0)).toBeCloseTo(i === j ? 1 : 0, 10);
    expect(() => invert([[1, 2], [2, 4]])).toThrow(/singular/);
  });

  it('image statistics: the limit is the furthest training row; a far-off row is past it', () => {
    const r = rng(5);
    const rows = Array.from({ length: 300 }, () => [r(), r() * 2, r() + 3]);
    const model = fitImageStats(rows);
    expect(Math.max(...rows.map((x) => statsDistance(x, model)))).toBeCloseTo(model.limit, 10);
    expect(statsDistance([0.5, 1, 3.5], model)).toBeLessThan(0.2 * model.limit);
    expect(statsDistance([5, 1, 3.5], model)).toBeGreaterThan(3 * model.limit);
    // Just outside one statistic's range (by a quarter of its spread) while close in Mahalanobis terms.
    const edge = [Math.max(...rows.map((x) => x[0])) + 0.25 * model.std[0], 1, 3.5];
    expect(statsDistance(edge, model)).toBeLessThan(model.limit);
    expect(photoDistance(edge, model)).toBeCloseTo(1.25 * model.limit, 6);
    expect(photoDistance([0.5, 1, 3.5], model)).toBe(statsDistance([0.5, 1, 3.5], model));
  });

  it('logistic regression recovers the direction and rough size of a known model', () => {
    const r = rng(9);
    const x = Array.from({ length: 1500 }, () => [r() * 4 - 2, r() * 10, r()]);
    const y = x.map(([a, , c]) => (r() < 1 / (1 + Math.exp(-(2 * a - 3 * (c - 0.5)))) ? 1 : 0));
    const m = fitLogistic(x, y);
    const [wa, wb, wc] = m.weights.map((w, j) => w / m.scale[j]); // back to raw units
    expect(wa).toBeGreaterThan(1.4);
    expect(wa).toBeLessThan(2.6);
    expect(Math.abs(wb)).toBeLessThan(0.1);
    expect(wc).toBeLessThan(-2);
  });
});

describe('offline:calibrate', () => {
  it('writes a valid confidence entry into the bundle and a summary with held-out Spearman and the non-photo check', async () => {
    const data = join(root, 'flickr');
    writeTinyFlickr(data, 8);
    const bundle = join(root, 'bundle');
    for (const [p, b] of await tinyBundle()) {
      mkdirSync(dirname(join(bundle, p)), { recursive: true });
      writeFileSync(join(bundle, p), b);
    }
    const runDir = await calibrateCommand({ dataPath: data, bundleDir: bundle, runsDir: root, runDir: join(root, 'run'), trainImages: 0, beam: 2 });
    const manifest = validateManifest(JSON.parse(readFileSync(join(bundle, 'manifest.json'), 'utf8')));
    expect(manifest.confidence?.version).toBe(1);
    expect(manifest.confidence?.fittedOn).toMatch(/6 dev photos \(beam 2\); image statistics of 18 training photos/);
    const summary = JSON.parse(readFileSync(join(runDir, 'summary.json'), 'utf8'));
    expect(summary.devImages).toBe(6);
    expect(summary.spearmanHeldOut).toBeGreaterThanOrEqual(-1);
    expect(summary.spearmanHeldOut).toBeLessThanOrEqual(1);
    expect(summary.nonPhotos.map((r: { name: string }) => r.name)).toContain('text screenshot');
    // Flat-colour "photos": a blank white image is far outside their statistics and rated below all of them.
    const white = summary.nonPhotos.find((r: { name: string }) => r.name === 'blank white');
    expect(white.distance).toBeGreaterThan(manifest.confidence!.imageStats.limit);
    expect(white.confidence).toBeLessThan(summary.devConfidence.min);
  }, 120_000);
});
