import * as tf from '@tensorflow/tfjs';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadLayersModel, serializeLayersModel } from '../shared/bundle/model-io';
import { recoverDir, writeDirAtomic, writeFileAtomic, writeJsonAtomic } from './fs-atomic';
import { fileSource } from './fs-source';
import { createProgress } from './report/progress';

/** Where a run stands; saved inside every checkpoint, so weights and state never disagree. */
export interface EpochState<R> {
  /** Last finished epoch. */
  epoch: number;
  /** Steps done inside epoch `epoch + 1` (the mid-epoch resume point). */
  step: number;
  globalStep: number;
  /** Running totals of the unfinished epoch. */
  lossSum: number;
  examples: number;
  seconds: number;
  bestEpoch: number;
  bestScore: number;
  history: R[];
  done: boolean;
  stoppedEarly: boolean;
}

export interface StepContext {
  epoch: number;
  /** Step inside the epoch, from 0. */
  step: number;
  /** Steps before this one over the whole run. */
  globalStep: number;
}

export interface EpochEnd {
  epoch: number;
  /** Mean training loss per example. */
  loss: number;
  seconds: number;
  examplesPerSecond: number;
}

export interface EpochLoopOptions<R extends { epoch: number }> {
  runDir: string;
  epochs: number;
  stepsPerEpoch: number;
  optimizer: tf.Optimizer;
  /** Early stopping: this many epochs without a better score end the run. Default: never. */
  patience?: number;
  /** Also checkpoint every n steps inside an epoch (long epochs). Default: at epoch ends only. */
  checkpointEvery?: number;
  /** The model of a fresh run (not called when a checkpoint is resumed). */
  init(): Promise<tf.LayersModel>;
  /** Called once per process with the (fresh or resumed) model, before the first step. */
  prepare?(model: tf.LayersModel): void | Promise<void>;
  /** One optimisation step: the loss summed over its examples, and how many there were. */
  step(model: tf.LayersModel, ctx: StepContext): Promise<{ loss: number; examples: number }> | { loss: number; examples: number };
  /** After each epoch: its record, and the score (higher is better) that picks the best epoch. */
  evaluate(model: tf.LayersModel, end: EpochEnd): Promise<{ record: R; score: number; summary: string }>;
  /** The files saved as `best/` and `last/`. Default: the model's weights as they are. */
  artifacts?(model: tf.LayersModel): Promise<Map<string, Uint8Array>>;
  /** SVG plots (file name → markup) redrawn after each epoch. */
  plots?(history: R[]): Promise<Record<string, string>>;
  /** What the steps' summed "loss" is, for the log line (default 'loss'). */
  lossName?: string;
  /** Progress bar label, e.g. 'epoch' or 'distill epoch'. */
  label?: string;
  progressUnit?: string;
  /** Stop (with a checkpoint) after this many steps in this process; benchmarks and tests. */
  maxSteps?: number;
  /** Folder of the best epoch's artifacts (default 'best'). */
  bestDir?: string;
  /** The state copy for people and tools (default 'state.json'). */
  stateFile?: string;
  log?: (line: string) => void;
}

export interface EpochLoopResult<R> {
  /** The live model after the last step run (the caller disposes it). */
  model: tf.LayersModel;
  state: EpochState<R>;
  /** True when `maxSteps` stopped the loop before the run's end. */
  paused: boolean;
}

export const CHECKPOINT_DIR = 'checkpoint';
export const BEST_DIR = 'best';
export const LAST_DIR = 'last';

/**
 * The one training loop driver: resume from `<runDir>/checkpoint` (mid-epoch, after a kill),
 * extend a finished run asked for more epochs, early-stop on the dev score, keep `best/` and
 * `last/`, redraw plots, and keep `state.json` for people and tools. What a step and an
 * evaluation do is the caller's.
 *
 * @example
 * const { model, state } = await runEpochs({ runDir, epochs: 10, stepsPerEpoch: batches.length, optimizer,
 *   init: async () => buildDecoder(cfg), step: (m, { step }) => trainOn(batches[step]),
 *   evaluate: async (m, end) => ({ record: { ...end, dev }, score: dev.ciderD, summary: `CIDEr-D ${dev.ciderD}` }) });
 */
export async function runEpochs<R extends { epoch: number }>(o: EpochLoopOptions<R>): Promise<EpochLoopResult<R>> {
  const log = o.log ?? ((l: string) => console.error(l));
  const ckpt = join(o.runDir, CHECKPOINT_DIR);
  let state: EpochState<R> = freshState();
  let model: tf.LayersModel;
  if (hasCheckpoint(ckpt)) {
    const ck = await loadCheckpoint<Partial<EpochState<R>>>(ckpt, o.optimizer);
    model = ck.model;
    state = { ...freshState(), ...ck.state };
    if (state.done && !state.stoppedEarly && state.epoch < o.epochs) {
      state.done = false;
      log(`extending ${o.runDir} from ${state.epoch} to ${o.epochs} epochs`);
    }
    log(`resuming ${o.runDir} after epoch ${state.epoch} (next: epoch ${state.epoch + 1}, step ${state.step}; best score ${state.bestScore.toFixed(4)} at epoch ${state.bestEpoch})`);
  } else {
    model = await o.init();
  }
  await o.prepare?.(model);
  const save = async () => {
    await saveCheckpoint(ckpt, model, o.optimizer, state);
    writeJsonAtomic(join(o.runDir, o.stateFile ?? 'state.json'), state);
  };

  let stepsThisProcess = 0;
  for (let epoch = state.epoch + 1; epoch <= o.epochs && !state.done; epoch++) {
    const bar = createProgress(o.stepsPerEpoch - state.step, `${o.label ?? 'epoch'} ${epoch}/${o.epochs}`, { unit: o.progressUnit ?? 'step' });
    let t0 = Date.now();
    for (let step = state.step; step < o.stepsPerEpoch; step++) {
      if (o.maxSteps !== undefined && stepsThisProcess >= o.maxSteps) {
        bar.stop();
        state.seconds += (Date.now() - t0) / 1000;
        await save();
        return { model, state, paused: true };
      }
      const r = await o.step(model, { epoch, step, globalStep: state.globalStep });
      state.lossSum += r.loss;
      state.examples += r.examples;
      state.step = step + 1;
      state.globalStep++;
      stepsThisProcess++;
      bar.tick(1);
      if (o.checkpointEvery && state.step % o.checkpointEvery === 0 && state.step < o.stepsPerEpoch) {
        state.seconds += (Date.now() - t0) / 1000;
        t0 = Date.now();
        await save();
      }
    }
    bar.stop();
    state.seconds += (Date.now() - t0) / 1000;
    const end: EpochEnd = { epoch, loss: state.lossSum / Math.max(1, state.examples), seconds: state.seconds, examplesPerSecond: state.examples / Math.max(1e-9, state.seconds) };
    const { record, score, summary } = await o.evaluate(model, end);
    state.history.push(record);
    log(`${o.label ?? 'epoch'} ${epoch}: ${o.lossName ?? 'loss'} ${end.loss.toFixed(4)}, ${end.seconds.toFixed(0)} s — ${summary}`);
    const files = o.artifacts ? await o.artifacts(model) : await serializeLayersModel(model, '', 'none');
    // bestEpoch 0: nothing kept yet (a JSON round trip turns -Infinity into null).
    if (state.bestEpoch === 0 || score > state.bestScore) {
      state.bestScore = score;
      state.bestEpoch = epoch;
      writeDirAtomic(join(o.runDir, o.bestDir ?? BEST_DIR), files);
    } else if (o.patience !== undefined && epoch - state.bestEpoch >= o.patience) {
      log(`early stop: no better dev score for ${o.patience} epochs`);
      state.done = true;
      state.stoppedEarly = true;
    }
    // The newest epoch too: the dev score that picks `best/` is noisy, and a user can compare.
    writeDirAtomic(join(o.runDir, LAST_DIR), files);
    Object.assign(state, { epoch, step: 0, lossSum: 0, examples: 0, seconds: 0 });
    if (epoch === o.epochs) state.done = true;
    await save();
    if (o.plots) for (const [name, svg] of Object.entries(await o.plots(state.history))) writeFileAtomic(join(o.runDir, name), svg);
  }
  return { model, state, paused: false };
}

function freshState<R>(): EpochState<R> {
  return { epoch: 0, step: 0, globalStep: 0, lossSum: 0, examples: 0, seconds: 0, bestEpoch: 0, bestScore: 0, history: [], done: false, stoppedEarly: false };
}

/** The best epoch's model of a run (`<runDir>/best`). */
export function loadBest(runDir: string): Promise<tf.LayersModel> {
  return loadLayersModel(fileSource(join(runDir, BEST_DIR)), 'model.json');
}

/**
 * Writes model weights, optimizer state and the loop's `state` to `dir` in one atomic directory
 * swap, so a kill never leaves weights of one step next to the state of another.
 */
export async function saveCheckpoint(dir: string, model: tf.LayersModel, optimizer: tf.Optimizer, state: unknown): Promise<void> {
  const files = await serializeLayersModel(model, '', 'none');
  const named = await optimizer.getWeights();
  const data = new Float32Array(named.reduce((a, n) => a + n.tensor.size, 0));
  let o = 0;
  for (const n of named) {
    data.set((await n.tensor.data()) as Float32Array, o);
    o += n.tensor.size;
  }
  files.set('optimizer.json', new TextEncoder().encode(JSON.stringify(named.map((n) => ({ name: n.name, shape: n.tensor.shape })))));
  files.set('optimizer.bin', new Uint8Array(data.buffer));
  files.set('state.json', new TextEncoder().encode(JSON.stringify(state)));
  writeDirAtomic(dir, files);
}

/** Whether `dir` holds a checkpoint (after repairing an interrupted write). */
export function hasCheckpoint(dir: string): boolean {
  return recoverDir(dir) && existsSync(join(dir, 'model.json'));
}

/** Loads a checkpoint written by `saveCheckpoint`: the model, with the optimizer's state restored, and the loop state. */
export async function loadCheckpoint<S>(dir: string, optimizer: tf.Optimizer): Promise<{ model: tf.LayersModel; state: S | undefined }> {
  const model = await loadLayersModel(fileSource(dir), 'model.json');
  const specs = JSON.parse(readFileSync(join(dir, 'optimizer.json'), 'utf8')) as { name: string; shape: number[] }[];
  const data = new Float32Array(new Uint8Array(readFileSync(join(dir, 'optimizer.bin'))).buffer);
  let o = 0;
  await optimizer.setWeights(
    specs.map((s) => {
      const n = s.shape.reduce((a, b) => a * b, 1);
      const tensor = tf.tensor(data.slice(o, o + n), s.shape);
      o += n;
      return { name: s.name, tensor };
    }),
  );
  const statePath = join(dir, 'state.json');
  const state = existsSync(statePath) ? (JSON.parse(readFileSync(statePath, 'utf8')) as S) : undefined;
  return { model, state };
}
