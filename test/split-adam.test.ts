import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { SplitAdam } from '../offline/train/split-adam';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('SplitAdam', () => {
  it('moves each group of variables at its own learning rate, and its state round-trips', async () => {
    const enc = tf.variable(tf.zeros([3]), true, 'enc/w');
    const dec = tf.variable(tf.zeros([3]), true, 'dec/w');
    const opt = new SplitAdam(tf.train.adam(1e-3), tf.train.adam(1e-1), (n) => n.startsWith('enc/'));
    const grads = () => ({ 'enc/w': tf.ones([3]), 'dec/w': tf.ones([3]) });
    opt.applyGradients(grads());
    // Adam's first step is lr × sign(gradient), whatever the gradient's scale.
    expect([...enc.dataSync()].map((v) => v.toFixed(5))).toEqual(['-0.00100', '-0.00100', '-0.00100']);
    expect([...dec.dataSync()].map((v) => v.toFixed(5))).toEqual(['-0.10000', '-0.10000', '-0.10000']);
    const saved = await opt.getWeights();
    expect(saved.map((w) => w.name.slice(0, 2))).toEqual(expect.arrayContaining(['0/', '1/']));
    // A fresh optimizer with that state takes the same second step as the original.
    const copy = new SplitAdam(tf.train.adam(1e-3), tf.train.adam(1e-1), (n) => n.startsWith('enc/'));
    await copy.setWeights(saved.map((w) => ({ name: w.name, tensor: tf.clone(w.tensor) })));
    const before = [enc.dataSync()[0], dec.dataSync()[0]];
    opt.applyGradients(grads());
    const stepOriginal = [enc.dataSync()[0] - before[0], dec.dataSync()[0] - before[1]];
    enc.assign(tf.fill([3], before[0]));
    dec.assign(tf.fill([3], before[1]));
    copy.applyGradients(grads());
    expect(enc.dataSync()[0] - before[0]).toBeCloseTo(stepOriginal[0], 7);
    expect(dec.dataSync()[0] - before[1]).toBeCloseTo(stepOriginal[1], 7);
  });
});
