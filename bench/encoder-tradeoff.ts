/**
 * Encoder size trade-off inside workerd: for each compact VGG16 width × input size × head, a uint8
 * bundle (random weights; a real-size decoder, with attention over the last grid unless
 * `--pooled`) is served by `wrangler dev` and measured: encoder warm latency (median of N), decoder
 * latency at beam 3, the whole bundle's bytes, and the wasm heap after the requests. The grid an
 * attention decoder reads is the head's 1×1 convolution when there is one, else block5_conv3.
 *   npx tsx bench/encoder-tradeoff.ts [--runs 15] [--widths 0.25,0.375,0.5] [--sizes 96,112,128]
 *     [--heads 0,512] [--feature-size 1280] [--pooled] [--out runs/encoder-tradeoff.json]
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
import { blockWidths, buildCompactVgg16, compactVgg16Cost } from '../shared/models/vgg16';
import { Vocabulary } from '../shared/text/vocabulary';
import { startWranglerDev } from '../test/helpers/wrangler-dev';
import { median } from './stats';

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '15' },
    widths: { type: 'string', default: '0.25,0.375,0.5' },
    sizes: { type: 'string', default: '96,112,128' },
    heads: { type: 'string', default: '0' },
    'feature-size': { type: 'string', default: '768' },
    pooled: { type: 'boolean', default: false },
    vocab: { type: 'string', default: '2539' },
    out: { type: 'string', default: 'runs/encoder-tradeoff.json' },
  },
});
await tf.setBackend('cpu');
const root = resolve(import.meta.dirname, '..');
const tmp = mkdtempSync(join(tmpdir(), 'tradeoff-'));
const words = Array.from({ length: Number(args.vocab) - 4 }, (_, i) => `w${i}`);
const vocab = new Vocabulary(['<pad>', '<start>', '<end>', '<unk>', ...words]);
const featureSize = Number(args['feature-size']);
const decoderCfg = { vocabSize: vocab.size, featureSize, embeddingSize: 100, units: 256, maxLength: 22, dropout: 0 };
const px = new Uint8Array(640 * 480 * 4).map((_, i) => (i % 4 === 3 ? 255 : (i * 13) % 241));
const photo = new Uint8Array(jpeg.encode({ width: 640, height: 480, data: px }, 88).data);
const rows: Record<string, unknown>[] = [];

const list = (v: string | undefined) => v!.split(',').map(Number);
const configs = list(args.widths).flatMap((width) => list(args.sizes).flatMap((size) => list(args.heads).map((head) => ({ width, size, head }))));
for (const { width, size, head } of configs) {
  const vgg = { widthMultiplier: width, inputSize: size, featureSize, headChannels: head };
  const cost = compactVgg16Cost(vgg);
  const side = size / 16;
  const channels = head > 0 ? head : blockWidths(width)[4];
  const attention = args.pooled ? undefined : { grid: [side, side] as [number, number], channels, size: 256, temperature: 10 };
  const files = await writeBundle({
    manifest: {
      id: `tradeoff-${width}-${size}-h${head}`,
      version: '0',
      encoder: {
        architecture: 'compact-vgg16',
        modelPath: 'encoder/model.json',
        inputSize: size,
        normalization: UNIT_RANGE_NORMALIZATION,
        featureSize,
        widthMultiplier: width,
        ...(head > 0 ? { headChannels: head } : {}),
        ...(attention ? { grid: { layer: head > 0 ? 'head_conv' : 'block5_conv3', shape: [side, side, channels] as [number, number, number] } } : {}),
      },
      decoder: attention
        ? { architecture: 'lstm-attention', attention: { grid: attention.grid, channels, size: attention.size }, modelPath: 'decoder/model.json', vocabSize: vocab.size, embeddingSize: 100, units: 256, maxLength: 22 }
        : { architecture: 'lstm-inject-merge', modelPath: 'decoder/model.json', vocabSize: vocab.size, embeddingSize: 100, units: 256, maxLength: 22 },
    },
    encoder: buildCompactVgg16(vgg),
    decoder: buildDecoder({ ...decoderCfg, attention }),
    vocabulary: vocab,
    quantization: 'uint8',
  });
  const assets = join(tmp, `${width}-${size}-${head}`);
  cpSync(join(root, 'assets', 'index.html'), join(assets, 'index.html'));
  for (const [p, b] of files) {
    mkdirSync(dirname(join(assets, 'model', p)), { recursive: true });
    writeFileSync(join(assets, 'model', p), b);
  }
  const server = await startWranglerDev({ assetsDir: assets, vars: { CACHE_TTL_SECONDS: '0' } });
  try {
    const enc: number[] = [];
    const dec: number[] = [];
    for (let i = 0; i < 3 + Number(args.runs); i++) {
      // Random weights rarely say <end>: maxLength 12 stands for a typical caption's length.
      const r = await fetch(`${server.url}/v1/captions?beam=3&maxLength=12`, { method: 'POST', body: photo, headers: { 'Content-Type': 'image/jpeg' } });
      const j = (await r.json()) as { timings: { encoderMs: number; decoderMs: number } };
      if (!r.ok) throw new Error(`${r.status}: ${JSON.stringify(j)}`);
      if (i >= 3) {
        enc.push(j.timings.encoderMs);
        dec.push(j.timings.decoderMs);
      }
    }
    const h = (await (await fetch(`${server.url}/healthz`)).json()) as { wasmMemoryBytes: number };
    rows.push({
      width,
      inputSize: size,
      head,
      params: cost.params,
      gflop: +(cost.flops / 1e9).toFixed(3),
      bundleMB: +([...files.values()].reduce((a, b) => a + b.byteLength, 0) / 1e6).toFixed(2),
      encoderMs: median(enc),
      decoderMs: median(dec),
      wasmMB: +(h.wasmMemoryBytes / 2 ** 20).toFixed(1),
    });
    console.error(JSON.stringify(rows[rows.length - 1]));
  } finally {
    await server.stop();
  }
}
rmSync(tmp, { recursive: true, force: true });
console.table(rows);
mkdirSync(dirname(resolve(root, args.out!)), { recursive: true });
writeFileSync(resolve(root, args.out!), JSON.stringify(rows, null, 2));
