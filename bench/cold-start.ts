/**
 * Cold start under `wrangler dev` (workerd) on this machine: starts a fresh server `--runs` times
 * and, each time, sends one 224² JPEG at beam 3 as soon as it is ready, then the same request
 * `--warm` more times. Prints per run and as medians: the first request's round trip, the warm
 * round trip, their ratio, and where the model load went (/healthz `load`: wasm backend start,
 * reading the bundle, building the models, warm-up pass).
 *
 * With `--page` each fresh worker is first asked for the model card (as the upload page does on
 * open) and the photo follows 1.5 s later: the first request is then the page's first photo.
 *
 * With `--against <checkout>` (another working tree with node_modules, e.g. `git worktree add
 * /tmp/base HEAD~1`) each run starts that tree's worker and then this one's, alternately, so both
 * see the same machine load (both serve this tree's assets/, so only the worker code differs); it
 * prints both medians and the median of the pairwise differences. `--against bare` compares with
 * plain `wrangler dev` of this tree (devtools inspector on, no front server) instead.
 * `--against . --assets-before <dir>` compares two bundles under the same code instead: the
 * "before" server serves that assets folder (one holding the other bundle in model/).
 *   npx tsx bench/cold-start.ts                  # 5 cold starts, 10 warm requests each
 *   npx tsx bench/cold-start.ts --runs 9 --against /tmp/base --out runs/bench-cold-start-ab.json
 *   npx tsx bench/cold-start.ts --runs 7 --against bare
 *   npx tsx bench/cold-start.ts --runs 7 --against . --assets-before /tmp/old-assets
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startWranglerDev } from '../test/helpers/wrangler-dev';
import { photoJpeg } from './images';
import { warmHttpClient } from './warm-client';
import { median } from './stats';

const { values: args } = parseArgs({ options: { runs: { type: 'string', default: '5' }, warm: { type: 'string', default: '10' }, against: { type: 'string' }, 'assets-before': { type: 'string' }, page: { type: 'boolean', default: false }, out: { type: 'string', default: 'runs/bench-cold-start.json' } } });
const root = resolve(import.meta.dirname, '..');
const photo = photoJpeg(224, 224);

interface Run {
  readyMs: number;
  firstMs: number;
  firstServerMs: number;
  warmMs: number;
  /** The isolate's start-up warm-up (global scope, before the first request), from /healthz. */
  startupMs: number | null;
  load: { backendMs: number; readMs: number; buildMs: number; warmupMs: number };
}

async function coldStart(tree: string, assetsDir: string): Promise<Run> {
  const bare = tree === 'bare';
  const server = await startWranglerDev({ root: bare ? root : tree, bare, assetsDir, vars: { CACHE_TTL_SECONDS: '0' } });
  try {
    const post = async () => {
      const t0 = performance.now();
      const r = await fetch(`${server.url}/v1/captions?beam=3`, { method: 'POST', body: photo as unknown as BodyInit, headers: { 'Content-Type': 'image/jpeg' } });
      const j = (await r.json()) as { timings: { totalMs: number } };
      if (r.status !== 200) throw new Error(`status ${r.status}: ${JSON.stringify(j)}`);
      return { ms: performance.now() - t0, serverMs: j.timings.totalMs };
    };
    if (args.page) {
      await (await fetch(`${server.url}/v1/model`)).json();
      await new Promise((r) => setTimeout(r, 1500)); // a person picking a photo
    }
    const first = await post();
    const warm: number[] = [];
    for (let k = 0; k < Number(args.warm); k++) warm.push((await post()).ms);
    const health = (await (await fetch(`${server.url}/healthz`)).json()) as { load: Run['load']; isolateWarmup?: { ms: number | null } };
    return { readyMs: server.readyMs, firstMs: first.ms, firstServerMs: first.serverMs, warmMs: median(warm), startupMs: health.isolateWarmup?.ms ?? null, load: health.load };
  } finally {
    await server.stop();
  }
}

await warmHttpClient(photo);
const trees = args.against ? { before: args.against === 'bare' ? 'bare' : resolve(args.against), this: root } : { this: root };
const runs: Record<string, Run[]> = Object.fromEntries(Object.keys(trees).map((k) => [k, []]));
for (let i = 0; i < Number(args.runs); i++) {
  for (const [name, tree] of Object.entries(trees)) {
    const run = await coldStart(tree, name === 'before' && args['assets-before'] ? resolve(args['assets-before']) : join(root, 'assets'));
    runs[name].push(run);
    const l = run.load;
    console.log(
      `run ${i + 1}${args.against ? ` (${name})` : ''}: ready ${run.readyMs} ms; first request ${run.firstMs.toFixed(0)} ms (${(run.firstMs / run.warmMs).toFixed(1)}× warm ${run.warmMs.toFixed(1)} ms); ` +
        `load: backend ${l.backendMs} + read ${l.readMs.toFixed(0)} + build ${l.buildMs.toFixed(0)} + warm-up ${l.warmupMs.toFixed(0)} ms; isolate start-up warm-up ${run.startupMs ?? '?'} ms`,
    );
  }
}

const medians = (rs: Run[]) => {
  const m = (f: (r: Run) => number) => median(rs.map(f));
  return {
    firstMs: m((r) => r.firstMs),
    warmMs: m((r) => r.warmMs),
    firstOverWarm: m((r) => r.firstMs / r.warmMs),
    backendMs: m((r) => r.load.backendMs),
    readMs: m((r) => r.load.readMs),
    buildMs: m((r) => r.load.buildMs),
    warmupMs: m((r) => r.load.warmupMs),
    startupMs: m((r) => r.startupMs ?? NaN),
  };
};
const summary: Record<string, unknown> = { date: new Date().toISOString(), runs: Number(args.runs), trees, median: Object.fromEntries(Object.entries(runs).map(([k, rs]) => [k, medians(rs)])), all: runs };
for (const [name, rs] of Object.entries(runs)) {
  const s = medians(rs);
  console.log(
    `median of ${rs.length}${args.against ? ` (${name}: ${trees[name as keyof typeof trees]})` : ''}: first request ${s.firstMs.toFixed(0)} ms = ${s.firstOverWarm.toFixed(1)}× warm (${s.warmMs.toFixed(1)} ms); ` +
      `load: backend ${s.backendMs} + read ${s.readMs.toFixed(0)} + build ${s.buildMs.toFixed(0)} + warm-up ${s.warmupMs.toFixed(0)} ms; isolate start-up ${s.startupMs.toFixed(0)} ms`,
  );
}
if (args.against) {
  const diff = median(runs.this.map((r, i) => r.firstMs - runs.before[i].firstMs));
  const warmDiff = median(runs.this.map((r, i) => r.warmMs - runs.before[i].warmMs));
  summary.pairwise = { firstMs: diff, warmMs: warmDiff };
  console.log(`this − before, median of pairs: first request ${diff >= 0 ? '+' : ''}${diff.toFixed(0)} ms, warm ${warmDiff >= 0 ? '+' : ''}${warmDiff.toFixed(1)} ms`);
}
mkdirSync(dirname(resolve(root, args.out!)), { recursive: true });
writeFileSync(resolve(root, args.out!), JSON.stringify(summary, null, 2));
console.log(`wrote ${args.out}`);
