import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initWasmBackend } from '../../worker/tfjs-wasm-backend';

describe('tfjs wasm backend inside workerd', () => {
  it('initialises once for concurrent callers, with SIMD, and restores the hooked globals', async () => {
    const spied = WebAssembly.instantiate;
    const Instance = WebAssembly.Instance;
    let moduleInstantiations = 0;
    (WebAssembly as { instantiate: unknown }).instantiate = function (...args: unknown[]) {
      if (args[0] instanceof WebAssembly.Module) moduleInstantiations++;
      return (spied as (...a: unknown[]) => unknown).apply(WebAssembly, args);
    };
    // The precompiled module is instantiated synchronously (so init can finish in global scope).
    (WebAssembly as { Instance: unknown }).Instance = class extends Instance {
      constructor(m: WebAssembly.Module, imports?: WebAssembly.Imports) {
        super(m, imports);
        moduleInstantiations++;
      }
    };
    const hooked = WebAssembly.instantiate;
    const fetchBefore = tf.env().platform?.fetch;
    try {
      const t0 = performance.now();
      const [a, b] = await Promise.all([initWasmBackend(), initWasmBackend()]);
      console.log(`initWasmBackend: ${(performance.now() - t0).toFixed(1)} ms`);
      expect(a).toEqual({ backend: 'wasm', simd: true });
      expect(b).toBe(a);
      expect(await initWasmBackend()).toBe(a);
      expect(moduleInstantiations).toBe(1);
      expect(WebAssembly.instantiate).toBe(hooked);
      if (fetchBefore) expect(tf.env().platform.fetch).toBe(fetchBefore);
    } finally {
      (WebAssembly as { instantiate: unknown }).instantiate = spied;
      (WebAssembly as { Instance: unknown }).Instance = Instance;
    }
    expect(tf.getBackend()).toBe('wasm');
    expect(tf.env().getBool('WASM_HAS_SIMD_SUPPORT')).toBe(true);
    expect(tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT')).toBe(false);
  });

  it('computes matMul correctly', async () => {
    await initWasmBackend();
    const a = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]);
    const b = tf.tensor2d([7, 8, 9, 10, 11, 12], [3, 2]);
    const c = tf.matMul(a, b);
    expect(Array.from(await c.data())).toEqual([58, 64, 139, 154]);
    tf.dispose([a, b, c]);
  });

  it('computes conv2d correctly', async () => {
    await initWasmBackend();
    // 1x3x3x1 input 1..9, 2x2 kernel of ones, valid padding: sums of 2x2 windows.
    const x = tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 3, 3, 1]);
    const w = tf.ones([2, 2, 1, 1]) as tf.Tensor4D;
    const y = tf.conv2d(x, w, 1, 'valid');
    expect(y.shape).toEqual([1, 2, 2, 1]);
    expect(Array.from(await y.data())).toEqual([12, 16, 24, 28]);
    tf.dispose([x, w, y]);
  });

  it('matches a naive reference on a multi-channel same-padded conv2d', async () => {
    await initWasmBackend();
    const [H, W, C, K] = [7, 6, 5, 8];
    const xv = Float32Array.from({ length: H * W * C }, (_, i) => Math.sin(i * 0.37));
    const wv = Float32Array.from({ length: 9 * C * K }, (_, i) => Math.cos(i * 0.11));
    const expected = new Float32Array(H * W * K);
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++)
        for (let k = 0; k < K; k++) {
          let s = 0;
          for (let dy = -1; dy <= 1; dy++)
            for (let dx = -1; dx <= 1; dx++) {
              if (y + dy < 0 || y + dy >= H || x + dx < 0 || x + dx >= W) continue;
              for (let c = 0; c < C; c++) s += xv[((y + dy) * W + x + dx) * C + c] * wv[(((dy + 1) * 3 + dx + 1) * C + c) * K + k];
            }
          expected[(y * W + x) * K + k] = s;
        }
    const out = tf.conv2d(tf.tensor4d(xv, [1, H, W, C]), tf.tensor4d(wv, [3, 3, C, K]), 1, 'same');
    const got = await out.data();
    expected.forEach((v, i) => expect(got[i]).toBeCloseTo(v, 4));
    out.dispose();
  });

  it('runs a 112x112x32 3x3 conv through XNNPACK correctly after warm-up (timing is logged; npm run bench measures speed)', async () => {
    await initWasmBackend();
    const [H, W, C, K] = [112, 112, 32, 32];
    const xv = Float32Array.from({ length: H * W * C }, (_, i) => Math.sin(i * 0.013));
    const wv = Float32Array.from({ length: 9 * C * K }, (_, i) => Math.cos(i * 0.07) * 0.1);
    const x = tf.tensor4d(xv, [1, H, W, C]);
    const w = tf.tensor4d(wv, [3, 3, C, K]);
    // Warm-up: XNNPACK operator creation and V8's tier-up from baseline to optimised wasm code.
    for (let i = 0; i < 10; i++) tf.conv2d(x, w, 1, 'same').dispose();
    const runs = 10;
    const t0 = performance.now();
    let last: Float32Array = new Float32Array(0);
    for (let i = 0; i < runs; i++) {
      const y = tf.conv2d(x, w, 1, 'same');
      last = (await y.data()) as Float32Array;
      y.dispose();
    }
    const ms = (performance.now() - t0) / runs;
    console.log(`conv2d 1x112x112x32 3x3 32->32: ${ms.toFixed(1)} ms/run (${((2 * H * W * C * K * 9) / (ms * 1e6)).toFixed(1)} GFLOP/s)`);
    // The tenth run's output, checked at corners, edges and inner points against the definition.
    const at = (y: number, x0: number, k: number) => {
      let s = 0;
      for (let dy = -1; dy <= 1; dy++)
        for (let dx = -1; dx <= 1; dx++) {
          if (y + dy < 0 || y + dy >= H || x0 + dx < 0 || x0 + dx >= W) continue;
          for (let c = 0; c < C; c++) s += xv[((y + dy) * W + x0 + dx) * C + c] * wv[(((dy + 1) * 3 + dx + 1) * C + c) * K + k];
        }
      return s;
    };
    for (const [y, x0, k] of [[0, 0, 0], [0, 111, 5], [111, 0, 31], [111, 111, 17], [56, 1, 9], [3, 77, 30], [64, 64, 1]]) {
      expect(last[(y * W + x0) * K + k], `(${y}, ${x0}, ${k})`).toBeCloseTo(at(y, x0, k), 3);
    }
    tf.dispose([x, w]);
  });
});
