import { env } from 'cloudflare:test';
import jpeg from 'jpeg-js';
import { beforeAll, describe, expect, it } from 'vitest';
import { memorySource } from '../../shared/bundle/source';
import { timingSafeEqual } from '../../worker/access';
import { createApp } from '../../worker/app';
import { initWasmBackend } from '../../worker/tfjs-wasm-backend';
import { tinyBundle } from '../helpers/tiny-bundle';

let app: ReturnType<typeof createApp>;
let otherModel: Map<string, Uint8Array>;
const photo = new Uint8Array(jpeg.encode({ width: 32, height: 32, data: new Uint8Array(32 * 32 * 4).fill(120) }, 90).data);
const post = (e: object, headers: Record<string, string> = {}) =>
  app.request('/v1/captions', { method: 'POST', body: photo, headers: { 'Content-Type': 'image/jpeg', ...headers } }, { ...env, ...e });

beforeAll(async () => {
  await initWasmBackend();
  const files = await tinyBundle({ quantization: 'uint8' });
  app = createApp({ bundleSource: () => memorySource(files) });
  otherModel = await tinyBundle({ quantization: 'uint8', seed: 9 });
});

describe('access control (all off by default)', () => {
  it('open without API_KEYS; with them, a valid Bearer key is needed (401 JSON otherwise, the key never echoed)', async () => {
    expect((await post({})).status).toBe(200);
    const keys = { API_KEYS: 'k-alpha-123, k-beta-456' };
    const none = await post(keys);
    expect(none.status).toBe(401);
    expect(none.headers.get('WWW-Authenticate')).toMatch(/^Bearer/);
    expect(((await none.json()) as any).error).toMatchObject({ code: 'unauthorized', message: expect.stringMatching(/Authorization: Bearer/) });
    const wrong = await post(keys, { Authorization: 'Bearer k-alpha-124' });
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).not.toContain('k-alpha');
    expect((await post(keys, { Authorization: 'Bearer k-beta-456' })).status).toBe(200);
    expect((await post(keys, { Authorization: 'bearer k-alpha-123' })).status).toBe(200);
    // The model card stays public.
    expect((await app.request('/v1/model', {}, { ...env, ...keys })).status).toBe(200);
  });

  it('RATE_LIMIT=on: a client over its limit gets 429 JSON with Retry-After; each client counts alone', async () => {
    let calls = 0;
    const seen: string[] = [];
    // A stand-in for Cloudflare's binding: 2 requests per key.
    const counts = new Map<string, number>();
    const RATE_LIMITER = {
      async limit({ key }: { key: string }) {
        calls++;
        seen.push(key);
        counts.set(key, (counts.get(key) ?? 0) + 1);
        return { success: counts.get(key)! <= 2 };
      },
    };
    const e = { RATE_LIMIT: 'on', RATE_LIMITER, API_KEYS: 'one-key,two-key' };
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await post(e, { Authorization: 'Bearer one-key' })).status);
    expect(statuses).toEqual([200, 200, 429]);
    const limited = await post(e, { Authorization: 'Bearer one-key' });
    expect(limited.headers.get('Retry-After')).toBe('60');
    expect(((await limited.json()) as any).error.code).toBe('rate_limited');
    expect((await post(e, { Authorization: 'Bearer two-key' })).status).toBe(200);
    expect(new Set(seen).size).toBe(2);
    for (const k of seen) expect(k).not.toContain('one-key');
    // Without RATE_LIMIT=on the binding is not consulted.
    const before = calls;
    expect((await post({ RATE_LIMITER })).status).toBe(200);
    expect(calls).toBe(before);
    // The binding declared in wrangler.toml is there to turn on.
    expect(typeof (env as { RATE_LIMITER?: { limit: unknown } }).RATE_LIMITER?.limit).toBe('function');
  });

  it('ALLOWED_ORIGINS: listed origins get CORS, others none; default any', async () => {
    const e = { ALLOWED_ORIGINS: 'https://a.example, https://b.example' };
    const ok = await post(e, { Origin: 'https://b.example' });
    expect(ok.headers.get('Access-Control-Allow-Origin')).toBe('https://b.example');
    const other = await post(e, { Origin: 'https://evil.example' });
    expect(other.headers.get('Access-Control-Allow-Origin')).toBeNull();
    const preflight = await app.request('/v1/captions', { method: 'OPTIONS', headers: { Origin: 'https://a.example', 'Access-Control-Request-Method': 'POST' } }, { ...env, ...e, API_KEYS: 'x' });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('Access-Control-Allow-Origin')).toBe('https://a.example');
    expect((await post({}, { Origin: 'https://any.example' })).headers.get('Access-Control-Allow-Origin')).toBe('*');
  });

  it('compares keys in equal time over the longer length', () => {
    expect(timingSafeEqual('abc', 'abc')).toBe(true);
    expect(timingSafeEqual('abc', 'abd')).toBe(false);
    expect(timingSafeEqual('abc', 'abcd')).toBe(false);
    expect(timingSafeEqual('', '')).toBe(true);
  });
});

describe('request logs', () => {
  it('one JSON line per request: route, status, bytes, time, image sizes, error code — no key, no image data', async () => {
    const lines: string[] = [];
    const original = console.log;
    console.log = (...args: unknown[]) => lines.push(args.map(String).join(' '));
    try {
      await post({ CACHE_TTL_SECONDS: '0' }, { 'Content-Length': String(photo.byteLength) });
      await post({}); // stored by the first tests: a cache hit
      await post({ API_KEYS: 'secret-key-1' }, { Authorization: 'Bearer wrong-key' });
      await app.request('/v1/captions', { method: 'POST', body: new Uint8Array(10), headers: { 'Content-Type': 'image/jpeg' } }, env);
    } finally {
      console.log = original;
    }
    const logs = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.message === 'request');
    expect(logs).toHaveLength(4);
    expect(logs[0]).toMatchObject({ method: 'POST', path: '/v1/captions', status: 200, requestBytes: photo.byteLength, images: 1, imageSizes: ['32x32'] });
    expect(logs[0].ms).toBeGreaterThanOrEqual(0);
    expect(logs[1]).toMatchObject({ status: 200, cache: 'hit' });
    expect(logs[2]).toMatchObject({ status: 401, error: 'unauthorized' });
    expect(logs[3]).toMatchObject({ status: 415, error: 'unsupported_media_type' });
    const all = lines.join('\n');
    for (const secret of ['secret-key-1', 'wrong-key', 'Bearer']) expect(all).not.toContain(secret);
  });
});

describe('response cache', () => {
  const jpegBytes = (seed: number) => new Uint8Array(jpeg.encode({ width: 40, height: 40, data: new Uint8Array(40 * 40 * 4).map((_, i) => (i * seed) % 256) }, 90).data);
  const send = (a: ReturnType<typeof createApp>, bytes: Uint8Array, query = '', e: object = {}) =>
    a.request(`/v1/captions${query}`, { method: 'POST', body: bytes, headers: { 'Content-Type': 'image/jpeg' } }, { ...env, ...e });

  it('the same photo and options: a hit with the stored JSON; other options, another photo or another model: a miss', async () => {
    const img = jpegBytes(7);
    const first = await send(app, img, '?beam=2');
    expect(first.headers.get('Cache-Status')).toBe('edge-captioner; fwd=uri-miss; stored');
    const body = await first.text();
    const again = await send(app, img, '?beam=2');
    expect(again.status).toBe(200);
    expect(again.headers.get('Cache-Status')).toBe('edge-captioner; hit');
    expect(again.headers.get('Content-Type')).toMatch(/application\/json/);
    expect(again.headers.get('Server-Timing')).toMatch(/^cache;dur=[\d.]+$/);
    expect(await again.text()).toBe(body);
    expect((await send(app, img, '?beam=3')).headers.get('Cache-Status')).toMatch(/miss/);
    expect((await send(app, jpegBytes(11), '?beam=2')).headers.get('Cache-Status')).toMatch(/miss/);
    // A retrained model (another manifest) never serves the old captions.
    const other = createApp({ bundleSource: () => memorySource(otherModel) });
    expect((await send(other, img, '?beam=2')).headers.get('Cache-Status')).toMatch(/miss/);
    // CACHE_TTL_SECONDS=0: no cache at all.
    const off = await send(app, img, '?beam=2', { CACHE_TTL_SECONDS: '0' });
    expect(off.headers.get('Cache-Status')).toBeNull();
    expect(off.status).toBe(200);
  });

  it('a failing cache never fails the request', async () => {
    const store = caches.default;
    const { match, put } = store;
    store.match = () => Promise.reject(new Error('cache down'));
    store.put = () => Promise.reject(new Error('cache down'));
    try {
      const res = await send(app, jpegBytes(13));
      expect(res.status).toBe(200);
      expect(typeof ((await res.json()) as any).caption).toBe('string');
    } finally {
      store.match = match;
      store.put = put;
    }
  });
});
