import { env } from 'cloudflare:test';
import jpeg from 'jpeg-js';
import { describe, expect, it } from 'vitest';
import { createApp } from '../../worker/app';

/** The bundle committed in assets/model, served through the ASSETS binding exactly as in production. */
describe('shipped model (assets/model)', () => {
  it('loads from the ASSETS binding, serves its card and captions a generated photo', async (ctx) => {
    const manifest = await env.ASSETS.fetch(new Request('https://assets.local/model/manifest.json'));
    if (!manifest.ok) {
      ctx.skip(); // no bundle shipped yet
      return;
    }
    const app = createApp();
    const card = (await (await app.request('/v1/model', {}, env)).json()) as any;
    expect(card.id).toBe(((await manifest.json()) as any).id);
    expect(card.bundleBytes).toBeGreaterThan(100_000);
    const w = 320;
    const h = 240;
    const px = new Uint8Array(w * h * 4);
    for (let i = 0; i < w * h; i++) px.set([40 + ((i % w) >> 1), 120, 200 - ((i / w) | 0) / 2, 255], i * 4);
    const res = await app.request('/v1/captions?beam=3&alternatives=3', { method: 'POST', body: new Uint8Array(jpeg.encode({ width: w, height: h, data: px }, 90).data), headers: { 'Content-Type': 'image/jpeg' } }, env);
    expect(res.status).toBe(200);
    const j = (await res.json()) as any;
    expect(j.caption.split(' ').length).toBeGreaterThanOrEqual(2);
    expect(j.alternatives.length).toBeGreaterThanOrEqual(1);
    expect(j.model.id).toBe(card.id);
    // The shipped bundle is calibrated: a blank image is trusted far less than a photo-like one.
    expect(j.confidence).toBeGreaterThanOrEqual(0);
    expect(j.confidence).toBeLessThanOrEqual(1);
    const blank = jpeg.encode({ width: w, height: h, data: new Uint8Array(w * h * 4).fill(255) }, 90).data;
    const b = (await (await app.request('/v1/captions', { method: 'POST', body: new Uint8Array(blank), headers: { 'Content-Type': 'image/jpeg' } }, env)).json()) as any;
    expect(b.confidence).toBeLessThan(0.05);
    expect(b.confidence).toBeLessThan(j.confidence);
    // An attention model answers ?attention=1 with one map per word; any other model refuses it.
    const maps = await app.request('/v1/captions?attention=1', { method: 'POST', body: new Uint8Array(jpeg.encode({ width: w, height: h, data: px }, 90).data), headers: { 'Content-Type': 'image/jpeg' } }, env);
    if (card.decoder.architecture === 'lstm-attention') {
      const m = (await maps.json()) as any;
      expect(m.caption).toBe(j.caption);
      expect(m.attention.grid).toEqual(card.decoder.attention.grid);
      expect(m.attention.weights).toHaveLength(m.caption.split(' ').length);
    } else expect(maps.status).toBe(400);
  });
});
