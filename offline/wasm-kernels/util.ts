/**
 * Shared helpers for the training kernels registered on the tfjs WASM backend.
 *
 * Everything here works directly on the backend's heap and on its registered
 * kernels (`kernelFunc`s called with `{inputs, attrs, backend}`), never on the
 * engine: a kernel must not create engine tensors, or they would land on the
 * gradient tape and in the tidy scopes of the caller.
 *
 * Memory rules of the WASM backend that the kernels rely on:
 * - `backend.makeOutput(shape, dtype)` mallocs uninitialised memory (refCount 1);
 *   `backend.disposeData(dataId)` releases a temporary again.
 * - `_malloc` may grow the wasm memory, which detaches every typed-array view
 *   taken before. Allocate first, then take views (`heapF32` etc.).
 * - `makeOutput(shape, dtype, memoryOffset)` registers a tensor that aliases
 *   memory owned by another tensor. Such a view must be released with
 *   `releaseView`, never `disposeData` (that would free an interior pointer).
 */
import { getKernel, util } from '@tensorflow/tfjs-core';
import type { DataType, KernelConfig, KernelFunc, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

export type { BackendWasm };

export const BACKEND = 'wasm';

/** Marks kernel functions registered by this module (survives duplicate module instances). */
/** The registration of one of our kernels for the wasm backend (its args typed as the kernel needs them). */
export function wasmKernel<A>(kernelName: string, kernelFunc: (args: A) => TensorInfo | TensorInfo[]): KernelConfig {
  return { kernelName, backendName: BACKEND, kernelFunc: kernelFunc as unknown as KernelFunc };
}

export const OWN_KERNEL = Symbol.for('edge-captioner.wasm-training-kernel');

/** Original (stock) kernel configs we replaced, keyed by kernel name. Global so
 * that a second copy of this module (e.g. test isolation) finds them too. */
interface Originals {
  map: Map<string, { kernelFunc: KernelFunc; setupFunc?: (backend: object) => void }>;
}
const ORIGINALS_KEY = Symbol.for('edge-captioner.wasm-training-kernel.originals');
export function originals(): Originals['map'] {
  const g = globalThis as unknown as Record<symbol, Originals | undefined>;
  let o = g[ORIGINALS_KEY];
  if (o == null) {
    o = { map: new Map() };
    g[ORIGINALS_KEY] = o;
  }
  return o.map;
}

/** The stock kernelFunc for `name` (the one we replaced, or the registered one). */
export function stockKernel(name: string): KernelFunc {
  const orig = originals().get(name);
  if (orig != null) return orig.kernelFunc;
  const cfg = getKernel(name, BACKEND);
  if (cfg == null) throw new Error(`wasm-kernels: kernel '${name}' is not registered for 'wasm'`);
  if ((cfg.kernelFunc as unknown as Record<symbol, unknown>)[OWN_KERNEL]) {
    throw new Error(`wasm-kernels: original of '${name}' was lost`);
  }
  return cfg.kernelFunc;
}

/** Run a stock wasm kernel directly (no engine, no tape). */
export function callKernel(
  name: string,
  backend: BackendWasm,
  inputs: NamedTensorInfoMap,
  attrs: NamedAttrMap = {},
): TensorInfo {
  const out = stockKernel(name)({ inputs, backend, attrs });
  if (Array.isArray(out)) throw new Error(`wasm-kernels: '${name}' returned several outputs`);
  return out;
}

/** Same data, different shape. The returned TensorInfo borrows `t`'s dataId (no refcount). */
export function withShape(t: TensorInfo, shape: number[]): TensorInfo {
  if (util.sizeFromShape(shape) !== util.sizeFromShape(t.shape)) {
    throw new Error(`wasm-kernels: cannot view [${t.shape}] as [${shape}]`);
  }
  return { dataId: t.dataId, shape, dtype: t.dtype };
}

/** The wasm heap (re-read after every allocation: growth replaces the buffer). */
export function heapU8(backend: BackendWasm): Uint8Array {
  return (backend.wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8;
}

export function heapOffset(backend: BackendWasm, t: TensorInfo): number {
  return backend.dataIdMap.get(t.dataId).memoryOffset;
}

/** Float32 view over a tensor's heap memory. Take it after all allocations. */
export function heapF32(backend: BackendWasm, t: TensorInfo): Float32Array {
  return new Float32Array(heapU8(backend).buffer, heapOffset(backend, t), util.sizeFromShape(t.shape));
}

export function heapI32(backend: BackendWasm, t: TensorInfo): Int32Array {
  return new Int32Array(heapU8(backend).buffer, heapOffset(backend, t), util.sizeFromShape(t.shape));
}

/** Allocate an uninitialised output / temporary. */
export function alloc(backend: BackendWasm, shape: number[], dtype: DataType = 'float32'): TensorInfo {
  return backend.makeOutput(shape, dtype);
}

export function dispose(backend: BackendWasm, ...ts: (TensorInfo | null | undefined)[]): void {
  for (const t of ts) if (t != null) backend.disposeData(t.dataId);
}

/**
 * A tensor that aliases `elemOffset` elements into `base`'s memory. Release
 * with `releaseView` (unregisters it and its cached XNNPACK operators, but
 * leaves the memory to `base`).
 */
export function viewInto(backend: BackendWasm, base: TensorInfo, elemOffset: number, shape: number[]): TensorInfo {
  const bytes = util.bytesPerElement(base.dtype);
  return backend.makeOutput(shape, base.dtype, heapOffset(backend, base) + elemOffset * bytes);
}

export function releaseView(backend: BackendWasm, view: TensorInfo): void {
  const data = backend.dataIdMap.get(view.dataId);
  if (data == null) return;
  backend.dataIdMap.delete(view.dataId);
  backend.wasm.tfjs.disposeData(data.id);
}

/**
 * Batched 2-D transpose on the wasm heap: [batch, rows, cols] -> [batch, cols, rows].
 * Cache-blocked plain JS; measured ~1.8x faster than the stock wasm Transpose
 * kernel for the [1280, 5000] / [256, 5000] shapes of the decoder.
 */
export function transposeLast2(backend: BackendWasm, t: TensorInfo, batch: number, rows: number, cols: number): TensorInfo {
  const out = alloc(backend, [batch, cols, rows], t.dtype);
  const n = batch * rows * cols;
  const heap = heapU8(backend).buffer;
  const src = t.dtype === 'float32'
    ? new Float32Array(heap, heapOffset(backend, t), n)
    : new Int32Array(heap, heapOffset(backend, t), n);
  const dst = t.dtype === 'float32'
    ? new Float32Array(heap, heapOffset(backend, out), n)
    : new Int32Array(heap, heapOffset(backend, out), n);
  if (rows === 1 || cols === 1) {
    dst.set(src);
    return out;
  }
  const B = 32;
  for (let b = 0; b < batch; b++) {
    const base = b * rows * cols;
    for (let r0 = 0; r0 < rows; r0 += B) {
      const r1 = Math.min(rows, r0 + B);
      for (let c0 = 0; c0 < cols; c0 += B) {
        const c1 = Math.min(cols, c0 + B);
        for (let r = r0; r < r1; r++) {
          const s = base + r * cols;
          let d = base + c0 * rows + r;
          for (let c = c0; c < c1; c++, d += rows) dst[d] = src[s + c];
        }
      }
    }
  }
  return out;
}
