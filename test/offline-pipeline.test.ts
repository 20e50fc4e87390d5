import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../offline/backend';
import { loadCaptioner } from '../shared/captioner';
import { decodeImage } from '../shared/image/decode';
import { UNIT_RANGE_NORMALIZATION } from '../shared/image/normalize';
import { buildCompactVgg16 } from '../shared/models/vgg16';
import { trainCommand } from '../offline/commands/train';
import { DEFAULT_DECODER_CONFIG } from '../offline/config';
import { fileSource } from '../offline/fs-source';
import { writeTinyFlickr, writeTinyGlove } from './helpers/tiny-dataset';

const root = mkdtempSync(join(tmpdir(), 'pipeline-'));
beforeAll(async () => {
  await selectBackend();
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('offline pipeline end to end', () => {
  it('features → training → evaluation → export, then the bundle captions like the worker', async () => {
    const data = join(root, 'flickr');
    const { names } = writeTinyFlickr(data);
    writeTinyGlove(join(root, 'glove.txt'), 16);
    // A random compact VGG16 as the encoder, saved as a tfjs-layers model on disk.
    const encoder = buildCompactVgg16({ widthMultiplier: 1 / 16, inputSize: 32, featureSize: 12 }, { seed: 3 });
    await encoder.save(`file://${join(root, 'encoder')}`).catch(async () => {
      const { serializeLayersModel } = await import('../shared/bundle/model-io');
      const { writeFileAtomic } = await import('../offline/fs-atomic');
      for (const [p, b] of await serializeLayersModel(encoder, '', 'none')) writeFileAtomic(join(root, 'encoder', p), b);
    });
    const runDir = join(root, 'run');
    const config = { ...DEFAULT_DECODER_CONFIG, minWordCount: 1, maxLength: 8, embeddingSize: 16, units: 24, batchSize: 8, epochs: 3, learningRate: 1e-2, patience: 5 };
    await trainCommand({
      dataPath: data,
      glovePath: join(root, 'glove.txt'),
      encoderModel: join(root, 'encoder', 'model.json'),
      normalization: UNIT_RANGE_NORMALIZATION,
      cacheDir: join(root, 'cache'),
      runsDir: join(root, 'runs'),
      runDir,
      config,
      export: true,
      quantizations: ['none', 'uint8'],
      evalImages: 0,
    });
    const summary = JSON.parse(readFileSync(join(runDir, 'summary.json'), 'utf8'));
    expect(summary.history).toHaveLength(3);
    expect(summary.history[2].trainLoss).toBeLessThan(summary.history[0].trainLoss);
    expect(summary.gloveCoverage).toBeGreaterThan(0.3);
    expect(summary.bundles.uint8.bytes).toBeLessThan(summary.bundles.none.bytes);
    for (const f of ['loss.svg', 'dev-metrics.svg', 'gallery.html', 'state.json', 'best/model.json', 'checkpoint/optimizer.bin']) expect(existsSync(join(runDir, f)), f).toBe(true);

    // The exported bundle loads with the serving code and captions a photo.
    const captioner = await loadCaptioner(fileSource(join(runDir, 'bundle-uint8')));
    const r = captioner.caption(decodeImage(new Uint8Array(readFileSync(join(data, 'images', names[0])))), { beam: 3, alternatives: 2 });
    expect(r.caption.length).toBeGreaterThan(0);
    expect(r.alternatives.length).toBeGreaterThanOrEqual(1);

    // Rerunning the same run folder resumes: training is already done, features come from the cache.
    const again = await trainCommand({
      dataPath: data, glovePath: null, encoderModel: join(root, 'encoder', 'model.json'), normalization: UNIT_RANGE_NORMALIZATION,
      cacheDir: join(root, 'cache'), runsDir: join(root, 'runs'), runDir, config, export: false, quantizations: [], evalImages: 0,
    });
    expect(again).toBe(runDir);
    expect(JSON.parse(readFileSync(join(runDir, 'summary.json'), 'utf8')).history).toHaveLength(3);

    // Asked for more epochs, a finished (not early-stopped) run goes on from its checkpoint.
    await trainCommand({
      dataPath: data, glovePath: null, encoderModel: join(root, 'encoder', 'model.json'), normalization: UNIT_RANGE_NORMALIZATION,
      cacheDir: join(root, 'cache'), runsDir: join(root, 'runs'), runDir, config: { ...config, epochs: 4 }, export: false, quantizations: [], evalImages: 0,
    });
    expect(JSON.parse(readFileSync(join(runDir, 'summary.json'), 'utf8')).history.map((h: { epoch: number }) => h.epoch)).toEqual([1, 2, 3, 4]);
    expect(tf.getBackend()).toBeTruthy();
  });
});
