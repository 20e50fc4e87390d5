/**
 * Training kernels for the tfjs WASM (SIMD) backend in Node.
 *
 * Stock @tensorflow/tfjs-backend-wasm 4.22 lacks kernels that training needs
 * and runs others in scalar loops or with needless copies.
 * `registerWasmTrainingKernels()` registers, for backend 'wasm':
 *
 *   missing   UnsortedSegmentSum (gather / Embedding grads)   unsorted-segment-sum.ts
 *             Conv2DBackpropFilter (as an XNNPACK conv)        conv2d-backprop-filter.ts
 *   slow      BatchMatMul, _FusedMatMul with transposes/batch  batch-matmul-transposed.ts
 *             Conv2DBackpropInput (as an XNNPACK conv)         conv2d-backprop-input.ts
 *             MaxPoolGrad                                      max-pool-grad.ts
 *             Sum / Mean over leading axes (bias grads, BN)    sum-leading-axes.ts
 *             Tile (batch-norm gradient)                       tile.ts
 *             Slice / Unpack / SplitV (copied the whole input
 *             per output: RNN unstack, LSTM gates)             slice.ts
 *             Identity / same-dtype Cast (copied; every tensor
 *             saved for backprop is cloned)                    identity.ts
 *             Exp (scalar std::exp; via XNNPACK sigmoid)       exp.ts
 *
 * Kernels replacing a stock one keep it and delegate to it for configurations
 * they do not handle. Each is tested against the cpu backend in
 * test/wasm-kernels.test.ts; bench/kernels.ts prints before/after numbers.
 *
 * Idempotent; may be called before or after `tf.setBackend('wasm')`.
 *
 * The non-threaded SIMD build uses one core; the second is used one level up,
 * by data parallelism over worker_threads (offline/distill/parallel-grads.ts).
 * tfjs's threaded-simd build would split kernels inside XNNPACK, but tfjs only
 * enables it where `WASM_HAS_MULTITHREAD_SUPPORT` (browser Workers) holds.
 */
import '@tensorflow/tfjs-backend-wasm'; // stock kernels must be registered before we replace some
import { getKernel, registerKernel, unregisterKernel } from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc } from '@tensorflow/tfjs-core';
import { batchMatMulConfig, fusedMatMulConfig } from './batch-matmul-transposed';
import { conv2dBackpropFilterConfig } from './conv2d-backprop-filter';
import { conv2dBackpropInputConfig } from './conv2d-backprop-input';
import { expConfig } from './exp';
import { castConfig, identityConfig } from './identity';
import { maxPoolGradConfig } from './max-pool-grad';
import { sliceConfig, splitVConfig, unpackConfig } from './slice';
import { meanConfig, sumConfig } from './sum-leading-axes';
import { tileConfig } from './tile';
import { unsortedSegmentSumConfig } from './unsorted-segment-sum';
import { BACKEND, OWN_KERNEL, originals } from './util';

export const WASM_TRAINING_KERNELS = {
  UnsortedSegmentSum: unsortedSegmentSumConfig,
  BatchMatMul: batchMatMulConfig,
  _FusedMatMul: fusedMatMulConfig,
  Conv2DBackpropInput: conv2dBackpropInputConfig,
  Conv2DBackpropFilter: conv2dBackpropFilterConfig,
  MaxPoolGrad: maxPoolGradConfig,
  Slice: sliceConfig,
  Unpack: unpackConfig,
  SplitV: splitVConfig,
  Sum: sumConfig,
  Identity: identityConfig,
  Cast: castConfig,
  Exp: expConfig,
  Tile: tileConfig,
  Mean: meanConfig,
} as const;

export type WasmTrainingKernelName = keyof typeof WASM_TRAINING_KERNELS;

export interface RegisterOptions {
  /** Register only these (default: all). Used by the benchmark. */
  only?: WasmTrainingKernelName[];
}

function isOwn(f: KernelFunc | undefined): boolean {
  return f != null && Boolean((f as unknown as Record<symbol, unknown>)[OWN_KERNEL]);
}

function mark(f: KernelFunc): KernelFunc {
  (f as unknown as Record<symbol, unknown>)[OWN_KERNEL] = true;
  return f;
}

/** Register the missing and faster training kernels for the 'wasm' backend. */
export function registerWasmTrainingKernels(options: RegisterOptions = {}): void {
  const names = options.only ?? (Object.keys(WASM_TRAINING_KERNELS) as WasmTrainingKernelName[]);
  for (const name of names) {
    const config: KernelConfig = WASM_TRAINING_KERNELS[name];
    const existing = getKernel(config.kernelName, BACKEND);
    if (existing != null && isOwn(existing.kernelFunc)) continue; // already ours
    if (existing != null) {
      // Keep the stock kernel: our kernels delegate to it (and its setupFunc
      // must still run when the backend is (re)initialised).
      originals().set(config.kernelName, { kernelFunc: existing.kernelFunc, setupFunc: existing.setupFunc as never });
      unregisterKernel(config.kernelName, BACKEND);
    }
    const orig = originals().get(config.kernelName);
    registerKernel({
      kernelName: config.kernelName,
      backendName: BACKEND,
      kernelFunc: mark(((args) => config.kernelFunc(args)) as KernelFunc),
      ...(orig?.setupFunc != null ? { setupFunc: orig.setupFunc } : {}),
    });
  }
}

/** Restore the stock kernels (or remove the ones wasm lacks). For benchmarks/tests. */
export function unregisterWasmTrainingKernels(): void {
  for (const config of Object.values(WASM_TRAINING_KERNELS)) {
    const existing = getKernel(config.kernelName, BACKEND);
    if (existing == null || !isOwn(existing.kernelFunc)) continue;
    unregisterKernel(config.kernelName, BACKEND);
    const orig = originals().get(config.kernelName);
    if (orig != null) {
      registerKernel({
        kernelName: config.kernelName,
        backendName: BACKEND,
        kernelFunc: orig.kernelFunc,
        ...(orig.setupFunc != null ? { setupFunc: orig.setupFunc } : {}),
      });
    }
  }
}
