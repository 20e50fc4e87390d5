/**
 * Is each imported TFLite teacher right? Top-5 ImageNet labels on a few dev photos, and top-1
 * agreement with the MobileNet v1 α0.75 reference (tfjs-layers, 1000 classes) on N dev photos.
 *
 *   npx tsx bench/teacher-check.ts --teachers runs/teachers/edgetpu,runs/teachers/v2 [--images 200]
 */
import { Command } from 'commander';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../offline/backend';
import { readDataset } from '../offline/data/captions';
import { fileSource } from '../offline/fs-source';
import { defaultPaths } from '../offline/paths';
import { loadLayersModel } from '../shared/bundle/model-io';
import type { Normalization } from '../shared/bundle/manifest';
import { decodeImage } from '../shared/image/decode';
import { toEncoderInput, UNIT_RANGE_NORMALIZATION } from '../shared/image/normalize';

const paths = defaultPaths();
const o = new Command()
  .requiredOption('--teachers <dirs>', 'comma-separated import-tflite output folders (1001-class classifiers)')
  .option('--labels <file>', '1001 TFLite class names', join(paths.repoRoot, '..', 'shared', 'data', 'teachers', 'imagenet_labels.txt'))
  .option('--reference <model.json>', '1000-class reference classifier', paths.teacherModel)
  .option('--images <n>', 'dev photos for the agreement', (v) => Number(v), 200)
  .option('--out <file>', 'JSON report', join(paths.runsDir, 'teacher-check.json'))
  .parse()
  .opts();

await selectBackend();
const labels = readFileSync(o.labels, 'utf8').split('\n');
const ds = readDataset(paths.dataDir);
const names = ds.splits.dev.slice(0, o.images);
const images = names.map((n) => decodeImage(new Uint8Array(readFileSync(join(ds.imageDir, n)))));

async function top1(model: tf.LayersModel, norm: Normalization, offset: number): Promise<{ top1: number[]; top5: string[][] }> {
  const top1: number[] = [];
  const top5: string[][] = [];
  for (let i = 0; i < images.length; i += 16) {
    const chunk = images.slice(i, i + 16);
    const x = new Float32Array(chunk.length * 224 * 224 * 3);
    chunk.forEach((img, k) => x.set(toEncoderInput(img, 224, norm), k * 224 * 224 * 3));
    const p = tf.tidy(() => (model.predict(tf.tensor4d(x, [chunk.length, 224, 224, 3])) as tf.Tensor).reshape([chunk.length, -1]).arraySync() as number[][]);
    for (const row of p) {
      const order = row.map((v, c) => [v, c]).sort((a, b) => b[0] - a[0]);
      top1.push(order[0][1] + offset);
      if (top5.length < 3) top5.push(order.slice(0, 5).map(([v, c]) => `${labels[c + offset]} ${v.toFixed(2)}`));
    }
  }
  return { top1, top5 };
}

const reference = await loadLayersModel(fileSource(join(o.reference, '..')), 'model.json');
const ref = await top1(reference, UNIT_RANGE_NORMALIZATION, 1); // its class c is TFLite class c + 1
const report: Record<string, unknown> = { images: names.length, examples: names.slice(0, 3), reference: { model: o.reference, top5: ref.top5 } };
for (const dir of String(o.teachers).split(',')) {
  const model = await loadLayersModel(fileSource(dir), 'model.json');
  const normPath = join(dir, 'normalization.json');
  const norm = existsSync(normPath) ? (JSON.parse(readFileSync(normPath, 'utf8')) as Normalization) : UNIT_RANGE_NORMALIZATION;
  const t = await top1(model, norm, 0);
  const agree = t.top1.filter((c, i) => c === ref.top1[i]).length / names.length;
  report[dir] = { top1AgreementWithReference: agree, top5: t.top5 };
  console.log(`${dir}: top-1 agreement with the α0.75 reference on ${names.length} dev photos ${(100 * agree).toFixed(1)}%`);
  t.top5.forEach((l, i) => console.log(`  ${names[i]}: ${l.join(' | ')}`));
  model.dispose();
}
ref.top5.forEach((l, i) => console.log(`  reference ${names[i]}: ${l.join(' | ')}`));
writeFileSync(o.out, `${JSON.stringify(report, null, 2)}\n`);
console.log(`→ ${o.out}`);
