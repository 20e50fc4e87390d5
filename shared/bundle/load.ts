import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { now } from '../clock';
import { chainEncoder } from '../models/encoder-ops';
import { decoderShapeProblems, decoderWeightsFromFile, type DecoderWeights } from '../models/decoder-ops';
import { Vocabulary } from '../text/vocabulary';
import { BundleError, validateManifest, type BundleManifest } from './manifest';
import { layersModelFrom, loadLayersModel, readModelFile } from './model-io';
import { decodeWeightData } from './weight-data';
import type { BundleSource } from './source';

export interface LoadedBundle {
  manifest: BundleManifest;
  /** Image → the feature; with `manifest.encoder.grid` a second output, that layer's grid. */
  encoder: tfl.LayersModel;
  decoder: tfl.LayersModel;
  vocabulary: Vocabulary;
  /** Bytes of every file read (manifest, vocabulary, model.json files and shards). */
  bytes: number;
  /** Wall time spent waiting for file reads (the rest of loading is parsing and tensor creation). */
  readMs: number;
}

/** A bundle's manifest and vocabulary read, and a source that counts bytes and read time for the rest. */
async function openBundle(source: BundleSource) {
  const stats = { bytes: 0, readMs: 0 };
  // Reads overlap (encoder and decoder load in parallel): count the time any read is pending.
  let pending = 0;
  let since = 0;
  const counted: BundleSource = {
    description: source.description,
    read: async (p) => {
      if (pending++ === 0) since = now();
      try {
        const b = await source.read(p);
        stats.bytes += b.byteLength;
        return b;
      } finally {
        if (--pending === 0) stats.readMs += now() - since;
      }
    },
  };
  const readJson = async (path: string): Promise<unknown> => {
    let raw: Uint8Array;
    try {
      raw = await counted.read(path);
    } catch (e) {
      throw new BundleError(`cannot read ${path} from ${source.description}: ${(e as Error).message}`);
    }
    try {
      return JSON.parse(new TextDecoder().decode(raw));
    } catch {
      throw new BundleError(`${path} is not valid JSON`);
    }
  };
  const manifest = validateManifest(await readJson('manifest.json'));
  const vocabulary = readJson(manifest.vocabulary.path).then((j) => {
    try {
      return Vocabulary.fromJSON(j);
    } catch (e) {
      throw new BundleError(`${manifest.vocabulary.path}: ${(e as Error).message}`);
    }
  });
  // Settled here too: a failed model read must not leave this rejection unhandled.
  vocabulary.catch(() => undefined);
  const model = async <T>(path: string, what: string, build: (src: BundleSource, path: string) => Promise<T>): Promise<T> => {
    try {
      return await build(counted, path);
    } catch (e) {
      throw new BundleError(`cannot load the ${what} from ${path}: ${(e as Error).message}`);
    }
  };
  return { manifest, vocabulary, stats, model };
}

/**
 * Reads and cross-checks a bundle as tfjs-layers models (what training, export and fine-tuning
 * need); every mismatch is a BundleError that says what does not fit.
 */
export async function loadBundle(source: BundleSource): Promise<LoadedBundle> {
  const { manifest, vocabulary, stats, model } = await openBundle(source);
  const [vocab, encoderModel, decoder] = await Promise.all([vocabulary, model(manifest.encoder.modelPath, 'encoder', loadLayersModel), model(manifest.decoder.modelPath, 'decoder', loadLayersModel)]);
  const encoder = withGridOutput(manifest, encoderModel);
  const gridIn = decoder.inputs.find((i) => i.name.startsWith('grid'))?.shape;
  checkShapes(manifest, vocab, {
    encoderInput: encoder.inputs[0].shape.slice(1),
    feature: encoder.outputs[0].shape[encoder.outputs[0].shape.length - 1],
    grid: encoder.outputs[1]?.shape.slice(1),
    decoderFeature: decoder.inputs.find((i) => i.name.startsWith('features'))?.shape[1],
    decoderGrid: gridIn?.slice(1),
    vocabOut: decoder.outputs[0].shape[2],
  });
  return { manifest, encoder, decoder, vocabulary: vocab, bytes: stats.bytes, readMs: stats.readMs };
}

/** What serving needs from a bundle: the encoder as a function, the decoder's weights, the vocabulary. */
export interface ServingBundle {
  manifest: BundleManifest;
  /** Images [N, size, size, 3] → [feature [N, F]] or, with `manifest.encoder.grid`, [feature, grid [N, r, c, ch]]. Call inside tf.tidy. */
  encode(images: tf.Tensor4D): tf.Tensor[];
  decoder: DecoderWeights;
  vocabulary: Vocabulary;
  /** Bytes of every file read. */
  bytes: number;
  /** Wall time spent waiting for file reads. */
  readMs: number;
  /** How the encoder runs: tfjs-core ops over its weights, or a tfjs-layers model (a topology those ops do not cover). */
  encoderPath: 'ops' | 'layers';
  dispose(): void;
}

/**
 * Reads and cross-checks a bundle for serving, without building tfjs-layers models where it can:
 * the decoder always runs from its weights, the encoder too when it is a plain chain (the compact
 * VGG16). In a cold isolate this is most of the load (≈ 150 ms of model building).
 */
export async function loadServingBundle(source: BundleSource): Promise<ServingBundle> {
  const { manifest, vocabulary, stats, model } = await openBundle(source);
  const named: tf.Tensor[] = [];
  const keep = (m: Map<string, tf.Tensor>) => (named.push(...m.values()), m);
  const gridLayer = manifest.encoder.grid?.layer;
  try {
    const [vocab, enc, dec] = await Promise.all([
      vocabulary,
      model(manifest.encoder.modelPath, 'encoder', async (src, path): Promise<{ encode: ServingBundle['encode']; shapes: Pick<ModelShapes, 'encoderInput' | 'feature' | 'grid'>; layers?: tfl.LayersModel }> => {
        const file = await readModelFile(src, path);
        const weights = decodeWeightData(file.specs, file.data);
        const chain = chainEncoder(file.topology, weights);
        // Not a chain: tfjs-layers builds its own tensors from the file, so these would only take memory.
        if (!chain) tf.dispose([...weights.values()]);
        else keep(weights);
        if (chain) {
          if (gridLayer && !chain.layerShape(gridLayer)) throw new BundleError(`encoder.grid.layer '${gridLayer}' is not a layer of the encoder`);
          return { encode: (x) => chain.run(x, gridLayer), shapes: { encoderInput: chain.inputShape, feature: chain.outputShape[chain.outputShape.length - 1], grid: gridLayer ? chain.layerShape(gridLayer) : undefined } };
        }
        const layers = withGridOutput(manifest, await layersModelFrom(file));
        const out0 = layers.outputs[0].shape;
        return {
          encode: (x) => [layers.predict(x)].flat(),
          shapes: { encoderInput: layers.inputs[0].shape.slice(1), feature: out0[out0.length - 1], grid: layers.outputs[1]?.shape.slice(1) },
          layers,
        };
      }),
      model(manifest.decoder.modelPath, 'decoder', async (src, path) => {
        const file = await readModelFile(src, path);
        const w = decoderWeightsFromFile(file.topology, keep(decodeWeightData(file.specs, file.data)));
        const problems = decoderShapeProblems(w);
        if (problems.length) throw new Error(problems.join('; '));
        return w;
      }),
    ]);
    const a = dec.attention;
    checkShapes(manifest, vocab, {
      ...enc.shapes,
      decoderFeature: dec.initH.kernel.shape[0],
      decoderGrid: a && [a.config.grid[0] * a.config.grid[1], a.config.channels],
      vocabOut: dec.logits.kernel.shape[1],
    });
    return {
      manifest,
      encode: enc.encode,
      decoder: dec,
      vocabulary: vocab,
      bytes: stats.bytes,
      readMs: stats.readMs,
      encoderPath: enc.layers ? 'layers' : 'ops',
      dispose: () => {
        tf.dispose(named);
        enc.layers?.dispose();
      },
    };
  } catch (e) {
    tf.dispose(named);
    throw e;
  }
}

/** The encoder with the grid layer as a second output, when the manifest names one. */
function withGridOutput(m: BundleManifest, encoder: tfl.LayersModel): tfl.LayersModel {
  const grid = m.encoder.grid;
  if (!grid) return encoder;
  const names = encoder.layers.map((l) => l.name);
  if (!names.includes(grid.layer)) throw new BundleError(`encoder.grid.layer '${grid.layer}' is not a layer of the encoder (its last layers: ${names.slice(-6).join(', ')})`);
  return tfl.model({ inputs: encoder.inputs, outputs: [encoder.outputs[0], encoder.getLayer(grid.layer).output as tfl.SymbolicTensor] });
}

/** The shapes the manifest, the encoder and the decoder must agree on (per image, no batch axis). */
interface ModelShapes {
  encoderInput: (number | null)[];
  feature: number | null;
  /** The encoder's grid output, when the manifest names a grid layer. */
  grid?: (number | null)[];
  decoderFeature?: number | null;
  /** [cells, channels] the decoder attends over; undefined for a pooled decoder. */
  decoderGrid?: (number | null)[];
  vocabOut: number | null;
}

function checkShapes(m: BundleManifest, vocab: Vocabulary, s: ModelShapes): void {
  const problems: string[] = [];
  const encIn = s.encoderInput;
  if (encIn[0] !== m.encoder.inputSize || encIn[1] !== m.encoder.inputSize || encIn[2] !== 3) {
    problems.push(`encoder input is ${JSON.stringify([null, ...encIn])}, manifest says ${m.encoder.inputSize}×${m.encoder.inputSize}×3`);
  }
  if (s.feature !== m.encoder.featureSize) {
    problems.push(`encoder output has ${s.feature} features, manifest says ${m.encoder.featureSize}`);
  }
  if (s.decoderFeature !== m.encoder.featureSize) {
    problems.push(`decoder takes ${s.decoderFeature ?? '?'} features, encoder gives ${m.encoder.featureSize}`);
  }
  const gridIn = s.decoderGrid;
  const attends = m.decoder.architecture === 'lstm-attention';
  if (attends !== Boolean(gridIn)) problems.push(`manifest says decoder.architecture '${m.decoder.architecture}', but the decoder model ${gridIn ? 'has' : 'has no'} grid input`);
  if (gridIn && m.encoder.grid) {
    const [r, c, ch] = m.encoder.grid.shape;
    const gridOut = s.grid;
    if (gridIn[0] !== r * c || gridIn[1] !== ch) problems.push(`decoder attends over ${gridIn[0]} cells × ${gridIn[1]} channels, manifest encoder.grid is ${r}×${c}×${ch}`);
    if (!gridOut || gridOut.join() !== [r, c, ch].join()) problems.push(`encoder layer '${m.encoder.grid.layer}' gives [${gridOut?.join(', ') ?? '?'}], manifest says [${r}, ${c}, ${ch}]`);
  }
  if (s.vocabOut !== m.decoder.vocabSize || vocab.size !== m.decoder.vocabSize) {
    problems.push(`vocabulary sizes disagree: manifest ${m.decoder.vocabSize}, vocab.json ${vocab.size}, decoder output ${s.vocabOut}`);
  }
  if (problems.length) throw new BundleError(problems.join('; '));
}
