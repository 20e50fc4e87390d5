import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { serializeLayersModel } from '../../shared/bundle/model-io';
import { selectBackend } from '../backend';
import { writeDirAtomic } from '../fs-atomic';
import { tfliteToLayers } from '../tflite/to-layers';

export interface ImportTfliteOptions {
  tflitePath: string;
  outDir: string;
  log?: (line: string) => void;
}

/**
 * `import-tflite`: a TFLite image model → tfjs-layers `<outDir>/model.json` (float weights), with
 * `normalization.json` (the pixel scaling its quantized input implies; `--normalization auto`
 * reads it) and `layers.json` (every TFLite tensor → its layer name, for `--layer`).
 */
export async function importTfliteCommand(o: ImportTfliteOptions): Promise<{ modelPath: string; pooled: string | null; grid: string | null }> {
  const log = o.log ?? ((l: string) => console.error(l));
  await selectBackend();
  const imp = tfliteToLayers(new Uint8Array(readFileSync(o.tflitePath)));
  try {
    const files = await serializeLayersModel(imp.model, '', 'none');
    const json = (v: unknown) => new TextEncoder().encode(`${JSON.stringify(v, null, 2)}\n`);
    if (imp.normalization) files.set('normalization.json', json(imp.normalization));
    files.set('layers.json', json({ source: o.tflitePath, inputSize: imp.inputSize, pooled: imp.pooled, grid: imp.grid, layers: imp.layers }));
    writeDirAtomic(o.outDir, files);
    const modelPath = join(o.outDir, 'model.json');
    const shape = (name: string | null) => (name ? (imp.model.getLayer(name).output as { shape: (number | null)[] }).shape.slice(1).join('×') : '');
    log(`wrote ${modelPath}: ${imp.layers.length} layers, ${imp.model.countParams().toLocaleString('en-US')} parameters, ${imp.inputSize}×${imp.inputSize} input`);
    if (imp.pooled) log(`pooled feature: --layer ${imp.pooled} (${shape(imp.pooled)}); its grid: --layer ${imp.grid} (${shape(imp.grid)})`);
    log(imp.normalization ? `input normalisation from the quantized input: mean ${imp.normalization.mean[0]}, std ${imp.normalization.std[0].toFixed(3)} (normalization.json; --normalization auto)` : 'float input: pass --normalization');
    return { modelPath, pooled: imp.pooled, grid: imp.grid };
  } finally {
    imp.model.dispose();
  }
}
