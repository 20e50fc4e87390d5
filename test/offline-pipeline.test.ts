import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../offline/backend';
import { loadCaptioner } from '../shared/captioner';
import { decodeImage } from '../shared/image/decode';
import { UNIT_RANGE_NORMALIZATION } from '../shared/image/normalize';
import { buildCompactVgg16 } from '../shared/models/vgg16';
import { evaluateCommand } from '../offline/commands/evaluate';
import { featuresCommand } from '../offline/commands/features';
import { scstCommand } from '../offline/commands/scst';
import { initSource, trainCommand } from '../offline/commands/train';
import { DEFAULT_DECODER_CONFIG, DEFAULT_FINETUNE_CONFIG, DEFAULT_SCST_CONFIG } from '../offline/config';
import { finetuneCommand } from '../offline/commands/finetune';
import { teacherCaptionsCommand } from '../offline/commands/teacher-captions';
import { colourCheckCommand } from '../offline/commands/colour-check';
import { colourCheckInput, colourCheckWeights, colourFractions, unlikelyColours } from '../shared/colour-check';
import { readExtraCaptions } from '../offline/data/extra-captions';
import { readDataset } from '../offline/data/captions';
import { loadBest } from '../offline/epochs';
import { evaluateBundle } from '../offline/evaluate/evaluate-bundle';
import { captionFeatureSet } from '../offline/evaluate/caption-features';
import { loadFeatureEncoder } from '../offline/features/encoder';
import { precomputeFeatures } from '../offline/features/precompute';
import { loadFeatureRows } from '../offline/features/feature-rows';
import { decoderWeights } from '../shared/models/decoder-ops';
import { Vocabulary } from '../shared/text/vocabulary';
import { serializeLayersModel } from '../shared/bundle/model-io';
import { loadBundle } from '../shared/bundle/load';
import { writeFileAtomic } from '../offline/fs-atomic';
import { fileSource } from '../offline/fs-source';
import { writeTinyFlickr, writeTinyGlove } from './helpers/tiny-dataset';
import { tinyBundle } from './helpers/tiny-bundle';

const root = mkdtempSync(join(tmpdir(), 'pipeline-'));
beforeAll(async () => {
  await selectBackend();
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('offline pipeline end to end', () => {
  it('features → training → evaluation → export, then the bundle captions like the worker', async () => {
    const data = join(root, 'flickr');
    const { names, captionOf } = writeTinyFlickr(data);
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

    // The colour check learns from the train captions which colour a flat photo's references name,
    // and goes into the manifest with the dev metrics measured with it.
    const bundleDir = join(runDir, 'bundle-uint8');
    await colourCheckCommand({ dataPath: data, bundleDir, runsDir: join(root, 'runs'), runDir: join(root, 'colour-check'), thresholds: [0.3, 0.5], maxCiderLoss: 1, steps: 200 });
    const manifest = JSON.parse(readFileSync(join(bundleDir, 'manifest.json'), 'utf8'));
    expect(manifest.colourCheck.words.sort()).toEqual(['blue', 'green', 'red']);
    expect(manifest.colourCheck.threshold).toBe(0.5);
    expect(manifest.metrics.colourCheck).toBe(true);
    expect(manifest.metrics.unsupportedColours['3'].said).toBeGreaterThanOrEqual(0);
    const checked = await loadCaptioner(fileSource(bundleDir));
    const check = checked.manifest.colourCheck!;
    const redPhoto = decodeImage(new Uint8Array(readFileSync(join(data, 'images', names.find((n) => captionOf.get(n)!.split(' ').includes('red'))!))));
    const row = checked.encode(redPhoto);
    const banned = unlikelyColours(check, colourCheckWeights(check), colourCheckInput(row.subarray(0, 12), colourFractions(redPhoto)));
    expect(banned.sort()).toEqual(['blue', 'green']);
    expect(checked.caption(redPhoto).caption.split(' ')).not.toContain('blue');
    checked.dispose();
  });

  it('one feature cache per encoder whichever command fills it; training-time dev captions equal the bundle evaluation; SCST, --init-from a bundle, and teacher captions of the train photos as extra training captions', async () => {
    const data = join(root, 'flickr2');
    writeTinyFlickr(data);
    const encoderDir = join(root, 'encoder2');
    const encoder = buildCompactVgg16({ widthMultiplier: 1 / 16, inputSize: 32, featureSize: 12 }, { seed: 4 });
    for (const [p, b] of await serializeLayersModel(encoder, '', 'none')) writeFileAtomic(join(encoderDir, p), b);
    const encoderModel = join(encoderDir, 'model.json');
    const cacheDir = join(root, 'cache2');
    const common = { dataPath: data, encoderModel, normalization: UNIT_RANGE_NORMALIZATION, cacheDir, runsDir: join(root, 'runs') };

    // `offline:features --layer ''` then `offline:train` (no layer): the same cache entries.
    await featuresCommand({ ...common, encoderLayer: '', batchSize: 4 });
    expect(readdirSync(cacheDir)).toHaveLength(1);
    const runDir = join(root, 'run2');
    const config = { ...DEFAULT_DECODER_CONFIG, minWordCount: 1, maxLength: 8, embeddingSize: 16, units: 24, batchSize: 8, epochs: 2, learningRate: 1e-2 };
    await trainCommand({ ...common, glovePath: null, runDir, config, export: true, quantizations: ['none'], evalImages: 0 });
    expect(readdirSync(cacheDir)).toHaveLength(1);

    // Dev captions from the cached features and the best weights, as training scores them…
    const dataset = readDataset(data);
    const dev = dataset.splits.dev;
    const fe = await loadFeatureEncoder({ modelPath: encoderModel, normalization: UNIT_RANGE_NORMALIZATION });
    const feats = await precomputeFeatures({ dataset, names: dev, encoder: fe, cacheDir });
    expect(feats.stats.computed).toBe(0);
    const best = await loadBest(runDir);
    const vocab = Vocabulary.fromJSON(JSON.parse(readFileSync(join(runDir, 'vocab.json'), 'utf8')));
    const duringTraining = captionFeatureSet(decoderWeights(best), vocab, { names: feats.names, matrix: feats.matrix, featureSize: 12 }, { beam: 1, maxLength: 8 });
    // …are the ones the exported bundle gives from JPEG bytes through the serving code.
    const ev = await evaluateBundle(join(runDir, 'bundle-none'), dataset, dev, [1]);
    expect([...ev.captions['1']]).toEqual([...duringTraining]);
    expect(new Set(duringTraining.values()).size).toBeGreaterThan(0);
    best.dispose();
    fe.dispose();

    // SCST from that bundle, reading the same cache, exports a bundle that serves.
    const scstDir = join(root, 'scst');
    await scstCommand({
      ...common,
      from: join(runDir, 'bundle-none'),
      runDir: scstDir,
      config: { ...DEFAULT_SCST_CONFIG, epochs: 2, batchImages: 4, samples: 3, learningRate: 1e-3 },
      export: true,
      quantizations: ['uint8'],
      evalImages: 0,
    });
    expect(readdirSync(cacheDir)).toHaveLength(1);
    const scst = JSON.parse(readFileSync(join(scstDir, 'summary.json'), 'utf8'));
    expect(scst.history).toHaveLength(2);
    expect(scst.history[0].meanSampleReward).toBeGreaterThanOrEqual(0);
    expect(scst.bundles.uint8.byBeam['3'].ciderD).toBeGreaterThanOrEqual(0);
    const served = await loadCaptioner(fileSource(join(scstDir, 'bundle-uint8')));
    expect(served.manifest.id).toMatch(/-scst$/);
    expect(served.caption(decodeImage(new Uint8Array(readFileSync(join(dataset.imageDir, dev[0]))))).caption.length).toBeGreaterThan(0);
    served.dispose();

    // --init-from takes a bundle folder (its vocabulary and decoder) or a run folder.
    expect(initSource(join(scstDir, 'bundle-uint8')).decoderDir).toBe(join(scstDir, 'bundle-uint8', 'decoder'));
    expect(initSource(runDir).decoderDir).toBe(join(runDir, 'best'));
    expect(() => initSource(data)).toThrow(/neither a bundle folder \(manifest.json\) nor a decoder run folder/);
    const fromBundle = join(root, 'from-bundle');
    await trainCommand({ ...common, glovePath: null, runDir: fromBundle, config: { ...config, epochs: 1, learningRate: 1e-4 }, export: false, quantizations: [], evalImages: 0, initFrom: join(scstDir, 'bundle-uint8') });
    expect(readFileSync(join(fromBundle, 'vocab.json'), 'utf8')).toBe(readFileSync(join(runDir, 'vocab.json'), 'utf8'));

    // Sequence-level distillation: the SCST bundle captions every train photo (beam 3, from the
    // cache), and those captions join the human ones in training.
    const teacherCsv = await teacherCaptionsCommand({ ...common, from: join(scstDir, 'bundle-uint8'), outDir: join(root, 'teacher-captions'), beam: 3 });
    expect(readdirSync(cacheDir)).toHaveLength(1);
    const teacher = readExtraCaptions(teacherCsv, dataset.splits.train);
    expect([...teacher.keys()].sort()).toEqual([...dataset.splits.train].sort());
    const fe2 = await loadFeatureEncoder({ modelPath: encoderModel, normalization: UNIT_RANGE_NORMALIZATION });
    const trainFeats = await precomputeFeatures({ dataset, names: dataset.splits.train, encoder: fe2, cacheDir });
    const scstBundle = await loadBundle(fileSource(join(scstDir, 'bundle-uint8')));
    const expected = captionFeatureSet(decoderWeights(scstBundle.decoder), scstBundle.vocabulary, { names: trainFeats.names, matrix: trainFeats.matrix, featureSize: 12 }, { beam: 3, maxLength: 8 });
    expect(new Map([...teacher].map(([n, [c]]) => [n, c]))).toEqual(expected);
    // --per-photo 2: the beam's two best, distinct, the best first.
    const two = readExtraCaptions(await teacherCaptionsCommand({ ...common, from: join(scstDir, 'bundle-uint8'), outDir: join(root, 'teacher-captions-2'), beam: 3, perPhoto: 2 }), dataset.splits.train);
    for (const [n, caps] of two) {
      expect(caps[0]).toBe(expected.get(n));
      expect(caps.length === 1 || (caps.length === 2 && caps[0] !== caps[1])).toBe(true);
    }
    expect([...two.values()].some((c) => c.length === 2)).toBe(true);
    await expect(teacherCaptionsCommand({ ...common, from: join(scstDir, 'bundle-uint8'), beam: 2, perPhoto: 3 })).rejects.toThrow(/--per-photo must be an integer from 1 to the beam width \(2\)/);
    // --sample: n captions per photo drawn from the decoder, the same for the same seed.
    const sampled = (dir: string) => teacherCaptionsCommand({ ...common, from: join(scstDir, 'bundle-uint8'), outDir: join(root, dir), beam: 3, perPhoto: 4, sample: true, seed: 7 });
    const [s1, s2] = [await sampled('sampled-1'), await sampled('sampled-2')];
    expect(readFileSync(s1, 'utf8')).toBe(readFileSync(s2, 'utf8'));
    const drawn = readExtraCaptions(s1, dataset.splits.train);
    expect([...drawn.values()].every((c) => c.length === 4 && c.every((x) => x.length > 0))).toBe(true);
    scstBundle.encoder.dispose();
    scstBundle.decoder.dispose();
    fe2.dispose();
    const humanCaptions = dataset.splits.train.reduce((a, n) => a + (dataset.captions.get(n)?.length ?? 0), 0);
    const distilled = join(root, 'distilled');
    await trainCommand({ ...common, glovePath: null, runDir: distilled, config: { ...config, epochs: 1 }, export: false, quantizations: [], evalImages: 0, initFrom: runDir, extraCaptions: teacherCsv });
    const sum = JSON.parse(readFileSync(join(distilled, 'summary.json'), 'utf8'));
    expect(sum.trainCaptions).toBe(humanCaptions + dataset.splits.train.length);
  });

  it('--concat: a decoder on two encoders\' pooled features side by side, scored on the cached dev features since no bundle holds it', async () => {
    const data = join(root, 'flickr-concat');
    writeTinyFlickr(data);
    const modelOf = async (name: string, featureSize: number, seed: number) => {
      const m = buildCompactVgg16({ widthMultiplier: 1 / 16, inputSize: 32, featureSize }, { seed });
      for (const [p, b] of await serializeLayersModel(m, '', 'none')) writeFileAtomic(join(root, name, p), b);
      m.dispose();
      return join(root, name, 'model.json');
    };
    const [a, b] = [await modelOf('concat-a', 12, 5), await modelOf('concat-b', 7, 6)];
    const cacheDir = join(root, 'cache-concat');
    const runDir = join(root, 'run-concat');
    const config = { ...DEFAULT_DECODER_CONFIG, minWordCount: 1, maxLength: 8, embeddingSize: 16, units: 24, batchSize: 8, epochs: 2, learningRate: 1e-2 };
    const common = { dataPath: data, glovePath: null, encoderModel: a, normalization: UNIT_RANGE_NORMALIZATION, cacheDir, runsDir: join(root, 'runs'), config, quantizations: ['none' as const], evalImages: 0 };
    await trainCommand({ ...common, runDir, export: true, concat: [{ modelPath: b, normalization: UNIT_RANGE_NORMALIZATION }] });

    expect(readdirSync(cacheDir)).toHaveLength(2); // each encoder's features cached once, under its own id
    // The rows are [a | b] / 2, from the cache.
    const dataset = readDataset(data);
    const names = [...dataset.splits.train, ...dataset.splits.dev];
    const rowsOf = (o: { encoderModel: string; concat?: { modelPath: string; normalization: typeof UNIT_RANGE_NORMALIZATION }[] }) => loadFeatureRows({ dataset, names, normalization: UNIT_RANGE_NORMALIZATION, cacheDir, ...o });
    const [both, onlyA, onlyB] = [await rowsOf({ encoderModel: a, concat: [{ modelPath: b, normalization: UNIT_RANGE_NORMALIZATION }] }), await rowsOf({ encoderModel: a }), await rowsOf({ encoderModel: b })];
    expect(both.stats.computed).toBe(0);
    expect(both.featureSize).toBe(19);
    both.names.forEach((n, i) => {
      const [ra, rb] = [onlyA.names.indexOf(n), onlyB.names.indexOf(n)];
      const expected = [...onlyA.matrix.subarray(ra * 12, ra * 12 + 12), ...onlyB.matrix.subarray(rb * 7, rb * 7 + 7)].map((v) => v / 2);
      expect([...both.matrix.subarray(i * 19, i * 19 + 19)]).toEqual(expected.map((v) => Math.fround(v)));
    });
    const best = await loadBest(runDir);
    expect(best.inputs[0].shape).toEqual([null, 19]);
    best.dispose();
    const sum = JSON.parse(readFileSync(join(runDir, 'summary.json'), 'utf8'));
    expect(sum.encoder.concatenated.map((c: { featureSize: number }) => c.featureSize)).toEqual([7]);
    expect(existsSync(join(runDir, 'bundle-none'))).toBe(false);
    // Greedy on the same cached dev features is what picked the best epoch.
    expect(sum.devFromFeatures.source).toBe('feature cache (float)');
    expect(sum.devFromFeatures.byBeam['1'].ciderD).toBeCloseTo(sum.bestDevCiderDGreedy, 10);
    expect(sum.devFromFeatures.byBeam['3'].distinct).toBeGreaterThan(0);

    await expect(trainCommand({ ...common, runDir: join(root, 'run-concat-grid'), export: false, gridLayer: 'block5_conv3', concat: [{ modelPath: b, normalization: UNIT_RANGE_NORMALIZATION }] })).rejects.toThrow(/an attention grid and concatenated encoders do not go together/);
  });

  it('attention: --grid-layer caches the grid (float16), trains, exports an lstm-attention bundle; SCST keeps it; the bundle gives maps', async () => {
    const data = join(root, 'flickr3');
    writeTinyFlickr(data);
    const encoderDir = join(root, 'encoder3');
    const encoder = buildCompactVgg16({ widthMultiplier: 1 / 16, inputSize: 32, featureSize: 12 }, { seed: 5 });
    for (const [p, b] of await serializeLayersModel(encoder, '', 'none')) writeFileAtomic(join(encoderDir, p), b);
    const cacheDir = join(root, 'cache3');
    const common = { dataPath: data, encoderModel: join(encoderDir, 'model.json'), normalization: UNIT_RANGE_NORMALIZATION, cacheDir, runsDir: join(root, 'runs') };
    const runDir = join(root, 'run-att');
    const config = { ...DEFAULT_DECODER_CONFIG, minWordCount: 1, maxLength: 8, embeddingSize: 16, units: 24, attentionSize: 8, batchSize: 8, epochs: 2, learningRate: 1e-2 };
    await trainCommand({ ...common, gridLayer: 'block5_conv3', glovePath: null, runDir, config, export: true, quantizations: ['uint8'], evalImages: 0 });
    // The pooled features and the 2×2×32 grid, each in its own cache folder; the grid as float16.
    const caches = readdirSync(cacheDir).sort();
    expect(caches).toHaveLength(2);
    expect(caches.filter((c) => c.endsWith('-f16'))).toHaveLength(1);
    const summary = JSON.parse(readFileSync(join(runDir, 'summary.json'), 'utf8'));
    expect(summary.encoder.grid).toMatchObject({ layer: 'block5_conv3', grid: [2, 2], channels: 32 });
    const bundle = join(runDir, 'bundle-uint8');
    const manifest = JSON.parse(readFileSync(join(bundle, 'manifest.json'), 'utf8'));
    expect(manifest.decoder).toMatchObject({ architecture: 'lstm-attention', attention: { grid: [2, 2], channels: 32, size: 8 } });
    expect(manifest.encoder.grid).toEqual({ layer: 'block5_conv3', shape: [2, 2, 32] });

    const scstDir = join(root, 'scst-att');
    await scstCommand({ ...common, from: bundle, runDir: scstDir, config: { ...DEFAULT_SCST_CONFIG, epochs: 1, batchImages: 4, samples: 3, learningRate: 1e-3 }, export: true, quantizations: ['uint8'], evalImages: 0 });
    expect(readdirSync(cacheDir)).toHaveLength(2);
    const served = await loadCaptioner(fileSource(join(scstDir, 'bundle-uint8')));
    expect(served.manifest.decoder.architecture).toBe('lstm-attention');
    const dataset = readDataset(data);
    const r = served.caption(decodeImage(new Uint8Array(readFileSync(join(dataset.imageDir, dataset.splits.dev[0])))), { beam: 3, attention: true });
    expect(r.attention!.weights).toHaveLength(r.caption.split(' ').length);
    served.dispose();

    // The evaluation's attention gallery: one tinted 2×2 grid per content word of each caption.
    const evalDir = join(root, 'eval-att');
    await evaluateCommand({ dataPath: data, bundleDir: join(scstDir, 'bundle-uint8'), beams: [1], images: 0, outDir: evalDir, runsDir: join(root, 'runs'), attentionPhotos: 2 });
    const html = readFileSync(join(evalDir, 'attention.html'), 'utf8');
    expect(html.match(/<figure>/g)).toHaveLength(2);
    const maps = html.match(/<div class="g"[^>]*>(.*?)<\/div>/g) ?? [];
    expect(maps.length).toBeGreaterThan(0);
    for (const m of maps) expect(m.match(/<i /g)).toHaveLength(4);
    const pooledBundle = join(root, 'pooled-bundle');
    for (const [p, b] of await tinyBundle()) writeFileAtomic(join(pooledBundle, p), b);
    await expect(evaluateCommand({ dataPath: data, bundleDir: pooledBundle, beams: [1], images: 1, outDir: join(root, 'eval-pooled'), runsDir: join(root, 'runs'), attentionPhotos: 1 })).rejects.toThrow(/has no attention decoder/);

    // Caption-loss fine-tuning of encoder and decoder together, from the attention bundle.
    const ftDir = join(root, 'finetune-att');
    const ftConfig = { ...DEFAULT_FINETUNE_CONFIG, epochs: 2, batchImages: 4, encoderLearningRate: 1e-3, decoderLearningRate: 1e-3, checkpointEvery: 1 };
    await finetuneCommand({ dataPath: data, from: bundle, runsDir: join(root, 'runs'), runDir: ftDir, config: ftConfig, export: true, quantizations: ['uint8'], evalImages: 0 });
    const ft = JSON.parse(readFileSync(join(ftDir, 'summary.json'), 'utf8'));
    expect(ft.history).toHaveLength(2);
    expect(ft.history[1].devFeatureDrift).toBeGreaterThan(0);
    const tuned = await loadCaptioner(fileSource(join(ftDir, 'bundle-uint8')));
    expect(tuned.manifest).toMatchObject({ id: expect.stringMatching(/-ft$/), decoder: { architecture: 'lstm-attention' }, encoder: { grid: { layer: 'block5_conv3' } } });
    const photo = decodeImage(new Uint8Array(readFileSync(join(dataset.imageDir, dataset.splits.dev[0]))));
    const start = await loadCaptioner(fileSource(bundle));
    // The encoder itself changed (not only the decoder).
    const a = start.encode(photo);
    const b = tuned.encode(photo);
    expect(a.length).toBe(b.length);
    expect(a.some((v, i) => Math.abs(v - b[i]) > 1e-4)).toBe(true);
    expect(tuned.caption(photo, { attention: true }).attention!.grid).toEqual([2, 2]);
    tuned.dispose();
    start.dispose();
  });

  it('own photos: a folder with captions.csv → a new decoder on the shipped-style bundle\'s encoder (--init-from the bundle) → a bundle that serves', async () => {
    // The photos of the tiny Flickr set, described in a plain image,caption CSV instead.
    const flickr = join(root, 'flickr-for-csv');
    const { names, captionOf } = writeTinyFlickr(flickr);
    const own = join(root, 'my-photos');
    const { cpSync, writeFileSync } = await import('node:fs');
    cpSync(join(flickr, 'images'), join(own, 'images'), { recursive: true });
    writeFileSync(join(own, 'captions.csv'), ['image,caption', ...names.flatMap((n) => [`${n},"${captionOf.get(n)}"`, `${n},${captionOf.get(n)!.replace(/^a /, 'one ')}`])].join('\n'));
    const ds = readDataset(own);
    expect(ds.splits.train.length + ds.splits.dev.length).toBe(names.length);
    expect(ds.splits.dev.length).toBeGreaterThan(0);

    // A bundle to start from, as assets/model would be.
    const base = join(root, 'run');
    const bundle = join(base, 'bundle-uint8');
    const m = JSON.parse(readFileSync(join(bundle, 'manifest.json'), 'utf8'));
    const runDir = join(root, 'my-decoder');
    await trainCommand({
      dataPath: own, glovePath: null, encoderModel: join(bundle, m.encoder.modelPath), encoderLayer: '', normalization: m.encoder.normalization,
      cacheDir: join(root, 'cache-own'), runsDir: join(root, 'runs'), runDir, config: { ...DEFAULT_DECODER_CONFIG, minWordCount: 1, maxLength: 8, embeddingSize: 16, units: 24, batchSize: 8, epochs: 2, learningRate: 1e-2 },
      export: true, quantizations: ['uint8'], evalImages: 0, initFrom: bundle,
    });
    const served = await loadCaptioner(fileSource(join(runDir, 'bundle-uint8')));
    expect(served.caption(decodeImage(new Uint8Array(readFileSync(join(own, 'images', names[0]))))).caption.length).toBeGreaterThan(0);
    expect(served.manifest.training?.initFrom).toBe(bundle);
    served.dispose();
  });
});
