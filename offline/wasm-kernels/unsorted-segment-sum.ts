/**
 * UnsortedSegmentSum for the WASM backend (missing in tfjs 4.22).
 *
 * Needed by the gradient of gather, i.e. by every Embedding layer. The op is
 * memory bound, so a plain JS loop over the wasm heap is as fast as C would be.
 * Semantics follow TF / the cpu backend: ids outside [0, numSegments) are
 * dropped, `segmentIds` must cover a prefix of `x`'s shape.
 */
import { UnsortedSegmentSum, util } from '@tensorflow/tfjs-core';
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { alloc, heapF32, heapI32, wasmKernel } from './util';
import type { BackendWasm } from './util';

function unsortedSegmentSum(args: Parameters<KernelFunc>[0]): TensorInfo {
  const backend = args.backend as BackendWasm;
  const { x, segmentIds } = args.inputs as { x: TensorInfo; segmentIds: TensorInfo };
  const numSegments = Number(args.attrs?.numSegments);
  if (!Number.isInteger(numSegments) || numSegments < 0) {
    throw new Error(`UnsortedSegmentSum (wasm): invalid numSegments ${args.attrs?.numSegments}`);
  }
  if (x.dtype !== 'float32' && x.dtype !== 'int32') {
    throw new Error(`UnsortedSegmentSum (wasm): unsupported dtype ${x.dtype}`);
  }
  if (segmentIds.dtype !== 'int32') {
    throw new Error(`UnsortedSegmentSum (wasm): segmentIds must be int32, got ${segmentIds.dtype}`);
  }
  const idsRank = segmentIds.shape.length;
  for (let i = 0; i < idsRank; i++) {
    if (segmentIds.shape[i] !== x.shape[i]) {
      throw new Error(
        `UnsortedSegmentSum (wasm): segmentIds shape [${segmentIds.shape}] is not a prefix of x shape [${x.shape}]`);
    }
  }
  const rows = util.sizeFromShape(segmentIds.shape);
  const innerShape = x.shape.slice(idsRank);
  const inner = util.sizeFromShape(innerShape);
  const out = alloc(backend, [numSegments, ...innerShape], x.dtype);

  // Views after the allocation (malloc can grow and detach the heap).
  const ids = heapI32(backend, segmentIds);
  const dst = x.dtype === 'float32' ? heapF32(backend, out) : heapI32(backend, out);
  const src = x.dtype === 'float32' ? heapF32(backend, x) : heapI32(backend, x);
  dst.fill(0);
  for (let r = 0; r < rows; r++) {
    const s = ids[r];
    if (s < 0 || s >= numSegments) continue;
    const d0 = s * inner;
    const s0 = r * inner;
    for (let j = 0; j < inner; j++) dst[d0 + j] += src[s0 + j];
  }
  return out;
}

export const unsortedSegmentSumConfig = wasmKernel(UnsortedSegmentSum, unsortedSegmentSum);
