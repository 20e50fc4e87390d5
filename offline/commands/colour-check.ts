import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BundleSource } from '../../shared/bundle/source';
import { loadCaptioner } from '../../shared/captioner';
import { colourCheckInput, colourCheckWeights, colourFractions, encodeColourCheckWeights, unlikelyColours, type ColourCheck } from '../../shared/colour-check';
import { decodeImage } from '../../shared/image/decode';
import { normalizeCaption } from '../../shared/text/tokenizer';
import { selectBackend } from '../backend';
import { updateBundleManifest } from '../bundle-manifest';
import { readDataset } from '../data/captions';
import { writeJsonAtomic } from '../fs-atomic';
import { fileSource } from '../fs-source';
import { COLOUR_WORDS, summarizeCaptions } from '../metrics';
import { createProgress } from '../report/progress';
import { createRunDir } from '../run-folder';

export interface ColourCheckOptions {
  dataPath: string;
  bundleDir: string;
  runsDir: string;
  runDir?: string;
  /** Thresholds tried on dev (beam 3). */
  thresholds: number[];
  /** The check keeps the largest threshold whose dev beam-3 CIDEr-D is at most this much below no check's. */
  maxCiderLoss: number;
  /** Adam steps of the logistic regressions (full batch). */
  steps: number;
}

const log = (l: string) => console.error(l);

/**
 * `offline:colour-check`: fits which colour words a caption may use for a photo (a logistic
 * regression per colour word on the bundle's pooled feature and the photo's colour fractions;
 * target: does any reference caption of the train photo use the word), picks the threshold on
 * dev, and writes the check and the dev metrics measured with it into the bundle's manifest.
 */
export async function colourCheckCommand(o: ColourCheckOptions): Promise<string> {
  const backend = await selectBackend();
  const runDir = createRunDir(o.runsDir, 'colour-check', o.runDir);
  // Fitted without any check the bundle already has: the sweep sets the banned words itself.
  const base = fileSource(o.bundleDir);
  const source: BundleSource = {
    description: base.description,
    async read(path) {
      const bytes = await base.read(path);
      if (path !== 'manifest.json') return bytes;
      const { colourCheck: _old, ...manifest } = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
      return new TextEncoder().encode(JSON.stringify(manifest));
    },
  };
  const captioner = await loadCaptioner(source);
  const P = captioner.manifest.encoder.featureSize;
  const D = captioner.featureRowSize;
  const vocab = captioner.vocabulary;
  const words = [...COLOUR_WORDS].filter((w) => vocab.idOf(w) !== vocab.unknownId);
  if (!words.length) throw new Error(`${o.bundleDir}: its vocabulary has none of the colour words (${[...COLOUR_WORDS].join(', ')})`);

  const dataset = readDataset(o.dataPath);
  const encodeAll = (names: string[], label: string) => {
    const rows = new Float32Array(names.length * D);
    const inputs: Float32Array[] = [];
    const bar = createProgress(names.length, label, { unit: 'img' });
    names.forEach((n, i) => {
      const image = decodeImage(new Uint8Array(readFileSync(join(dataset.imageDir, n))));
      const row = captioner.encode(image);
      rows.set(row, i * D);
      inputs.push(colourCheckInput(row.subarray(0, P), colourFractions(image)));
      bar.tick(1);
    });
    bar.stop();
    return { rows, inputs };
  };
  const train = dataset.splits.train.filter((n) => (dataset.captions.get(n)?.length ?? 0) > 0);
  const dev = dataset.splits.dev;
  const tr = encodeAll(train, 'encode train photos');
  const dv = encodeAll(dev, 'encode dev photos');

  const refWords = (n: string) => new Set((dataset.captions.get(n) ?? []).flatMap((c) => normalizeCaption(c).split(' ')));
  const labels = train.flatMap((n) => {
    const w = refWords(n);
    return words.map((c) => (w.has(c) ? 1 : 0));
  });
  const fit = fitColourRegressions(tr.inputs, labels, words.length, o.steps);
  log(`fitted ${words.length} colour words on ${train.length} train photos (final loss ${fit.loss.toFixed(4)})`);
  const check = (threshold: number): ColourCheck => ({ version: 1, words, featureSize: P, weights: fit.weights, bias: fit.bias, threshold, fittedOn: `${train.length} train photos; threshold chosen on ${dev.length} dev photos (beam 3)` });
  const decoded = colourCheckWeights(check(0));

  const refs = new Map(dev.map((n) => [n, (dataset.captions.get(n) ?? []).map(normalizeCaption)]));
  const evaluate = (threshold: number, beam: number) => {
    const banned = dv.inputs.map((x) => unlikelyColours(check(threshold), decoded, x).map((w) => vocab.idOf(w)));
    const results = captioner.captionFeatures(dv.rows, { beam }, banned);
    return { threshold, beam, ...summarizeCaptions(refs, new Map(results.map((r, i) => [dev[i], r.caption]))) };
  };
  const sweep = o.thresholds.map((t) => {
    const r = evaluate(t, 3);
    log(`threshold ${t}: beam 3 BLEU-4 ${r.bleu4.toFixed(4)} CIDEr-D ${r.ciderD.toFixed(4)}, ${r.distinct} distinct, colour words ${r.colours.said} (${r.colours.unsupported} in no reference)`);
    return r;
  });
  const unchecked = evaluate(0, 3);
  const kept = sweep.filter((r) => r.ciderD >= unchecked.ciderD - o.maxCiderLoss).sort((a, b) => b.threshold - a.threshold)[0] ?? unchecked;
  const greedy = evaluate(kept.threshold, 1);
  log(`kept threshold ${kept.threshold}: colour words in no reference ${unchecked.colours.unsupported} → ${kept.colours.unsupported} (beam 3), CIDEr-D ${unchecked.ciderD.toFixed(4)} → ${kept.ciderD.toFixed(4)}`);

  // The check and the dev metrics measured with it go into the manifest (the model card serves them).
  const strip = ({ threshold: _t, beam: _b, distinct: _d, colours: _c, ...scores }: ReturnType<typeof evaluate>) => scores;
  const manifestPath = updateBundleManifest(o.bundleDir, (manifest) => ({
    colourCheck: check(kept.threshold),
    metrics: { ...(manifest.metrics as Record<string, unknown> | undefined), greedy: strip(greedy), beam3: strip(kept), distinctCaptions: { '1': greedy.distinct, '3': kept.distinct }, unsupportedColours: { '1': greedy.colours, '3': kept.colours }, colourCheck: true },
  }));
  captioner.dispose();
  writeJsonAtomic(join(runDir, 'summary.json'), { bundle: o.bundleDir, backend, words, trainPhotos: train.length, devPhotos: dev.length, loss: fit.loss, unchecked, sweep, kept: kept.threshold, greedy });
  log(`wrote the colour check into ${manifestPath}; summary in ${join(runDir, 'summary.json')}`);
  if (captioner.manifest.confidence) log('its caption confidence was fitted on captions made without the check: run offline:calibrate on it again');
  return runDir;
}

/**
 * One logistic regression per column of `labels` on standardised inputs (full-batch Adam, small
 * L2), returned with the standardisation folded into the weights: ready for raw inputs. In tfjs,
 * not calibrate/fit.ts's plain-JS `fitLogistic`: 6,000 × 1,291 inputs × 13 words is too much for it.
 */
function fitColourRegressions(inputs: Float32Array[], labels: number[], outputs: number, steps: number): { weights: string; bias: number[]; loss: number } {
  const n = inputs.length;
  const d = inputs[0].length;
  return tf.tidy(() => {
    const flat = new Float32Array(n * d);
    inputs.forEach((x, i) => flat.set(x, i * d));
    const X = tf.tensor2d(flat, [n, d]);
    const { mean, variance } = tf.moments(X, 0);
    const std = variance.sqrt().add(1e-3);
    const Xs = X.sub(mean).div(std);
    const Y = tf.tensor2d(labels, [n, outputs]);
    const W = tf.variable(tf.zeros([d, outputs]));
    const b = tf.variable(tf.zeros([outputs]));
    const opt = tf.train.adam(0.01);
    let loss = 0;
    for (let s = 0; s < steps; s++) {
      const l = opt.minimize(() => tf.losses.sigmoidCrossEntropy(Y, Xs.matMul(W).add(b)).add(W.square().sum().mul(1e-3)) as tf.Scalar, true)!;
      if (s === steps - 1) loss = l.dataSync()[0];
      l.dispose();
    }
    // z = ((x − mean) / std)·W + b = x·(W / std) + (b − (mean / std)·W)
    const Wf = W.div(std.reshape([d, 1]));
    const bf = b.sub(mean.div(std).reshape([1, d]).matMul(W).reshape([outputs]));
    const out = { weights: encodeColourCheckWeights(Wf.dataSync() as Float32Array), bias: Array.from(bf.dataSync()), loss };
    opt.dispose();
    W.dispose();
    b.dispose();
    return out;
  });
}
