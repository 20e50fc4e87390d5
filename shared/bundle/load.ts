import * as tfl from '@tensorflow/tfjs-layers';
import { now } from '../clock';
import { Vocabulary } from '../text/vocabulary';
import { BundleError, validateManifest, type BundleManifest } from './manifest';
import { loadLayersModel } from './model-io';
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

/** Reads and cross-checks a bundle; every mismatch is a BundleError that says what does not fit. */
export async function loadBundle(source: BundleSource): Promise<LoadedBundle> {
  let bytes = 0;
  // Reads overlap (encoder and decoder load in parallel): count the time any read is pending.
  let pending = 0;
  let since = 0;
  let readMs = 0;
  const counted: BundleSource = {
    description: source.description,
    read: async (p) => {
      if (pending++ === 0) since = now();
      try {
        const b = await source.read(p);
        bytes += b.byteLength;
        return b;
      } finally {
        if (--pending === 0) readMs += now() - since;
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
  const vocabulary = (() => {
    const p = readJson(manifest.vocabulary.path);
    return p.then((j) => {
      try {
        return Vocabulary.fromJSON(j);
      } catch (e) {
        throw new BundleError(`${manifest.vocabulary.path}: ${(e as Error).message}`);
      }
    });
  })();
  const load = async (path: string, what: string) => {
    try {
      return await loadLayersModel(counted, path);
    } catch (e) {
      throw new BundleError(`cannot load the ${what} from ${path}: ${(e as Error).message}`);
    }
  };
  const [vocab, encoderModel, decoder] = await Promise.all([vocabulary, load(manifest.encoder.modelPath, 'encoder'), load(manifest.decoder.modelPath, 'decoder')]);
  const encoder = withGridOutput(manifest, encoderModel);
  checkShapes(manifest, vocab, encoder, decoder);
  return { manifest, encoder, decoder, vocabulary: vocab, bytes, readMs };
}

/** The encoder with the grid layer as a second output, when the manifest names one. */
function withGridOutput(m: BundleManifest, encoder: tfl.LayersModel): tfl.LayersModel {
  const grid = m.encoder.grid;
  if (!grid) return encoder;
  const names = encoder.layers.map((l) => l.name);
  if (!names.includes(grid.layer)) throw new BundleError(`encoder.grid.layer '${grid.layer}' is not a layer of the encoder (its last layers: ${names.slice(-6).join(', ')})`);
  return tfl.model({ inputs: encoder.inputs, outputs: [encoder.outputs[0], encoder.getLayer(grid.layer).output as tfl.SymbolicTensor] });
}

function checkShapes(m: BundleManifest, vocab: Vocabulary, encoder: tfl.LayersModel, decoder: tfl.LayersModel): void {
  const problems: string[] = [];
  const encIn = encoder.inputs[0].shape;
  const encOut = encoder.outputs[0].shape;
  if (encIn[1] !== m.encoder.inputSize || encIn[2] !== m.encoder.inputSize || encIn[3] !== 3) {
    problems.push(`encoder input is ${JSON.stringify(encIn)}, manifest says ${m.encoder.inputSize}×${m.encoder.inputSize}×3`);
  }
  if (encOut[encOut.length - 1] !== m.encoder.featureSize) {
    problems.push(`encoder output has ${encOut[encOut.length - 1]} features, manifest says ${m.encoder.featureSize}`);
  }
  const featIn = decoder.inputs.find((i) => i.name.startsWith('features'))?.shape;
  if (!featIn || featIn[1] !== m.encoder.featureSize) {
    problems.push(`decoder takes ${featIn?.[1] ?? '?'} features, encoder gives ${m.encoder.featureSize}`);
  }
  const gridIn = decoder.inputs.find((i) => i.name.startsWith('grid'))?.shape;
  const attends = m.decoder.architecture === 'lstm-attention';
  if (attends !== Boolean(gridIn)) problems.push(`manifest says decoder.architecture '${m.decoder.architecture}', but the decoder model ${gridIn ? 'has' : 'has no'} grid input`);
  if (gridIn && m.encoder.grid) {
    const [r, c, ch] = m.encoder.grid.shape;
    const gridOut = encoder.outputs[1]?.shape.slice(1);
    if (gridIn[1] !== r * c || gridIn[2] !== ch) problems.push(`decoder attends over ${gridIn[1]} cells × ${gridIn[2]} channels, manifest encoder.grid is ${r}×${c}×${ch}`);
    if (!gridOut || gridOut.join() !== [r, c, ch].join()) problems.push(`encoder layer '${m.encoder.grid.layer}' gives [${gridOut?.join(', ') ?? '?'}], manifest says [${r}, ${c}, ${ch}]`);
  }
  const outV = decoder.outputs[0].shape[2];
  if (outV !== m.decoder.vocabSize || vocab.size !== m.decoder.vocabSize) {
    problems.push(`vocabulary sizes disagree: manifest ${m.decoder.vocabSize}, vocab.json ${vocab.size}, decoder output ${outV}`);
  }
  if (problems.length) throw new BundleError(problems.join('; '));
}
