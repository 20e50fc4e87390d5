import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../offline/backend';
import { loadBest, runEpochs, type EpochLoopOptions } from '../offline/epochs';

const root = mkdtempSync(join(tmpdir(), 'epochs-'));
beforeAll(() => selectBackend('cpu'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

interface Rec {
  epoch: number;
  loss: number;
  devLoss: number;
}

const STEPS = 6;
/** Batch (epoch, step) of a fixed linear regression: y = x·[1, −2, 3] + 0.5. */
function batch(epoch: number, step: number): { x: tf.Tensor2D; y: tf.Tensor2D } {
  const xs = Float32Array.from({ length: 8 * 3 }, (_, i) => Math.sin(epoch * 101 + step * 13 + i));
  const ys = Float32Array.from({ length: 8 }, (_, r) => xs[r * 3] - 2 * xs[r * 3 + 1] + 3 * xs[r * 3 + 2] + 0.5);
  return { x: tf.tensor2d(xs, [8, 3]), y: tf.tensor2d(ys, [8, 1]) };
}

/** A run of the loop on that regression; `scores` overrides the dev score per epoch. */
function options(runDir: string, epochs: number, extra: Partial<EpochLoopOptions<Rec>> & { scores?: number[] } = {}): EpochLoopOptions<Rec> & { inits: () => number } {
  let inits = 0;
  const optimizer = tf.train.adam(0.05);
  const loss = (m: tf.LayersModel, b: { x: tf.Tensor2D; y: tf.Tensor2D }) => tf.losses.meanSquaredError(b.y, m.apply(b.x) as tf.Tensor2D) as tf.Scalar;
  return {
    runDir,
    epochs,
    stepsPerEpoch: STEPS,
    optimizer,
    log: () => {},
    async init() {
      inits++;
      const m = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [3], kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }), name: 'lin' })] });
      return m;
    },
    step(model, { epoch, step }) {
      const v = tf.tidy(() => {
        const b = batch(epoch, step);
        return optimizer.minimize(() => loss(model, b), true)!;
      });
      const l = v.dataSync()[0];
      v.dispose();
      return { loss: l * 8, examples: 8 };
    },
    async evaluate(model, end) {
      const devLoss = tf.tidy(() => loss(model, batch(999, 0)).dataSync()[0]);
      const score = extra.scores ? extra.scores[end.epoch - 1] : -devLoss;
      return { record: { epoch: end.epoch, loss: end.loss, devLoss }, score, summary: '' };
    },
    plots: async (h) => ({ 'curve.svg': `<svg data-epochs="${h.length}"/>` }),
    inits: () => inits,
    ...extra,
  };
}

const weightsOf = (m: tf.LayersModel) => m.getWeights().flatMap((w) => Array.from(w.dataSync()));

describe('runEpochs', () => {
  it('a run paused mid-epoch and resumed in a new loop ends exactly where an uninterrupted run does', async () => {
    const straight = await runEpochs(options(join(root, 'straight'), 3));
    expect(straight.paused).toBe(false);
    expect(straight.state.history.map((h) => h.epoch)).toEqual([1, 2, 3]);
    expect(straight.state.history[2].devLoss).toBeLessThan(straight.state.history[0].devLoss);

    const dir = join(root, 'paused');
    const first = await runEpochs(options(dir, 3, { maxSteps: 8 })); // epoch 1 and 2 steps of epoch 2
    expect(first.paused).toBe(true);
    expect(first.state).toMatchObject({ epoch: 1, step: 2, globalStep: 8 });
    first.model.dispose();
    const again = options(dir, 3);
    const second = await runEpochs(again);
    expect(again.inits()).toBe(0);
    expect(second.state.globalStep).toBe(18);
    expect(weightsOf(second.model)).toEqual(weightsOf(straight.model));
    expect(second.state.history).toEqual(straight.state.history);
    expect(JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')).done).toBe(true);
    expect(readFileSync(join(dir, 'curve.svg'), 'utf8')).toContain('data-epochs="3"');
    for (const d of ['best/model.json', 'last/model.json', 'checkpoint/optimizer.bin']) expect(existsSync(join(dir, d)), d).toBe(true);
    straight.model.dispose();
    second.model.dispose();
  });

  it('a finished run asked for more epochs goes on from its last epoch', async () => {
    const dir = join(root, 'extend');
    (await runEpochs(options(dir, 2))).model.dispose();
    const more = options(dir, 4);
    const r = await runEpochs(more);
    expect(more.inits()).toBe(0);
    expect(r.state.history.map((h) => h.epoch)).toEqual([1, 2, 3, 4]);
    expect(r.state.globalStep).toBe(4 * STEPS);
    r.model.dispose();
  });

  it('stops early after `patience` epochs without a better score, keeps the best epoch, and is not extended', async () => {
    const dir = join(root, 'early');
    const scores = [0.1, 0.5, 0.4, 0.3, 0.9, 1];
    const r = await runEpochs(options(dir, 6, { patience: 2, scores }));
    expect(r.state).toMatchObject({ epoch: 4, bestEpoch: 2, bestScore: 0.5, done: true, stoppedEarly: true });
    // best/ holds epoch 2's weights, last/ epoch 4's.
    const best = await loadBest(dir);
    expect(weightsOf(best)).not.toEqual(weightsOf(r.model));
    r.model.dispose();
    const again = await runEpochs(options(dir, 8, { patience: 2, scores }));
    expect(again.state.epoch).toBe(4);
    best.dispose();
    again.model.dispose();
  });
});
