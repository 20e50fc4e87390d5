/**
 * Conv2DBackpropFilter for the WASM backend (missing in tfjs 4.22).
 *
 *   dW[i, j, c, o] = Σ_{n, y, x} x[n, y·sh + i - pt, x·sw + j - pl, c] · dy[n, y, x, o]
 *
 * is itself a forward convolution in which the channels C play the role of
 * the batch, the batch N the role of the input channels, and dy the role of a
 * (huge, OH x OW) filter dilated by the stride:
 *
 *   xᵀ  = transpose(x,  [3, 1, 2, 0])   // [C, H, W, N]
 *   dyᵀ = transpose(dy, [1, 2, 0, 3])   // [OH, OW, N, O]
 *   r   = conv2d(xᵀ, dyᵀ, stride 1, dilation (sh, sw), pads (pt, pb', pl, pr'))  // [C, fh, fw, O]
 *   dW  = transpose(r, [1, 2, 0, 3])
 *
 * so it runs on XNNPACK's IGEMM with no im2col buffer. XNNPACK re-packs the
 * filter operand on every call (it is new data each time), so when x is the
 * smaller tensor (C < O, stride 1) the roles of x and dy are swapped instead:
 * O is the batch and x the filter (output spatially flipped).
 *
 * Measured ~1.6-2.5x the time of the forward conv of the same layer: the
 * operator creation re-packs the OH·OW·N·O "filter" every call (~1/3 of the
 * time at 112x112x16), each "image" has only fh·fw = 9 output pixels (part of
 * XNNPACK's row tiles is wasted), plus the two transposes. Splitting dy into
 * row bands so the packed filter stays in L2 was tried: no measurable gain.
 * NHWC only; NCHW throws.
 */
import { Conv2DBackpropFilter, backend_util, util } from '@tensorflow/tfjs-core';
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { alloc, callKernel, dispose, heapF32, wasmKernel } from './util';
import type { BackendWasm } from './util';

function conv2dBackpropFilter(args: Parameters<KernelFunc>[0]): TensorInfo {
  const backend = args.backend as BackendWasm;
  const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
  const attrs = args.attrs ?? {};
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as {
    strides: number | [number, number];
    pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
    dataFormat: 'NHWC' | 'NCHW';
    dimRoundingMode?: 'floor' | 'round' | 'ceil';
    filterShape: [number, number, number, number];
  };
  const fmt = backend_util.convertConv2DDataFormat(dataFormat ?? 'NHWC');
  if (fmt !== 'channelsLast') {
    throw new Error(`Conv2DBackpropFilter (wasm): only dataFormat 'NHWC' is supported, got '${dataFormat}'`);
  }
  if (x.dtype !== 'float32' || dy.dtype !== 'float32') {
    throw new Error(`Conv2DBackpropFilter (wasm): only float32 is supported`);
  }
  const info = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number], filterShape, strides, 1, pad, dimRoundingMode, false, fmt);
  const { filterHeight: fh, filterWidth: fw, strideHeight: sh, strideWidth: sw, inChannels: C, outChannels: O } = info;
  const OH = info.outHeight, OW = info.outWidth;
  if (dy.shape[1] !== OH || dy.shape[2] !== OW || dy.shape[3] !== O || dy.shape[0] !== x.shape[0]) {
    throw new Error(`Conv2DBackpropFilter (wasm): dy shape [${dy.shape}] does not match conv output [${info.outShape}]`);
  }
  const dW = alloc(backend, [fh, fw, C, O]);
  if (OH === 0 || OW === 0 || x.shape[0] === 0) {
    heapF32(backend, dW).fill(0);
    return dW;
  }
  const top = info.padInfo.top, left = info.padInfo.left;
  // Pads that make formulation A's output exactly fh x fw; a negative value
  // means x has rows/cols no output pixel reads: pad 0 and crop afterwards.
  const bottom = Math.max(0, fh + (OH - 1) * sh - info.inHeight - top);
  const right = Math.max(0, fw + (OW - 1) * sw - info.inWidth - left);

  const temps: TensorInfo[] = [];
  try {
    // XNNPACK packs the whole "filter" operand on every call, so pack the
    // smaller of x and dy: when x is smaller (C < O, e.g. the RGB input layer)
    // and the stride is 1, let x be the filter instead (formulation B below).
    const H = info.inHeight, W = info.inWidth;
    const bt = fh - 1 - top, bb = H + top - OH, bl = fw - 1 - left, br = W + left - OW;
    if (sh === 1 && sw === 1 && bt >= 0 && bb >= 0 && bl >= 0 && br >= 0
      && util.sizeFromShape(x.shape) < util.sizeFromShape(dy.shape)) {
      // r[o, i', j', c] = Σ_{n,y',x'} dyPad[n, i'+y'-bt, j'+x'-bl, o] · x[n, y', x', c]
      //               = dW[fh-1-i', fw-1-j', c, o]
      const dyT = callKernel('Transpose', backend, { x: dy }, { perm: [3, 1, 2, 0] }); // [O, OH, OW, N]
      temps.push(dyT);
      const xT = callKernel('Transpose', backend, { x }, { perm: [1, 2, 0, 3] }); // [H, W, N, C]
      temps.push(xT);
      const r = callKernel('Conv2D', backend, { x: dyT, filter: xT }, {
        strides: [1, 1], dilations: [1, 1], pad: [[0, 0], [bt, bb], [bl, br], [0, 0]], dataFormat: 'NHWC',
      });
      temps.push(r);
      if (r.shape[0] !== O || r.shape[1] !== fh || r.shape[2] !== fw || r.shape[3] !== C) {
        throw new Error(`Conv2DBackpropFilter (wasm): internal shape mismatch [${r.shape}]`);
      }
      const src = heapF32(backend, r);
      const dst = heapF32(backend, dW);
      for (let i = 0; i < fh; i++) {
        for (let j = 0; j < fw; j++) {
          for (let c = 0; c < C; c++) {
            const d = ((i * fw + j) * C + c) * O;
            const s0 = ((fh - 1 - i) * fw + (fw - 1 - j)) * C + c;
            for (let o = 0; o < O; o++) dst[d + o] = src[s0 + o * fh * fw * C];
          }
        }
      }
      return dW;
    }

    // Formulation A: C is the batch, dy (dilated by the stride) the filter.
    const xT = callKernel('Transpose', backend, { x }, { perm: [3, 1, 2, 0] }); // [C, H, W, N]
    temps.push(xT);
    const dyT = callKernel('Transpose', backend, { x: dy }, { perm: [1, 2, 0, 3] }); // [OH, OW, N, O]
    temps.push(dyT);
    const r = callKernel('Conv2D', backend, { x: xT, filter: dyT }, {
      strides: [1, 1],
      dilations: [sh, sw],
      pad: [[0, 0], [top, bottom], [left, right], [0, 0]],
      dataFormat: 'NHWC',
    });
    temps.push(r);
    const [, rh, rw] = r.shape;
    if (r.shape[0] !== C || r.shape[3] !== O || rh < fh || rw < fw) {
      throw new Error(`Conv2DBackpropFilter (wasm): internal shape mismatch [${r.shape}]`);
    }
    // dW[i, j, c, o] = r[c, i, j, o] (crop to fh x fw).
    const src = heapF32(backend, r);
    const dst = heapF32(backend, dW);
    for (let i = 0; i < fh; i++) {
      for (let j = 0; j < fw; j++) {
        const d0 = (i * fw + j) * C * O;
        for (let c = 0; c < C; c++) {
          const s0 = ((c * rh + i) * rw + j) * O;
          dst.set(src.subarray(s0, s0 + O), d0 + c * O);
        }
      }
    }
    return dW;
  } catch (e) {
    dispose(backend, dW);
    throw e;
  } finally {
    dispose(backend, ...temps);
  }
}

export const conv2dBackpropFilterConfig = wasmKernel(Conv2DBackpropFilter, conv2dBackpropFilter);
