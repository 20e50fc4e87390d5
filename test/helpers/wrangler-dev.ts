import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { freePort } from '../../dev/free-port';

export interface DevServer {
  url: string;
  /** Milliseconds from spawning wrangler to the first 200 from /healthz. */
  readyMs: number;
  stop(): Promise<void>;
  output(): string;
}

/**
 * Starts `npm start`'s server (dev/serve.ts: wrangler's local workerd, devtools inspector off,
 * behind the front server that answers `Expect: 100-continue`) on 127.0.0.1, optionally serving
 * another assets folder, or the server of another checkout (`root`, e.g. a `git worktree` of an
 * older commit, for A/B benchmarks). `bare` starts plain `wrangler dev` instead (inspector on, no
 * front server), for comparisons with it.
 */
export async function startWranglerDev(opts: { assetsDir?: string; root?: string; timeoutMs?: number; logLevel?: 'warn' | 'info' | 'log' | 'debug'; vars?: Record<string, string>; bare?: boolean } = {}): Promise<DevServer> {
  const port = await freePort();
  const root = opts.root ?? resolve(import.meta.dirname, '..', '..');
  const args = opts.bare
    ? ['wrangler', 'dev', '--ip', '127.0.0.1', '--port', String(port), '--inspector-port', String(await freePort())]
    : ['tsx', 'dev/serve.ts', '--port', String(port), '--no-watch'];
  args.push('--log-level', opts.logLevel ?? 'warn');
  if (opts.assetsDir) args.push('--assets', opts.assetsDir);
  for (const [k, v] of Object.entries(opts.vars ?? {})) args.push('--var', `${k}:${v}`);
  const t0 = Date.now();
  const child: ChildProcess = spawn('npx', args, {
    cwd: root,
    env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false', CI: 'true', NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let log = '';
  child.stdout?.on('data', (d) => (log += d));
  child.stderr?.on('data', (d) => (log += d));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode !== null) return;
    try {
      process.kill(-child.pid!, 'SIGTERM');
    } catch {
      /* already gone */
    }
    await new Promise((r) => setTimeout(r, 300));
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      /* already gone */
    }
  };
  const deadline = t0 + (opts.timeoutMs ?? 90_000);
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited with ${child.exitCode}:\n${log}`);
    try {
      const r = await fetch(`${url}/healthz`);
      if (r.ok) return { url, readyMs: Date.now() - t0, stop, output: () => log };
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  await stop();
  throw new Error(`wrangler dev did not answer within ${opts.timeoutMs ?? 90_000} ms:\n${log}`);
}

/**
 * `wrangler dev` serving a tiny random-weight bundle (and `pageHtml` as the page), so tests over
 * real HTTP need no trained model. The assets folder is removed on stop.
 */
export async function startTinyWorker(opts: { pageHtml?: string; vars?: Record<string, string>; files?: Record<string, string | Uint8Array> } = {}): Promise<DevServer> {
  const { rmSync } = await import('node:fs');
  const assets = await tinyAssets(opts);
  const server = await startWranglerDev({ assetsDir: assets, vars: opts.vars });
  return { ...server, stop: async () => { await server.stop(); rmSync(assets, { recursive: true, force: true }); } };
}

/** An assets folder with a tiny random-weight bundle and a page (the caller removes it). */
export async function tinyAssets(opts: { pageHtml?: string; files?: Record<string, string | Uint8Array>; bundle?: Map<string, Uint8Array> } = {}): Promise<string> {
  const { mkdirSync, mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { dirname, join } = await import('node:path');
  const { tinyBundle } = await import('./tiny-bundle');
  const assets = mkdtempSync(join(tmpdir(), 'tiny-worker-'));
  for (const [p, b] of opts.bundle ?? (await tinyBundle({ quantization: 'uint8' }))) {
    mkdirSync(dirname(join(assets, 'model', p)), { recursive: true });
    writeFileSync(join(assets, 'model', p), b);
  }
  writeFileSync(join(assets, 'index.html'), opts.pageHtml ?? '<!doctype html><title>test</title>');
  for (const [name, content] of Object.entries(opts.files ?? {})) writeFileSync(join(assets, name), content);
  return assets;
}
