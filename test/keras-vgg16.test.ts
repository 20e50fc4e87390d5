import * as tf from '@tensorflow/tfjs';
import h5wasm from 'h5wasm/node';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../offline/backend';
import { importKerasCommand } from '../offline/commands/import-keras';
import { loadFeatureEncoder } from '../offline/features/encoder';
import { kerasVgg16Model, readKerasVgg16 } from '../offline/keras/vgg16-h5';
import { rng } from '../offline/random';
import { CAFFE_NORMALIZATION, toEncoderInput } from '../shared/image/normalize';
import type { RgbImage } from '../shared/image/types';

// VGG16 at 1/16 width for 32×32 images: block5 ends at 1×1×32, so fc1 takes 32 inputs.
const CONVS_PER_BLOCK = [2, 2, 3, 3, 3];
const WIDTHS = [4, 8, 16, 32, 32];
const FC_UNITS = [16, 16, 10];
const SIZE = 32;

interface Arrays {
  kernel: { shape: number[]; values: Float32Array };
  bias: { shape: number[]; values: Float32Array };
}

const root = mkdtempSync(join(tmpdir(), 'keras-vgg16-'));
beforeAll(async () => {
  await selectBackend();
  await h5wasm.ready;
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Seeded He-scaled weights for every layer, by Keras name, in network order. */
function makeWeights(seed: number): Map<string, Arrays> {
  const r = rng(seed);
  const out = new Map<string, Arrays>();
  const add = (name: string, kernelShape: number[], fanIn: number) => {
    const units = kernelShape[kernelShape.length - 1];
    const scale = Math.sqrt(6 / fanIn);
    const kernel = Float32Array.from({ length: kernelShape.reduce((a, b) => a * b) }, () => (r() * 2 - 1) * scale);
    const bias = Float32Array.from({ length: units }, () => (r() * 2 - 1) * 0.1);
    out.set(name, { kernel: { shape: kernelShape, values: kernel }, bias: { shape: [units], values: bias } });
  };
  let ch = 3;
  CONVS_PER_BLOCK.forEach((convs, b) => {
    for (let c = 1; c <= convs; c++) {
      add(`block${b + 1}_conv${c}`, [3, 3, ch, WIDTHS[b]], 9 * ch);
      ch = WIDTHS[b];
    }
  });
  let inputs = ch;
  ['fc1', 'fc2', 'predictions'].forEach((name, i) => {
    add(name, [inputs, FC_UNITS[i]], inputs);
    inputs = FC_UNITS[i];
  });
  return out;
}

interface FileOptions {
  top?: boolean;
  /** Leave this layer out entirely (layer_names and group). */
  drop?: string;
  /** Datasets at /<layer>/kernel:0, layer_names as a uint8 byte matrix, weight_names as variable-length strings. */
  variant?: boolean;
}

/** Writes `weights` in the layout of Keras 2's `save_weights` / the keras.applications files. */
function writeKerasH5(path: string, weights: Map<string, Arrays>, o: FileOptions = {}): string {
  const layerNames = ['input_1'];
  CONVS_PER_BLOCK.forEach((convs, b) => {
    for (let c = 1; c <= convs; c++) layerNames.push(`block${b + 1}_conv${c}`);
    layerNames.push(`block${b + 1}_pool`);
  });
  if (o.top) layerNames.push('flatten', 'fc1', 'fc2', 'predictions');
  const names = layerNames.filter((n) => n !== o.drop);
  const f = new h5wasm.File(path, 'w');
  try {
    writeStrings(f, 'layer_names', names, o.variant ? 'bytes' : 'fixed');
    f.create_attribute('backend', 'tensorflow');
    f.create_attribute('keras_version', '2.2.4');
    for (const layer of names) {
      const g = f.create_group(layer);
      const w = weights.get(layer);
      if (!w) {
        g.create_attribute('weight_names', new Float64Array(0), [0], '<d');
        continue;
      }
      writeStrings(g, 'weight_names', [`${layer}/kernel:0`, `${layer}/bias:0`], o.variant ? 'vlen' : 'fixed');
      const at = o.variant ? g : g.create_group(layer);
      at.create_dataset({ name: 'kernel:0', data: w.kernel.values, shape: w.kernel.shape, dtype: '<f' });
      at.create_dataset({ name: 'bias:0', data: w.bias.values, shape: w.bias.shape, dtype: '<f' });
    }
  } finally {
    f.close();
  }
  return path;
}

function writeStrings(obj: InstanceType<typeof h5wasm.Group>, name: string, values: string[], how: 'fixed' | 'vlen' | 'bytes'): void {
  const width = Math.max(...values.map((v) => v.length));
  if (how === 'fixed') obj.create_attribute(name, values, null, `S${width}`);
  else if (how === 'vlen') obj.create_attribute(name, values);
  else {
    const bytes = new Uint8Array(values.length * width);
    values.forEach((v, i) => bytes.set(new TextEncoder().encode(v), i * width));
    obj.create_attribute(name, bytes, [values.length, width], '<B');
  }
}

/** VGG16's forward pass written with plain ops, independent of the layers model. */
function reference(weights: Map<string, Arrays>, x: tf.Tensor4D, output: 'pooled' | 'fc2' | 'predictions'): Float32Array {
  return tf.tidy(() => {
    const t = (a: Arrays['kernel']) => tf.tensor(a.values, a.shape);
    let h: tf.Tensor4D = x;
    CONVS_PER_BLOCK.forEach((convs, b) => {
      for (let c = 1; c <= convs; c++) {
        const w = weights.get(`block${b + 1}_conv${c}`)!;
        h = tf.relu(tf.add(tf.conv2d(h, t(w.kernel) as tf.Tensor4D, 1, 'same'), t(w.bias))) as tf.Tensor4D;
      }
      h = tf.maxPool(h, 2, 2, 'valid');
    });
    if (output === 'pooled') return tf.mean(h, [1, 2]).dataSync() as Float32Array;
    let v: tf.Tensor2D = h.reshape([h.shape[0], -1]);
    for (const name of output === 'fc2' ? ['fc1', 'fc2'] : ['fc1', 'fc2', 'predictions']) {
      const w = weights.get(name)!;
      const z = tf.add(tf.matMul(v, t(w.kernel) as tf.Tensor2D), t(w.bias)) as tf.Tensor2D;
      v = name === 'predictions' ? tf.softmax(z) : tf.relu(z);
    }
    return v.dataSync() as Float32Array;
  });
}

function predict(model: tf.LayersModel, x: tf.Tensor4D): Float32Array {
  return tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync() as Float32Array);
}

function expectClose(a: Float32Array, b: Float32Array): void {
  expect(a.length).toBe(b.length);
  // Mostly dead ReLUs would make any two nets agree.
  expect(new Set(b).size).toBeGreaterThan(b.length / 4);
  const scale = Math.max(1, ...Array.from(b, Math.abs));
  const err = Math.max(...Array.from(a, (v, i) => Math.abs(v - b[i])));
  expect(err).toBeLessThan(1e-4 * scale);
}

function photo(seed: number, size = 40): RgbImage {
  const r = rng(seed);
  return { width: size, height: size, data: Uint8Array.from({ length: size * size * 3 }, () => Math.floor(r() * 256)) };
}

const weights = makeWeights(7);
const input = (seed: number, size = SIZE) => tf.randomUniform([2, size, size, 3], -2, 2, 'float32', seed) as tf.Tensor4D;

describe('Keras VGG16 HDF5 import', () => {
  it('reads the Keras layout and computes VGG16: pooled, fc2 and predictions match plain ops', async () => {
    const read = await readKerasVgg16(writeKerasH5(join(root, 'full.h5'), weights, { top: true }));
    expect([...read.layers.keys()]).toEqual([...weights.keys()]);
    expect(read.layers.get('block3_conv2')!.kernel.shape).toEqual([3, 3, 16, 16]);
    const x = input(1);

    const pooled = kerasVgg16Model(read, { inputSize: SIZE, output: 'pooled' });
    expect(pooled.layers.map((l) => l.name)).toContain('block5_conv3');
    expect(pooled.layers.map((l) => l.name)).toContain('block5_pool');
    expect(pooled.outputs[0].shape).toEqual([null, 32]);
    expectClose(predict(pooled, x), reference(weights, x, 'pooled'));
    // Global pooling takes any input size.
    const wide = kerasVgg16Model(read, { inputSize: 48 });
    expectClose(predict(wide, input(2, 48)), reference(weights, input(2, 48), 'pooled'));

    // The fc outputs default to the input size fc1 fits.
    const fc2 = kerasVgg16Model(read, { output: 'fc2' });
    expect(fc2.inputs[0].shape).toEqual([null, SIZE, SIZE, 3]);
    expect(fc2.layers.map((l) => l.name).slice(-3)).toEqual(['flatten', 'fc1', 'fc2']);
    expectClose(predict(fc2, x), reference(weights, x, 'fc2'));
    const predictions = kerasVgg16Model(read, { output: 'predictions' });
    expectClose(predict(predictions, x), reference(weights, x, 'predictions'));

    expect(() => kerasVgg16Model(read, { inputSize: 64, output: 'fc2' })).toThrow(/fc1 takes 32 inputs.*use input size 32/);
    for (const m of [pooled, wide, fc2, predictions]) m.dispose();
    x.dispose();
  });

  it('reads datasets sitting directly under the layer group, and names stored as bytes or vlen strings', async () => {
    const read = await readKerasVgg16(writeKerasH5(join(root, 'variant.h5'), weights, { top: true, variant: true }));
    const model = kerasVgg16Model(read, { output: 'fc2' });
    const x = input(3);
    expectClose(predict(model, x), reference(weights, x, 'fc2'));
    model.dispose();
  });

  it('import-keras writes a model.json that the feature encoder loads and encodes with', async () => {
    const h5 = writeKerasH5(join(root, 'cli.h5'), weights, { top: true });
    const lines: string[] = [];
    const res = await importKerasCommand({ h5Path: h5, outDir: join(root, 'pooled-model'), output: 'pooled', inputSize: SIZE, log: (l) => lines.push(l) });
    const convParams = [...weights].filter(([n]) => n.startsWith('block')).reduce((a, [, w]) => a + w.kernel.values.length + w.bias.values.length, 0);
    expect(res).toMatchObject({ outputLayer: 'global_average_pooling', inputSize: SIZE, params: convParams });
    expect(lines.join('\n')).toMatch(new RegExp(`${convParams.toLocaleString('en-US')} parameters`));
    expect(lines.join('\n')).toMatch(/--layer global_average_pooling --normalization caffe/);

    const img = photo(5);
    const enc = await loadFeatureEncoder({ modelPath: res.modelPath, layer: res.outputLayer, normalization: CAFFE_NORMALIZATION });
    expect([enc.inputSize, enc.featureSize]).toEqual([SIZE, 32]);
    const x = tf.tensor4d(toEncoderInput(img, SIZE, CAFFE_NORMALIZATION), [1, SIZE, SIZE, 3]);
    expectClose(enc.encodeBatch([img]), reference(weights, x, 'pooled'));
    enc.dispose();

    const fc = await importKerasCommand({ h5Path: h5, outDir: join(root, 'fc2-model'), output: 'fc2', log: () => {} });
    const fcEnc = await loadFeatureEncoder({ modelPath: fc.modelPath, layer: fc.outputLayer, normalization: CAFFE_NORMALIZATION });
    expect(fcEnc.featureSize).toBe(16);
    expectClose(fcEnc.encodeBatch([img]), reference(weights, x, 'fc2'));
    fcEnc.dispose();
    x.dispose();
  });

  it('names the layer that is missing or has the wrong kernel shape', async () => {
    await expect(readKerasVgg16(writeKerasH5(join(root, 'missing.h5'), weights, { drop: 'block3_conv2' }))).rejects.toThrow(/layer block3_conv2 is missing/);
    const wrongIn = new Map(weights);
    const k = Float32Array.from({ length: 3 * 3 * 12 * 16 }, () => 0.01);
    wrongIn.set('block3_conv2', { kernel: { shape: [3, 3, 12, 16], values: k }, bias: weights.get('block3_conv2')!.bias });
    await expect(readKerasVgg16(writeKerasH5(join(root, 'wrong-in.h5'), wrongIn))).rejects.toThrow(/layer block3_conv2 has kernel shape \[3, 3, 12, 16\]; expected \[3, 3, 16, filters\]/);
    const wrongSize = new Map(weights);
    wrongSize.set('block3_conv2', { kernel: { shape: [1, 1, 16, 16], values: new Float32Array(256) }, bias: weights.get('block3_conv2')!.bias });
    await expect(readKerasVgg16(writeKerasH5(join(root, 'wrong-size.h5'), wrongSize))).rejects.toThrow(/layer block3_conv2 has kernel shape \[1, 1, 16, 16\]/);
    await expect(readKerasVgg16(join(root, 'nope.h5'))).rejects.toThrow(/nope\.h5: no such file/);
  });

  it('reads the notop variant: pooled works, fc2 says it needs the full file', async () => {
    const read = await readKerasVgg16(writeKerasH5(join(root, 'notop.h5'), weights, { top: false }));
    expect(read.layers.has('fc1')).toBe(false);
    const model = kerasVgg16Model(read, { inputSize: SIZE });
    const x = input(4);
    expectClose(predict(model, x), reference(weights, x, 'pooled'));
    expect(() => kerasVgg16Model(read, { output: 'fc2' })).toThrow(/has no fc1, fc2 \(a _notop file\?\): output 'fc2' needs the full VGG16 weight file/);
    model.dispose();
    x.dispose();
  });
});
