/**
 * The edge API under `wrangler dev` (workerd) on this machine: start-up to first caption (the
 * median over `--cold` fresh servers, and its ratio to the warm request), warm
 * latency per caption split into decode / preprocess / encoder / decoder, throughput at 1 and 4
 * concurrent clients, wasm memory after 100 requests, the deployable size, and the encoder's time
 * against the wasm backend's conv GFLOP/s measured in this process (bench/roofline.ts).
 *   npm run bench                      # the shipped bundle in assets/model (or a random test bundle if none)
 *   npm run bench -- --runs 20 --cold 5 --out runs/bench-edge.json
 *   npm run bench -- --bundle runs/att-student/bundle-uint8 --compare assets/model
 *       # another bundle served; --compare: a second bundle's 224² decoder times beside it (same run)
 * An attention bundle also gets rows with ?attention=1 (the maps cost the copy of each step's weights).
 */
import * as tf from '@tensorflow/tfjs';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startWranglerDev } from '../test/helpers/wrangler-dev';
import { tinyBundle } from '../test/helpers/tiny-bundle';
import { photoJpeg } from './images';
import { warmHttpClient } from './warm-client';
import { measureWasmRoofline, printRoofline, withWorkerd, type Roofline } from './roofline';
import { median, quantile } from './stats';

const { values: args } = parseArgs({ options: { runs: { type: 'string', default: '20' }, cold: { type: 'string', default: '5' }, out: { type: 'string', default: 'runs/bench-edge.json' }, bundle: { type: 'string' }, compare: { type: 'string' } } });
const RUNS = Number(args.runs);
const root = resolve(import.meta.dirname, '..');
const tmp = mkdtempSync(join(tmpdir(), 'bench-edge-'));

function dirBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) n += e.isDirectory() ? dirBytes(join(dir, e.name)) : statSync(join(dir, e.name)).size;
  return n;
}


/** The page and scripts of assets/, with `bundle` as its model. */
function assetsWith(bundle: string, name: string): string {
  const dir = join(tmp, name);
  cpSync(join(root, 'assets'), dir, { recursive: true, filter: (src) => !src.startsWith(join(root, 'assets', 'model')) });
  cpSync(resolve(root, bundle), join(dir, 'model'), { recursive: true });
  return dir;
}

let assetsDir = args.bundle ? assetsWith(args.bundle, 'assets') : join(root, 'assets');
let bundleLabel = args.bundle ?? 'assets/model (shipped)';
const attends = (dir: string) => existsSync(join(dir, 'model', 'manifest.json')) && JSON.parse(readFileSync(join(dir, 'model', 'manifest.json'), 'utf8')).decoder.architecture === 'lstm-attention';
if (!existsSync(join(assetsDir, 'model', 'manifest.json'))) {
  await tf.setBackend('cpu');
  assetsDir = join(tmp, 'assets');
  cpSync(join(root, 'assets'), assetsDir, { recursive: true });
  for (const [p, b] of await tinyBundle({ quantization: 'uint8' })) {
    mkdirSync(dirname(join(assetsDir, 'model', p)), { recursive: true });
    writeFileSync(join(assetsDir, 'model', p), b);
  }
  bundleLabel = 'random-weight test bundle (no shipped model yet)';
}

const postTo = (url: string) => async (img: Uint8Array, q: string) => {
  const t0 = performance.now();
  const r = await fetch(`${url}/v1/captions?${q}`, { method: 'POST', body: img as unknown as BodyInit, headers: { 'Content-Type': 'image/jpeg' } });
  const body = (await r.json()) as any;
  return { status: r.status, body, wallMs: performance.now() - t0 };
};
const photo224 = photoJpeg(224, 224);
await warmHttpClient(photo224);
// The response cache off: every request must run the model.
const startServer = () => startWranglerDev({ assetsDir, vars: { CACHE_TTL_SECONDS: '0' } });
// Cold starts first, each a fresh server, the last one kept for the rest: the large test photos
// are made afterwards, so this process's own work (and its garbage) is not on the cores meanwhile.
const cold: { readyMs: number; firstMs: number; caption: string }[] = [];
let server = await startServer();
for (let i = 0; ; i++) {
  const first = await postTo(server.url)(photo224, 'beam=3');
  if (first.status !== 200) {
    await server.stop();
    throw new Error(`first request: ${first.status} ${JSON.stringify(first.body)}`);
  }
  cold.push({ readyMs: server.readyMs, firstMs: first.wallMs, caption: first.body.caption });
  if (i + 1 >= Math.max(1, Number(args.cold))) break;
  await server.stop();
  server = await startServer();
}
const images: Record<string, Uint8Array> = { '224x224': photo224, '640x480': photoJpeg(640, 480), '4032x3024': photoJpeg(4032, 3024) };
const post = postTo(server.url);
const health = async () => (await (await fetch(`${server.url}/healthz`)).json()) as { wasmMemoryBytes: number | null; tensors: number | null };

const results: Record<string, unknown> = { bundle: bundleLabel, serverReadyMs: median(cold.map((c) => c.readyMs)), date: new Date().toISOString() };
try {
  results.coldStarts = cold;
  results.firstCaptionRequestMs = median(cold.map((c) => c.firstMs));
  results.startToFirstCaptionMs = median(cold.map((c) => c.readyMs + c.firstMs));
  results.firstCaption = cold[0].caption;
  const memory: Record<string, unknown> = { afterFirst: await health() };
  const rows: Record<string, unknown>[] = [];
  for (const [name, img] of Object.entries(images)) {
    for (const q of ['beam=1', 'beam=3', ...(attends(assetsDir) && name === '224x224' ? ['beam=3&attention=1'] : [])]) rows.push(await latencyRow(post, name, img, q));
  }
  results.latency = rows;
  const throughput: Record<string, number> = {};
  for (const clients of [1, 4]) {
    const n = 40;
    let next = 0;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: clients }, async () => {
      while (next++ < n) await post(images['640x480'], 'beam=3');
    }));
    throughput[`${clients} client${clients > 1 ? 's' : ''}`] = n / ((performance.now() - t0) / 1000);
  }
  results.requestsPerSecond640Beam3 = throughput;
  let count = 0;
  while (count < 100) {
    await post(images['224x224'], `beam=${1 + (count % 3)}`);
    count++;
  }
  memory.after100More = await health();
  results.memory = memory;
} finally {
  await server.stop();
}
if (args.compare) {
  // The second bundle alone on the machine, right after the first: decoder times side by side.
  const other = await startWranglerDev({ assetsDir: assetsWith(args.compare, 'compare'), vars: { CACHE_TTL_SECONDS: '0' } });
  const postOther = async (img: Uint8Array, q: string) => {
    const t0 = performance.now();
    const r = await fetch(`${other.url}/v1/captions?${q}`, { method: 'POST', body: img as unknown as BodyInit, headers: { 'Content-Type': 'image/jpeg' } });
    return { status: r.status, body: (await r.json()) as any, wallMs: performance.now() - t0 };
  };
  try {
    results.compare = { bundle: args.compare, latency: [await latencyRow(postOther, '224x224', images['224x224'], 'beam=1'), await latencyRow(postOther, '224x224', images['224x224'], 'beam=3')] };
  } finally {
    await other.stop();
  }
}
// After workerd has stopped, so the two do not share the cores.
// Every row runs the same encoder on the same 112² input: the median over the rows is steadier than one row.
const encoderRows = (results.latency as Record<string, unknown>[]).map((r) => r.encoderMs as number);
const encoderMedian = encoderRows.length ? median(encoderRows) : undefined;
results.roofline = await measureWasmRoofline(join(assetsDir, 'model')).then((r) => withWorkerd(r, encoderMedian), (e: Error) => ({ error: e.message }));
const outdir = join(tmp, 'deploy');
execFileSync('npx', ['wrangler', 'deploy', '--dry-run', '--outdir', outdir], { cwd: root, env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false' }, stdio: 'ignore' });
results.deploy = { workerBytes: dirBytes(outdir), modelBytes: dirBytes(join(assetsDir, 'model')) };
rmSync(tmp, { recursive: true, force: true });
mkdirSync(dirname(resolve(root, args.out!)), { recursive: true });
writeFileSync(resolve(root, args.out!), JSON.stringify(results, null, 2));

console.log(`bundle: ${bundleLabel}`);
const warm224 = (results.latency as { image: string; query: string; wallMs: number }[]).find((r) => r.image === '224x224' && r.query === 'beam=3')?.wallMs;
console.log(
  `wrangler dev ready: ${results.serverReadyMs} ms; start → first caption: ${(results.startToFirstCaptionMs as number).toFixed(0)} ms (first request ${first2(results.firstCaptionRequestMs)} ms` +
    `${warm224 ? ` = ${((results.firstCaptionRequestMs as number) / warm224).toFixed(1)}× the warm 224² beam-3 request, ${warm224} ms` : ''}; ` +
    `median of ${cold.length} fresh servers: ${cold.map((c) => c.firstMs.toFixed(0)).join(', ')} ms)`,
);
console.table(results.latency);
if (results.compare) {
  console.log(`compared with ${args.compare} (224×224):`);
  console.table((results.compare as { latency: unknown[] }).latency);
}
printRoofline(results.roofline as Roofline | { error: string });
console.log('requests/s (640×480, beam 3):', Object.entries(throughput(results)).map(([k, v]) => `${k}: ${v.toFixed(2)}`).join(', '));
console.log('memory:', JSON.stringify(results.memory));
console.log('deploy (wrangler deploy --dry-run --outdir):', JSON.stringify(results.deploy));
console.log(`wrote ${args.out}`);

type Post = (img: Uint8Array, q: string) => Promise<{ status: number; body: any; wallMs: number }>;

/** Medians over RUNS requests (after 3 warm-ups) of one image and query. */
async function latencyRow(post: Post, name: string, img: Uint8Array, q: string): Promise<Record<string, unknown>> {
  for (let i = 0; i < 3; i++) await post(img, q);
  const runs = [];
  for (let i = 0; i < RUNS; i++) runs.push(await post(img, q));
  const ok = runs.filter((r) => r.status === 200);
  if (!ok.length) return { image: name, query: q, status: runs[0].status, error: runs[0].body.error?.message };
  const t = (k: string) => median(ok.map((r) => r.body.timings[k]));
  return { image: name, jpegBytes: img.byteLength, query: q, decodeMs: t('decodeMs'), preprocessMs: t('preprocessMs'), encoderMs: t('encoderMs'), decoderMs: t('decoderMs'), serverMs: t('totalMs'), wallMs: Math.round(median(ok.map((r) => r.wallMs)) * 10) / 10, wallP95Ms: Math.round(quantile(ok.map((r) => r.wallMs), 0.95) * 10) / 10 };
}

function first2(x: unknown): string {
  return (x as number).toFixed(0);
}
function throughput(r: Record<string, unknown>): Record<string, number> {
  return r.requestsPerSecond640Beam3 as Record<string, number>;
}
