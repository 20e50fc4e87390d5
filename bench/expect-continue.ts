/**
 * Large uploads with plain curl (which sends `Expect: 100-continue` for bodies over 1 MB and waits
 * up to 1 s for the interim answer) against the same upload with `-H 'Expect:'`, on bare
 * `wrangler dev` (before) and on `npm start` (dev/serve.ts, after). A ~5 MB photo-like JPEG, the
 * response cache off, one warm-up request each; median of `--runs`.
 *   npx tsx bench/expect-continue.ts --runs 7
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startWranglerDev } from '../test/helpers/wrangler-dev';
import { photoJpeg } from './images';
import { median } from './stats';

const { values: args } = parseArgs({ options: { runs: { type: 'string', default: '7' } } });
const root = resolve(import.meta.dirname, '..');
const tmp = mkdtempSync(join(tmpdir(), 'bench-expect-'));
const file = join(tmp, 'photo.jpg');
const photo = photoJpeg(3600, 2700, 96);
writeFileSync(file, photo);

function curl(url: string, noExpect: boolean): number {
  const out = execFileSync('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code} %{time_total}', ...(noExpect ? ['-H', 'Expect:'] : []), '-H', 'Content-Type: image/jpeg', '--data-binary', `@${file}`, `${url}/v1/captions`]).toString();
  const [status, seconds] = out.split(' ');
  if (status !== '200') throw new Error(`curl got ${status}`);
  return Number(seconds) * 1000;
}

function measure(url: string): { plainMs: number; noExpectMs: number } {
  curl(url, true); // model load
  const plain: number[] = [];
  const off: number[] = [];
  for (let i = 0; i < Number(args.runs); i++) {
    plain.push(curl(url, false));
    off.push(curl(url, true));
  }
  return { plainMs: median(plain), noExpectMs: median(off) };
}

try {
  console.log(`upload: ${(photo.byteLength / 2 ** 20).toFixed(2)} MB JPEG (3600×2700); median of ${args.runs}`);
  const bare = await startWranglerDev({ bare: true, assetsDir: join(root, 'assets'), vars: { CACHE_TTL_SECONDS: '0' } });
  let before;
  try {
    before = measure(bare.url);
  } finally {
    await bare.stop();
  }
  const serve = await startWranglerDev({ assetsDir: join(root, 'assets'), vars: { CACHE_TTL_SECONDS: '0' } });
  let after;
  try {
    after = measure(serve.url);
  } finally {
    await serve.stop();
  }
  for (const [label, m] of [['wrangler dev (before)', before], ['npm start (after)', after]] as const) {
    console.log(`${label}: plain curl ${m.plainMs.toFixed(0)} ms, with -H 'Expect:' ${m.noExpectMs.toFixed(0)} ms, ratio ${(m.plainMs / m.noExpectMs).toFixed(2)}`);
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
