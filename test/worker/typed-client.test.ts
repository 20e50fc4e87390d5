import { env } from 'cloudflare:test';
import { hc } from 'hono/client';
import jpeg from 'jpeg-js';
import { beforeAll, describe, expect, it } from 'vitest';
import { memorySource } from '../../shared/bundle/source';
import { createApp } from '../../worker/app';
import type { AppType } from '../../worker/index';
import { initWasmBackend } from '../../worker/tfjs-wasm-backend';
import { tinyBundle } from '../helpers/tiny-bundle';

let app: ReturnType<typeof createApp>;
beforeAll(async () => {
  await initWasmBackend();
  const files = await tinyBundle({ quantization: 'uint8' });
  app = createApp({ bundleSource: () => memorySource(files) });
});

describe('typed client (the README example, compiled by npm run typecheck)', () => {
  it('posts a photo and reads the caption with types', async () => {
    // README: "Typed client"
    const client = hc<AppType>('http://captioner.local', { fetch: (input: RequestInfo | URL, init?: RequestInit) => app.request(input instanceof Request ? input : String(input), init, env) });
    const photo = new Uint8Array(jpeg.encode({ width: 32, height: 32, data: new Uint8Array(32 * 32 * 4).fill(90) }, 90).data);
    const res = await client.v1.captions.$post({ query: { beam: '3' } }, { init: { body: photo, headers: { 'Content-Type': 'image/jpeg' } } });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const body = await res.json();
    // One photo in the body → one object; multipart → an array, one entry per file.
    const first = Array.isArray(body) ? body[0] : body;
    const caption: string = 'caption' in first ? first.caption : first.error.message;
    expect(caption.length).toBeGreaterThan(0);
    const card = await (await client.v1.model.$get()).json();
    expect(card.id).toBe('tiny-test');
  });
});
