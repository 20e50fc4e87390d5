import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importTfliteCommand } from '../offline/commands/import-tflite';
import { loadFeatureEncoder } from '../offline/features/encoder';
import { selectBackend } from '../offline/backend';
import { readTflite } from '../offline/tflite/read';
import { tfliteToLayers } from '../offline/tflite/to-layers';
import { float32Bytes, int32Bytes, quantizeInt8PerChannel, quantizeUint8, writeTflite, type WOperator, type WTensor } from './helpers/tflite-writer';

const root = mkdtempSync(join(tmpdir(), 'tflite-'));
beforeAll(() => selectBackend('cpu'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const seeded = (n: number, seed: number, amp = 1) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 12.9898 + i * 78.233) * amp);
const maxAbsDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);

/**
 * A small quantized network with every operator an ImageNet MobileNet uses: uint8 per-tensor and
 * int8 per-channel weights, int32 and float biases, SAME and VALID padding, strides, fused ReLU6
 * and ReLU, a residual ADD, average pooling, SQUEEZE, a fully connected layer and softmax.
 */
function tinyNetwork() {
  const inScale = 1 / 127;
  const w0 = seeded(4 * 3 * 3 * 3, 1, 0.5); // CONV_2D [out, kh, kw, in]
  const q0 = quantizeUint8(w0);
  const b0 = seeded(4, 2, 0.2);
  const w1 = seeded(3 * 3 * 8, 3, 0.6); // DEPTHWISE [1, kh, kw, in·2], per channel on axis 3
  const w1ByChannel = new Float32Array(8 * 9); // channel-major copy to quantize per channel
  for (let i = 0; i < 9; i++) for (let c = 0; c < 8; c++) w1ByChannel[c * 9 + i] = w1[i * 8 + c];
  const q1c = quantizeInt8PerChannel(w1ByChannel, 8);
  const q1 = new Int8Array(72);
  const q1src = new Int8Array(q1c.data.buffer);
  for (let i = 0; i < 9; i++) for (let c = 0; c < 8; c++) q1[i * 8 + c] = q1src[c * 9 + i];
  const b1 = seeded(8, 4, 0.1);
  const w2 = seeded(8 * 8, 5, 0.4); // 1×1 CONV_2D [out, 1, 1, in], per channel on axis 0
  const q2 = quantizeInt8PerChannel(w2, 8);
  const w3 = seeded(5 * 8, 6, 0.5); // FULLY_CONNECTED [out, in]
  const q3 = quantizeUint8(w3);
  const b3 = seeded(5, 7, 0.1);
  const b0q = Int32Array.from(b0, (v) => Math.round(v / (inScale * q0.scale)));

  const tensors: WTensor[] = [
    { name: 'input', shape: [1, 8, 8, 3], type: 3, quantization: { scale: [inScale], zeroPoint: [128] } }, // 0
    { name: 'conv0/weights', shape: [4, 3, 3, 3], type: 3, data: q0.data, quantization: { scale: [q0.scale], zeroPoint: [q0.zeroPoint] } }, // 1
    { name: 'conv0/bias', shape: [4], type: 2, data: int32Bytes([...b0q]), quantization: { scale: [inScale * q0.scale], zeroPoint: [0] } }, // 2
    { name: 'conv0/Relu6;conv0/BiasAdd', shape: [1, 4, 4, 4], type: 3 }, // 3
    { name: 'dw1/weights', shape: [1, 3, 3, 8], type: 9, data: new Uint8Array(q1.buffer), quantization: { scale: q1c.scales, zeroPoint: q1c.scales.map(() => 0), quantizedDimension: 3 } }, // 4
    { name: 'dw1/bias', shape: [8], type: 0, data: float32Bytes(b1) }, // 5
    { name: 'dw1/Relu', shape: [1, 2, 2, 8], type: 3 }, // 6
    { name: 'pw2/weights', shape: [8, 1, 1, 8], type: 9, data: q2.data, quantization: { scale: q2.scales, zeroPoint: q2.scales.map(() => 0), quantizedDimension: 0 } }, // 7
    { name: 'pw2/out', shape: [1, 2, 2, 8], type: 3 }, // 8
    { name: 'add3', shape: [1, 2, 2, 8], type: 3 }, // 9
    { name: 'pool/AvgPool', shape: [1, 1, 1, 8], type: 3 }, // 10
    { name: 'squeeze', shape: [1, 8], type: 3 }, // 11
    { name: 'fc/weights', shape: [5, 8], type: 3, data: q3.data, quantization: { scale: [q3.scale], zeroPoint: [q3.zeroPoint] } }, // 12
    { name: 'fc/bias', shape: [5], type: 0, data: float32Bytes(b3) }, // 13
    { name: 'logits', shape: [1, 5], type: 3 }, // 14
    { name: 'probs', shape: [1, 5], type: 3 }, // 15
  ];
  const operators: WOperator[] = [
    { code: 3, inputs: [0, 1, 2], outputs: [3], options: { 0: ['int8', 0], 1: ['int32', 2], 2: ['int32', 2], 3: ['int8', 3] } }, // SAME, stride 2, RELU6
    { code: 4, inputs: [3, 4, 5], outputs: [6], options: { 0: ['int8', 1], 1: ['int32', 1], 2: ['int32', 1], 3: ['int32', 2], 4: ['int8', 1] } }, // VALID, ×2, RELU
    { code: 3, inputs: [6, 7, -1], outputs: [8], options: { 0: ['int8', 0], 1: ['int32', 1], 2: ['int32', 1], 3: ['int8', 0] } }, // no bias
    { code: 0, inputs: [6, 8], outputs: [9], options: { 0: ['int8', 0] } },
    { code: 1, inputs: [9], outputs: [10], options: { 0: ['int8', 1], 1: ['int32', 2], 2: ['int32', 2], 3: ['int32', 2], 4: ['int32', 2], 5: ['int8', 0] } },
    { code: 43, inputs: [10], outputs: [11], options: { 0: ['int32s', [1, 2]] } },
    { code: 9, inputs: [11, 12, 13], outputs: [14], options: { 0: ['int8', 0] } },
    { code: 25, inputs: [14], outputs: [15] },
  ];
  const bytes = writeTflite(tensors, operators, [0], [15]);

  /** The same network in plain tf ops on the dequantized weights. */
  const deq = (q: ArrayLike<number>, scale: number | number[], zp: number | number[], channelOf: (i: number) => number = () => 0) =>
    Float32Array.from({ length: q.length }, (_, i) => {
      const c = channelOf(i);
      return (Array.isArray(scale) ? scale[c] : scale) * (q[i] - (Array.isArray(zp) ? zp[c] : zp));
    });
  const reference = (x: tf.Tensor4D) =>
    tf.tidy(() => {
      const k0 = tf.transpose(tf.tensor4d(deq(q0.data, q0.scale, q0.zeroPoint), [4, 3, 3, 3]), [1, 2, 3, 0]) as tf.Tensor4D;
      const y0 = tf.clipByValue(tf.add(tf.conv2d(x, k0, 2, 'same'), tf.tensor1d(Float32Array.from(b0q, (v) => v * inScale * q0.scale))), 0, 6) as tf.Tensor4D;
      const k1 = tf.reshape(tf.tensor(deq(q1, q1c.scales, 0, (i) => i % 8)), [3, 3, 4, 2]) as tf.Tensor4D;
      const y1 = tf.relu(tf.add(tf.depthwiseConv2d(y0, k1, 1, 'valid'), b1)) as tf.Tensor4D;
      const k2 = tf.transpose(tf.tensor4d(deq(new Int8Array(q2.data.buffer), q2.scales, 0, (i) => Math.floor(i / 8)), [8, 1, 1, 8]), [1, 2, 3, 0]) as tf.Tensor4D;
      const y3 = tf.add(y1, tf.conv2d(y1, k2, 1, 'same')) as tf.Tensor4D;
      const pooled = tf.reshape(tf.avgPool(y3, 2, 2, 'valid'), [-1, 8]) as tf.Tensor2D;
      const logits = tf.add(tf.matMul(pooled, tf.tensor2d(deq(q3.data, q3.scale, q3.zeroPoint), [5, 8]), false, true), b3);
      return { grid: y3, pooled, probs: tf.softmax(logits) };
    });
  return { bytes, reference };
}

describe('TFLite import', () => {
  it('reads the flatbuffer: tensors, quantization (per tensor and per channel), operators and options', () => {
    const m = readTflite(tinyNetwork().bytes);
    expect(m.tensors).toHaveLength(16);
    expect(m.operators.map((o) => o.op)).toEqual(['CONV_2D', 'DEPTHWISE_CONV_2D', 'CONV_2D', 'ADD', 'AVERAGE_POOL_2D', 'SQUEEZE', 'FULLY_CONNECTED', 'SOFTMAX']);
    expect(m.tensors[4].quantization!.scale).toHaveLength(8);
    expect(m.tensors[4].quantization!.quantizedDimension).toBe(3);
    expect(m.tensors[0].quantization!.zeroPoint).toEqual([128]);
    expect(m.operators[0].options!.int32(1)).toBe(2);
    expect(m.operators[2].inputs).toEqual([6, 7, -1]);
  });

  it('computes what plain tf ops compute on the dequantized weights, to 1e-4, at every tap', () => {
    const { bytes, reference } = tinyNetwork();
    const imp = tfliteToLayers(bytes);
    expect(imp.inputSize).toBe(8);
    expect(imp.normalization).toEqual({ channelOrder: 'rgb', mean: [128, 128, 128], std: [127, 127, 127].map((v) => expect.closeTo(v, 4)) });
    expect(imp.pooled).toBe('pool_AvgPool');
    expect(imp.grid).toBe('add3');
    expect(imp.layers.find((l) => l.tensor === 'conv0/Relu6;conv0/BiasAdd')?.layer).toBe('conv0_Relu6_relu6');
    const x = tf.tensor4d(seeded(2 * 8 * 8 * 3, 9), [2, 8, 8, 3]); // two images, in [-1, 1]
    const want = reference(x);
    const taps = tf.model({ inputs: imp.model.inputs, outputs: [imp.grid!, imp.pooled!].map((n) => imp.model.getLayer(n).output as tf.SymbolicTensor) });
    const [grid, pooled] = taps.predict(x) as tf.Tensor[];
    expect(maxAbsDiff(grid, want.grid)).toBeLessThan(1e-4);
    expect(maxAbsDiff(tf.reshape(pooled, [2, 8]), want.pooled)).toBeLessThan(1e-4);
    expect(maxAbsDiff(imp.model.predict(x) as tf.Tensor, want.probs)).toBeLessThan(1e-4);
    expect(tf.sum(want.probs).dataSync()[0]).toBeCloseTo(2, 4);
  });

  it('names the operator and the node it cannot import, and refuses what is not TFLite', () => {
    const tensors: WTensor[] = [
      { name: 'input', shape: [1, 4, 4, 3], type: 0 },
      { name: 'resized', shape: [1, 8, 8, 3], type: 0 },
    ];
    const bytes = writeTflite(tensors, [{ code: 23, inputs: [0], outputs: [1] }], [0], [1]); // RESIZE_BILINEAR
    expect(() => tfliteToLayers(bytes)).toThrow(/node 0 \(BUILTIN_23 → resized\): operator BUILTIN_23 is not supported \(supported: CONV_2D/);
    expect(() => readTflite(new Uint8Array(64))).toThrow(/not a TFLite model/);
  });

  it('import-tflite writes a model the feature encoder loads, with its input normalisation and the pooled layer named', async () => {
    const { bytes, reference } = tinyNetwork();
    writeFileSync(join(root, 'tiny.tflite'), bytes);
    const out = join(root, 'imported');
    const r = await importTfliteCommand({ tflitePath: join(root, 'tiny.tflite'), outDir: out, log: () => {} });
    expect(r.pooled).toBe('pool_AvgPool');
    for (const f of ['model.json', 'normalization.json', 'layers.json']) expect(existsSync(join(out, f)), f).toBe(true);
    const normalization = JSON.parse(readFileSync(join(out, 'normalization.json'), 'utf8'));
    const encoder = await loadFeatureEncoder({ modelPath: r.modelPath, layer: r.pooled!, normalization });
    expect(encoder.featureSize).toBe(8);
    // An 8×8 photo whose pixels map exactly onto a known real-valued input.
    const px = Uint8Array.from({ length: 8 * 8 * 3 }, (_, i) => (i * 29) % 256);
    const features = encoder.encodeBatch([{ width: 8, height: 8, data: px }]);
    const x = tf.tensor4d(Float32Array.from(px, (v) => (v - 128) / 127), [1, 8, 8, 3]);
    expect(maxAbsDiff(tf.tensor2d(features, [1, 8]), reference(x).pooled)).toBeLessThan(1e-4);
    encoder.dispose();
  });
});
