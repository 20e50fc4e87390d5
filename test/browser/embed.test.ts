import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import type { Browser } from 'playwright-core';
import { findChromium, launchChromium } from '../helpers/chromium';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TINY_WORDS } from '../helpers/tiny-bundle';
import { startTinyWorker, type DevServer } from '../helpers/wrangler-dev';

const chromiumPath = findChromium();

/** A publisher's page on its own origin, with photos that lack alt text. */
const PHOTOS = 10;
const photo = (seed: number) => Buffer.from(jpeg.encode({ width: 60, height: 45, data: new Uint8Array(60 * 45 * 4).map((_, i) => (i * (seed + 3) + seed * 7) % 256) }, 90).data);
function pageHtml(api: string): string {
  const imgs = Array.from({ length: PHOTOS }, (_, i) => `<img src="/p${i}.jpg" width="60" height="45">`).join('\n');
  return `<!doctype html><html><head><title>blog</title></head><body>
<h1>My trip</h1>
${imgs}
<img id="kept" src="/p0.jpg" alt="my own words">
<img id="optin" src="/p1.jpg" alt="" data-autocaption>
<script src="${api}/embed.js" data-api="${api}" defer></script>
</body></html>`;
}

let api: DevServer;
let site: Server;
let siteUrl = '';
let browser: Browser;

describe.skipIf(!chromiumPath)(`embed.js on another origin${chromiumPath ? '' : ' (SKIPPED: no chromium)'}`, () => {
  beforeAll(async () => {
    api = await startTinyWorker({ files: { 'embed.js': readFileSync(join(import.meta.dirname, '..', '..', 'assets', 'embed.js')) } });
    site = createServer((req, res) => {
      const m = /^\/p(\d+)\.jpg$/.exec(req.url ?? '');
      if (m) {
        res.writeHead(200, { 'Content-Type': 'image/jpeg' });
        res.end(photo(Number(m[1])));
      } else {
        res.writeHead(200, { 'Content-Type': 'text/html' });
        res.end(pageHtml(api.url));
      }
    });
    // "localhost" for the page, 127.0.0.1 for the API: two origins.
    await new Promise<void>((r) => site.listen(0, '127.0.0.1', r));
    siteUrl = `http://localhost:${(site.address() as { port: number }).port}`;
    browser = await launchChromium(chromiumPath!);
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    site?.close();
    await api?.stop();
  });

  const alts = (page: import('playwright-core').Page) => page.$$eval('img', (imgs) => imgs.map((i) => ({ id: i.id, alt: i.getAttribute('alt'), score: i.dataset.captionScore ?? null })));

  it('captions every image without alt in batches of at most 8, leaves written alt text alone, and waits out a 429', async () => {
    expect(new URL(siteUrl).origin).not.toBe(new URL(api.url).origin);
    const page = await browser.newPage();
    const posts: number[] = [];
    let refused = false;
    // The first API call is refused with 429 + Retry-After: 1, as a rate limit would.
    await page.route(`${api.url}/v1/captions*`, async (route) => {
      if (!refused) {
        refused = true;
        return route.fulfill({ status: 429, headers: { 'Retry-After': '1', 'Access-Control-Allow-Origin': '*', 'Access-Control-Expose-Headers': 'Retry-After', 'Content-Type': 'application/json' }, body: '{"error":{"code":"rate_limited","message":"slow down"}}' });
      }
      posts.push(((route.request().postDataBuffer()?.toString('latin1') ?? '').match(/name="image"/g) ?? []).length);
      return route.continue();
    });
    await page.goto(`${siteUrl}/`);
    await expect.poll(async () => (await alts(page)).filter((a) => !a.alt).length, { timeout: 60_000 }).toBe(0);
    const result = await alts(page);
    expect(result.find((a) => a.id === 'kept')).toEqual({ id: 'kept', alt: 'my own words', score: null });
    const captioned = result.filter((a) => a.id !== 'kept');
    expect(captioned).toHaveLength(PHOTOS + 1);
    for (const a of captioned) {
      // Words of the tiny test model's vocabulary, and a log-probability score.
      for (const w of a.alt!.split(' ')) expect(TINY_WORDS).toContain(w);
      expect(Number(a.score)).toBeLessThanOrEqual(0);
    }
    expect(refused).toBe(true);
    expect(posts.reduce((x, y) => x + y, 0)).toBeGreaterThanOrEqual(PHOTOS + 1);
    for (const n of posts) expect(n).toBeLessThanOrEqual(8);
    expect(posts.length).toBeLessThanOrEqual(3); // 11 images: 2 batches (plus the retry of the refused one)
    await page.close();
  }, 120_000);
});
