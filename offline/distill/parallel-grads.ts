import * as tf from '@tensorflow/tfjs';
import { Worker } from 'node:worker_threads';
import { distillLoss, targetEnergies, type GridTarget } from './loss';

/**
 * Data-parallel gradients over `node:worker_threads` (tfjs-wasm in Node runs on one core).
 *
 * A pool holds threads − 1 workers, each with its own copy of the student on its own backend (wasm
 * with the training kernels registered). Per step the main thread sends every worker the current
 * trainable weights and its rows of the batch (student inputs, standardised targets), computes
 * its own rows meanwhile, and averages the gradients weighted by row count; the caller applies the
 * optimizer once, so weights, optimizer state and checkpoints live in the main thread only.
 *
 * Without batch norm the averaged gradient is the full batch's gradient (each slice's loss uses
 * the whole batch's target energy, see distillLoss). With batch norm each slice normalises with
 * its own statistics ("ghost batch norm", as in multi-GPU training), so a step differs slightly
 * from a single-thread one; the moving statistics are those of the main thread's slice.
 */

export interface WorkerInit {
  entry: string;
  backend: string;
  topology: unknown;
  cosineWeight: number;
  grid?: GridTarget;
}

/** One worker's rows. The buffers of `x` and `target` are transferred (they must not be views into shared ones). */
export interface SliceJob {
  x: Float32Array;
  target: Float32Array;
  rows: number;
  /** mean(target²) over the whole batch, per part of the row (pooled, and grid with spatial distillation). */
  energy: number[];
}

export interface SliceResult {
  loss: number;
  grads: Float32Array[];
}

export type ToWorker = { type: 'step'; id: number; weights: Float32Array[] } & SliceJob;
export type FromWorker =
  | { type: 'ready'; shapes: number[][] }
  | { type: 'result'; id: number; loss: number; grads: Float32Array[] }
  | { type: 'error'; id?: number; message: string };

export interface PoolOptions {
  /** Threads including the main thread (≥ 2). */
  threads: number;
  model: tf.LayersModel;
  cosineWeight: number;
  grid?: GridTarget;
  /** Transfer the weight arrays to one worker instead of copying them (default true). */
  transfer?: boolean;
}

const BOOTSTRAP = new URL('./worker-bootstrap.mjs', import.meta.url);
const ENTRY = new URL('./parallel-grads-worker.ts', import.meta.url).href;

interface Pending {
  resolve: (r: SliceResult) => void;
  reject: (e: Error) => void;
}

class GradientWorker {
  readonly ready: Promise<number[][]>;
  failure: Error | undefined;
  private readonly pending = new Map<number, Pending>();
  private closing = false;

  constructor(
    private readonly worker: Worker,
    readonly index: number,
  ) {
    let onReady!: (shapes: number[][]) => void;
    let onFail!: (e: Error) => void;
    this.ready = new Promise((res, rej) => ((onReady = res), (onFail = rej)));
    this.ready.catch(() => {});
    worker.on('message', (m: FromWorker) => {
      if (m.type === 'ready') {
        worker.unref();
        onReady(m.shapes);
      } else if (m.type === 'result') this.settle(m.id, m);
      else if (m.id === undefined) this.fail(`gradient worker ${index}: ${m.message}`, onFail);
      else this.settle(m.id, new Error(`gradient worker ${index}: ${m.message}`));
    });
    worker.on('error', (e) => this.fail(`gradient worker ${index}: ${e.message}`, onFail));
    worker.on('messageerror', (e) => this.fail(`gradient worker ${index}: ${e.message}`, onFail));
    worker.on('exit', (code) => this.fail(this.closing ? 'gradient pool closed' : `gradient worker ${index} exited (code ${code})`, onFail));
  }

  run(message: ToWorker, transfer: ArrayBuffer[]): Promise<SliceResult> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.pending.set(message.id, { resolve, reject });
      this.worker.ref(); // only while a step is out: a pool nobody closed does not keep the process alive
      try {
        this.worker.postMessage(message, transfer);
      } catch (e) {
        this.settle(message.id, e instanceof Error ? e : new Error(String(e))); // e.g. a buffer already transferred
      }
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.worker.terminate();
  }

  private settle(id: number, outcome: SliceResult | Error): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (this.pending.size === 0) this.worker.unref();
    if (outcome instanceof Error) p.reject(outcome);
    else p.resolve(outcome);
  }

  private fail(message: string, onReadyFail: (e: Error) => void): void {
    this.failure ??= new Error(message);
    onReadyFail(this.failure);
    for (const id of [...this.pending.keys()]) this.settle(id, this.failure);
    if (!this.closing) void this.worker.terminate();
  }
}

export class GradientPool {
  private nextId = 0;

  private constructor(
    private readonly workers: GradientWorker[],
    private readonly transfer: boolean,
    private readonly sizes: number[],
  ) {}

  /** Worker threads (threads − 1). */
  get size(): number {
    return this.workers.length;
  }

  /** Starts threads − 1 workers and waits until each has built the model. */
  static async start(o: PoolOptions): Promise<GradientPool> {
    if (!Number.isInteger(o.threads) || o.threads < 2) throw new Error(`gradient pool: threads must be an integer ≥ 2, got ${o.threads}`);
    const backend = tf.getBackend();
    if (backend !== 'wasm' && backend !== 'cpu') throw new Error(`threads > 1 needs the wasm or cpu backend, not '${backend}' (which uses every core already)`);
    const init: WorkerInit = { entry: ENTRY, backend, topology: o.model.toJSON(null, false), cosineWeight: o.cosineWeight, grid: o.grid };
    const workers = Array.from({ length: o.threads - 1 }, (_, i) => new GradientWorker(new Worker(BOOTSTRAP, { workerData: init, execArgv: [] }), i + 1));
    const pool = new GradientPool(workers, o.transfer ?? true, o.model.trainableWeights.map((w) => w.read().size));
    try {
      const expected = JSON.stringify(o.model.trainableWeights.map((w) => w.shape));
      for (const w of workers) {
        const shapes = await w.ready;
        if (JSON.stringify(shapes) !== expected) throw new Error(`gradient worker ${w.index}: its model's weights ${JSON.stringify(shapes)} differ from the main thread's ${expected}`);
      }
    } catch (e) {
      await pool.close();
      throw e;
    }
    return pool;
  }

  /** Loss and gradients of one slice per worker at `weights` (in trainable-weight order). */
  run(weights: Float32Array[], jobs: SliceJob[]): Promise<SliceResult[]> {
    if (jobs.length !== this.workers.length) return Promise.reject(new Error(`gradient pool: ${jobs.length} slices for ${this.workers.length} workers`));
    // Node drops, without a word, a message whose transfer list holds an already transferred buffer.
    const wrong = weights.findIndex((w, i) => w.length !== this.sizes[i]);
    if (weights.length !== this.sizes.length || wrong >= 0 || jobs.some((j) => j.x.length === 0 || j.target.length === 0)) {
      return Promise.reject(new Error(`gradient pool: weights or slices of the wrong size (arrays already transferred?)${wrong >= 0 ? `: weight ${wrong} has ${weights[wrong].length} values, not ${this.sizes[wrong]}` : ''}`));
    }
    const id = this.nextId++;
    return Promise.all(
      this.workers.map((w, k) => {
        // A weight buffer moves to the last worker; the others get copies.
        const give = this.transfer && k === this.workers.length - 1;
        const transfer = [jobs[k].x.buffer, jobs[k].target.buffer, ...(give ? weights.map((a) => a.buffer) : [])] as ArrayBuffer[];
        return w.run({ type: 'step', id, weights, ...jobs[k] }, transfer);
      }),
    );
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.close()));
  }
}

/** `rows` split into `parts` near-equal counts, larger ones last (the first is the main thread's, which also prepares batches). */
export function splitRows(rows: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(rows / parts) + (parts - 1 - i < rows % parts ? 1 : 0));
}

/** A tensor's values in a buffer of their own (the cpu backend hands out its storage). */
export function ownedData(t: tf.Tensor): Float32Array {
  const d = t.dataSync() as Float32Array;
  return tf.getBackend() === 'wasm' ? d : d.slice();
}

export interface ParallelBatch {
  model: tf.LayersModel;
  vars: tf.Variable[];
  /** Student inputs, rows × inputSize² × 3. */
  x: Float32Array;
  /** Standardised teacher targets, rows × F (× [pooled | grid] with spatial distillation). */
  target: tf.Tensor2D;
  cosineWeight: number;
  grid?: GridTarget;
  /** Main-thread work to do once its own slice is done, while the workers may still be busy. */
  whileWaiting?: () => void;
}

/**
 * distillLoss and its gradients (in `vars` order) over the batch, split between the main thread
 * (first rows) and the pool's workers.
 */
export async function parallelGradients(pool: GradientPool, b: ParallelBatch): Promise<{ value: tf.Scalar; grads: tf.Tensor[] }> {
  const [N, F] = b.target.shape;
  if (N < pool.size + 1) throw new Error(`batch of ${N} is smaller than ${pool.size + 1} threads`);
  const pixels = b.x.length / N;
  const rows = splitRows(N, pool.size + 1);
  const t = b.target.dataSync() as Float32Array;
  const energy = targetEnergies(t, F, b.grid ? b.grid.cells * b.grid.channels : 0);
  const jobs: SliceJob[] = [];
  for (let k = 1, start = rows[0]; k < rows.length; start += rows[k], k++) {
    jobs.push({ x: b.x.slice(start * pixels, (start + rows[k]) * pixels), target: t.slice(start * F, (start + rows[k]) * F), rows: rows[k], energy });
  }
  const remote = pool.run(b.vars.map(ownedData), jobs);
  remote.catch(() => {}); // awaited below; this keeps a failure during the local slice from going unhandled
  const inShape = b.model.inputs[0].shape.slice(1) as number[];
  const local = tf.tidy(() => {
    const x0 = tf.tensor(b.x.subarray(0, rows[0] * pixels), [rows[0], ...inShape]);
    const t0 = tf.tensor2d(t.subarray(0, rows[0] * F), [rows[0], F]);
    return tf.variableGrads(() => distillLoss(b.model.apply(x0, { training: true }) as tf.Tensor2D, t0, b.cosineWeight, energy, b.grid), b.vars);
  });
  try {
    b.whileWaiting?.();
    const results = await remote;
    return tf.tidy(() => {
      const w = rows.map((r) => r / N);
      const grads = b.vars.map((v, i) => results.reduce((acc, r, k) => tf.add(acc, tf.mul(tf.tensor(r.grads[i], v.shape), w[k + 1])), tf.mul(local.grads[v.name], w[0])));
      const value = tf.add(tf.mul(local.value, w[0]), results.reduce((acc, r, k) => acc + r.loss * w[k + 1], 0)) as tf.Scalar;
      return { value, grads };
    });
  } finally {
    tf.dispose([local.value, ...Object.values(local.grads)]);
  }
}

/**
 * One optimizer step of distillation on the batch; returns the batch loss. With a pool, the
 * gradients come from `parallelGradients`; without one, from this thread alone (and `whileWaiting`
 * is not called). `target` makes the batch's standardised targets.
 */
export async function distillStep(
  pool: GradientPool | undefined,
  optimizer: tf.Optimizer,
  b: Omit<ParallelBatch, 'target'> & { target: () => tf.Tensor2D },
): Promise<tf.Scalar> {
  if (!pool) {
    return tf.tidy(() => {
      const target = b.target();
      const x = tf.tensor(b.x, [target.shape[0], ...(b.model.inputs[0].shape.slice(1) as number[])]);
      const { value, grads } = tf.variableGrads(() => distillLoss(b.model.apply(x, { training: true }) as tf.Tensor2D, target, b.cosineWeight, undefined, b.grid), b.vars);
      optimizer.applyGradients(Object.entries(grads).map(([name, tensor]) => ({ name, tensor })));
      return value;
    });
  }
  const target = tf.tidy(b.target);
  try {
    const { value, grads } = await parallelGradients(pool, { ...b, target });
    optimizer.applyGradients(b.vars.map((v, i) => ({ name: v.name, tensor: grads[i] })));
    tf.dispose(grads);
    return value;
  } finally {
    target.dispose();
  }
}
