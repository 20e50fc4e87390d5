/**
 * Identity (and same-dtype Cast) as a reference-counted alias on WASM.
 *
 * Every kernel run under a gradient tape saves its inputs/outputs for the
 * backward pass through `engine.clone()`, i.e. the Identity kernel. The cpu
 * backend aliases (incRef, same dataId); stock wasm copies the data. In one
 * decoder training step that was ~830 copies, ~320 MB memcpy. Tensor data is
 * immutable, so aliasing is safe: the memory is freed when the last alias is.
 * Also fixes stock Cast float32/int32 -> bool, which wrapped values mod 256.
 */
import { Cast, Identity } from '@tensorflow/tfjs-core';
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { stockKernel, wasmKernel } from './util';
import type { BackendWasm } from './util';

function alias(backend: BackendWasm, x: TensorInfo): TensorInfo {
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape.slice(), dtype: x.dtype };
}

function identityKernel(args: Parameters<KernelFunc>[0]): TensorInfo {
  const { x } = args.inputs as { x: TensorInfo };
  if (x.dtype === 'string' || x.dtype === 'complex64') return stockKernel(Identity)(args) as TensorInfo;
  return alias(args.backend as BackendWasm, x);
}

function castKernel(args: Parameters<KernelFunc>[0]): TensorInfo {
  const { x } = args.inputs as { x: TensorInfo };
  const dtype = args.attrs?.dtype;
  const backend = args.backend as BackendWasm;
  if (dtype === 'bool' && (x.dtype === 'float32' || x.dtype === 'int32')) {
    // Stock wasm truncates mod 256 (e.g. -2 -> 254); cpu/TF semantics: x != 0.
    const out = backend.makeOutput(x.shape.slice(), 'bool');
    const src = backend.typedArrayFromHeap(x);
    const dst = backend.typedArrayFromHeap(out);
    for (let i = 0; i < src.length; i++) dst[i] = src[i] !== 0 ? 1 : 0;
    return out;
  }
  if (dtype !== x.dtype || x.dtype === 'string' || x.dtype === 'complex64') {
    return stockKernel(Cast)(args) as TensorInfo;
  }
  return alias(backend, x);
}

export const identityConfig = wasmKernel(Identity, identityKernel);

export const castConfig = wasmKernel(Cast, castKernel);
