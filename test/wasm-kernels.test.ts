/**
 * The training kernels registered for the wasm backend must agree with the
 * cpu backend. Every case builds its inputs from plain arrays on each backend
 * (tensors never cross backends), runs there, and compares the downloaded
 * results: max |wasm - cpu| <= 1e-4 * max |cpu|.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  WASM_TRAINING_KERNELS,
  registerWasmTrainingKernels,
  unregisterWasmTrainingKernels,
} from '../offline/wasm-kernels';

const TOL = 1e-4;

/** Deterministic uniform(-1, 1) floats. */
function rand(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) / 4294967296 * 2 - 1;
  }
  return out;
}

function randInt(n: number, lo: number, hi: number, seed: number): Int32Array {
  return Int32Array.from(rand(n, seed), (v) => lo + Math.floor(((v + 1) / 2) * (hi - lo)));
}

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

interface Result { shapes: number[][]; values: Float32Array[] }

async function runOn(backend: 'cpu' | 'wasm', build: () => tf.Tensor | tf.Tensor[]): Promise<Result> {
  await tf.setBackend(backend);
  const before = tf.memory().numTensors;
  const dataIds = tf.backend().numDataIds(); // catches kernel temporaries that leak
  const out = tf.tidy(build);
  const ts = Array.isArray(out) ? out : [out];
  const values = await Promise.all(ts.map(async (t) => Float32Array.from(await t.data())));
  const shapes = ts.map((t) => t.shape.slice());
  tf.dispose(ts);
  expect(tf.memory().numTensors).toBe(before);
  expect(tf.backend().numDataIds()).toBe(dataIds);
  return { shapes, values };
}

/** Run `build` on cpu and on wasm; assert equal shapes and values within TOL. */
async function compare(build: () => tf.Tensor | tf.Tensor[], tol = TOL): Promise<number> {
  const ref = await runOn('cpu', build);
  const got = await runOn('wasm', build);
  expect(got.shapes).toEqual(ref.shapes);
  let worst = 0;
  ref.values.forEach((r, k) => {
    const g = got.values[k];
    let maxRef = 0, maxErr = 0;
    for (let i = 0; i < r.length; i++) {
      maxRef = Math.max(maxRef, Math.abs(r[i]));
      maxErr = Math.max(maxErr, Math.abs(r[i] - g[i]));
    }
    expect(Number.isFinite(maxErr)).toBe(true);
    const rel = maxErr / Math.max(maxRef, 1e-6);
    worst = Math.max(worst, rel);
    expect(rel, `output ${k}: max err ${maxErr} vs max |ref| ${maxRef}`).toBeLessThanOrEqual(tol);
  });
  return worst;
}

beforeAll(async () => {
  registerWasmTrainingKernels();
  await tf.setBackend('wasm');
  await tf.ready();
  expect(tf.getBackend()).toBe('wasm');
});

afterAll(async () => {
  await tf.setBackend('wasm');
});

describe('registration', () => {
  it('is idempotent and keeps the stock kernels it wraps', async () => {
    const before = Object.keys(WASM_TRAINING_KERNELS).map((k) => tf.getKernel(k, 'wasm')?.kernelFunc);
    registerWasmTrainingKernels();
    registerWasmTrainingKernels();
    const after = Object.keys(WASM_TRAINING_KERNELS).map((k) => tf.getKernel(k, 'wasm')?.kernelFunc);
    expect(after).toEqual(before);
    expect(after.every((f) => f != null)).toBe(true);

    // Round trip: stock again (missing kernels gone), then ours again, still correct.
    unregisterWasmTrainingKernels();
    expect(tf.getKernel('UnsortedSegmentSum', 'wasm')).toBeUndefined();
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeUndefined();
    expect(tf.getKernel('BatchMatMul', 'wasm')).toBeDefined();
    registerWasmTrainingKernels();
    await compare(() => tf.matMul(tf.tensor2d(rand(12, 1), [4, 3]), tf.tensor2d(rand(15, 2), [5, 3]), false, true));
  });

  it('registers only the requested kernels', () => {
    unregisterWasmTrainingKernels();
    registerWasmTrainingKernels({ only: ['UnsortedSegmentSum'] });
    expect(tf.getKernel('UnsortedSegmentSum', 'wasm')).toBeDefined();
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeUndefined();
    registerWasmTrainingKernels();
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeDefined();
  });
});

describe('UnsortedSegmentSum', () => {
  it.each([
    { name: '2-D, ids out of range dropped', x: [50, 6], ids: [50], n: 10, lo: -2, hi: 12 },
    { name: '1-D', x: [17], ids: [17], n: 5, lo: 0, hi: 5 },
    { name: '3-D', x: [9, 3, 2], ids: [9], n: 4, lo: 0, hi: 4 },
    // The cpu reference loops over segments with whole-tensor ops, so keep n modest.
    { name: 'many segments', x: [400, 20], ids: [400], n: 300, lo: 0, hi: 300 },
  ])('$name', async ({ x, ids, n, lo, hi }) => {
    const xv = rand(size(x), 3), iv = randInt(size(ids), lo, hi, 4);
    await compare(() => tf.unsortedSegmentSum(tf.tensor(xv, x), tf.tensor1d(iv, 'int32'), n));
  });

  it('int32 data', async () => {
    const xv = randInt(40, -50, 50, 5), iv = randInt(20, 0, 7, 6);
    await compare(() => tf.unsortedSegmentSum(tf.tensor(xv, [20, 2], 'int32'), tf.tensor(iv, [20], 'int32'), 7));
  });
});

describe('BatchMatMul', () => {
  const cases: { name: string; a: number[]; b: number[] }[] = [
    { name: '2-D', a: [7, 5], b: [5, 4] },
    { name: 'vector edge', a: [1, 5], b: [5, 1] },
    { name: 'xnn tiling', a: [67, 130], b: [130, 45] },
    { name: 'batched', a: [3, 7, 5], b: [3, 5, 4] },
    { name: 'broadcast b', a: [3, 7, 5], b: [1, 5, 4] },
    { name: 'broadcast a', a: [1, 7, 5], b: [3, 5, 4] },
    { name: 'rank 4', a: [2, 3, 6, 5], b: [2, 3, 5, 4] },
  ];
  for (const { name, a, b } of cases) {
    for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]]) {
      it(`${name} transposeA=${ta} transposeB=${tb}`, async () => {
        const sa = a.slice(), sb = b.slice();
        const r = a.length;
        if (ta) [sa[r - 2], sa[r - 1]] = [sa[r - 1], sa[r - 2]];
        if (tb) [sb[r - 2], sb[r - 1]] = [sb[r - 1], sb[r - 2]];
        const av = rand(size(sa), 7), bv = rand(size(sb), 8);
        await compare(() => tf.matMul(tf.tensor(av, sa), tf.tensor(bv, sb), ta, tb));
      });
    }
  }

  it('dense-layer gradient shapes ([128x64]·[64x500]ᵀ-style)', async () => {
    const dy = rand(128 * 500, 9), w = rand(64 * 500, 10), x = rand(128 * 64, 11);
    await compare(() => [
      tf.matMul(tf.tensor2d(dy, [128, 500]), tf.tensor2d(w, [64, 500]), false, true),
      tf.matMul(tf.tensor2d(x, [128, 64]), tf.tensor2d(dy, [128, 500]), true, false),
    ]);
  });

  it('_FusedMatMul with bias, activation and transposes', async () => {
    const av = rand(2 * 6 * 5, 12), bv = rand(5 * 4, 13), bias = rand(4, 14);
    for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]]) {
      await compare(() => tf.fused.matMul({
        a: tf.tensor(av, ta ? [2, 5, 6] : [2, 6, 5]),
        b: tf.tensor(bv, tb ? [4, 5] : [5, 4]),
        transposeA: ta, transposeB: tb,
        bias: tf.tensor1d(bias), activation: 'relu',
      }));
    }
  });
});

type Pad = 'same' | 'valid';
const convCases: { n: number; h: number; w: number; c: number; o: number; f: number; s: number; pad: Pad }[] = [
  { n: 2, h: 9, w: 9, c: 3, o: 4, f: 3, s: 1, pad: 'same' },
  { n: 2, h: 9, w: 8, c: 3, o: 4, f: 3, s: 1, pad: 'valid' },
  { n: 2, h: 9, w: 9, c: 3, o: 4, f: 3, s: 2, pad: 'same' },
  { n: 2, h: 10, w: 10, c: 3, o: 4, f: 3, s: 2, pad: 'same' },
  { n: 2, h: 10, w: 11, c: 3, o: 4, f: 3, s: 2, pad: 'valid' },
  { n: 1, h: 7, w: 7, c: 2, o: 5, f: 2, s: 3, pad: 'valid' },
  { n: 2, h: 8, w: 8, c: 3, o: 4, f: 1, s: 1, pad: 'same' },
  { n: 3, h: 12, w: 12, c: 16, o: 8, f: 3, s: 1, pad: 'same' },
];

describe('Conv2DBackpropInput', () => {
  it.each(convCases)('n$n $hx$w c$c->o$o f$f s$s $pad', async ({ n, h, w, c, o, f, s, pad }) => {
    const info = tf.backend_util.computeConv2DInfo([n, h, w, c], [f, f, c, o], s, 1, pad);
    const dy = rand(size(info.outShape), 21), wt = rand(f * f * c * o, 22);
    await compare(() => tf.conv2dTranspose(
      tf.tensor4d(dy, info.outShape as [number, number, number, number]),
      tf.tensor4d(wt, [f, f, c, o]), [n, h, w, c], s, pad));
  });
});

describe('Conv2DBackpropFilter', () => {
  it.each(convCases)('n$n $hx$w c$c->o$o f$f s$s $pad', async ({ n, h, w, c, o, f, s, pad }) => {
    const info = tf.backend_util.computeConv2DInfo([n, h, w, c], [f, f, c, o], s, 1, pad);
    const x = rand(n * h * w * c, 31), dy = rand(size(info.outShape), 32);
    await compare(() => tf.engine().runKernel('Conv2DBackpropFilter', {
      x: tf.tensor4d(x, [n, h, w, c]),
      dy: tf.tensor4d(dy, info.outShape as [number, number, number, number]),
    }, { strides: s, pad, dataFormat: 'NHWC', filterShape: [f, f, c, o] }) as tf.Tensor);
  });

  it('rejects NCHW with a clear error', () => {
    const x = tf.zeros([1, 2, 5, 5]), dy = tf.zeros([1, 3, 5, 5]);
    expect(() => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy },
      { strides: 1, pad: 'same', dataFormat: 'NCHW', filterShape: [3, 3, 2, 3] }))
      .toThrow(/only dataFormat 'NHWC'/);
    tf.dispose([x, dy]);
  });
});

describe('MaxPoolGrad', () => {
  it.each([
    { shape: [2, 6, 6, 5], f: 2, s: 2, pad: 'valid' as Pad },
    { shape: [1, 5, 7, 3], f: 2, s: 2, pad: 'valid' as Pad },
    { shape: [2, 5, 5, 4], f: 3, s: 2, pad: 'same' as Pad },
    { shape: [2, 4, 4, 5], f: 3, s: 1, pad: 'same' as Pad },
  ])('$shape f$f s$s $pad (relu input: ties)', async ({ shape, f, s, pad }) => {
    const info = tf.backend_util.computePool2DInfo(shape as [number, number, number, number], f, s, 1, pad);
    // Half the values are 0 after the relu, so many windows tie: the gradient
    // must go to the first maximum, as on cpu.
    const xv = rand(size(shape), 41).map((v) => Math.max(0, v));
    const g = rand(size(info.outShape), 42);
    await compare(() => tf.grad((x: tf.Tensor) => tf.sum(tf.mul(
      tf.maxPool(x as tf.Tensor4D, f, s, pad), tf.tensor(g, info.outShape))))(tf.tensor(xv, shape)));
  });
});

describe('Slice / Unpack / SplitV / Sum / Mean / Tile', () => {
  const xv = rand(2 * 3 * 4 * 5, 51);
  const x = () => tf.tensor4d(xv, [2, 3, 4, 5]);
  it('slice', async () => {
    await compare(() => [
      tf.slice(x(), [1, 0, 1, 2], [1, 2, 3, 3]),
      tf.slice(x(), [0, 1, 0, 0], [2, 2, 4, 5]),
      tf.slice(tf.tensor1d(xv), [7], [20]),
      tf.slice(tf.tensor2d(Int32Array.from(xv, (v) => Math.round(v * 100)), [2, 60], 'int32'), [0, 3], [2, 5]),
    ]);
  });
  it('unstack along every axis', async () => {
    for (const axis of [0, 1, 2, 3, -1]) await compare(() => tf.unstack(x(), axis));
  });
  it('split', async () => {
    await compare(() => [...tf.split(x(), [1, 3], 2), ...tf.split(tf.tensor2d(xv, [6, 20]), 4, 1)]);
  });
  it('sum and mean over leading and other axes', async () => {
    for (const [axis, keepDims] of [[0, false], [[0, 1], false], [[1, 0], true], [[0, 1, 2], false], [1, false], [-1, true], [[0, 2], false]] as const) {
      await compare(() => [tf.sum(x(), axis as number | number[], keepDims), tf.mean(x(), axis as number | number[], keepDims)]);
    }
  });
  it('tile', async () => {
    await compare(() => [
      tf.tile(tf.tensor4d(xv.slice(0, 5), [1, 1, 1, 5]), [2, 3, 4, 1]), // batch-norm gradient pattern
      tf.tile(x(), [2, 1, 3, 2]),
      tf.tile(tf.tensor2d(xv.slice(0, 6), [3, 2]), [1, 5]),
      tf.tile(tf.tensor1d(xv.slice(0, 7)), [4]),
      tf.tile(tf.tensor2d(Int32Array.from([1, 2, 3, 4]), [2, 2], 'int32'), [3, 2]),
      tf.cast(tf.tile(tf.tensor2d([1, 0, 0, 1], [2, 2], 'bool'), [2, 3]), 'float32'),
    ]);
  });
});

describe('Identity / Cast alias instead of copying', () => {
  it('clone and same-dtype cast share data safely (refcounted)', async () => {
    await tf.setBackend('wasm');
    const ids = tf.backend().numDataIds();
    const a = tf.tensor1d([1, 2, 3]);
    const b = tf.clone(a);
    const c = tf.cast(b, 'float32');
    const d = tf.cast(a, 'int32');
    a.dispose();
    expect(Array.from(await b.data())).toEqual([1, 2, 3]);
    b.dispose();
    expect(Array.from(await c.data())).toEqual([1, 2, 3]);
    expect(d.dtype).toBe('int32');
    tf.dispose([c, d]);
    expect(tf.backend().numDataIds()).toBe(ids);
  });

  it('matches cpu for casts between dtypes', async () => {
    const v = rand(20, 55).map((x) => x * 10);
    await compare(() => [tf.cast(tf.tensor1d(v), 'int32'), tf.cast(tf.tensor1d(v), 'bool'), tf.clone(tf.tensor1d(v))]);
  });
});

describe('Exp', () => {
  it('matches cpu over the float range, incl. NaN/±Inf and the stock fallback above 87.3', async () => {
    const n = 20000;
    const v = Float32Array.from({ length: n }, (_, i) => -87 + (174 * i) / n);
    v[5] = NaN; v[6] = Infinity; v[7] = -Infinity; v[8] = -200;
    const ref = await runOn('cpu', () => tf.exp(tf.tensor1d(v)));
    const got = await runOn('wasm', () => tf.exp(tf.tensor1d(v)));
    for (let i = 0; i < n; i++) {
      const r = ref.values[0][i], g = got.values[0][i];
      if (Number.isNaN(r)) expect(g).toBeNaN();
      else if (!Number.isFinite(r) || r === 0) expect(g).toBe(r);
      else expect(Math.abs(g - r) / r, `exp(${v[i]})`).toBeLessThan(1e-6);
    }
    // Inputs above 87.3 go to the stock kernel (exp near float max stays finite).
    await compare(() => tf.exp(tf.tensor1d(Float32Array.from({ length: 5000 }, (_, i) => 88 + i / 10000))));
    await compare(() => tf.exp(tf.tensor2d(rand(64 * 100, 56).map((x) => x * 20), [64, 100])));
  });
});

describe('gradients through tf.grad', () => {
  it('embedding lookup (gather) with repeated ids', async () => {
    const table = rand(50 * 8, 61), ids = randInt(6 * 7, 0, 50, 62), w = rand(6 * 7 * 8, 63);
    ids[3] = ids[4] = ids[5] = 17;
    await compare(() => tf.grad((e: tf.Tensor) => tf.sum(tf.mul(
      tf.gather(e, tf.tensor2d(ids, [6, 7], 'int32')), tf.tensor3d(w, [6, 7, 8]))))(tf.tensor2d(table, [50, 8])));
  });

  it('dense layer: relu(x·W + b) w.r.t. x, W, b', async () => {
    const xv = rand(32 * 40, 71), wv = rand(40 * 30, 72), bv = rand(30, 73), g = rand(32 * 30, 74);
    await compare(() => {
      const f = (x: tf.Tensor, W: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.mul(tf.relu(tf.add(tf.matMul(x, W), b)), tf.tensor2d(g, [32, 30])));
      return tf.grads(f as (...args: tf.Tensor[]) => tf.Tensor)([tf.tensor2d(xv, [32, 40]), tf.tensor2d(wv, [40, 30]), tf.tensor1d(bv)]);
    });
  });

  it('conv2d + bias + relu w.r.t. x and filter (stride 1 same, stride 2 valid)', async () => {
    for (const [s, pad] of [[1, 'same'], [2, 'valid']] as const) {
      const xv = rand(2 * 11 * 11 * 3, 81), wv = rand(3 * 3 * 3 * 8, 82), bv = rand(8, 83);
      await compare(() => {
        const f = (x: tf.Tensor, W: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.relu(
          tf.add(tf.conv2d(x as tf.Tensor4D, W as tf.Tensor4D, s, pad), b))));
        return tf.grads(f as (...args: tf.Tensor[]) => tf.Tensor)([tf.tensor4d(xv, [2, 11, 11, 3]), tf.tensor4d(wv, [3, 3, 3, 8]), tf.tensor1d(bv)]);
      });
    }
  });

  it('mini caption decoder (Embedding -> LSTM -> Dense, masked CE): all weight gradients', async () => {
    const V = 40, E = 8, U = 16, B = 4, T = 5;
    const tokens = randInt(B * T, 1, V, 91), targets = randInt(B * T, 0, V, 92);
    const mask = Float32Array.from(rand(B * T, 93), (v) => (v > -0.5 ? 1 : 0));
    await compare(() => {
      const model = tf.sequential();
      model.add(tf.layers.embedding({ inputDim: V, outputDim: E, inputLength: T }));
      model.add(tf.layers.lstm({ units: U, returnSequences: true }));
      model.add(tf.layers.dense({ units: V }));
      model.build([null, T]);
      model.setWeights(model.getWeights().map((w, i) => tf.tensor(rand(w.size, 100 + i).map((v) => v * 0.3), w.shape)));
      const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
      const { grads } = tf.variableGrads(() => {
        const logits = tf.reshape(model.apply(tf.tensor2d(tokens, [B, T], 'int32')) as tf.Tensor, [B * T, V]);
        const nll = tf.neg(tf.sum(tf.mul(tf.logSoftmax(logits), tf.oneHot(tf.tensor1d(targets, 'int32'), V)), 1));
        const m = tf.tensor1d(mask);
        return tf.div(tf.sum(tf.mul(nll, m)), tf.sum(m)) as tf.Scalar;
      }, vars);
      const out = vars.map((v) => tf.clone(grads[v.name]));
      model.dispose();
      return out;
    });
  });

  it('conv + batch-norm (training mode) + relu + pool + dense: all weight gradients', async () => {
    const xv = rand(4 * 8 * 8 * 3, 401), yv = rand(4 * 3, 402);
    await compare(() => {
      const model = tf.sequential();
      model.add(tf.layers.conv2d({ filters: 6, kernelSize: 3, padding: 'same', useBias: false, inputShape: [8, 8, 3] }));
      model.add(tf.layers.batchNormalization({}));
      model.add(tf.layers.reLU());
      model.add(tf.layers.maxPooling2d({ poolSize: 2 }));
      model.add(tf.layers.flatten());
      model.add(tf.layers.dense({ units: 3 }));
      model.setWeights(model.getWeights().map((w, i) => tf.tensor(rand(w.size, 500 + i).map((v) => (w.shape.length === 1 ? 1 + v * 0.2 : v * 0.5)), w.shape)));
      const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
      const { grads } = tf.variableGrads(() => tf.losses.meanSquaredError(
        tf.tensor2d(yv, [4, 3]), model.apply(tf.tensor4d(xv, [4, 8, 8, 3]), { training: true }) as tf.Tensor) as tf.Scalar, vars);
      const out = vars.map((v) => tf.clone(grads[v.name]));
      model.dispose();
      return out;
    });
  });

  it('mini VGG (conv-relu-pool x2, global average pool, dense): all weight gradients', async () => {
    const xv = rand(2 * 16 * 16 * 3, 201), yv = rand(2 * 5, 202);
    await compare(() => {
      const model = tf.sequential();
      model.add(tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', activation: 'relu', inputShape: [16, 16, 3] }));
      model.add(tf.layers.maxPooling2d({ poolSize: 2 }));
      model.add(tf.layers.conv2d({ filters: 12, kernelSize: 3, padding: 'same', activation: 'relu' }));
      model.add(tf.layers.maxPooling2d({ poolSize: 2 }));
      model.add(tf.layers.globalAveragePooling2d({}));
      model.add(tf.layers.dense({ units: 5 }));
      model.setWeights(model.getWeights().map((w, i) => tf.tensor(rand(w.size, 300 + i).map((v) => v * 0.5), w.shape)));
      const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
      const { grads } = tf.variableGrads(() => tf.losses.meanSquaredError(
        tf.tensor2d(yv, [2, 5]), model.apply(tf.tensor4d(xv, [2, 16, 16, 3])) as tf.Tensor) as tf.Scalar, vars);
      const out = vars.map((v) => tf.clone(grads[v.name]));
      model.dispose();
      return out;
    });
  });
});
