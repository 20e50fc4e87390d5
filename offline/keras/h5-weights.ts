import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import h5wasm, { type Attribute, type Group } from 'h5wasm/node';

/** One weight array of a layer, float32, row-major in the file's own shape. */
export interface WeightArray {
  /** Its path in the file, for error messages. */
  path: string;
  shape: number[];
  values: Float32Array;
}

export interface KerasWeightFile {
  path: string;
  /** Every layer in the file's `layer_names` order, weightless ones (pools, input, flatten) included. */
  layerNames: string[];
  /** Weight arrays of each layer that has any, in `weight_names` order (kernel before bias). */
  weights: Map<string, WeightArray[]>;
}

/**
 * Reads a Keras 2 HDF5 weight file (`model.save_weights(...h5)`, the `keras.applications` weight
 * files, or the `model_weights` group of a whole-model `.h5`): root attribute `layer_names`, one
 * group per layer with attribute `weight_names`, datasets at `/<layer>/<weight name>`.
 */
export async function readKerasWeightFile(path: string): Promise<KerasWeightFile> {
  const abs = resolve(path);
  if (!existsSync(abs)) throw new Error(`${path}: no such file`);
  await h5wasm.ready;
  const file = new h5wasm.File(abs, 'r');
  try {
    const model = file.get('model_weights');
    const root: Group = !hasAttr(file, 'layer_names') && model instanceof h5wasm.Group ? model : file;
    const layerNames = attrStrings(root, 'layer_names');
    if (!layerNames) {
      throw new Error(`${path}: no 'layer_names' attribute, so not a Keras 2 HDF5 weight file (Keras 3 '.weights.h5' files are not supported)`);
    }
    const weights = new Map<string, WeightArray[]>();
    for (const layer of layerNames) {
      const group = root.get(layer);
      if (!(group instanceof h5wasm.Group)) continue;
      const arrays = readLayer(group, layer, path);
      if (arrays.length) weights.set(layer, arrays);
    }
    return { path, layerNames, weights };
  } finally {
    file.close();
  }
}

function readLayer(group: Group, layer: string, file: string): WeightArray[] {
  const names = attrStrings(group, 'weight_names');
  if (!names) return datasetsUnder(group).map((d) => toWeightArray(d, file));
  return names.map((name) => {
    // Keras puts `block1_conv1/kernel:0` at /block1_conv1/block1_conv1/kernel:0; some writers drop the inner group.
    const found = group.get(name) ?? group.get(name.slice(name.lastIndexOf('/') + 1));
    if (!(found instanceof h5wasm.Dataset)) throw new Error(`${file}: layer ${layer} lists weight '${name}' but has no such dataset`);
    return toWeightArray(found, file);
  });
}

function datasetsUnder(group: Group): InstanceType<typeof h5wasm.Dataset>[] {
  const out: InstanceType<typeof h5wasm.Dataset>[] = [];
  for (const key of group.keys().sort()) {
    const e = group.get(key);
    if (e instanceof h5wasm.Dataset) out.push(e);
    else if (e instanceof h5wasm.Group) out.push(...datasetsUnder(e));
  }
  return out;
}

function toWeightArray(d: InstanceType<typeof h5wasm.Dataset>, file: string): WeightArray {
  const v = d.value;
  if (!(v instanceof Float32Array || v instanceof Float64Array)) {
    throw new Error(`${file}: ${d.path} has dtype ${JSON.stringify(d.dtype)}; expected float32 or float64`);
  }
  return { path: d.path, shape: d.shape ?? [], values: v instanceof Float32Array ? v : Float32Array.from(v) };
}

function hasAttr(obj: Group, name: string): boolean {
  return name in obj.attrs || `${name}0` in obj.attrs;
}

/**
 * A string-list attribute as Keras writes it: fixed or variable-length strings, or raw bytes
 * (one row per string); Keras splits long ones into `name0`, `name1`, ….
 */
function attrStrings(obj: Group, name: string): string[] | undefined {
  const attrs = obj.attrs;
  if (attrs[name]) return toStrings(attrs[name]);
  if (!attrs[`${name}0`]) return undefined;
  const out: string[] = [];
  for (let i = 0; attrs[`${name}${i}`]; i++) out.push(...toStrings(attrs[`${name}${i}`]));
  return out;
}

const utf8 = new TextDecoder();
const bytesToString = (b: Uint8Array | Int8Array) => {
  const end = b.indexOf(0);
  return utf8.decode(new Uint8Array(b.buffer, b.byteOffset, end < 0 ? b.length : end));
};

function toStrings(a: Attribute): string[] {
  const v = a.value;
  if (v === null) return [];
  if (typeof v === 'string') return [v];
  if (v instanceof Uint8Array || v instanceof Int8Array) {
    const shape = a.shape ?? [];
    const width = shape.length > 1 ? shape[shape.length - 1] : v.length;
    if (!width) return [];
    return Array.from({ length: v.length / width }, (_, i) => bytesToString(v.subarray(i * width, (i + 1) * width)));
  }
  // A weightless layer's `weight_names` is an empty float array.
  if (ArrayBuffer.isView(v) && !(v instanceof DataView) && v.length === 0) return [];
  if (Array.isArray(v)) {
    return v.map((item) => {
      if (typeof item === 'string') return item;
      if (item instanceof Uint8Array || item instanceof Int8Array) return bytesToString(item);
      throw new Error(`attribute '${a.name}' of ${a.path} holds ${typeof item} values; expected strings`);
    });
  }
  throw new Error(`attribute '${a.name}' of ${a.path} is not a list of strings`);
}
