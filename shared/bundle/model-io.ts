import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { Quantization } from './manifest';
import { quantizeWeights } from './quantize';
import { decodeWeightData } from './weight-data';
import { dirname, joinPath, type BundleSource } from './source';

/** Serialises a layers model to `<dir>/model.json` + `<dir>/weights.bin` (quantized as asked). */
export async function serializeLayersModel(model: tfl.LayersModel, dir: string, quantization: Quantization): Promise<Map<string, Uint8Array>> {
  let artifacts: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  if (!artifacts?.weightSpecs || !artifacts.weightData) throw new Error('model.save produced no weights');
  const weightData = tf.io.CompositeArrayBuffer.join(artifacts.weightData);
  const q = quantizeWeights(artifacts.weightSpecs, weightData, quantization);
  const modelJson = {
    format: 'layers-model',
    generatedBy: `TensorFlow.js tfjs-layers v${tfl.version_layers}`,
    convertedBy: 'edge-captioner export',
    modelTopology: artifacts.modelTopology,
    weightsManifest: [{ paths: ['weights.bin'], weights: q.specs }],
  };
  return new Map([
    [joinPath(dir, 'model.json'), new TextEncoder().encode(JSON.stringify(modelJson))],
    [joinPath(dir, 'weights.bin'), new Uint8Array(q.data)],
  ]);
}

/** A tfjs-layers model file as read: its topology and the concatenated bytes of its weight shards. */
export interface ModelFile {
  topology: tf.io.ModelJSON['modelTopology'];
  format?: string;
  specs: tf.io.WeightsManifestEntry[];
  data: Uint8Array;
}

/** Reads a tfjs-layers model.json and its shards (relative to it) from a bundle source. */
export async function readModelFile(source: BundleSource, modelPath: string): Promise<ModelFile> {
  const json = JSON.parse(new TextDecoder().decode(await source.read(modelPath))) as tf.io.ModelJSON;
  if (!json.modelTopology || !Array.isArray(json.weightsManifest)) {
    throw new Error(`${modelPath} is not a tfjs-layers model.json (no modelTopology / weightsManifest)`);
  }
  const dir = dirname(modelPath);
  const specs = json.weightsManifest.flatMap((g) => g.weights);
  const buffers = await Promise.all(json.weightsManifest.flatMap((g) => g.paths.map((p) => source.read(joinPath(dir, p)))));
  if (buffers.length === 1) return { topology: json.modelTopology, format: json.format, specs, data: buffers[0] };
  const data = new Uint8Array(buffers.reduce((a, b) => a + b.byteLength, 0));
  let o = 0;
  for (const b of buffers) {
    data.set(b, o);
    o += b.byteLength;
  }
  return { topology: json.modelTopology, format: json.format, specs, data };
}

/** Loads a tfjs-layers model.json (and its shards, relative to it) from a bundle source. */
export async function loadLayersModel(source: BundleSource, modelPath: string): Promise<tfl.LayersModel> {
  return layersModelFrom(await readModelFile(source, modelPath));
}

/**
 * Builds the tfjs-layers model of a model file read by `readModelFile`. Its weights are decoded
 * by `decodeWeightData`, not by tfjs: a 'uint4' bundle's matrices are ours alone.
 */
export async function layersModelFrom(file: ModelFile): Promise<tfl.LayersModel> {
  const { topology, specs, data } = file;
  const handler: tf.io.IOHandler = { load: async () => ({ modelTopology: withZeroInitializers(topology), format: file.format }) };
  const model = await tfl.loadLayersModel(handler);
  const weights = decodeWeightData(specs, data);
  try {
    // strict: every weight must come from the file, so no initializer value survives.
    model.loadWeights(Object.fromEntries(weights), true);
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    tf.dispose([...weights.values()]);
  }
  return model;
}

/**
 * The topology with every weight initializer replaced by Zeros. tfjs-layers builds each layer with
 * its initializer before the loaded weights overwrite it: random initializers (He, Glorot) cost
 * ~60 ms per model here, and more in a fresh isolate (cold start), for values nobody reads.
 */
export function withZeroInitializers<T>(topology: T): T {
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (typeof v !== 'object' || v === null) return v;
    return Object.fromEntries(
      Object.entries(v).map(([k, x]) => [k, k.endsWith('_initializer') && typeof x === 'object' && x !== null && 'class_name' in x ? { class_name: 'Zeros', config: {} } : walk(x)]),
    );
  };
  return walk(topology) as T;
}
