/**
 * Cold start under `wrangler dev` (workerd) on this machine: starts a fresh server `--runs` times
 * and, each time, sends one 224² JPEG at beam 3 as soon as it is ready, then the same request
 * `--warm` more times. Prints per run and as medians: the first request's round trip, the warm
 * round trip, their ratio, and where the model load went (/healthz `load`: wasm backend start,
 * reading the bundle from ASSETS, building the models, warm-up pass).
 *   npx tsx bench/cold-start.ts                  # 5 cold starts, 10 warm requests each
 *   npx tsx bench/cold-start.ts --runs 9 --out runs/bench-cold-start.json
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startWranglerDev } from '../test/helpers/wrangler-dev';
import { photoJpeg } from './images';
import { median } from './stats';

const { values: args } = parseArgs({ options: { runs: { type: 'string', default: '5' }, warm: { type: 'string', default: '10' }, out: { type: 'string', default: 'runs/bench-cold-start.json' } } });
const root = resolve(import.meta.dirname, '..');
const photo = photoJpeg(224, 224);

interface Run {
  readyMs: number;
  firstMs: number;
  firstServerMs: number;
  warmMs: number;
  load: { backendMs: number; readMs: number; buildMs: number; warmupMs: number };
}

const runs: Run[] = [];
for (let i = 0; i < Number(args.runs); i++) {
  const server = await startWranglerDev({ assetsDir: join(root, 'assets'), vars: { CACHE_TTL_SECONDS: '0' } });
  try {
    const post = async () => {
      const t0 = performance.now();
      const r = await fetch(`${server.url}/v1/captions?beam=3`, { method: 'POST', body: photo as unknown as BodyInit, headers: { 'Content-Type': 'image/jpeg' } });
      const j = (await r.json()) as { timings: { totalMs: number } };
      if (r.status !== 200) throw new Error(`status ${r.status}: ${JSON.stringify(j)}`);
      return { ms: performance.now() - t0, serverMs: j.timings.totalMs };
    };
    const first = await post();
    const warm: number[] = [];
    for (let k = 0; k < Number(args.warm); k++) warm.push((await post()).ms);
    const health = (await (await fetch(`${server.url}/healthz`)).json()) as { load: Run['load'] };
    const run = { readyMs: server.readyMs, firstMs: first.ms, firstServerMs: first.serverMs, warmMs: median(warm), load: health.load };
    runs.push(run);
    const l = run.load;
    console.log(
      `run ${i + 1}: ready ${run.readyMs} ms; first request ${run.firstMs.toFixed(0)} ms (${(run.firstMs / run.warmMs).toFixed(1)}× warm ${run.warmMs.toFixed(1)} ms); ` +
        `load: backend ${l.backendMs} + read ${l.readMs.toFixed(0)} + build ${l.buildMs.toFixed(0)} + warm-up ${l.warmupMs.toFixed(0)} ms`,
    );
  } finally {
    await server.stop();
  }
}
const m = (f: (r: Run) => number) => median(runs.map(f));
const summary = {
  date: new Date().toISOString(),
  runs: runs.length,
  median: {
    firstMs: m((r) => r.firstMs),
    warmMs: m((r) => r.warmMs),
    firstOverWarm: m((r) => r.firstMs / r.warmMs),
    backendMs: m((r) => r.load.backendMs),
    readMs: m((r) => r.load.readMs),
    buildMs: m((r) => r.load.buildMs),
    warmupMs: m((r) => r.load.warmupMs),
  },
  all: runs,
};
console.log(`median of ${runs.length}: first request ${summary.median.firstMs.toFixed(0)} ms = ${summary.median.firstOverWarm.toFixed(1)}× warm (${summary.median.warmMs.toFixed(1)} ms); load: backend ${summary.median.backendMs} + read ${summary.median.readMs.toFixed(0)} + build ${summary.median.buildMs.toFixed(0)} + warm-up ${summary.median.warmupMs.toFixed(0)} ms`);
mkdirSync(dirname(resolve(root, args.out!)), { recursive: true });
writeFileSync(resolve(root, args.out!), JSON.stringify(summary, null, 2));
console.log(`wrote ${args.out}`);
