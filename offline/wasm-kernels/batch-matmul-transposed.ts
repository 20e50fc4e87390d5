/**
 * BatchMatMul / _FusedMatMul for the WASM backend, routed to the XNNPACK path.
 *
 * The stock wasm kernel (tfjs 4.22, batch_mat_mul_impl.cc) only uses XNNPACK's
 * fully-connected operator when `!transposeA && !transposeB` and both batch
 * dims are 1; everything else falls into a scalar triple loop that is 7-40x
 * slower. Every dense-layer gradient (dX = dY·Wᵀ, dW = Xᵀ·dY) and every
 * batched matmul hits that loop.
 *
 * Here the transposed operand is materialised with a cache-blocked JS
 * transpose (O(size) vs O(M·N·K) for the product), and the product runs
 * through the stock kernel in its fast configuration:
 * - shared right operand (batchB == 1): the batch is folded into M, one call;
 * - true batches: one call per batch entry on heap views (no copies of inputs).
 * When transposing the inputs is more expensive than computing Cᵀ = op(B)ᵀ·op(A)ᵀ
 * and transposing the (small) result, the latter is used.
 */
import { BatchMatMul, _FusedMatMul, broadcast_util } from '@tensorflow/tfjs-core';
import type { KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import { alloc, dispose, heapOffset, heapU8, releaseView, stockKernel, transposeLast2, viewInto, withShape, wasmKernel } from './util';
import type { BackendWasm } from './util';

interface Operand {
  /** [batch, rows, inner]-contiguous data (may be the caller's tensor). */
  t: TensorInfo;
  batch: number;
  owned: boolean;
}

function prod(xs: number[]): number {
  return xs.reduce((p, x) => p * x, 1);
}

/** `x` holds row-major [batch, r, c]: use it as is, or materialise [batch, c, r]. */
function asRowMajor(backend: BackendWasm, x: TensorInfo, batch: number, r: number, c: number, transpose: boolean): Operand {
  if (!transpose) return { t: withShape(x, [batch, r, c]), batch, owned: false };
  return { t: transposeLast2(backend, x, batch, r, c), batch, owned: true };
}

/** out[batch, M, N] = A[bA, M, K] · B[bB, K, N] with stock fast kernel calls. */
function matmulRowMajor(
  backend: BackendWasm, A: Operand, B: Operand, M: number, K: number, N: number,
): TensorInfo {
  const stock = stockKernel(BatchMatMul);
  const attrs: NamedAttrMap = { transposeA: false, transposeB: false };
  const batch = Math.max(A.batch, B.batch);
  if (B.batch === 1) {
    const r = stock({
      inputs: { a: withShape(A.t, [1, A.batch * M, K]), b: withShape(B.t, [1, K, N]) },
      backend, attrs,
    }) as TensorInfo;
    return withShape(r, [batch, M, N]);
  }
  // Several right operands: one fast call per batch entry.
  const out = alloc(backend, [batch, M, N]);
  const bytes = M * N * 4;
  for (let i = 0; i < batch; i++) {
    const av = A.batch === 1 ? null : viewInto(backend, A.t, i * M * K, [1, M, K]);
    const bv = viewInto(backend, B.t, i * K * N, [1, K, N]);
    try {
      const r = stock({
        inputs: { a: av ?? withShape(A.t, [1, M, K]), b: bv }, backend, attrs,
      }) as TensorInfo;
      const src = heapOffset(backend, r);
      heapU8(backend).copyWithin(heapOffset(backend, out) + i * bytes, src, src + bytes);
      dispose(backend, r);
    } finally {
      if (av != null) releaseView(backend, av);
      releaseView(backend, bv);
    }
  }
  return out;
}

function batchMatMulKernel(args: Parameters<KernelFunc>[0]): TensorInfo {
  const backend = args.backend as BackendWasm;
  const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
  const transposeA = Boolean(args.attrs?.transposeA);
  const transposeB = Boolean(args.attrs?.transposeB);
  const stock = stockKernel(BatchMatMul);

  if (a.dtype !== 'float32' || b.dtype !== 'float32' || a.shape.length < 2 || b.shape.length < 2) {
    return stock(args) as TensorInfo;
  }
  const aR = a.shape.length, bR = b.shape.length;
  const M = transposeA ? a.shape[aR - 1] : a.shape[aR - 2];
  const K = transposeA ? a.shape[aR - 2] : a.shape[aR - 1];
  const Kb = transposeB ? b.shape[bR - 1] : b.shape[bR - 2];
  const N = transposeB ? b.shape[bR - 2] : b.shape[bR - 1];
  const batchA = prod(a.shape.slice(0, -2));
  const batchB = prod(b.shape.slice(0, -2));
  const simple = batchA === batchB || batchA === 1 || batchB === 1;
  if (K !== Kb || !simple || M * N * K === 0) return stock(args) as TensorInfo;
  if (!transposeA && !transposeB && batchA === 1 && batchB === 1) return stock(args) as TensorInfo;

  const outShape = broadcast_util
    .assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2))
    .concat([M, N]);
  const batch = Math.max(batchA, batchB);

  // Elements moved by transposes: direct (transpose inputs as needed) vs
  // swapped (Cᵀ = op(B)ᵀ op(A)ᵀ, then transpose C).
  const costDirect = (transposeA ? batchA * M * K : 0) + (transposeB ? batchB * K * N : 0);
  const costSwap = (transposeB ? 0 : batchB * K * N) + (transposeA ? 0 : batchA * M * K) + batch * M * N;

  const temps: TensorInfo[] = [];
  try {
    if (costDirect <= costSwap) {
      const A = asRowMajor(backend, a, batchA, transposeA ? K : M, transposeA ? M : K, transposeA);
      if (A.owned) temps.push(A.t);
      const B = asRowMajor(backend, b, batchB, transposeB ? N : K, transposeB ? K : N, transposeB);
      if (B.owned) temps.push(B.t);
      return withShape(matmulRowMajor(backend, A, B, M, K, N), outShape);
    }
    // op(B)ᵀ is [N, K] row-major: equals b itself when transposeB, else transpose b.
    const Bt = asRowMajor(backend, b, batchB, K, N, !transposeB);
    if (Bt.owned) temps.push(Bt.t);
    // op(A)ᵀ is [K, M]: equals a itself when transposeA.
    const At = asRowMajor(backend, a, batchA, M, K, !transposeA);
    if (At.owned) temps.push(At.t);
    const ct = matmulRowMajor(backend, Bt, At, N, K, M); // [batch, N, M]
    temps.push(ct);
    return withShape(transposeLast2(backend, ct, batch, N, M), outShape);
  } finally {
    dispose(backend, ...temps);
  }
}

function fusedMatMulKernel(args: Parameters<KernelFunc>[0]): TensorInfo {
  const backend = args.backend as BackendWasm;
  const { a, b, bias, preluActivationWeights } = args.inputs as Record<string, TensorInfo | undefined>;
  const attrs = args.attrs ?? {};
  const transposeA = Boolean(attrs.transposeA);
  const transposeB = Boolean(attrs.transposeB);
  const stock = stockKernel(_FusedMatMul);
  if (a == null || b == null || a.dtype !== 'float32' || b.dtype !== 'float32'
    || a.shape.length !== 3 || b.shape.length !== 3) {
    return stock(args) as TensorInfo;
  }
  const batchA = a.shape[0], batchB = b.shape[0];
  const M = transposeA ? a.shape[2] : a.shape[1];
  const K = transposeA ? a.shape[1] : a.shape[2];
  const N = transposeB ? b.shape[1] : b.shape[2];
  // Bias and PReLU weights broadcast along the output's last axis, so folding the
  // batch into M is only valid for a shared right operand.
  if (batchB !== 1 || (!transposeA && !transposeB && batchA === 1) || M * N * K === 0) {
    return stock(args) as TensorInfo;
  }
  const temps: TensorInfo[] = [];
  try {
    const A = asRowMajor(backend, a, batchA, transposeA ? K : M, transposeA ? M : K, transposeA);
    if (A.owned) temps.push(A.t);
    const B = asRowMajor(backend, b, 1, transposeB ? N : K, transposeB ? K : N, transposeB);
    if (B.owned) temps.push(B.t);
    const inputs: Record<string, TensorInfo> = {
      a: withShape(A.t, [1, batchA * M, K]), b: withShape(B.t, [1, K, N]),
    };
    if (bias != null) inputs.bias = bias;
    if (preluActivationWeights != null) inputs.preluActivationWeights = preluActivationWeights;
    const r = stock({
      inputs, backend, attrs: { ...attrs, transposeA: false, transposeB: false },
    }) as TensorInfo;
    return withShape(r, [batchA, M, N]);
  } finally {
    dispose(backend, ...temps);
  }
}

export const batchMatMulConfig = wasmKernel(BatchMatMul, batchMatMulKernel);

export const fusedMatMulConfig = wasmKernel(_FusedMatMul, fusedMatMulKernel);
