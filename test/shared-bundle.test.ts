import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadBundle, loadServingBundle } from '../shared/bundle/load';
import { BundleError, validateManifest } from '../shared/bundle/manifest';
import { rng } from '../offline/random';
import { quantizeWeights, toFloat16, UINT8_MIN_ELEMENTS } from '../shared/bundle/quantize';
import { memorySource } from '../shared/bundle/source';
import { uint4ByteLength } from '../shared/bundle/uint4';
import { CaptionOptionError, loadCaptioner } from '../shared/captioner';
import type { RgbImage } from '../shared/image/types';
import { tinyBundle, tinyConfidence } from './helpers/tiny-bundle';
import { captionConfidence } from '../shared/confidence';
import { writeBundle } from '../shared/bundle/write';
import { UNIT_RANGE_NORMALIZATION } from '../shared/image/normalize';
import { buildDecoder } from '../shared/models/decoder';
import { buildCompactVgg16 } from '../shared/models/vgg16';
import { Vocabulary } from '../shared/text/vocabulary';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const enc = new TextEncoder();
const dec = new TextDecoder();

function image(seed: number, size = 48): RgbImage {
  const data = new Uint8Array(size * size * 3);
  let s = seed;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    data[i] = (s >>> 16) & 255;
  }
  return { width: size, height: size, data };
}

function withManifest(files: Map<string, Uint8Array>, edit: (m: Record<string, any>) => void): Map<string, Uint8Array> {
  const m = JSON.parse(dec.decode(files.get('manifest.json')!));
  edit(m);
  return new Map([...files, ['manifest.json', enc.encode(JSON.stringify(m))]]);
}

describe('model bundle', () => {
  it('round-trips: the loaded models give the saved models\' outputs', async () => {
    const vocab = new Vocabulary(['<pad>', '<start>', '<end>', '<unk>', 'a', 'dog']);
    const encoder = buildCompactVgg16({ widthMultiplier: 1 / 16, inputSize: 32, featureSize: 5 });
    const decoder = buildDecoder({ vocabSize: 6, featureSize: 5, embeddingSize: 4, units: 3, maxLength: 6, dropout: 0.2 });
    const files = await writeBundle({
      manifest: {
        id: 'rt', version: '1',
        encoder: { architecture: 'compact-vgg16', modelPath: 'x', inputSize: 32, normalization: UNIT_RANGE_NORMALIZATION, featureSize: 5 },
        decoder: { architecture: 'lstm-inject-merge', modelPath: 'x', vocabSize: 6, embeddingSize: 4, units: 3, maxLength: 6 },
      },
      encoder, decoder, vocabulary: vocab, quantization: 'none',
    });
    const b = await loadBundle(memorySource(files));
    expect(b.manifest.encoder.modelPath).toBe('encoder/model.json');
    expect(b.bytes).toBe([...files.values()].reduce((a, f) => a + f.byteLength, 0));
    const x = tf.randomUniform([2, 32, 32, 3], -1, 1, 'float32', 5);
    const diff = (a: tf.Tensor, c: tf.Tensor) => tf.max(tf.abs(tf.sub(a, c))).dataSync()[0];
    expect(diff(encoder.predict(x) as tf.Tensor, b.encoder.predict(x) as tf.Tensor)).toBe(0);
    const f = tf.randomNormal([2, 5], 0, 1, 'float32', 2);
    const t = tf.tensor2d([[1, 4, 5], [1, 5, 2]], undefined, 'int32');
    // The LSTM's initial state comes from the image: it must survive serialisation.
    const out = b.decoder.predict([f, t]) as tf.Tensor;
    expect(diff(decoder.predict([f, t]) as tf.Tensor, out)).toBe(0);
    expect(diff(out, b.decoder.predict([tf.zerosLike(f), t]) as tf.Tensor)).toBeGreaterThan(1e-4);
  });

  it('uint8 and float16 bundles are smaller and stay close to float32', async () => {
    const full = await tinyBundle();
    const size = (f: Map<string, Uint8Array>) => [...f.values()].reduce((a, x) => a + x.byteLength, 0);
    const files = new Map(full);
    const base = await loadBundle(memorySource(files));
    for (const [q, ratio, tol] of [['uint8', 0.25, 0.05], ['float16', 0.5, 0.005]] as const) {
      // Re-quantize the same weights so the comparison is like for like.
      const { format: _f, formatVersion: _v, quantization: _q, vocabulary: _voc, ...manifest } = base.manifest;
      const qFiles = await writeBundle({ manifest, encoder: base.encoder, decoder: base.decoder, vocabulary: base.vocabulary, quantization: q });
      expect(size(qFiles)).toBeLessThan(size(full));
      for (const part of ['encoder', 'decoder']) {
        const bytes = qFiles.get(`${part}/weights.bin`)!.byteLength;
        const floatBytes = full.get(`${part}/weights.bin`)!.byteLength;
        // uint8 keeps small tensors in float16, so its size lies between the two ratios.
        expect(bytes).toBeGreaterThanOrEqual(floatBytes * ratio);
        expect(bytes).toBeLessThanOrEqual(floatBytes * 0.5);
      }
      const qb = await loadBundle(memorySource(qFiles));
      const wq = qb.decoder.getLayer('logits').getWeights()[0];
      const wf = base.decoder.getLayer('logits').getWeights()[0];
      const range = tf.sub(tf.max(wf), tf.min(wf)).dataSync()[0];
      expect(tf.max(tf.abs(tf.sub(wq, wf))).dataSync()[0]).toBeLessThan(range * tol);
      for (const spec of JSON.parse(dec.decode(qFiles.get('decoder/model.json')!)).weightsManifest[0].weights) {
        const n = spec.shape.reduce((a: number, b: number) => a * b, 1);
        expect(spec.quantization.dtype).toBe(q === 'uint8' && n < UINT8_MIN_ELEMENTS ? 'float16' : q);
      }
    }
  });

  it("uint4 stores the decoder's large matrices 4-bit per column, the encoder uint8; both loaders read it alike", async () => {
    const big = { attention: true, widthMultiplier: 1 / 8, units: 64, extraWords: 300 };
    const [full, u8, u4] = await Promise.all((['none', 'uint8', 'uint4'] as const).map((quantization) => tinyBundle({ ...big, quantization })));
    const specsOf = (files: Map<string, Uint8Array>, part: string): tf.io.WeightsManifestEntry[] => JSON.parse(dec.decode(files.get(`${part}/model.json`)!)).weightsManifest[0].weights;
    const large = (s: tf.io.WeightsManifestEntry) => s.shape.reduce((a, b) => a * b, 1) >= UINT8_MIN_ELEMENTS;
    const decoderSpecs = specsOf(u4, 'decoder');
    expect(decoderSpecs.filter(large).length).toBeGreaterThanOrEqual(2);
    for (const s of decoderSpecs) expect(s.quantization?.dtype).toBe(large(s) ? 'uint4' : 'float16');
    expect(specsOf(u4, 'encoder')).toEqual(specsOf(u8, 'encoder'));
    expect(u4.get('encoder/weights.bin')).toEqual(u8.get('encoder/weights.bin'));
    // Each large matrix: half a byte per weight and 8 bytes of range per column, instead of a byte.
    const saved = decoderSpecs.filter(large).reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1) - uint4ByteLength(s.shape), 0);
    expect(saved).toBeGreaterThan(10000);
    expect(u4.get('decoder/weights.bin')!.byteLength).toBe(u8.get('decoder/weights.bin')!.byteLength - saved);
    expect(JSON.parse(dec.decode(u4.get('manifest.json')!)).quantization).toBe('uint4');

    const layers = await loadBundle(memorySource(u4));
    const serving = await loadServingBundle(memorySource(u4));
    const float = await loadBundle(memorySource(full));
    const want = float.decoder.getLayer('logits').getWeights()[0];
    const viaLayers = layers.decoder.getLayer('logits').getWeights()[0];
    expect(tf.max(tf.abs(tf.sub(viaLayers, serving.decoder.logits.kernel))).dataSync()[0]).toBe(0);
    const rms = (t: tf.Tensor) => Math.sqrt(tf.mean(tf.square(t)).dataSync()[0]);
    const relative = rms(tf.sub(viaLayers, want)) / rms(want);
    expect(relative).toBeGreaterThan(0.01);
    expect(relative).toBeLessThan(0.13);
    const c = await loadCaptioner(memorySource(u4));
    expect(c.caption(image(1), { beam: 3 }).caption.split(' ').length).toBeGreaterThan(0);
    for (const b of [layers, float]) for (const m of [b.encoder, b.decoder]) m.dispose();
    serving.dispose();
    c.dispose();
  });

  it('uint8 clips the far tail of heavy-tailed weights when that lowers the squared error', () => {
    const n = 65536;
    // Laplace-distributed weights (trained layers have such tails): the extreme few stretch a min…max step.
    const r = rng(3);
    const values = Float32Array.from({ length: n }, () => {
      const u = r() - 0.5;
      return -Math.sign(u) * Math.log(1 - 2 * Math.abs(u)) * 0.1;
    });
    const { specs, data } = quantizeWeights([{ name: 'w', shape: [n], dtype: 'float32' }], values.buffer, 'uint8');
    const qz = specs[0].quantization!;
    expect(qz.dtype).toBe('uint8');
    expect(data.byteLength).toBe(n);
    const back = tf.io.decodeWeights(data, specs).w.dataSync();
    const lo = Math.min(...values);
    const hi = Math.max(...values);
    expect(qz.min!).toBeGreaterThan(lo);
    expect(qz.min! + 255 * qz.scale!).toBeLessThan(hi);
    let sq = 0;
    let sqFull = 0;
    const fullStep = (hi - lo) / 255;
    for (let i = 0; i < n; i++) {
      // Every weight inside the chosen range is within half a step of its value.
      if (values[i] >= qz.min! && values[i] <= qz.min! + 255 * qz.scale!) expect(Math.abs(back[i] - values[i])).toBeLessThanOrEqual(qz.scale! / 2 + 1e-6);
      sq += (back[i] - values[i]) ** 2;
      sqFull += (Math.round((values[i] - lo) / fullStep) * fullStep + lo - values[i]) ** 2;
    }
    expect(sq).toBeLessThan(0.98 * sqFull);
  });

  it('uint8 leaves a tensor float16 when one affine range would miss it by more than 2% RMS', () => {
    const n = UINT8_MIN_ELEMENTS * 2;
    // Cauchy-like weights: a few huge values next to many tiny ones; no 256-step range fits both.
    const r = rng(9);
    const values = Float32Array.from({ length: n }, () => Math.tan((r() - 0.5) * Math.PI * 0.999) * 0.01);
    const { specs } = quantizeWeights([{ name: 'w', shape: [n], dtype: 'float32' }], values.buffer, 'uint8');
    expect(specs[0].quantization?.dtype).toBe('float16');
  });

  it('float16 conversion is exact for representable values and rounds to nearest', () => {
    expect([...toFloat16(new Float32Array([0, 1, -2, 0.5, 65504, 1e6, -1e-9]))]).toEqual([0, 0x3c00, 0xc000, 0x3800, 0x7bff, 0x7c00, 0x8000]);
  });

  it('rejects manifests that do not fit, naming the fields', async () => {
    const files = await tinyBundle();
    await expect(loadBundle(memorySource(withManifest(files, (m) => (m.formatVersion = 99))))).rejects.toThrow(/formatVersion 99 is not supported/);
    await expect(loadBundle(memorySource(withManifest(files, (m) => { m.decoder.units = -1; m.quantization = 'int3'; })))).rejects.toThrow(/decoder.units.*quantization must be one of/);
    await expect(loadBundle(memorySource(withManifest(files, (m) => (m.decoder.vocabSize = 99))))).rejects.toThrow(/vocabulary sizes disagree/);
    await expect(loadBundle(memorySource(withManifest(files, (m) => (m.encoder.featureSize = 7))))).rejects.toThrow(/encoder output has 24 features, manifest says 7/);
    const missing = new Map(files);
    missing.delete('decoder/weights.bin');
    await expect(loadBundle(memorySource(missing))).rejects.toThrow(BundleError);
    await expect(loadBundle(memorySource(new Map()))).rejects.toThrow(/cannot read manifest.json/);
    expect(() => validateManifest([])).toThrow(/not a JSON object/);
  });
});

describe('captioner', () => {
  it('captions images, returns ordered alternatives and validates options', async () => {
    const c = await loadCaptioner(memorySource(await tinyBundle()));
    const r = c.caption(image(1), { beam: 3, alternatives: 3 });
    expect(typeof r.caption).toBe('string');
    expect(r.alternatives[0].caption).toBe(r.caption);
    for (let i = 1; i < r.alternatives.length; i++) expect(r.alternatives[i - 1].score).toBeGreaterThanOrEqual(r.alternatives[i].score);
    expect(r.timings.encoderMs).toBeGreaterThanOrEqual(0);
    const g = c.caption(image(1), { beam: 1 });
    const b1 = c.captionFeatures(c.encode(image(1)), { beam: 1 })[0];
    expect(b1.caption).toBe(g.caption);
    expect(() => c.caption(image(1), { beam: 0 })).toThrow(CaptionOptionError);
    expect(() => c.caption(image(1), { beam: 2, alternatives: 3 })).toThrow(/alternatives must be an integer from 1 to beam \(2\)/);
    expect(() => c.caption(image(1), { maxLength: 50 })).toThrow(/maxLength must be an integer from 1 to 7/);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) c.caption(image(i), { beam: 3, alternatives: 2 });
    expect(tf.memory().numTensors).toBe(before);
    c.dispose();
  });

  it('warms up once: at load by default, later on request, never after a real caption', async () => {
    const bundle = memorySource(await tinyBundle());
    const atLoad = await loadCaptioner(bundle);
    expect(atLoad.loadTimings.warmupMs).toBeGreaterThan(0);
    expect(atLoad.warmUp()).toBe(false);
    const later = await loadCaptioner(bundle, { warmup: false });
    expect(later.loadTimings.warmupMs).toBe(0);
    expect(later.warmUp()).toBe(true);
    expect(later.loadTimings.warmupMs).toBeGreaterThan(0);
    expect(later.warmUp()).toBe(false);
    const captioned = await loadCaptioner(bundle, { warmup: false });
    captioned.caption(image(2), { beam: 1 });
    expect(captioned.warmUp()).toBe(false);
    expect(captioned.loadTimings.warmupMs).toBe(0);
    for (const c of [atLoad, later, captioned]) c.dispose();
  });
});

describe('attention bundle', () => {
  it('captions like a pooled bundle, and with `attention` gives one row per word over the encoder grid', async () => {
    for (const quantization of ['none', 'uint8'] as const) {
      const c = await loadCaptioner(memorySource(await tinyBundle({ attention: true, quantization })));
      expect(c.featureRowSize).toBe(24 + 2 * 2 * 32);
      for (const beam of [1, 3]) {
        const plain = c.caption(image(2), { beam });
        expect(plain.attention).toBeUndefined();
        const r = c.caption(image(2), { beam, attention: true });
        expect(r.caption).toBe(plain.caption);
        expect(r.attention!.grid).toEqual([2, 2]);
        expect(r.attention!.weights).toHaveLength(r.caption.split(' ').length);
        for (const row of r.attention!.weights) {
          expect(row).toHaveLength(4);
          expect(Math.abs(row.reduce((a, b) => a + b, 0) - 1)).toBeLessThanOrEqual(0.003);
        }
      }
      // The same row from the features path (evaluation) as from the image path.
      const viaFeatures = c.captionFeatures(c.encode(image(2)), { beam: 3, attention: true })[0];
      expect(viaFeatures.attention).toEqual(c.caption(image(2), { beam: 3, attention: true }).attention);
      const before = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) c.caption(image(i), { beam: 3, attention: true });
      expect(tf.memory().numTensors).toBe(before);
      c.dispose();
    }
  });

  it('a pooled bundle refuses `attention` with a message that says why', async () => {
    const c = await loadCaptioner(memorySource(await tinyBundle()));
    expect(() => c.caption(image(1), { attention: true })).toThrow(/attention maps need a bundle with an attention decoder/);
    c.dispose();
  });

  it('manifest and models must agree on the grid', async () => {
    const files = await tinyBundle({ attention: true });
    await expect(loadBundle(memorySource(withManifest(files, (m) => delete m.encoder.grid)))).rejects.toThrow(/needs encoder.grid/);
    await expect(loadBundle(memorySource(withManifest(files, (m) => (m.encoder.grid.layer = 'block9_conv1'))))).rejects.toThrow(/'block9_conv1' is not a layer of the encoder/);
    await expect(loadBundle(memorySource(withManifest(files, (m) => (m.encoder.grid.shape = [2, 2, 16]))))).rejects.toThrow(/expects a 2×2×32 grid, encoder.grid gives 2×2×16/);
    await expect(loadBundle(memorySource(withManifest(files, (m) => { m.encoder.grid.layer = 'block4_conv3'; m.encoder.grid.shape = [2, 2, 32]; })))).rejects.toThrow(/'block4_conv3' gives \[4, 4, 32\]/);
    await expect(loadBundle(memorySource(withManifest(files, (m) => { m.decoder.architecture = 'lstm-inject-merge'; })))).rejects.toThrow(/the decoder model has grid input/);
    await expect(loadBundle(memorySource(withManifest(files, (m) => delete m.decoder.attention)))).rejects.toThrow(/decoder.attention must be/);
  });
});

describe('caption confidence', () => {
  const blank: RgbImage = { width: 48, height: 48, data: new Uint8Array(48 * 48 * 3).fill(255) };
  const smooth = (seed: number): RgbImage => {
    const data = new Uint8Array(48 * 48 * 3);
    for (let y = 0; y < 48; y++) for (let x = 0; x < 48; x++) for (let c = 0; c < 3; c++) data[(y * 48 + x) * 3 + c] = 128 + 60 * Math.sin((x + seed * 7) / (5 + c)) * Math.cos((y - seed) / 6);
    return { width: 48, height: 48, data };
  };

  it('a calibrated bundle rates every caption in [0, 1]; an image unlike the calibration photos gets less', async () => {
    const photos = [1, 2, 3, 4, 5].map(smooth);
    const c = await loadCaptioner(memorySource(await tinyBundle({ confidence: tinyConfidence(photos) })));
    for (const p of photos) {
      const r = c.caption(p, { beam: 3, alternatives: 3 });
      expect(r.confidence).toBe(0.5); // the neutral regression, inside the photos' range
      for (const a of r.alternatives) expect(a.confidence).toBe(0.5);
    }
    const odd = c.caption(blank, { beam: 3, alternatives: 2 });
    expect(odd.confidence).toBeGreaterThanOrEqual(0);
    expect(odd.confidence).toBeLessThan(0.2);
    expect(odd.alternatives.every((a) => a.confidence === odd.confidence)).toBe(true);
    c.dispose();
    const plain = await loadCaptioner(memorySource(await tinyBundle()));
    expect(plain.caption(blank).confidence).toBeUndefined();
    plain.dispose();
  });

  it('the regression follows the score: a better-scored caption is more trusted', () => {
    const model = { ...tinyConfidence([1, 2, 3].map(smooth)), logistic: { center: [-1.2, 8, 1], scale: [0.2, 2, 1], weights: [1.5, 0, -0.5], bias: 0 } };
    const lo = captionConfidence(model, -1.6, 'a dog runs', 0);
    const hi = captionConfidence(model, -0.8, 'a dog runs', 0);
    expect(hi).toBeGreaterThan(lo);
    // Past the furthest calibration photo the regression is scaled down by (distance / limit)^4.
    const gateOnly = { ...model, logistic: { ...model.logistic, weights: [1.5, 0, 0] } };
    expect(captionConfidence(gateOnly, -1.6, 'a dog runs', model.imageStats.limit * 2)).toBeCloseTo(captionConfidence(gateOnly, -1.6, 'a dog runs', 0) / 16, 10);
  });

  it('a malformed confidence entry fails manifest validation with the field named', async () => {
    const files = withManifest(await tinyBundle({ confidence: tinyConfidence([smooth(1), smooth(2)]) }), (m) => {
      m.confidence.logistic.weights = [1, 2];
      m.confidence.imageStats.limit = -1;
    });
    await expect(loadBundle(memorySource(files))).rejects.toThrow(/confidence.imageStats.limit must be a positive number; confidence.logistic must hold/);
  });
});

