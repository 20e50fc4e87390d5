/**
 * Distillation training throughput of the ÷4 student (compact VGG16 ×0.25, 112², 768-d) on the
 * tfjs WASM SIMD backend with the training kernels: one thread vs data-parallel worker threads
 * (offline/distill/parallel-grads.ts), with and without batch norm.
 *   npx tsx bench/distill-throughput.ts                  # batch 32, 3 warm-up + 8 timed steps per row
 *   npx tsx bench/distill-throughput.ts --steps 4 --warmup 1 --threads 1,2 --bn false,true
 *
 * A row's time is the median step as distillStudent runs it: the main thread makes the batch
 * (augmentation + resize of 500×375 photos, cached-view targets), then loss + gradients and one
 * Adam update. With threads > 1 that includes sending weights and slices and averaging the
 * gradients, and the next batch is made while the worker finishes (distillStudent does the same).
 * --no-prep leaves batch making out (the bare training step). The machine's load average is
 * printed and saved: other jobs on the cores depress the numbers. So is the CPU time per step of the
 * main thread and of the process's other threads (Linux /proc; the worker and V8's helpers):
 * "2 free cores" is the rate if each of the two got a core of its own, a projection, not a measurement.
 * Writes runs/distill-throughput.json.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { selectBackend } from '../offline/backend';
import { augmentedView, CACHED_VIEW_AUGMENT, viewInput } from '../offline/distill/augment';
import { distillStep, GradientPool } from '../offline/distill/parallel-grads';
import { STUDENT_NORMALIZATION } from '../offline/distill/train-student';
import { rng } from '../offline/random';
import { registerWasmTrainingKernels } from '../offline/wasm-kernels';
import { buildCompactVgg16, compactVgg16Cost } from '../shared/models/vgg16';
import { median } from './stats';

const { values: args } = parseArgs({
  options: {
    batch: { type: 'string', default: '32' },
    steps: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '2' },
    threads: { type: 'string', default: '1,2' },
    bn: { type: 'string', default: 'false,true' },
    'no-prep': { type: 'boolean', default: false },
  },
});
const B = Number(args.batch);
const S = 112;
const F = 768;
const ARCH = { widthMultiplier: 0.25, inputSize: S, featureSize: F };
const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');
// CPU ms of the main thread (utime + stime, 100 ticks/s) and of the whole process.
const MAIN_STAT = `/proc/self/task/${process.pid}/stat`;
const mainCpuMs = () => (existsSync(MAIN_STAT) ? readFileSync(MAIN_STAT, 'utf8').split(') ')[1].split(' ').slice(11, 13).reduce((a, v) => a + Number(v), 0) * 10 : NaN);
const processCpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

if ((await selectBackend('wasm')) === 'wasm') registerWasmTrainingKernels();
console.log(`node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model}), load avg ${load()} at start`);
const loadStart = loadavg();

// Main-thread batch making, as in distillStudent (cached-view targets: flip + colour jitter, resize).
const r = rng(1);
const photos = Array.from({ length: 8 }, () => ({ width: 500, height: 375, data: Uint8Array.from({ length: 500 * 375 * 3 }, () => Math.floor(r() * 256)) }));
const fixedX = tf.tidy(() => tf.randomUniform([B, S, S, 3], -1, 1, 'float32', 3).dataSync() as Float32Array);
const makeBatch = (): Float32Array => {
  if (args['no-prep']) return fixedX;
  const x = new Float32Array(B * S * S * 3);
  for (let b = 0; b < B; b++) viewInput(augmentedView(photos[b % photos.length], CACHED_VIEW_AUGMENT, r).image, S, STUDENT_NORMALIZATION, x, b * S * S * 3);
  return x;
};
const prepTimes: number[] = [];
for (let k = 0; k < 5; k++) {
  const t0 = performance.now();
  makeBatch();
  prepTimes.push(performance.now() - t0);
}
const prepMs = median(prepTimes);

// Sending the weights to a worker: structured-clone copy vs transfer (round trip to an echo worker).
const probe = buildCompactVgg16(ARCH, { seed: 1 });
const weightArrays = () => probe.trainableWeights.map((w) => w.read().dataSync() as Float32Array);
const weightBytes = weightArrays().reduce((a, w) => a + w.byteLength, 0);
const echo = new Worker("require('node:worker_threads').parentPort.on('message', (m) => require('node:worker_threads').parentPort.postMessage(m, m.transfer ? m.weights.map((w) => w.buffer) : []))", { eval: true });
const roundTrip = async (transfer: boolean): Promise<number> => {
  const weights = weightArrays();
  const t0 = performance.now();
  await new Promise((res) => {
    echo.once('message', res);
    echo.postMessage({ weights, transfer }, transfer ? weights.map((w) => w.buffer as ArrayBuffer) : []);
  });
  return performance.now() - t0;
};
const sendMs: Record<'copy' | 'transfer', number[]> = { copy: [], transfer: [] };
for (let k = 0; k < 12; k++) for (const mode of ['copy', 'transfer'] as const) sendMs[mode].push(await roundTrip(mode === 'transfer'));
await echo.terminate();
probe.dispose();
const send = { weightMB: weightBytes / 2 ** 20, copyRoundTripMs: median(sendMs.copy.slice(2)), transferRoundTripMs: median(sendMs.transfer.slice(2)) };
console.log(`weights ${send.weightMB.toFixed(2)} MiB, round trip to a worker (there and back): copy ${send.copyRoundTripMs.toFixed(2)} ms, transfer ${send.transferRoundTripMs.toFixed(2)} ms`);
console.log(`batch ${B} at ${S}², ×0.25 (${(compactVgg16Cost(ARCH).flops / 1e9).toFixed(2)} GFLOP/img fwd); batch making (main thread) ${args['no-prep'] ? 'left out' : `${prepMs.toFixed(0)} ms`}; median of ${args.steps} steps after ${args.warmup} warm-up`);

interface Row {
  batchNorm: boolean;
  threads: number;
  stepMs: number;
  imagesPerSecond: number;
  cpuMsPerStep: { main: number; otherThreads: number };
  loadAfter: number[];
}
const rows: Row[] = [];
console.log('| batch norm | threads | step ms | images/s | CPU ms/step: main, other threads | images/s on 2 free cores (projected) | load avg after |');
console.log('|---|---|---|---|---|---|---|');
for (const bn of args.bn.split(',').map((s) => s.trim() === 'true')) {
  for (const threads of args.threads.split(',').map(Number)) {
    const model = buildCompactVgg16({ ...ARCH, batchNorm: bn }, { seed: 7 });
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const optimizer = tf.train.adam(1e-3);
    const t = tf.tidy(() => tf.randomNormal([B, F], 0, 1, 'float32', 4).dataSync() as Float32Array);
    const pool = threads > 1 ? await GradientPool.start({ threads, model, cosineWeight: 1 }) : undefined;
    // The step distillStudent runs (threads 1: its code path verbatim).
    let prefetched: Float32Array | undefined;
    const step = async (): Promise<number> => {
      const x = prefetched ?? makeBatch();
      prefetched = undefined;
      const loss = await distillStep(pool, optimizer, { model, vars, x, target: () => tf.tensor2d(t, [B, F]), cosineWeight: 1, whileWaiting: () => (prefetched = makeBatch()) });
      const v = loss.dataSync()[0];
      loss.dispose();
      return v;
    };
    const times: number[] = [];
    let cpu0 = { main: 0, all: 0 };
    try {
      for (let k = 0; k < Number(args.warmup) + Number(args.steps); k++) {
        if (k === Number(args.warmup)) cpu0 = { main: mainCpuMs(), all: processCpuMs() };
        const t0 = performance.now();
        const v = await step();
        if (!Number.isFinite(v)) throw new Error(`loss ${v}`);
        if (k >= Number(args.warmup)) times.push(performance.now() - t0);
      }
    } finally {
      await pool?.close();
      model.dispose();
      optimizer.dispose();
    }
    const stepMs = median(times);
    const main = (mainCpuMs() - cpu0.main) / times.length;
    const otherThreads = (processCpuMs() - cpu0.all) / times.length - main;
    const row: Row = { batchNorm: bn, threads, stepMs, imagesPerSecond: (B / stepMs) * 1000, cpuMsPerStep: { main, otherThreads }, loadAfter: loadavg() };
    rows.push(row);
    const projected = (B / Math.max(main, threads > 1 ? otherThreads : 0)) * 1000;
    console.log(`| ${bn ? 'yes' : 'no'} | ${threads} | ${stepMs.toFixed(0)} | ${row.imagesPerSecond.toFixed(1)} | ${main.toFixed(0)}, ${otherThreads.toFixed(0)} | ${threads > 1 ? projected.toFixed(1) : '-'} | ${load()} |`);
  }
}
console.log(`load avg ${load()} at end`);
mkdirSync('runs', { recursive: true });
writeFileSync(
  'runs/distill-throughput.json',
  JSON.stringify({ date: new Date().toISOString(), node: process.version, cores: cpus().length, loadAvgStart: loadStart, loadAvgEnd: loadavg(), batch: B, inputSize: S, widthMultiplier: 0.25, batchMaking: args['no-prep'] ? null : { msPerBatch: prepMs }, send, rows }, null, 2),
);
console.log('wrote runs/distill-throughput.json');
