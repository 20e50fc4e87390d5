/**
 * `npm start`: `wrangler dev` (local workerd) behind a small Node front server on
 * http://127.0.0.1:8787 that answers `Expect: 100-continue` at once. workerd's HTTP server never
 * sends the interim 100 response, so curl (which asks for it on bodies over 1 MB) waited its full
 * 1 s timeout before every large upload; Cloudflare's edge answers it in production, this does
 * locally. Everything else — method, path, headers, body stream, status, response — is passed
 * through unchanged.
 *
 * @example
 * npm start                                  # http://127.0.0.1:8787
 * npm start -- --port 9000 --assets ./my-assets --var CACHE_TTL_SECONDS:0
 */
import { spawn } from 'node:child_process';
import { createServer, request, type IncomingHttpHeaders } from 'node:http';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort } from './free-port';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.PORT ?? '8787' },
    ip: { type: 'string', default: '127.0.0.1' },
    assets: { type: 'string' },
    var: { type: 'string', multiple: true, default: [] },
  },
});

const root = resolve(import.meta.dirname, '..');
const inner = await freePort();
const wranglerArgs = ['wrangler', 'dev', '--ip', '127.0.0.1', '--port', String(inner), '--inspector-port', String(await freePort())];
if (args.assets) wranglerArgs.push('--assets', args.assets);
for (const v of args.var) wranglerArgs.push('--var', v);
const wrangler = spawn('npx', wranglerArgs, {
  cwd: root,
  env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false' },
  stdio: ['ignore', 'inherit', 'inherit'],
  detached: true,
});
const stopWrangler = () => {
  try {
    process.kill(-wrangler.pid!, 'SIGTERM');
  } catch {
    /* already gone */
  }
};
wrangler.on('exit', (code) => {
  console.error(`wrangler dev exited (${code})`);
  process.exit(code ?? 1);
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    stopWrangler();
    process.exit(0);
  });
}

// Hop-by-hop headers belong to each connection, not to the request (RFC 9110 §7.6.1).
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'expect', 'te', 'trailer']);
const forwardable = (h: IncomingHttpHeaders) => Object.fromEntries(Object.entries(h).filter(([k]) => !HOP.has(k.toLowerCase())));

// Node answers `Expect: 100-continue` with 100 Continue by itself when no 'checkContinue' handler is set.
const server = createServer((req, res) => {
  const upstream = request({ host: '127.0.0.1', port: inner, method: req.method, path: req.url, headers: forwardable(req.headers) }, (up) => {
    res.writeHead(up.statusCode ?? 502, up.statusMessage, forwardable(up.headers));
    up.pipe(res);
  });
  upstream.on('error', (e) => {
    if (!res.headersSent) {
      res.writeHead(502, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'bad_gateway', message: `the local worker is not answering: ${e.message}` } }));
    } else res.destroy();
  });
  // A client that goes away mid-body is passed on as an aborted upload, as workerd would see it.
  req.on('aborted', () => upstream.destroy());
  res.on('close', () => {
    if (!res.writableFinished) upstream.destroy();
  });
  req.pipe(upstream);
});
server.listen(Number(args.port), args.ip, async () => {
  for (;;) {
    try {
      if ((await fetch(`http://127.0.0.1:${inner}/healthz`)).ok) break;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  console.log(`Ready on http://${args.ip}:${args.port} (upload page and API; workerd behind it on port ${inner})`);
});
