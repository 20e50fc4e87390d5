/**
 * Encoder size trade-off inside workerd: for each compact VGG16 width × input size, a uint8 bundle
 * (random weights; a real-size decoder) is served by `wrangler dev` and measured: encoder warm
 * latency (median of N), the whole bundle's bytes, and the wasm heap after the requests.
 *   npx tsx bench/encoder-tradeoff.ts [--runs 15] [--widths 0.25,0.375,0.5] [--sizes 96,112,128]
 */
import * as tf from '@tensorflow/tfjs';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import jpeg from 'jpeg-js';
import { writeBundle } from '../shared/bundle/write';
import { UNIT_RANGE_NORMALIZATION } from '../shared/image/normalize';
import { buildDecoder } from '../shared/models/decoder';
import { buildCompactVgg16, compactVgg16Cost } from '../shared/models/vgg16';
import { Vocabulary } from '../shared/text/vocabulary';
import { startWranglerDev } from '../test/helpers/wrangler-dev';
import { median } from './stats';

const { values: args } = parseArgs({ options: { runs: { type: 'string', default: '15' }, widths: { type: 'string', default: '0.25,0.375,0.5' }, sizes: { type: 'string', default: '96,112,128' }, vocab: { type: 'string', default: '2539' } } });
await tf.setBackend('cpu');
const root = resolve(import.meta.dirname, '..');
const tmp = mkdtempSync(join(tmpdir(), 'tradeoff-'));
const words = Array.from({ length: Number(args.vocab) - 4 }, (_, i) => `w${i}`);
const vocab = new Vocabulary(['<pad>', '<start>', '<end>', '<unk>', ...words]);
const decoderCfg = { vocabSize: vocab.size, featureSize: 768, embeddingSize: 100, units: 256, maxLength: 22, dropout: 0 };
const px = new Uint8Array(640 * 480 * 4).map((_, i) => (i % 4 === 3 ? 255 : (i * 13) % 241));
const photo = new Uint8Array(jpeg.encode({ width: 640, height: 480, data: px }, 88).data);
const rows: Record<string, unknown>[] = [];

for (const width of args.widths!.split(',').map(Number)) {
  for (const size of args.sizes!.split(',').map(Number)) {
    const vgg = { widthMultiplier: width, inputSize: size, featureSize: 768 };
    const cost = compactVgg16Cost(vgg);
    const files = await writeBundle({
      manifest: {
        id: `tradeoff-${width}-${size}`,
        version: '0',
        encoder: { architecture: 'compact-vgg16', modelPath: 'encoder/model.json', inputSize: size, normalization: UNIT_RANGE_NORMALIZATION, featureSize: 768, widthMultiplier: width },
        decoder: { architecture: 'lstm-inject-merge', modelPath: 'decoder/model.json', vocabSize: vocab.size, embeddingSize: 100, units: 256, maxLength: 22 },
      },
      encoder: buildCompactVgg16(vgg),
      decoder: buildDecoder(decoderCfg),
      vocabulary: vocab,
      quantization: 'uint8',
    });
    const assets = join(tmp, `${width}-${size}`);
    cpSync(join(root, 'assets', 'index.html'), join(assets, 'index.html'));
    for (const [p, b] of files) {
      mkdirSync(dirname(join(assets, 'model', p)), { recursive: true });
      writeFileSync(join(assets, 'model', p), b);
    }
    const server = await startWranglerDev({ assetsDir: assets, vars: { CACHE_TTL_SECONDS: '0' } });
    try {
      const enc: number[] = [];
      for (let i = 0; i < 3 + Number(args.runs); i++) {
        const r = await fetch(`${server.url}/v1/captions?beam=1&maxLength=3`, { method: 'POST', body: photo, headers: { 'Content-Type': 'image/jpeg' } });
        const j = (await r.json()) as { timings: { encoderMs: number } };
        if (i >= 3) enc.push(j.timings.encoderMs);
      }
      const h = (await (await fetch(`${server.url}/healthz`)).json()) as { wasmMemoryBytes: number };
      rows.push({ width, inputSize: size, params: cost.params, gflop: +(cost.flops / 1e9).toFixed(3), bundleMB: +([...files.values()].reduce((a, b) => a + b.byteLength, 0) / 1e6).toFixed(2), encoderMs: median(enc), wasmMB: +(h.wasmMemoryBytes / 2 ** 20).toFixed(1) });
      console.error(JSON.stringify(rows[rows.length - 1]));
    } finally {
      await server.stop();
    }
  }
}
rmSync(tmp, { recursive: true, force: true });
console.table(rows);
mkdirSync(join(root, 'runs'), { recursive: true });
writeFileSync(join(root, 'runs', 'encoder-tradeoff.json'), JSON.stringify(rows, null, 2));
