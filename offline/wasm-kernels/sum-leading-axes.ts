/**
 * Sum / Mean over leading axes for the WASM backend (bias gradients,
 * batch-norm statistics).
 *
 * The stock wasm Sum only reduces innermost axes; anything else is first
 * transposed in full. Bias gradients are exactly that case: sum of dy over
 * [batch] (dense, [1280, 5000]) or [batch, h, w] (conv, NHWC). Summing the
 * rows directly into a float64 accumulator avoids the transpose (measured
 * sum over axis 0 of [1280, 5000]: 45 ms stock vs ~5 ms innermost).
 * Mean is the same sum divided by the row count (batch-norm moments over
 * [batch, h, w]). Other reductions go to the stock kernels.
 */
import { Mean, Sum, backend_util, util } from '@tensorflow/tfjs-core';
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { alloc, heapF32, stockKernel, wasmKernel } from './util';
import type { BackendWasm } from './util';

function leadingReduce(args: Parameters<KernelFunc>[0], kernel: typeof Sum | typeof Mean): TensorInfo {
  const backend = args.backend as BackendWasm;
  const { x } = args.inputs as { x: TensorInfo };
  const { axis, keepDims } = args.attrs as unknown as { axis: number | number[]; keepDims: boolean };
  if (x.dtype !== 'float32' || x.shape.length < 2) return stockKernel(kernel)(args) as TensorInfo;
  const axes = util.parseAxisParam(axis, x.shape).slice().sort((a, b) => a - b);
  const k = axes.length;
  const leading = k > 0 && k < x.shape.length && axes.every((a, i) => a === i);
  if (!leading) return stockKernel(kernel)(args) as TensorInfo;

  const rows = util.sizeFromShape(x.shape.slice(0, k));
  const innerShape = x.shape.slice(k);
  const inner = util.sizeFromShape(innerShape);
  const outShape = keepDims ? backend_util.expandShapeToKeepDim(innerShape, axes) : innerShape;
  const out = alloc(backend, outShape, 'float32');
  const src = heapF32(backend, x);
  const dst = heapF32(backend, out);
  if (inner === 0) return out;
  const acc = new Float64Array(inner);
  let r = 0;
  // Four rows per pass: a quarter of the accumulator traffic (2x faster in V8).
  for (; r + 4 <= rows; r += 4) {
    const b0 = r * inner, b1 = b0 + inner, b2 = b1 + inner, b3 = b2 + inner;
    for (let j = 0; j < inner; j++) acc[j] += (src[b0 + j] + src[b1 + j]) + (src[b2 + j] + src[b3 + j]);
  }
  for (; r < rows; r++) {
    const base = r * inner;
    for (let j = 0; j < inner; j++) acc[j] += src[base + j];
  }
  if (kernel === Mean) {
    for (let j = 0; j < inner; j++) acc[j] /= rows;
  }
  dst.set(acc);
  return out;
}

const sumKernel = (args: Parameters<KernelFunc>[0]) => leadingReduce(args, Sum);
const meanKernel = (args: Parameters<KernelFunc>[0]) => leadingReduce(args, Mean);

export const sumConfig = wasmKernel(Sum, sumKernel);

export const meanConfig = wasmKernel(Mean, meanKernel);
