import { COLOUR_BINS, encodeColourCheckWeights } from '../colour-check';
import { IMAGE_STAT_NAMES } from '../confidence';
import { BUNDLE_FORMAT, BUNDLE_FORMAT_VERSION } from './manifest';
import type * as tf from '@tensorflow/tfjs-core';
import { toFloat16, UINT8_MIN_ELEMENTS } from './quantize';
import { packUint4, uint4Spec } from './uint4';

/**
 * A 24×16 baseline JPEG (a colour gradient, quality 80; jpeg-js's encoder, see
 * test/isolate-warmup.test.ts): enough to run every stage of the JPEG decoder once.
 */
export const WARMUP_JPEG_BASE64 =
  '/9j/4AAQSkZJRgABAQAAAQABAAD/2wCEAAYEBQYFBAYGBQYHBwYIChAKCgkJChQODwwQFxQYGBcUFhYaHSUfGhsjHBYWICwgIyYnKSopGR8tMC0oMCUoKSgBBwcHCggKEwoKEygaFhooKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKP/AABEIABAAGAMBEQACEQEDEQH/xAGiAAABBQEBAQEBAQAAAAAAAAAAAQIDBAUGBwgJCgsQAAIBAwMCBAMFBQQEAAABfQECAwAEEQUSITFBBhNRYQcicRQygZGhCCNCscEVUtHwJDNicoIJChYXGBkaJSYnKCkqNDU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6g4SFhoeIiYqSk5SVlpeYmZqio6Slpqeoqaqys7S1tre4ubrCw8TFxsfIycrS09TV1tfY2drh4uPk5ebn6Onq8fLz9PX29/j5+gEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoLEQACAQIEBAMEBwUEBAABAncAAQIDEQQFITEGEkFRB2FxEyIygQgUQpGhscEJIzNS8BVictEKFiQ04SXxFxgZGiYnKCkqNTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqCg4SFhoeIiYqSk5SVlpeYmZqio6Slpqeoqaqys7S1tre4ubrCw8TFxsfIycrS09TV1tfY2dri4+Tl5ufo6ery8/T19vf4+fr/2gAMAwEAAhEDEQA/APDbDw7nHyV5f1jnMcHmPmdJYeGs4+T9KfLzn1eDzPzOlsPC+cfJ+lH1PnPq8HmnmbOl+Hc4+SvBwmI5z+bcJmPmddpfhrOPk/SvpcJHnPpcLmfmdJbaIkBC+Xvf0Hb61OY57hssl7Hl56nZaJer6XWqVm+9k0z6vAY6U9b2R//Z';

export const WARMUP_GRID_LAYER = 'conv3';

/** The warm-up decoder's weight stored as uint4 (its other large one, the embedding, is uint8). */
const UINT4_WEIGHT = 'logits/kernel';

/**
 * A tiny attention bundle (16² input, 1,100 words) with deterministic weights, for warming an
 * isolate: loading and captioning with it runs the serving code that a real bundle does (manifest
 * checks, uint4, uint8 and float16 dequantization, the convolution chain, beam search with attention,
 * the colour check and the confidence's image statistics), so V8 has compiled it before the first
 * request (the last two, left cold, cost the first request ≈ 15 ms). Its decoder model.json holds only what the
 * serving loader reads (the grid input and the attention scale), not a full tfjs-layers graph.
 */
export function warmupBundle(): Map<string, Uint8Array> {
  const enc = new TextEncoder();
  // Deterministic: random values may not be generated in a Worker's global scope.
  let s = 12345;
  const values = (n: number, scale: number) =>
    Float32Array.from({ length: n }, () => {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      return ((s >>> 8) / 2 ** 24 - 0.5) * 2 * scale;
    });
  // Written straight in the stored forms (uint4 or uint8 for large tensors, float16 for small), as
  // an exported bundle stores them: no quantization search at every isolate start.
  const modelFile = (topology: unknown, weights: [string, number[]][]) => {
    const specs: tf.io.WeightsManifestEntry[] = [];
    const chunks: Uint8Array[] = [];
    for (const [name, shape] of weights) {
      const n = shape.reduce((x, y) => x * y, 1);
      const v = values(n, 0.5);
      if (n >= UINT8_MIN_ELEMENTS && name === UINT4_WEIGHT) {
        const cols = shape[shape.length - 1];
        specs.push(uint4Spec({ name, shape, dtype: 'float32' }));
        chunks.push(packUint4(Uint8Array.from(v, (x) => Math.round((x + 0.5) * 15)), new Float32Array(cols).fill(1 / 15), new Float32Array(cols).fill(-0.5)));
      } else if (n >= UINT8_MIN_ELEMENTS) {
        specs.push({ name, shape, dtype: 'float32', quantization: { dtype: 'uint8', min: -0.5, scale: 1 / 255 } });
        chunks.push(Uint8Array.from(v, (x) => Math.round((x + 0.5) * 255)));
      } else {
        specs.push({ name, shape, dtype: 'float32', quantization: { dtype: 'float16' } });
        chunks.push(new Uint8Array(toFloat16(v).buffer));
      }
    }
    const data = new Uint8Array(chunks.reduce((a, c) => a + c.byteLength, 0));
    chunks.reduce((o, c) => (data.set(c, o), o + c.byteLength), 0);
    const json = { format: 'layers-model', modelTopology: topology, weightsManifest: [{ paths: ['weights.bin'], weights: specs }] };
    return [enc.encode(JSON.stringify(json)), data] as const;
  };

  const chain: [string, string, Record<string, unknown>][] = [
    ['image', 'InputLayer', { batch_input_shape: [null, 16, 16, 3] }],
    ['conv1', 'Conv2D', { filters: 4, kernel_size: [3, 3], strides: [1, 1], padding: 'same', activation: 'relu', use_bias: true }],
    ['pool1', 'MaxPooling2D', { pool_size: [2, 2], strides: [2, 2], padding: 'valid' }],
    ['conv2', 'Conv2D', { filters: 8, kernel_size: [3, 3], strides: [1, 1], padding: 'same', activation: 'relu', use_bias: true }],
    ['pool2', 'MaxPooling2D', { pool_size: [2, 2], strides: [2, 2], padding: 'valid' }],
    [WARMUP_GRID_LAYER, 'Conv2D', { filters: 8, kernel_size: [1, 1], strides: [1, 1], padding: 'same', activation: 'relu', use_bias: true }],
    ['global_pool', 'GlobalAveragePooling2D', {}],
    ['projection', 'Dense', { units: 6, activation: 'linear', use_bias: true }],
  ];
  const encoderTopology = {
    class_name: 'Model',
    config: {
      name: 'warmup_encoder',
      layers: chain.map(([name, class_name, config], i) => ({ name, class_name, config: { name, ...config }, inbound_nodes: i ? [[[chain[i - 1][0], 0, 0, {}]]] : [] })),
      input_layers: [['image', 0, 0]],
      output_layers: [['projection', 0, 0]],
    },
  };
  const [encoderJson, encoderWeights] = modelFile(encoderTopology, [
    ['conv1/kernel', [3, 3, 3, 4]], ['conv1/bias', [4]],
    ['conv2/kernel', [3, 3, 4, 8]], ['conv2/bias', [8]],
    [`${WARMUP_GRID_LAYER}/kernel`, [1, 1, 8, 8]], [`${WARMUP_GRID_LAYER}/bias`, [8]],
    ['projection/kernel', [8, 6]], ['projection/bias', [6]],
  ]);

  // V ≥ 1,024 so the output layer's kernel (16 × V) and the embedding (V × 16) are large enough
  // to be stored quantized: the one as uint4, the other as uint8, so both paths run.
  const [V, E, U, M, S, F, C, cells] = [1100, 16, 8, 16, 4, 6, 8, 16];
  const decoderTopology = { class_name: 'Model', config: { layers: [{ name: 'grid', class_name: 'InputLayer', config: { batch_input_shape: [null, cells, C] } }, { name: 'att_scale', class_name: 'Rescaling', config: { scale: 10 } }] } };
  const [decoderJson, decoderWeights] = modelFile(decoderTopology, [
    ['embedding/embeddings', [V, E]],
    ['init_h/kernel', [F, U]], ['init_h/bias', [U]],
    ['init_c/kernel', [F, U]], ['init_c/bias', [U]],
    ['lstm/kernel', [E, 4 * U]], ['lstm/recurrent_kernel', [U, 4 * U]], ['lstm/bias', [4 * U]],
    ['att_query/kernel', [U, S]],
    ['att_grid/kernel', [C, S]], ['att_grid/bias', [S]],
    ['att_gate/kernel', [U, S]], ['att_gate/bias', [S]],
    ['image_proj/kernel', [F, U]], ['image_proj/bias', [U]],
    ['att_out/kernel', [S, U]],
    ['merge_dense/kernel', [U, M]], ['merge_dense/bias', [M]],
    ['logits/kernel', [M, V]], ['logits/bias', [V]],
  ]);

  const colourWords = ['red', 'blue'];
  const words = ['<pad>', '<start>', '<end>', '<unk>', ...colourWords, ...Array.from({ length: V - 4 - colourWords.length }, (_, i) => `w${i}`)];
  const colourCheck = { version: 1, words: colourWords, featureSize: F, weights: encodeColourCheckWeights(values((F + COLOUR_BINS.length) * colourWords.length, 0.5)), bias: [0, 0], threshold: 0.5 };
  const k = IMAGE_STAT_NAMES.length;
  const ones = Array<number>(k).fill(1);
  const identity = ones.map((_, i) => ones.map((__, j) => (i === j ? 1 : 0)));
  const confidence = {
    version: 1,
    imageStats: { mean: Array<number>(k).fill(0), inverseCovariance: identity, limit: 10, min: Array<number>(k).fill(-10), max: Array<number>(k).fill(10), std: ones },
    logistic: { center: [0, 0, 0], scale: [1, 1, 1], weights: [1, 0.1, -0.5], bias: 0 },
  };
  const manifest = {
    format: BUNDLE_FORMAT,
    formatVersion: BUNDLE_FORMAT_VERSION,
    id: 'isolate-warmup',
    version: '1',
    quantization: 'uint4',
    encoder: { architecture: 'compact-vgg16', modelPath: 'encoder/model.json', inputSize: 16, featureSize: F, normalization: { channelOrder: 'rgb', mean: [127.5, 127.5, 127.5], std: [127.5, 127.5, 127.5] }, grid: { layer: WARMUP_GRID_LAYER, shape: [4, 4, C] } },
    decoder: { architecture: 'lstm-attention', modelPath: 'decoder/model.json', vocabSize: V, embeddingSize: E, units: U, maxLength: 6, attention: { grid: [4, 4], channels: C, size: S, temperature: 10 } },
    vocabulary: { path: 'vocab.json', specialTokens: { pad: '<pad>', start: '<start>', end: '<end>', unknown: '<unk>' } },
    colourCheck,
    confidence,
  };
  return new Map([
    ['manifest.json', enc.encode(JSON.stringify(manifest))],
    ['vocab.json', enc.encode(JSON.stringify({ words }))],
    ['encoder/model.json', encoderJson],
    ['encoder/weights.bin', encoderWeights],
    ['decoder/model.json', decoderJson],
    ['decoder/weights.bin', decoderWeights],
  ]);
}

/** The warm-up JPEG's bytes. */
export function warmupJpeg(): Uint8Array {
  return Uint8Array.from(atob(WARMUP_JPEG_BASE64), (c) => c.charCodeAt(0));
}
