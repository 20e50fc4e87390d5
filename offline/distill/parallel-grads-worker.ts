import * as tf from '@tensorflow/tfjs';
import { parentPort, workerData } from 'node:worker_threads';
import { registerWasmTrainingKernels } from '../wasm-kernels';
import { distillLoss } from './loss';
import { ownedData, type FromWorker, type ToWorker, type WorkerInit } from './parallel-grads';

// A GradientPool worker: builds the student from its topology, then answers each step with the
// loss and gradients of its slice at the weights it was sent.
const init = workerData as WorkerInit;
const port = parentPort!;
const send = (m: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

async function start(): Promise<void> {
  if (init.backend === 'wasm') registerWasmTrainingKernels();
  if (!(await tf.setBackend(init.backend))) throw new Error(`backend '${init.backend}' failed to initialise`);
  await tf.ready();
  const model = await tf.models.modelFromJSON({ modelTopology: init.topology as tf.io.ModelJSON['modelTopology'] });
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  port.on('message', (m: ToWorker) => {
    try {
      tf.tidy(() => vars.forEach((v, i) => v.assign(tf.tensor(m.weights[i], v.shape))));
      const inShape = model.inputs[0].shape.slice(1) as number[];
      const { value, grads } = tf.tidy(() => {
        const x = tf.tensor(m.x, [m.rows, ...inShape]);
        const t = tf.tensor2d(m.target, [m.rows, m.target.length / m.rows]);
        return tf.variableGrads(() => distillLoss(model.apply(x, { training: true }) as tf.Tensor2D, t, init.cosineWeight, m.energy, init.grid), vars);
      });
      const arrays = vars.map((v) => ownedData(grads[v.name]));
      const loss = value.dataSync()[0];
      tf.dispose([value, ...Object.values(grads)]);
      send({ type: 'result', id: m.id, loss, grads: arrays }, arrays.map((a) => a.buffer as ArrayBuffer));
    } catch (e) {
      send({ type: 'error', id: m.id, message: e instanceof Error ? e.message : String(e) });
    }
  });
  send({ type: 'ready', shapes: vars.map((v) => v.shape) });
}

start().catch((e: unknown) => send({ type: 'error', message: e instanceof Error ? e.message : String(e) }));
