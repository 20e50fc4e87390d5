import { join } from 'node:path';
import { serializeLayersModel } from '../../shared/bundle/model-io';
import { selectBackend } from '../backend';
import { writeDirAtomic } from '../fs-atomic';
import { KERAS_VGG16_OUTPUT_LAYER, kerasVgg16Model, readKerasVgg16, VGG16_CONV_LAYERS, type KerasVgg16Output } from '../keras/vgg16-h5';

export interface ImportKerasOptions {
  h5Path: string;
  outDir: string;
  output: KerasVgg16Output;
  inputSize?: number;
  log?: (line: string) => void;
}

export interface ImportKerasResult {
  modelPath: string;
  outputLayer: string;
  inputSize: number;
  params: number;
}

/** `import-keras`: a Keras VGG16 HDF5 weight file → tfjs-layers `<outDir>/model.json` + weights.bin, for `--encoder` / `--teacher`. */
export async function importKerasCommand(o: ImportKerasOptions): Promise<ImportKerasResult> {
  const log = o.log ?? ((l: string) => console.error(l));
  await selectBackend();
  const weights = await readKerasVgg16(o.h5Path);
  const model = kerasVgg16Model(weights, { inputSize: o.inputSize, output: o.output });
  try {
    writeDirAtomic(o.outDir, await serializeLayersModel(model, '', 'none'));
    const modelPath = join(o.outDir, 'model.json');
    const outputLayer = KERAS_VGG16_OUTPUT_LAYER[o.output];
    const inputSize = model.inputs[0].shape[1] as number;
    const params = model.countParams();
    const widths = [...new Set(VGG16_CONV_LAYERS.map((n) => weights.layers.get(n)!.kernel.shape[3]))].join('–');
    log(`wrote ${modelPath}: VGG16 (${widths} channels), ${params.toLocaleString('en-US')} parameters, ${inputSize}×${inputSize} input`);
    log(`output layer: ${outputLayer} (${model.outputs[0].shape.slice(1).join('×')} features)`);
    log(
      `Keras VGG16 expects caffe preprocessing (BGR, ImageNet means subtracted): use it with ` +
        `--encoder ${modelPath} --layer ${outputLayer} --normalization caffe, or ` +
        `--teacher ${modelPath} --teacher-layer ${outputLayer} --teacher-normalization caffe`,
    );
    return { modelPath, outputLayer, inputSize, params };
  } finally {
    model.dispose();
  }
}
