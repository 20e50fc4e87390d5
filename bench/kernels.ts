/**
 * Training kernels on the tfjs WASM (SIMD) backend: stock tfjs 4.22 ("before")
 * vs registerWasmTrainingKernels() ("after").
 *   npx tsx bench/kernels.ts                      # everything (~5 min on 2 cores)
 *   npx tsx bench/kernels.ts --quick              # fewer repetitions
 *   npx tsx bench/kernels.ts --only matmul,conv   # sections: matmul, conv, other, steps
 *   npx tsx bench/kernels.ts --only steps --cpu   # add one cpu-backend step of each model
 *                                                 # (very slow: decoder ~2 min, VGG > 5 min)
 *
 * Times are medians of several runs (wall clock; wasm kernels run synchronously,
 * so no download is needed to wait for them); before and after runs of a row
 * alternate. The full training steps cannot run on stock wasm
 * (UnsortedSegmentSum / Conv2DBackpropFilter are missing), so their "before"
 * registers just those two kernels and nothing else.
 * The machine is shared: compare before/after of the same row rather than
 * rows against each other.
 */
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmTrainingKernels, unregisterWasmTrainingKernels } from '../offline/wasm-kernels';
import { median } from './stats';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string', default: 'matmul,conv,other,steps' },
    cpu: { type: 'boolean', default: false },
  },
});
const sections = new Set(args.only.split(',').map((s) => s.trim()));
const REPS = args.quick ? 3 : 7;
const SLOW_REPS = args.quick ? 1 : 3; // stock kernels that take seconds

type Mode = 'stock' | 'missing-only' | 'all';
function setKernels(mode: Mode): void {
  unregisterWasmTrainingKernels();
  if (mode === 'missing-only') registerWasmTrainingKernels({ only: ['UnsortedSegmentSum', 'Conv2DBackpropFilter'] });
  if (mode === 'all') registerWasmTrainingKernels();
}


async function runOnce(run: () => unknown): Promise<number> {
  const t0 = performance.now();
  const out = run();
  const r = out instanceof Promise ? await out : out;
  const ms = performance.now() - t0;
  tf.dispose(r as tf.TensorContainer);
  return ms;
}

interface Row {
  section: string;
  name: string;
  flops?: number;
  /** Items per run, for throughput rows (e.g. images or tokens per step). */
  items?: { n: number; unit: string };
  before: number | 'missing' | null;
  after: number;
}
const rows: Row[] = [];

interface Case {
  name: string;
  flops?: number;
  items?: { n: number; unit: string };
  run: () => unknown;
  /** Stock wasm lacks the kernel. */
  missingBefore?: boolean;
  beforeMode?: Mode;
  beforeReps?: number;
}

/**
 * Before and after runs alternate (one warm-up each), so both see the same
 * load on a shared machine; each reports the median of its runs.
 */
async function bench(section: string, c: Case): Promise<void> {
  const beforeReps = c.missingBefore ? 0 : (c.beforeReps ?? REPS);
  const beforeMode = c.beforeMode ?? 'stock';
  const before: number[] = [], after: number[] = [];
  if (beforeReps > 0) {
    setKernels(beforeMode);
    await runOnce(c.run);
  }
  setKernels('all');
  await runOnce(c.run);
  for (let i = 0; i < Math.max(beforeReps, REPS); i++) {
    if (i < beforeReps) {
      setKernels(beforeMode);
      before.push(await runOnce(c.run));
    }
    if (i < REPS) {
      setKernels('all');
      after.push(await runOnce(c.run));
    }
  }
  setKernels('all');
  const row: Row = {
    section, name: c.name, flops: c.flops, items: c.items,
    before: c.missingBefore ? 'missing' : median(before), after: median(after),
  };
  rows.push(row);
  printRow(row);
}

const fmtMs = (ms: number) => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2));
function rate(row: Row, ms: number): string {
  if (row.flops) return `${(row.flops / ms / 1e6).toFixed(1)} GFLOP/s`;
  if (row.items) return `${(row.items.n / ms * 1000).toFixed(1)} ${row.items.unit}/s`;
  return '';
}
function printRow(row: Row): void {
  const b = row.before === 'missing' ? 'missing kernel' : row.before == null ? '-'
    : `${fmtMs(row.before)} ms ${rate(row, row.before)}`.trim();
  const a = `${fmtMs(row.after)} ms ${rate(row, row.after)}`.trim();
  const speedup = typeof row.before === 'number' ? `${(row.before / row.after).toFixed(1)}x` : '';
  console.log(`| ${row.section.padEnd(6)} | ${row.name.padEnd(46)} | ${b.padStart(26)} | ${a.padStart(26)} | ${speedup.padStart(6)} |`);
}

function randn(shape: number[]): tf.Tensor {
  return tf.randomNormal(shape, 0, 1, 'float32', 42);
}

await tf.setBackend('wasm');
await tf.ready();
console.log(`node ${process.version}, ${cpus().length} cores, load avg ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
console.log(`tfjs ${tf.version.tfjs}, wasm SIMD ${await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')}, `
  + `threads ${await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT')}; median of ${REPS} (stock seconds-long kernels: ${SLOW_REPS})`);
console.log(`| ${'sect.'.padEnd(6)} | ${'case'.padEnd(46)} | ${'before (stock)'.padStart(26)} | ${'after (registered)'.padStart(26)} | ${'gain'.padStart(6)} |`);
console.log(`|${'-'.repeat(8)}|${'-'.repeat(48)}|${'-'.repeat(28)}|${'-'.repeat(28)}|${'-'.repeat(8)}|`);

const tensorsAtStart = tf.memory().numTensors;
const dataIdsAtStart = tf.backend().numDataIds();

// ---------------------------------------------------------------- matmul
if (sections.has('matmul')) {
  // Decoder output layer: x [1280, 256] (64 x 20 tokens), W [256, 5000].
  const x = randn([1280, 256]), w = randn([256, 5000]), dy = randn([1280, 5000]);
  const F = 2 * 1280 * 256 * 5000;
  await bench('matmul', { name: 'dense fwd  X·W       [1280x256]·[256x5000]', flops: F, run: () => tf.matMul(x, w) });
  await bench('matmul', { name: 'dense dX   dY·Wᵀ     [1280x5000]·[5000x256]', flops: F, run: () => tf.matMul(dy, w, false, true), beforeReps: SLOW_REPS });
  await bench('matmul', { name: 'dense dW   Xᵀ·dY     [256x1280]·[1280x5000]', flops: F, run: () => tf.matMul(x, dy, true, false), beforeReps: SLOW_REPS });
  // One LSTM time step: h [64, 256], recurrent kernel U [256, 1024].
  const h = randn([64, 256]), u = randn([256, 1024]), dz = randn([64, 1024]);
  const FL = 2 * 64 * 256 * 1024;
  await bench('matmul', { name: 'lstm fwd   h·U       [64x256]·[256x1024]', flops: FL, run: () => tf.matMul(h, u) });
  await bench('matmul', { name: 'lstm dh    dz·Uᵀ     [64x1024]·[1024x256]', flops: FL, run: () => tf.matMul(dz, u, false, true) });
  await bench('matmul', { name: 'lstm dU    hᵀ·dz     [256x64]·[64x1024]', flops: FL, run: () => tf.matMul(h, dz, true, false) });
  const a3 = randn([20, 64, 256]), b3 = randn([20, 256, 1024]);
  await bench('matmul', { name: 'batched    20 x [64x256]·[256x1024]', flops: 20 * FL, run: () => tf.matMul(a3, b3), beforeReps: SLOW_REPS });
  tf.dispose([x, w, dy, h, u, dz, a3, b3]);
}

// ---------------------------------------------------------------- conv
if (sections.has('conv')) {
  for (const [n, s, c, o] of [[16, 112, 3, 16], [16, 112, 16, 16], [16, 56, 32, 32], [16, 28, 64, 64], [16, 14, 128, 128]]) {
    const x = randn([n, s, s, c]) as tf.Tensor4D, f = randn([3, 3, c, o]) as tf.Tensor4D, dy = randn([n, s, s, o]) as tf.Tensor4D;
    const F = 2 * n * s * s * 9 * c * o;
    const tag = `${n}x${s}x${s}x${c}->${o} 3x3 same`;
    await bench('conv', { name: `fwd         ${tag}`, flops: F, run: () => tf.conv2d(x, f, 1, 'same') });
    await bench('conv', { name: `backprop-in ${tag}`, flops: F, run: () => tf.conv2dTranspose(dy, f, [n, s, s, c], 1, 'same'), beforeReps: SLOW_REPS });
    await bench('conv', {
      name: `backprop-w  ${tag}`, flops: F, missingBefore: true,
      run: () => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, c, o] }),
    });
    tf.dispose([x, f, dy]);
  }
  // Stride 2 (zero-dilated dy for backprop-input: 4x the MACs, still fast).
  const x = randn([16, 56, 56, 32]) as tf.Tensor4D, f = randn([3, 3, 32, 32]) as tf.Tensor4D, dy = randn([16, 28, 28, 32]) as tf.Tensor4D;
  const F = 2 * 16 * 28 * 28 * 9 * 32 * 32;
  await bench('conv', { name: 'fwd         16x56x56x32->32 3x3 s2 same', flops: F, run: () => tf.conv2d(x, f, 2, 'same') });
  await bench('conv', { name: 'backprop-in 16x56x56x32->32 3x3 s2 same', flops: F, run: () => tf.conv2dTranspose(dy, f, [16, 56, 56, 32], 2, 'same'), beforeReps: SLOW_REPS });
  await bench('conv', {
    name: 'backprop-w  16x56x56x32->32 3x3 s2 same', flops: F, missingBefore: true,
    run: () => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { strides: 2, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, 32, 32] }),
  });
  tf.dispose([x, f, dy]);
}

// ---------------------------------------------------------------- other
if (sections.has('other')) {
  const x = randn([16, 112, 112, 16]) as tf.Tensor4D;
  const y = tf.maxPool(x, 2, 2, 'valid');
  const gy = randn(y.shape);
  await bench('other', {
    name: 'MaxPoolGrad 2x2 s2 16x112x112x16',
    run: () => tf.engine().runKernel('MaxPoolGrad', { dy: gy, input: x, output: y }, { filterSize: 2, strides: 2, pad: 'valid' }),
  });
  await bench('other', { name: 'MaxPool fwd (reference) 16x112x112x16', run: () => tf.maxPool(x, 2, 2, 'valid') });
  const l = randn([1280, 5000]);
  await bench('other', { name: 'Sum axis 0 (dense bias grad) [1280x5000]', run: () => tf.sum(l, 0) });
  const lc = tf.tidy(() => tf.sub(l, tf.max(l, 1, true))); // logSoftmax's exp input, <= 0
  await bench('other', { name: 'Exp (logSoftmax, fwd + grad) [1280x5000]', run: () => tf.exp(lc) });
  await bench('other', { name: 'Sum axes 0-2 (conv bias grad) 16x112x112x16', run: () => tf.sum(x, [0, 1, 2]) });
  const g = randn([1280, 100]);
  const ids = tf.randomUniform([1280], 0, 5000, 'int32', 7) as tf.Tensor1D;
  await bench('other', { name: 'UnsortedSegmentSum [1280x100] -> 5000', missingBefore: true, run: () => tf.unsortedSegmentSum(g, ids, 5000) });
  const seq = randn([20, 64, 256]);
  await bench('other', { name: 'Unpack (tf.unstack) [20x64x256]', run: () => tf.unstack(seq) });
  const z = randn([64, 1024]);
  await bench('other', { name: 'SplitV (LSTM gates) [64x1024] -> 4', run: () => tf.split(z, 4, 1) });
  tf.dispose([x, y, gy, l, lc, g, ids, seq, z]);
}

// ---------------------------------------------------------------- steps
function buildDecoder(): tf.Sequential {
  const m = tf.sequential();
  m.add(tf.layers.embedding({ inputDim: 5000, outputDim: 100, inputLength: 20 }));
  m.add(tf.layers.lstm({ units: 256, returnSequences: true }));
  m.add(tf.layers.dense({ units: 5000 }));
  return m;
}

function buildVgg(): tf.Sequential {
  const m = tf.sequential();
  let first = true;
  for (const width of [16, 32, 64, 128]) {
    for (let k = 0; k < 2; k++) {
      m.add(tf.layers.conv2d({
        filters: width, kernelSize: 3, padding: 'same', activation: 'relu',
        ...(first ? { inputShape: [112, 112, 3] } : {}),
      }));
      first = false;
    }
    m.add(tf.layers.maxPooling2d({ poolSize: 2 }));
  }
  m.add(tf.layers.globalAveragePooling2d({}));
  m.add(tf.layers.dense({ units: 768 }));
  return m;
}

/** One Adam step of the decoder on 64 x 20 tokens with masked sparse softmax cross-entropy. */
function decoderStep(): () => Promise<tf.Scalar> {
  const m = buildDecoder();
  const opt = tf.train.adam(1e-3);
  const tokens = tf.randomUniform([64, 20], 1, 5000, 'int32', 1);
  const targets = tf.randomUniform([64 * 20], 1, 5000, 'int32', 2);
  const mask = tf.cast(tf.greater(tf.randomUniform([64 * 20], 0, 1, 'float32', 3), 0.2), 'float32');
  return async () => {
    const loss = opt.minimize(() => {
      const logits = tf.reshape(m.apply(tokens) as tf.Tensor, [64 * 20, 5000]);
      const nll = tf.neg(tf.sum(tf.mul(tf.logSoftmax(logits), tf.oneHot(targets, 5000)), 1));
      return tf.div(tf.sum(tf.mul(nll, mask)), tf.sum(mask)) as tf.Scalar;
    }, true)!;
    await loss.data();
    return loss;
  };
}

/** One Adam step of the VGG-style CNN on 16 images 112x112, regression to 768-d features. */
function vggStep(): () => Promise<tf.Scalar> {
  const m = buildVgg();
  const opt = tf.train.adam(1e-3);
  const x = tf.randomUniform([16, 112, 112, 3], -1, 1, 'float32', 4);
  const y = tf.randomNormal([16, 768], 0, 1, 'float32', 5);
  const vars = m.trainableWeights.map((w) => w.read() as tf.Variable);
  return async () => {
    const loss = tf.tidy(() => {
      const { value, grads } = tf.variableGrads(
        () => tf.losses.meanSquaredError(y, m.apply(x) as tf.Tensor) as tf.Scalar, vars);
      opt.applyGradients(Object.entries(grads).map(([name, tensor]) => ({ name, tensor })));
      return value;
    });
    await loss.data();
    return loss;
  };
}

if (sections.has('steps')) {
  const dec = decoderStep();
  await bench('steps', {
    name: 'decoder step Emb-LSTM256-Dense5000, 64x20 tok', items: { n: 64 * 20, unit: 'tok' },
    run: dec, beforeMode: 'missing-only', beforeReps: SLOW_REPS,
  });
  const vgg = vggStep();
  await bench('steps', {
    name: 'VGG step 8 conv 16..128, 16x112x112x3', items: { n: 16, unit: 'img' },
    run: vgg, beforeMode: 'missing-only', beforeReps: SLOW_REPS,
  });
}

setKernels('all');
const leakedTensors = tf.memory().numTensors - tensorsAtStart;
const leakedData = tf.backend().numDataIds() - dataIdsAtStart;
if (sections.has('steps')) {
  console.log('\n(before of the training steps = stock + only the two missing kernels; stock alone cannot train them)');
}
console.log(`still alive (model weights, Adam slots, inputs of the steps): ${leakedTensors} engine tensors, ${leakedData} backend data ids`
  + (leakedTensors === leakedData ? ' (equal: no leaked kernel temporaries)' : ' (MISMATCH: kernel temporaries leaked)'));

if (args.cpu && sections.has('steps')) {
  await tf.setBackend('cpu');
  for (const [name, make, items] of [
    ['decoder step (cpu backend)', decoderStep, { n: 64 * 20, unit: 'tok' }],
    ['VGG step (cpu backend)', vggStep, { n: 16, unit: 'img' }],
  ] as const) {
    const step = make();
    const ms = await runOnce(step); // a single step, no warm-up: minutes each on cpu
    console.log(`| cpu    | ${name.padEnd(46)} | ${`${fmtMs(ms)} ms ${(items.n / ms * 1000).toFixed(1)} ${items.unit}/s`.padStart(26)} |`);
  }
}
