import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadBundle, loadServingBundle } from '../shared/bundle/load';
import { BundleError } from '../shared/bundle/manifest';
import { quantizeWeights } from '../shared/bundle/quantize';
import { memorySource } from '../shared/bundle/source';
import { dequantizeUint4, quantizeUint4, uint4ByteLength, uint4Spec } from '../shared/bundle/uint4';
import { decodeWeightData } from '../shared/bundle/weight-data';
import { writeBundle } from '../shared/bundle/write';
import { loadCaptioner } from '../shared/captioner';
import { UNIT_RANGE_NORMALIZATION } from '../shared/image/normalize';
import { decoderWeights } from '../shared/models/decoder-ops';
import { buildDecoder } from '../shared/models/decoder';
import { buildCompactVgg16 } from '../shared/models/vgg16';
import { Vocabulary } from '../shared/text/vocabulary';
import { tinyBundle } from './helpers/tiny-bundle';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0];
const enc = new TextEncoder();
const dec = new TextDecoder();

function editModelJson(files: Map<string, Uint8Array>, path: string, edit: (m: { weightsManifest: { weights: tf.io.WeightsManifestEntry[] }[] }) => void): Map<string, Uint8Array> {
  const m = JSON.parse(dec.decode(files.get(path)!));
  edit(m);
  return new Map([...files, [path, enc.encode(JSON.stringify(m))]]);
}

describe('weight data', () => {
  it('dequantizes uint8, float16 and float32 as tf.io.decodeWeights does, at unaligned offsets too', () => {
    const values = (n: number, seed: number) => tf.randomNormal([n], 0, 2, 'float32', seed).dataSync() as Float32Array;
    const parts = [values(17000, 1), values(5, 2), values(3, 3), values(17001, 4)];
    const specs = parts.map((p, i) => ({ name: `w${i}`, shape: [p.length], dtype: 'float32' as const }));
    const data = new Uint8Array(parts.reduce((a, p) => a + p.byteLength, 0));
    parts.reduce((o, p) => (data.set(new Uint8Array(p.buffer), o), o + p.byteLength), 0);
    // uint8 for the large tensors, float16 for the small: odd lengths put later tensors at odd offsets.
    const q = quantizeWeights(specs, data.buffer, 'uint8');
    expect(q.specs.map((s) => s.quantization?.dtype)).toEqual(['uint8', 'float16', 'float16', 'uint8']);
    for (const [s, bytes] of [[q.specs, new Uint8Array(q.data)], [specs, data]] as const) {
      const ours = decodeWeightData(s, bytes);
      const theirs = tf.io.decodeWeights(bytes.slice().buffer, s);
      for (const spec of s) expect(maxDiff(ours.get(spec.name)!, theirs[spec.name])).toBeLessThan(1e-6);
    }
    // A view into a larger buffer at an odd offset (how a shard can arrive) reads the same.
    const shifted = new Uint8Array(q.data.byteLength + 1);
    shifted.set(new Uint8Array(q.data), 1);
    const again = decodeWeightData(q.specs, shifted.subarray(1));
    expect(maxDiff(again.get('w3')!, decodeWeightData(q.specs, new Uint8Array(q.data)).get('w3')!)).toBe(0);
    expect(() => decodeWeightData(q.specs, new Uint8Array(q.data).subarray(0, 100))).toThrow(/'w0' \[17000\] runs past the end/);
  });
});

describe('uint4 weights', () => {
  // 33 × 7: an odd count (the last byte holds one code); column c spans 4^c, so one range for the
  // whole tensor would leave the narrow columns a single code.
  const shape = [33, 7];
  const values = Float32Array.from(tf.randomNormal([33 * 7], 0, 1, 'float32', 11).dataSync(), (v, i) => v * 4 ** (i % 7));

  /** The stored form read back value by value, the way the layout describes it. */
  function reference(bytes: Uint8Array): Float32Array {
    const n = 33 * 7;
    const m = Math.ceil(n / 2);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return Float32Array.from({ length: n }, (_, i) => {
      const code = i < m ? bytes[i] & 15 : bytes[i - m] >> 4;
      const c = i % 7;
      return Math.fround(Math.fround(code * view.getFloat32(m + 4 * c, true)) + view.getFloat32(m + 28 + 4 * c, true));
    });
  }

  it('keeps every weight within half a step of its column\'s range, whatever the columns\' scales', () => {
    const { bytes, relativeError } = quantizeUint4(values, shape);
    expect(bytes.byteLength).toBe(uint4ByteLength(shape));
    expect(bytes.byteLength).toBe(116 + 56);
    const back = reference(bytes);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < values.length; i++) {
      const c = i % 7;
      const [scale, min] = [view.getFloat32(116 + 4 * c, true), view.getFloat32(116 + 28 + 4 * c, true)];
      if (values[i] >= min && values[i] <= min + 15 * scale) expect(Math.abs(back[i] - values[i])).toBeLessThanOrEqual(scale / 2 + 1e-5 * Math.abs(values[i]));
    }
    // Normal columns at 16 levels: ≈ 10% RMS. One range for all seven columns: far worse.
    expect(relativeError).toBeGreaterThan(0.03);
    expect(relativeError).toBeLessThan(0.13);
    const wide = quantizeUint4(values, [33 * 7, 1]);
    expect(wide.relativeError).toBeGreaterThan(2 * relativeError);
  });

  it('is read back by the backend\'s nibble split as the layout says, at unaligned offsets too', () => {
    const { bytes } = quantizeUint4(values, shape);
    const want = reference(bytes);
    const spec = uint4Spec({ name: 'w', shape, dtype: 'float32' });
    // After 5 bytes of another weight: the codes and the ranges sit at unaligned offsets.
    const data = new Uint8Array(bytes.byteLength + 5);
    data.set(bytes, 5);
    const got = decodeWeightData([{ name: 'pad', shape: [5], dtype: 'bool' }, spec], data).get('w')!;
    expect(got.shape).toEqual(shape);
    expect(Array.from(got.dataSync())).toEqual(Array.from(want));
    expect(() => dequantizeUint4(bytes.subarray(1), shape)).toThrow(/takes 172 bytes, got 171/);
    expect(() => decodeWeightData([spec], bytes.subarray(0, 100))).toThrow(/'w' \[33, 7\] runs past the end/);
  });
});

describe('serving bundle', () => {
  it('runs the compact VGG16 with core ops and gives the layers models\' outputs', async () => {
    for (const opts of [{ attention: false, quantization: 'none' }, { attention: true, quantization: 'uint8' }] as const) {
      const source = memorySource(await tinyBundle(opts));
      const layers = await loadBundle(source);
      const serving = await loadServingBundle(source);
      expect(serving.encoderPath).toBe('ops');
      const x = tf.randomUniform([2, 32, 32, 3], -1, 1, 'float32', 5) as tf.Tensor4D;
      const want = [layers.encoder.predict(x)].flat();
      const got = serving.encode(x);
      expect(got.length).toBe(opts.attention ? 2 : 1);
      got.forEach((t, i) => {
        expect(t.shape).toEqual(want[i].shape);
        expect(maxDiff(t, want[i])).toBeLessThan(1e-5);
      });
      const a = decoderWeights(layers.decoder);
      const b = serving.decoder;
      expect(b.attention?.config).toEqual(a.attention?.config);
      expect(maxDiff(b.logits.kernel, a.logits.kernel)).toBe(0);
      expect(maxDiff(b.lstm.recurrentKernel, a.lstm.recurrentKernel)).toBe(0);
      if (a.attention) expect(maxDiff(b.attention!.grid.kernel, a.attention.grid.kernel)).toBe(0);
      const before = tf.memory().numTensors;
      serving.dispose();
      expect(tf.memory().numTensors).toBeLessThan(before);
    }
  });

  it('covers the 512-channel head (no last pool) and falls back to tfjs-layers for other graphs', async () => {
    const vocab = new Vocabulary(['<pad>', '<start>', '<end>', '<unk>', 'a', 'dog']);
    const decoder = buildDecoder({ vocabSize: 6, featureSize: 5, embeddingSize: 4, units: 3, maxLength: 6, dropout: 0 });
    const manifest = {
      id: 't', version: '1',
      encoder: { architecture: 'compact-vgg16' as const, modelPath: 'x', inputSize: 32, normalization: UNIT_RANGE_NORMALIZATION, featureSize: 5 },
      decoder: { architecture: 'lstm-inject-merge' as const, modelPath: 'x', vocabSize: 6, embeddingSize: 4, units: 3, maxLength: 6 },
    };
    const headed = buildCompactVgg16({ widthMultiplier: 1 / 16, inputSize: 32, featureSize: 5, headChannels: 8 }, { seed: 2 });
    // A residual add: not a chain, so the serving loader builds the tfjs-layers model instead.
    const input = tf.input({ shape: [32, 32, 3], name: 'image' });
    const c1 = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'c1' }).apply(input) as tf.SymbolicTensor;
    const c2 = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c2' }).apply(c1) as tf.SymbolicTensor;
    const added = tf.layers.add({ name: 'residual' }).apply([c1, c2]) as tf.SymbolicTensor;
    const pooled = tf.layers.globalAveragePooling2d({ name: 'pool' }).apply(added) as tf.SymbolicTensor;
    const residual = tf.model({ inputs: input, outputs: tf.layers.dense({ units: 5, name: 'projection' }).apply(pooled) as tf.SymbolicTensor });
    for (const [encoder, path] of [[headed, 'ops'], [residual, 'layers']] as const) {
      const files = await writeBundle({ manifest, encoder, decoder, vocabulary: vocab, quantization: 'none' });
      const before = tf.memory().numTensors;
      const serving = await loadServingBundle(memorySource(files));
      // The encoder's weights live once: as named tensors (ops) or in the layers model, not both.
      const decoderTensors = decoder.weights.length;
      expect(tf.memory().numTensors - before).toBe(decoderTensors + encoder.weights.length);
      expect(serving.encoderPath).toBe(path);
      const x = tf.randomUniform([1, 32, 32, 3], -1, 1, 'float32', 6) as tf.Tensor4D;
      expect(maxDiff(serving.encode(x)[0], encoder.predict(x) as tf.Tensor)).toBeLessThan(1e-5);
      const c = await loadCaptioner(memorySource(files));
      expect(typeof c.caption({ width: 40, height: 30, data: new Uint8Array(40 * 30 * 3).fill(90) }, { beam: 2 }).caption).toBe('string');
      c.dispose();
      serving.dispose();
    }
  });

  it('rejects a decoder whose weights are missing or misshapen, naming the weight', async () => {
    const files = await tinyBundle();
    const missing = editModelJson(files, 'decoder/model.json', (m) => {
      m.weightsManifest[0].weights.find((w) => w.name === 'logits/bias')!.name = 'logits/offset';
    });
    await expect(loadServingBundle(memorySource(missing))).rejects.toThrow(/cannot load the decoder from decoder\/model.json: the decoder has no weight 'logits\/bias'/);
    const misshapen = editModelJson(files, 'decoder/model.json', (m) => {
      m.weightsManifest[0].weights.find((w) => w.name === 'merge_dense/bias')!.shape = [2, 8];
    });
    const err = await loadServingBundle(memorySource(misshapen)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BundleError);
    expect((err as Error).message).toMatch(/decoder merge_dense bias is \[2, 8\], expected \[16\]/);
  });
});
