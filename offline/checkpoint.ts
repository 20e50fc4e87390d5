import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadLayersModel, serializeLayersModel } from '../shared/bundle/model-io';
import { writeDirAtomic } from './fs-atomic';
import { fileSource } from './fs-source';

/** Writes model weights and optimizer state to `dir` atomically (a kill never leaves half a checkpoint). */
export async function saveCheckpoint(dir: string, model: tf.LayersModel, optimizer: tf.Optimizer): Promise<void> {
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
  writeDirAtomic(dir, files);
}

/** Loads a checkpoint written by `saveCheckpoint`: the model, with the optimizer's state restored. */
export async function loadCheckpoint(dir: string, optimizer: tf.Optimizer): Promise<tf.LayersModel> {
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
  return model;
}
