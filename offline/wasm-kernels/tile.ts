/**
 * Tile for the WASM backend as block copies on the heap.
 *
 * The stock kernel computes a multi-index per output element (~35 ns/element).
 * The batch-norm gradient tiles a [1, 1, 1, C] vector to the full activation
 * shape, which made Tile the single most expensive kernel of a BN-VGG training
 * step (8 calls, ~1 s). Here each input row is copied once and every repeat is
 * a doubling `copyWithin` (memmove) of the block already written.
 */
import { Tile, util } from '@tensorflow/tfjs-core';
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { heapOffset, heapU8, stockKernel, wasmKernel } from './util';
import type { BackendWasm } from './util';

type Typed = Float32Array | Int32Array | Uint8Array;

function view(backend: BackendWasm, t: TensorInfo): Typed {
  const buf = heapU8(backend).buffer, off = heapOffset(backend, t), n = util.sizeFromShape(t.shape);
  if (t.dtype === 'float32') return new Float32Array(buf, off, n);
  if (t.dtype === 'int32') return new Int32Array(buf, off, n);
  return new Uint8Array(buf, off, n);
}

function tileKernel(args: Parameters<KernelFunc>[0]): TensorInfo {
  const backend = args.backend as BackendWasm;
  const { x } = args.inputs as { x: TensorInfo };
  const reps = (args.attrs?.reps ?? []) as number[];
  const r = x.shape.length;
  if (r === 0 || reps.length !== r || !['float32', 'int32', 'bool'].includes(x.dtype)) {
    return stockKernel(Tile)(args) as TensorInfo;
  }
  const outShape = x.shape.map((s, i) => s * reps[i]);
  const out = backend.makeOutput(outShape, x.dtype);
  if (util.sizeFromShape(outShape) === 0) return out;
  const src = view(backend, x);
  const dst = view(backend, out);
  const inStride = [...util.computeStrides(x.shape), 1];
  const outStride = [...util.computeStrides(outShape), 1];

  const fill = (axis: number, s0: number, d0: number): void => {
    const n = x.shape[axis];
    if (axis === r - 1) {
      dst.set(src.subarray(s0, s0 + n), d0);
    } else {
      for (let i = 0; i < n; i++) fill(axis + 1, s0 + i * inStride[axis], d0 + i * outStride[axis]);
    }
    // Replicate the block just written (n slices of this axis) reps[axis] times.
    const block = n * outStride[axis];
    for (let have = 1; have < reps[axis];) {
      const k = Math.min(have, reps[axis] - have);
      dst.copyWithin(d0 + have * block, d0, d0 + k * block);
      have += k;
    }
  };
  fill(0, 0, 0);
  return out;
}

export const tileConfig = wasmKernel(Tile, tileKernel);
