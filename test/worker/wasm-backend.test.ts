import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initWasmBackend } from '../../worker/tfjs-wasm-backend';

describe('tfjs wasm backend inside workerd', () => {
  it('initialises once for concurrent callers, with SIMD', async () => {
    const t0 = performance.now();
    const [a, b] = await Promise.all([initWasmBackend(), initWasmBackend()]);
    console.log(`initWasmBackend: ${(performance.now() - t0).toFixed(1)} ms`);
    expect(a).toEqual({ backend: 'wasm', simd: true });
    expect(b).toBe(a);
    expect(await initWasmBackend()).toBe(a);
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

  it('runs a 112x112x32 3x3 conv at SIMD speed (timing is logged)', async () => {
    await initWasmBackend();
    const x = tf.randomUniform([1, 112, 112, 32]) as tf.Tensor4D;
    const w = tf.randomUniform([3, 3, 32, 32], -0.1, 0.1) as tf.Tensor4D;
    tf.conv2d(x, w, 1, 'same').dispose(); // warm-up (XNNPACK operator creation)
    const runs = 5;
    const t0 = performance.now();
    for (let i = 0; i < runs; i++) {
      const y = tf.conv2d(x, w, 1, 'same');
      await y.data();
      y.dispose();
    }
    const ms = (performance.now() - t0) / runs;
    // 1x112x112x32 conv 3x3 32->32 = 115.6 MFLOP*2; report GFLOP/s for comparison.
    const gflops = (2 * 112 * 112 * 32 * 32 * 9) / (ms * 1e6);
    console.log(`conv2d 1x112x112x32 3x3 32->32: ${ms.toFixed(1)} ms/run (${gflops.toFixed(1)} GFLOP/s)`);
    expect(ms).toBeGreaterThan(0);
    tf.dispose([x, w]);
  });
});
