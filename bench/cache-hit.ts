/**
 * Response-cache figures under `wrangler dev` with the shipped model: the first POST of a photo
 * (a miss: the model runs) against the next N identical ones (hits), server time from
 * Server-Timing and round trip, medians.
 *
 *   npx tsx bench/cache-hit.ts [--hits 20]
 */
import { Command } from 'commander';
import jpeg from 'jpeg-js';
import { startWranglerDev } from '../test/helpers/wrangler-dev';

const o = new Command().option('--hits <n>', 'identical requests after the first', (v) => Number(v), 20).parse().opts();
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const w = 640;
const h = 480;
const photo = new Uint8Array(jpeg.encode({ width: w, height: h, data: new Uint8Array(w * h * 4).map((_, i) => (i % 4 === 3 ? 255 : (i * 31 + (i >> 10)) % 251)) }, 90).data);

const server = await startWranglerDev({});
try {
  const post = async () => {
    const t0 = performance.now();
    const r = await fetch(`${server.url}/v1/captions?beam=3`, { method: 'POST', body: photo, headers: { 'Content-Type': 'image/jpeg' } });
    await r.text();
    const timing = r.headers.get('Server-Timing') ?? '';
    const server_ = Number(/(?:cache|total);dur=([\d.]+)/.exec(timing)?.[1] ?? NaN);
    return { status: r.headers.get('Cache-Status'), serverMs: server_, roundTripMs: performance.now() - t0 };
  };
  const miss = await post();
  const hits = [];
  for (let i = 0; i < o.hits; i++) hits.push(await post());
  console.log(`miss: ${miss.status}; server ${miss.serverMs} ms, round trip ${miss.roundTripMs.toFixed(1)} ms (includes the model load of a fresh isolate)`);
  console.log(`hits: ${hits.filter((x) => x.status === 'edge-captioner; hit').length}/${hits.length}; server median ${median(hits.map((x) => x.serverMs))} ms, round trip median ${median(hits.map((x) => x.roundTripMs)).toFixed(1)} ms`);
} finally {
  await server.stop();
}
