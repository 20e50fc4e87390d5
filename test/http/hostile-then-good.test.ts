import { Agent, request } from 'node:http';
import jpeg from 'jpeg-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTinyWorker, type DevServer } from '../helpers/wrangler-dev';

/**
 * Hostile uploads over real HTTP to `wrangler dev`, each followed at once by a good photo on the
 * same keep-alive connection: a worker left in a bad state (a restart, a broken connection) shows
 * up as the good photo's failure, which a test inside the worker pool cannot see.
 */
let server: DevServer;
const agent = new Agent({ keepAlive: true, maxSockets: 1 });
const photo = Buffer.from(jpeg.encode({ width: 64, height: 48, data: new Uint8Array(64 * 48 * 4).map((_, i) => (i * 37) % 256) }, 90).data);

interface Answer {
  status: number;
  body: string;
}

/** A POST to /v1/captions; `abortAfter` bytes makes the client hang up mid-body. */
function send(body: Buffer, headers: Record<string, string>, opts: { chunked?: boolean; abortAfter?: number; query?: string } = {}): Promise<Answer> {
  const url = new URL(server.url);
  return new Promise((resolve) => {
    const req = request({ host: url.hostname, port: url.port, path: `/v1/captions${opts.query ?? ''}`, method: 'POST', headers, agent }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, body: text }));
      res.on('error', () => resolve({ status: -1, body: 'response error' }));
    });
    req.on('error', (e) => resolve({ status: -1, body: String(e) }));
    if (opts.abortAfter !== undefined) {
      req.write(body.subarray(0, opts.abortAfter));
      setTimeout(() => req.destroy(), 100);
      return;
    }
    if (opts.chunked) {
      for (let i = 0; i < body.length; i += 64 * 1024) req.write(body.subarray(i, i + 64 * 1024));
      req.end();
    } else req.end(body);
  });
}

function multipart(parts: number): { body: Buffer; type: string } {
  const boundary = 'hostileboundary';
  const chunks: Buffer[] = [];
  for (let i = 0; i < parts; i++) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="p${i}.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`), photo, Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), type: `multipart/form-data; boundary=${boundary}` };
}

beforeAll(async () => {
  server = await startTinyWorker();
}, 180_000);

afterAll(async () => {
  agent.destroy();
  await server?.stop();
});

describe('hostile upload, then a good photo, over real HTTP (wrangler dev)', () => {
  const overLimit = Buffer.alloc(11 * 1024 * 1024, 7); // the default limit is 10 MB
  const hostile: [string, () => Promise<Answer>, number | null][] = [
    ['chunked body over the limit', () => send(overLimit, { 'Content-Type': 'image/jpeg', 'Transfer-Encoding': 'chunked' }, { chunked: true }), 413],
    ['declared Content-Length over the limit', () => send(overLimit, { 'Content-Type': 'image/jpeg', 'Content-Length': String(overLimit.length) }), 413],
    ['client disconnects mid-body', () => send(overLimit, { 'Content-Type': 'image/jpeg', 'Content-Length': String(overLimit.length) }, { abortAfter: 256 * 1024 }), null],
    ['multipart with more images than allowed', () => { const m = multipart(9); return send(m.body, { 'Content-Type': m.type }); }, 413],
    ['bytes that are no image', () => send(Buffer.alloc(5000, 3), { 'Content-Type': 'image/jpeg' }), 415],
  ];

  it('every hostile request gets its 4xx, and the good photo right after it gets a caption (10 rounds: 50 pairs)', async () => {
    const failures: string[] = [];
    let pairs = 0;
    for (let round = 0; round < 10; round++) {
      for (const [name, attack, status] of hostile) {
        const h = await attack();
        if (status !== null && h.status !== status) failures.push(`${name}: expected ${status}, got ${h.status} ${h.body.slice(0, 100)}`);
        const g = await send(photo, { 'Content-Type': 'image/jpeg' });
        pairs++;
        if (g.status !== 200 || !JSON.parse(g.body).caption) failures.push(`good photo after "${name}" (round ${round + 1}): ${g.status} ${g.body.slice(0, 100)}`);
      }
    }
    expect(failures).toEqual([]);
    expect(pairs).toBe(50);
  }, 240_000);
});
