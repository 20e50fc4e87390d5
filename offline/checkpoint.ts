import * as tf from '@tensorflow/tfjs';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadLayersModel, serializeLayersModel } from '../shared/bundle/model-io';
import { recoverDir, writeDirAtomic } from './fs-atomic';
import { fileSource } from './fs-source';

/**
 * Writes model weights, optimizer state and the training loop's `state` to `dir` in one atomic
 * directory swap, so a kill never leaves weights of one step next to the state of another.
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

/**
 * Loads a checkpoint written by `saveCheckpoint`: the model, with the optimizer's state restored,
 * and the loop state saved with it (undefined for checkpoints older than that field).
 */
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
