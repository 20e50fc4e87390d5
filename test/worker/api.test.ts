import { env } from 'cloudflare:test';
import * as tf from '@tensorflow/tfjs-core';
import { encode as encodePng } from 'fast-png';
import jpeg from 'jpeg-js';
import { beforeAll, describe, expect, it } from 'vitest';
import { memorySource } from '../../shared/bundle/source';
import { createApp } from '../../worker/app';
import { initWasmBackend } from '../../worker/tfjs-wasm-backend';
import { tinyBundle } from '../helpers/tiny-bundle';

let files: Map<string, Uint8Array>;
let endlessFiles: Map<string, Uint8Array>;
let app: ReturnType<typeof createApp>;

function pixels(w: number, h: number, seed: number, channels = 4): Uint8Array {
  const data = new Uint8Array(w * h * channels);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let c = 0; c < channels; c++) data[(y * w + x) * channels + c] = c === 3 ? 255 : (x * (seed + c + 1) * 7 + y * 13 * (c + seed)) & 255;
  return data;
}
const jpegOf = (w: number, h: number, seed = 1) => new Uint8Array(jpeg.encode({ width: w, height: h, data: pixels(w, h, seed) }, 90).data);
const pngOf = (w: number, h: number, seed = 1) => encodePng({ width: w, height: h, data: pixels(w, h, seed, 3), channels: 3, depth: 8 });

const post = (body: BodyInit | null, type: string | null, query = '', extra: Record<string, string> = {}) =>
  app.request(`/v1/captions${query}`, { method: 'POST', body, headers: { ...(type ? { 'Content-Type': type } : {}), ...extra } }, env);

async function expectError(res: Response, status: number, code: string): Promise<string> {
  expect(res.status).toBe(status);
  const j = (await res.json()) as { error: { code: string; message: string } };
  expect(j.error.code).toBe(code);
  expect(j.error.message.length).toBeGreaterThan(5);
  return j.error.message;
}

beforeAll(async () => {
  await initWasmBackend();
  files = await tinyBundle({ quantization: 'uint8' });
  endlessFiles = await tinyBundle({ quantization: 'none', neverEnds: true });
  app = createApp({ bundleSource: () => memorySource(files) });
});

describe('POST /v1/captions', () => {
  it('captions a JPEG on the wasm backend, with timings, Server-Timing and CORS', async () => {
    const res = await post(jpegOf(64, 48), 'image/jpeg', '?beam=3&alternatives=3', { Origin: 'https://example.org' });
    expect(res.status).toBe(200);
    const j = (await res.json()) as any;
    expect(typeof j.caption).toBe('string');
    expect(j.model).toEqual({ id: 'tiny-test', version: '0.0.1' });
    expect(j.alternatives[0].caption).toBe(j.caption);
    // An uncalibrated bundle says so rather than inventing a number.
    expect(j.confidence).toBeNull();
    expect(j.alternatives.every((a: any) => a.confidence === null)).toBe(true);
    expect(new Set(j.alternatives.map((a: any) => a.caption)).size).toBe(j.alternatives.length);
    for (let i = 1; i < j.alternatives.length; i++) expect(j.alternatives[i - 1].score).toBeGreaterThanOrEqual(j.alternatives[i].score);
    for (const k of ['decodeMs', 'preprocessMs', 'encoderMs', 'decoderMs', 'totalMs']) expect(j.timings[k]).toBeGreaterThanOrEqual(0);
    expect(res.headers.get('Server-Timing')).toMatch(/encoder;dur=[\d.]+/);
    expect(res.headers.get('Access-Control-Allow-Origin')).toBe('*');
    expect(tf.getBackend()).toBe('wasm');
    const health = (await (await app.request('/healthz', {}, env)).json()) as any;
    expect(health).toMatchObject({ status: 'ok', modelLoaded: true, backend: 'wasm' });
    expect(health.wasmMemoryBytes).toBeGreaterThan(0);
  });

  it('captions a PNG, and beam 1 gives the greedy caption for the same pixels as JPEG decoding would', async () => {
    const res = await post(pngOf(40, 40), 'image/png', '?beam=1');
    expect(res.status).toBe(200);
    const j = (await res.json()) as any;
    expect(j.alternatives).toHaveLength(1);
    const again = (await (await post(pngOf(40, 40), 'image/png', '?beam=1&alternatives=1')).json()) as any;
    expect(again.caption).toBe(j.caption);
  });

  it('captions several images from one multipart request, one result each', async () => {
    const form = new FormData();
    form.append('image', new File([jpegOf(50, 50, 1)], 'a.jpg', { type: 'image/jpeg' }));
    form.append('image', new File([pngOf(30, 20, 2)], 'b.png', { type: 'image/png' }));
    form.append('image', new File([jpegOf(80, 60, 3)], 'c.jpg', { type: 'image/jpeg' }));
    const res = await app.request('/v1/captions?beam=2', { method: 'POST', body: form }, env);
    expect(res.status).toBe(200);
    const j = (await res.json()) as any[];
    expect(Array.isArray(j)).toBe(true);
    expect(j).toHaveLength(3);
    for (const r of j) expect(typeof r.caption).toBe('string');
  });

  it('multipart always answers an array: one entry per file, a bad file gets its own error and the others are captioned', async () => {
    const one = new FormData();
    one.append('image', new File([jpegOf(50, 50, 1)], 'a.jpg', { type: 'image/jpeg' }));
    const single = await app.request('/v1/captions', { method: 'POST', body: one }, env);
    expect(single.status).toBe(200);
    const s1 = (await single.json()) as any[];
    expect(Array.isArray(s1)).toBe(true);
    expect(s1).toHaveLength(1);
    expect(typeof s1[0].caption).toBe('string');

    const mixed = new FormData();
    mixed.append('image', new File([jpegOf(50, 50, 1)], 'good.jpg', { type: 'image/jpeg' }));
    mixed.append('image', new File([new Uint8Array(64).fill(9)], 'junk.png', { type: 'image/png' }));
    mixed.append('image', new File([pngOf(30, 20, 2)], 'good.png', { type: 'image/png' }));
    const res = await app.request('/v1/captions', { method: 'POST', body: mixed }, env);
    expect(res.status).toBe(200);
    const j = (await res.json()) as any[];
    expect(j).toHaveLength(3);
    expect(typeof j[0].caption).toBe('string');
    expect(j[1]).toEqual({ file: 'junk.png', error: { code: 'unsupported_media_type', message: expect.stringMatching(/image/) } });
    expect(typeof j[2].caption).toBe('string');
    expect(res.headers.get('Server-Timing')).toMatch(/encoder;dur=/);

    const allBad = new FormData();
    allBad.append('image', new File([jpegOf(32, 32).slice(0, 200)], 'cut.jpg', { type: 'image/jpeg' }));
    const bad = await app.request('/v1/captions', { method: 'POST', body: allBad }, env);
    expect(bad.status).toBe(415);
    expect(((await bad.json()) as any[])[0]).toMatchObject({ file: 'cut.jpg', error: { code: 'undecodable_image' } });
  });

  it('scores are rounded once (short decimals in the JSON text); maxLength counts words', async () => {
    const text = await (await post(jpegOf(64, 48, 5), 'image/jpeg', '?beam=4&alternatives=4')).text();
    const scores = [...text.matchAll(/"score":(-?[\d.e-]+)/g)].map((m) => m[1]);
    expect(scores.length).toBeGreaterThan(1);
    for (const sc of scores) expect(sc).toMatch(/^-?\d+(\.\d{1,4})?$/);
    // A model that never says <end>: every caption is exactly as long as allowed.
    const endless = createApp({ bundleSource: () => memorySource(endlessFiles) });
    const words = async (q: string) => {
      const res = await endless.request(`/v1/captions${q}`, { method: 'POST', body: jpegOf(40, 40, 2), headers: { 'Content-Type': 'image/jpeg' } }, env);
      return ((await res.json()) as any).alternatives.map((a: any) => a.caption.split(' ').length);
    };
    expect(await words('?beam=1&maxLength=2')).toEqual([2]);
    expect(await words('?beam=3&alternatives=3&maxLength=5')).toEqual([5, 5, 5]);
    expect(await words('?beam=1')).toEqual([7]); // the bundle's maxLength 8 tokens − <end>
  });

  it('accepts application/octet-stream when the bytes are an image; other methods get 405 with Allow', async () => {
    const ok = await post(jpegOf(40, 40), 'application/octet-stream');
    expect(ok.status).toBe(200);
    expect(typeof ((await ok.json()) as any).caption).toBe('string');
    await expectError(await post(new Uint8Array(80).fill(3), 'application/octet-stream'), 415, 'unsupported_media_type');
    const get = await app.request('/v1/captions', {}, env);
    expect(get.headers.get('Allow')).toBe('POST, OPTIONS');
    await expectError(get, 405, 'method_not_allowed');
    const postModel = await app.request('/v1/model', { method: 'POST' }, env);
    expect(postModel.headers.get('Allow')).toBe('GET');
    await expectError(postModel, 405, 'method_not_allowed');
  });

  it('answers bad input with JSON 4xx errors', async () => {
    // Bytes that are no known image format at all, whatever the declared type.
    await expectError(await post(new Uint8Array(100).fill(7), 'image/jpeg'), 415, 'unsupported_media_type');
    await expectError(await post(jpegOf(32, 32).slice(0, 200), 'image/jpeg'), 415, 'undecodable_image');
    expect(await expectError(await post(jpegOf(32, 32), 'image/gif'), 415, 'unsupported_media_type')).toMatch(/image\/jpeg, image\/png/);
    await expectError(await post(jpegOf(32, 32), null), 415, 'unsupported_media_type');
    await expectError(await post(new Uint8Array(0), 'image/jpeg'), 400, 'bad_request');
    expect(await expectError(await post(jpegOf(32, 32), 'image/jpeg', '?beam=abc'), 400, 'invalid_parameter')).toMatch(/beam/);
    expect(await expectError(await post(jpegOf(32, 32), 'image/jpeg', '?beam=20'), 400, 'invalid_parameter')).toMatch(/from 1 to 10/);
    await expectError(await post(jpegOf(32, 32), 'image/jpeg', '?beam=2&alternatives=3'), 400, 'invalid_parameter');
    await expectError(await post(jpegOf(32, 32), 'image/jpeg', '?colour=red'), 400, 'invalid_parameter');
    const noImage = new FormData();
    noImage.append('photo', 'x');
    await expectError(await app.request('/v1/captions', { method: 'POST', body: noImage }, env), 400, 'bad_request');
    await expectError(await app.request('/v1/nothing', {}, env), 404, 'not_found');
  });

  it('refuses bodies over the limit, with or without Content-Length', async () => {
    const limited = { ...env, MAX_BODY_BYTES: '1000' };
    const big = jpegOf(64, 64);
    expect(big.byteLength).toBeGreaterThan(1000);
    const withLength = await app.request('/v1/captions', { method: 'POST', body: big, headers: { 'Content-Type': 'image/jpeg', 'Content-Length': String(big.byteLength) } }, limited);
    await expectError(withLength, 413, 'payload_too_large');
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < big.byteLength; i += 300) c.enqueue(big.slice(i, i + 300));
        c.close();
      },
    });
    const chunked = await app.request('/v1/captions', { method: 'POST', body: stream, headers: { 'Content-Type': 'image/jpeg' }, duplex: 'half' } as RequestInit, limited);
    await expectError(chunked, 413, 'payload_too_large');
    // A body that lies about its length is counted too.
    const lying = await Promise.resolve(app.request('/v1/captions', { method: 'POST', body: big, headers: { 'Content-Type': 'image/jpeg', 'Content-Length': '10' } }, limited)).catch(() => null);
    if (lying) expect([400, 413]).toContain(lying.status);
  });

  it('refuses images over the pixel limit before decoding them', async () => {
    const res = await app.request('/v1/captions', { method: 'POST', body: jpegOf(200, 100), headers: { 'Content-Type': 'image/jpeg' } }, { ...env, MAX_PIXELS: '10000' });
    expect(await expectError(res, 413, 'image_too_large')).toMatch(/10000|pixels|MP/);
  });

  it('leaks no tensors across requests', async () => {
    await post(jpegOf(48, 48, 9), 'image/jpeg', '?beam=3&alternatives=2');
    const after1 = tf.memory().numTensors;
    for (let i = 0; i < 20; i++) {
      const r = await post(jpegOf(48, 48, i), 'image/jpeg', `?beam=${1 + (i % 4)}`);
      expect(r.status).toBe(200);
      await post(new Uint8Array(10), 'image/jpeg');
    }
    expect(tf.memory().numTensors).toBe(after1);
  });

  it('answers CORS preflight', async () => {
    const res = await app.request('/v1/captions', { method: 'OPTIONS', headers: { Origin: 'https://example.org', 'Access-Control-Request-Method': 'POST' } }, env);
    expect(res.status).toBe(204);
    expect(res.headers.get('Access-Control-Allow-Methods')).toMatch(/POST/);
  });
});

describe('?attention=1', () => {
  it('adds one row of grid weights per caption word, each summing to 1; the same caption as without it; multipart too', async () => {
    const attentionFiles = await tinyBundle({ quantization: 'uint8', attention: true });
    const attending = createApp({ bundleSource: () => memorySource(attentionFiles) });
    const ask = (query: string, body: BodyInit = jpegOf(64, 48, 4)) => attending.request(`/v1/captions${query}`, { method: 'POST', body, headers: { 'Content-Type': 'image/jpeg' } }, env);
    const plain = (await (await ask('?beam=3')).json()) as any;
    expect(plain.attention).toBeUndefined();
    for (const beam of [1, 3]) {
      const res = await ask(`?beam=${beam}&attention=1`);
      expect(res.status).toBe(200);
      const j = (await res.json()) as any;
      if (beam === 3) expect(j.caption).toBe(plain.caption);
      expect(j.attention.grid).toEqual([2, 2]);
      expect(j.attention.weights).toHaveLength(j.caption.split(' ').length);
      for (const row of j.attention.weights) {
        expect(row).toHaveLength(4);
        expect(Math.abs(row.reduce((a: number, b: number) => a + b, 0) - 1)).toBeLessThanOrEqual(0.003);
        expect(row.every((x: number) => x >= 0 && x <= 1 && Math.round(x * 1000) === x * 1000)).toBe(true);
      }
    }
    expect(((await (await ask('?attention=0')).json()) as any).attention).toBeUndefined();
    const form = new FormData();
    form.append('image', new File([jpegOf(50, 50, 1)], 'a.jpg', { type: 'image/jpeg' }));
    form.append('image', new File([jpegOf(40, 30, 2)], 'b.jpg', { type: 'image/jpeg' }));
    const multi = (await (await attending.request('/v1/captions?attention=true', { method: 'POST', body: form }, env)).json()) as any[];
    for (const r of multi) expect(r.attention.weights).toHaveLength(r.caption.split(' ').length);
    const card = (await (await attending.request('/v1/model', {}, env)).json()) as any;
    expect(card.decoder).toMatchObject({ architecture: 'lstm-attention', attention: { grid: [2, 2], channels: 32, size: 8 } });
  });

  it('a model without attention answers the flag with a 400 that says why; a bad flag value is a 400 too', async () => {
    expect(await expectError(await post(jpegOf(32, 32), 'image/jpeg', '?attention=1'), 400, 'invalid_parameter')).toMatch(/attention decoder/);
    expect(await expectError(await post(jpegOf(32, 32), 'image/jpeg', '?attention=yes'), 400, 'invalid_parameter')).toMatch(/attention must be 1 or 0/);
    expect((await post(jpegOf(32, 32), 'image/jpeg', '?attention=0')).status).toBe(200);
  });
});

describe('model lifecycle', () => {
  it('serves the model card from the manifest', async () => {
    const j = (await (await app.request('/v1/model', {}, env)).json()) as any;
    expect(j).toMatchObject({ id: 'tiny-test', quantization: 'uint8', encoder: { architecture: 'compact-vgg16', inputSize: 32 } });
    expect(j.bundleBytes).toBe([...files.values()].reduce((a, f) => a + f.byteLength, 0));
  });

  it('loads on the first caption without a warm-up pass, and warms up after the model card (off the request path)', async () => {
    // A fake ExecutionContext that keeps what the app hands to waitUntil.
    const later: Promise<unknown>[] = [];
    const ctx = { waitUntil: (p: Promise<unknown>) => void later.push(p), passThroughOnException: () => undefined, props: {} } as unknown as ExecutionContext;
    const health = async (a: ReturnType<typeof createApp>) => ((await (await a.request('/healthz', {}, env)).json()) as any).load;

    const cardFirst = createApp({ bundleSource: () => memorySource(files) });
    expect((await cardFirst.request('/v1/model', {}, env, ctx)).status).toBe(200);
    expect(later).toHaveLength(1);
    expect((await health(cardFirst)).warmupMs).toBe(0); // not yet: the card was answered first
    await Promise.all(later);
    expect((await health(cardFirst)).warmupMs).toBeGreaterThan(0);

    later.length = 0;
    const captionFirst = createApp({ bundleSource: () => memorySource(files) });
    const res = await captionFirst.request('/v1/captions?beam=2', { method: 'POST', body: jpegOf(32, 32), headers: { 'Content-Type': 'image/jpeg' } }, { ...env, CACHE_TTL_SECONDS: '0' }, ctx);
    expect(res.status).toBe(200);
    expect(later).toHaveLength(1); // the load, started before the decode
    await Promise.all(later);
    await captionFirst.request('/v1/model', {}, env, ctx);
    await Promise.all(later);
    // The caption warmed everything up: no separate pass ever ran.
    expect((await health(captionFirst)).warmupMs).toBe(0);
  });

  it('answers 503 with a clear message when the bundle is missing or invalid, and loads once', async () => {
    const broken = createApp({ bundleSource: () => memorySource(new Map(), 'empty') });
    expect(await expectError(await broken.request('/v1/captions', { method: 'POST', body: jpegOf(32, 32), headers: { 'Content-Type': 'image/jpeg' } }, env), 503, 'model_unavailable')).toMatch(/manifest\.json/);
    // One load attempt and one manifest read per request, and the next request tries again.
    let manifestReads = 0;
    const unreadable = createApp({ bundleSource: () => ({ description: 'unreadable', read: async (p) => { if (p === 'manifest.json') manifestReads++; throw new Error(`no ${p}`); } }) });
    // With the response cache on, the cache key and the load share that one read.
    for (const [n, ttl] of [[1, '0'], [2, '0'], [3, '60'], [4, '60']] as const) {
      await expectError(await unreadable.request('/v1/captions', { method: 'POST', body: jpegOf(32, 32), headers: { 'Content-Type': 'image/jpeg' } }, { ...env, CACHE_TTL_SECONDS: ttl }), 503, 'model_unavailable');
      expect(manifestReads).toBe(n);
    }
    // Bad input still gets its own 4xx, without touching the model.
    await expectError(await broken.request('/v1/captions', { method: 'POST', body: new Uint8Array(5), headers: { 'Content-Type': 'image/png' } }, env), 415, 'unsupported_media_type');

    const reads = new Map<string, number>();
    // The response cache keys on manifest.json and the model load reads it too: one read for both; the model loads once.
    const counting = createApp({ bundleSource: () => ({ description: 'counting', read: (p) => { reads.set(p, (reads.get(p) ?? 0) + 1); return memorySource(files).read(p); } }) });
    const many = await Promise.all([1, 2, 3, 4].map((s) => counting.request('/v1/captions?beam=1', { method: 'POST', body: jpegOf(32, 32, s), headers: { 'Content-Type': 'image/jpeg' } }, env)));
    expect(many.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(Object.fromEntries(reads)).toEqual({ 'manifest.json': 1, 'vocab.json': 1, 'encoder/model.json': 1, 'encoder/weights.bin': 1, 'decoder/model.json': 1, 'decoder/weights.bin': 1 });
  });
});
