/**
 * `npm start`: the worker in wrangler's local workerd (`unstable_startWorker`, what `wrangler dev`
 * runs) behind a small Node front server on http://127.0.0.1:8787 that answers
 * `Expect: 100-continue` at once. workerd's HTTP server never sends the interim 100 response, so
 * curl (which asks for it on bodies over 1 MB) waited its full 1 s timeout before every large
 * upload; Cloudflare's edge answers it in production, this does locally. Everything else — method,
 * path, headers, body stream, status, response — is passed through unchanged.
 *
 * The devtools inspector is off unless `--inspector-port` asks for it: `wrangler dev` always
 * attaches one and enables its Network domain, which copies every subrequest body to Node — the
 * 4.4 MB model read from ASSETS became ≈ 1,100 inspector events and ≈ 0.7 s on the first caption.
 *
 * @example
 * npm start                                  # http://127.0.0.1:8787
 * npm start -- --port 9000 --assets ./my-assets --var CACHE_TTL_SECONDS:0
 * npm start -- --inspector-port 9229         # attach Chrome devtools (slower model loads)
 */
import { createServer, request, type IncomingHttpHeaders } from 'node:http';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { unstable_startWorker } from 'wrangler';
import { freePort } from './free-port';

const LOG_LEVELS = ['debug', 'info', 'log', 'warn', 'error', 'none'] as const;
const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.PORT ?? '8787' },
    ip: { type: 'string', default: '127.0.0.1' },
    assets: { type: 'string' },
    var: { type: 'string', multiple: true, default: [] },
    'inspector-port': { type: 'string' },
    'log-level': { type: 'string', default: 'log' },
    /** No reload when worker/ or shared/ files change (tests and benchmarks). */
    'no-watch': { type: 'boolean', default: false },
  },
});
const logLevel = args['log-level'] as (typeof LOG_LEVELS)[number];
if (!LOG_LEVELS.includes(logLevel)) throw new Error(`--log-level must be one of ${LOG_LEVELS.join(', ')}; got '${logLevel}'`);
const vars = Object.fromEntries(
  args.var.map((v) => {
    const i = v.indexOf(':');
    if (i <= 0) throw new Error(`--var takes NAME:value, got '${v}'`);
    return [v.slice(0, i), { type: 'plain_text' as const, value: v.slice(i + 1) }];
  }),
);

process.env.WRANGLER_SEND_METRICS ??= 'false';
process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= 'false';
const root = resolve(import.meta.dirname, '..');
const inner = await freePort();
const inspectorPort = args['inspector-port'] === undefined ? undefined : Number(args['inspector-port']);
const worker = await unstable_startWorker({
  config: resolve(root, 'wrangler.toml'),
  assets: args.assets && resolve(args.assets),
  bindings: vars,
  dev: {
    server: { hostname: '127.0.0.1', port: inner },
    inspector: inspectorPort === undefined ? false : { hostname: '127.0.0.1', port: inspectorPort },
    logLevel,
    watch: !args['no-watch'],
  },
});
const stop = async (code: number) => {
  await worker.dispose().catch(() => undefined);
  process.exit(code);
};
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => void stop(0));

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
await worker.ready;
server.listen(Number(args.port), args.ip, () => {
  console.log(`Ready on http://${args.ip}:${args.port} (upload page and API; workerd behind it on port ${inner})`);
});
