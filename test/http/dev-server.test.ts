import { rmSync } from 'node:fs';
import { connect } from 'node:net';
import jpeg from 'jpeg-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWranglerDev, tinyAssets, type DevServer } from '../helpers/wrangler-dev';

/**
 * `npm start` (dev/serve.ts): workerd behind a Node front server that answers
 * `Expect: 100-continue` at once (curl asks for it on bodies over 1 MB and otherwise waits 1 s).
 */
let server: DevServer;
let assets: string;
let port: number;
const photo = Buffer.from(jpeg.encode({ width: 64, height: 48, data: new Uint8Array(64 * 48 * 4).map((_, i) => (i * 37) % 256) }, 90).data);
// A body over curl's 1 MB threshold: the photo, then padding the JPEG decoder ignores after EOI.
const big = Buffer.concat([photo, Buffer.alloc(1_500_000)]);

/** A raw HTTP/1.1 exchange, so the interim 100 response and its timing are visible. */
function exchange(headers: string, body: Buffer, waitForContinue: boolean): Promise<{ continueMs: number | null; response: string }> {
  return new Promise((res, rej) => {
    const s = connect(port, '127.0.0.1');
    let text = '';
    let continueMs: number | null = null;
    const t0 = performance.now();
    let sent = false;
    const sendBody = () => {
      if (!sent) s.write(body);
      sent = true;
    };
    s.on('data', (d) => {
      text += d;
      if (continueMs === null && text.startsWith('HTTP/1.1 100')) {
        continueMs = performance.now() - t0;
        sendBody();
      }
    });
    s.on('error', rej);
    s.on('end', () => res({ continueMs, response: text }));
    s.write(headers);
    if (!waitForContinue) sendBody();
    else setTimeout(sendBody, 3000); // what a client does when no 100 comes
  });
}

describe('npm start: dev/serve.ts in front of wrangler dev', () => {
  beforeAll(async () => {
    assets = await tinyAssets();
    server = await startWranglerDev({ assetsDir: assets });
    port = Number(new URL(server.url).port);
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
    rmSync(assets, { recursive: true, force: true });
  });

  it('answers Expect: 100-continue at once, then captions the body', async () => {
    const head = `POST /v1/captions HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: image/jpeg\r\nContent-Length: ${big.length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`;
    const { continueMs, response } = await exchange(head, big, true);
    expect(continueMs).not.toBeNull();
    expect(continueMs!).toBeLessThan(1000); // the body is sent on the 100, not on a client timeout
    const final = response.slice(response.indexOf('\r\n\r\n') + 4);
    expect(final).toMatch(/^HTTP\/1\.1 200/);
    expect(final).toMatch(/"caption":"[a-z ]+"/);
  }, 60_000);

  it('passes everything else through: status, JSON errors, headers, the page, and a chunked over-limit upload followed by a good one', async () => {
    const page = await fetch(`http://127.0.0.1:${port}/`);
    expect(page.status).toBe(200);
    const bad = await fetch(`http://127.0.0.1:${port}/v1/captions`, { method: 'POST', body: 'hello', headers: { 'Content-Type': 'image/jpeg' } });
    expect(bad.status).toBe(415);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(/image/);
    expect((await fetch(`http://127.0.0.1:${port}/v1/captions`)).headers.get('allow')).toBe('POST, OPTIONS');
    const head = `POST /v1/captions HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`;
    const chunk = Buffer.alloc(1 << 20, 7);
    const chunks = Buffer.concat(Array.from({ length: 11 }, () => Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')])));
    const { response } = await exchange(head, Buffer.concat([chunks, Buffer.from('0\r\n\r\n')]), false);
    expect(response).toMatch(/^HTTP\/1\.1 413/);
    const good = await fetch(`http://127.0.0.1:${port}/v1/captions`, { method: 'POST', body: photo, headers: { 'Content-Type': 'image/jpeg' } });
    expect(good.status).toBe(200);
  }, 60_000);
});
