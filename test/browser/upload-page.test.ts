import * as tf from '@tensorflow/tfjs';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encode as encodePng } from 'fast-png';
import jpeg from 'jpeg-js';
import type { Browser } from 'playwright-core';
import { findChromium, launchChromium, uploadPageHtml } from '../helpers/chromium';
import { recordCaptionAnswers } from '../helpers/page-answers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWranglerDev, tinyAssets, type DevServer } from '../helpers/wrangler-dev';
import { TINY_INPUT, tinyBundle, tinyConfidence } from '../helpers/tiny-bundle';
import { imageStats, photoDistance, type ConfidenceModel } from '../../shared/confidence';
import { decodeImage } from '../../shared/image/decode';
import { toEncoderInput } from '../../shared/image/normalize';
import type { RgbImage } from '../../shared/image/types';


interface CaptionJson {
  caption: string;
  confidence: number | null;
  alternatives: { caption: string; score: number; confidence: number | null }[];
  error?: { message: string };
}

const chromiumPath = findChromium();
/** Screenshots for people to look at (test-results/ is ignored by git). */
const shots = join(import.meta.dirname, '..', '..', 'test-results');
const root = mkdtempSync(join(tmpdir(), 'upload-page-'));
let server: DevServer;
let browser: Browser;
let assets: string | undefined;
let confidence: ConfidenceModel;

describe.skipIf(!chromiumPath)(`upload page in headless Chromium${chromiumPath ? '' : ' (SKIPPED: no chromium; apt-get install chromium)'}`, () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
    const w = 900;
    const h = 600;
    const px = new Uint8Array(w * h * 4).map((_, i) => (i % 4 === 3 ? 255 : (i * 31) % 251));
    writeFileSync(join(root, 'photo.jpg'), jpeg.encode({ width: w, height: h, data: px }, 85).data);
    const px2 = new Uint8Array(300 * 200 * 4).map((_, i) => (i % 4 === 3 ? 255 : (i * 7) % 256));
    writeFileSync(join(root, 'photo2.jpg'), jpeg.encode({ width: 300, height: 200, data: px2 }, 90).data);
    writeFileSync(join(root, 'photo3.png'), encodePng({ width: 120, height: 160, data: new Uint8Array(120 * 160 * 3).map((_, i) => (i * 13) % 256), channels: 3 }));
    writeFileSync(join(root, 'blank.png'), encodePng({ width: 200, height: 150, data: new Uint8Array(200 * 150 * 3).fill(255), channels: 3 }));
    writeFileSync(join(root, 'not-an-image.png'), 'hello');
    // Calibrated on the three photos: they rate 0.5, anything far from them (the blank) much less.
    const photos = ['photo.jpg', 'photo2.jpg', 'photo3.png'].map((f) => decodeImage(new Uint8Array(readFileSync(join(root, f)))));
    confidence = tinyConfidence(photos, 1.5);
    const blank = decodeImage(new Uint8Array(readFileSync(join(root, 'blank.png'))));
    const statsOf = (img: RgbImage) => imageStats(toEncoderInput(img, TINY_INPUT.size, TINY_INPUT.normalization), TINY_INPUT.size, TINY_INPUT.normalization);
    expect(photoDistance(statsOf(blank), confidence.imageStats)).toBeGreaterThan(1.6 * confidence.imageStats.limit);
    // The page served with a tiny random-weight bundle, so the test needs no trained model.
    assets = await tinyAssets({ pageHtml: uploadPageHtml(), bundle: await tinyBundle({ quantization: 'uint8', confidence }) });
    server = await startWranglerDev({ assetsDir: assets });
    browser = await launchChromium(chromiumPath!);
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    rmSync(root, { recursive: true, force: true });
    if (assets) rmSync(assets, { recursive: true, force: true });
  });

  const answers = (page: import('playwright-core').Page) => recordCaptionAnswers<CaptionJson>(page);

  /** What one result card shows. */
  const shown = (page: import('playwright-core').Page) =>
    page.$$eval('#results .result', (cards) =>
      cards.map((c) => ({
        file: c.querySelector('.file')?.textContent ?? '',
        caption: c.querySelector('.caption')?.firstChild?.textContent ?? '',
        alternatives: Array.from(c.querySelectorAll('.alternative')).map((li) => li.firstChild?.textContent ?? ''),
        error: c.querySelector('.error')?.textContent ?? null,
        rating: c.querySelector('.caption .score')?.textContent ?? '',
        low: c.querySelector('.low')?.textContent ?? null,
        timings: c.querySelector('.timings')?.textContent ?? '',
      })),
    );

  it('several uploads in a row: each shows the API\'s caption and alternatives for each photo, shrunk in the browser first', async () => {
    const page = await browser.newPage();
    const answered = await answers(page);
    const uploads: number[] = [];
    page.on('request', (r) => {
      if (r.url().includes('/v1/captions')) uploads.push(r.postDataBuffer()?.byteLength ?? -1);
    });
    await page.goto(server.url);
    await expect.poll(() => page.textContent('#model'), { timeout: 30_000 }).toContain('tiny-test');
    const rounds: { files: string[]; beam: string; alts: string }[] = [
      { files: ['photo.jpg'], beam: '3', alts: '3' },
      { files: ['photo2.jpg', 'photo3.png'], beam: '5', alts: '3' },
      { files: ['photo3.png'], beam: '1', alts: '3' },
    ];
    for (const round of rounds) {
      const before = (await answered()).length;
      await page.selectOption('#beam', round.beam);
      await page.selectOption('#alt-count', round.alts);
      await page.setInputFiles('#file', round.files.map((f) => join(root, f)));
      await expect.poll(async () => (await answered()).length, { timeout: 60_000 }).toBe(before + round.files.length);
      await expect.poll(async () => (await shown(page)).filter((c) => c.timings).length, { timeout: 10_000 }).toBe(round.files.length);
      const cards = await shown(page);
      const got = await answered();
      // Only this round's photos are on screen, each with exactly what the API answered.
      expect(cards.map((c) => c.file)).toEqual(round.files);
      cards.forEach((c, i) => {
        const { status, json } = got[before + i];
        expect(status).toBe(200);
        expect(c.caption).toBe(json.caption);
        expect(c.caption.length).toBeGreaterThan(0);
        expect(c.alternatives).toEqual(json.alternatives.slice(1).map((a) => a.caption));
        expect(c.error).toBeNull();
        expect(json.confidence).toBe(0.5);
        expect(c.rating).toMatch(/^confidence 50% · score -?\d\.\d{3}$/);
        expect(c.low).toBeNull();
        expect(c.timings).toMatch(/encoder [\d.]+ ms/);
      });
      const wantAlternatives = Math.min(Number(round.alts), Number(round.beam));
      for (const { json } of got.slice(before)) expect(json.alternatives.length).toBeLessThanOrEqual(wantAlternatives);
      if (round.beam === '5') expect(cards.some((c) => c.alternatives.length > 0)).toBe(true);
    }
    // 900×600 was shrunk to at most 640 px on its long side before upload.
    expect(Math.max(...uploads.slice(0, 1))).toBeLessThan(200_000);
    const dims = await page.$$eval('#results .result img', (imgs) => imgs.map((i) => Math.max((i as HTMLImageElement).naturalWidth, (i as HTMLImageElement).naturalHeight)));
    for (const d of dims) expect(d).toBeLessThanOrEqual(640);
    mkdirSync(shots, { recursive: true });
    await page.screenshot({ path: join(shots, 'upload-page-desktop.png'), fullPage: true });
    await page.close();
  });

  it('a blank image is shown as a low-confidence guess beside a photo that is not', async () => {
    const page = await browser.newPage();
    const answered = await answers(page);
    await page.goto(server.url);
    await page.setInputFiles('#file', [join(root, 'photo2.jpg'), join(root, 'blank.png')]);
    await expect.poll(async () => (await answered()).length, { timeout: 60_000 }).toBe(2);
    await expect.poll(async () => (await shown(page)).filter((c) => c.timings).length, { timeout: 10_000 }).toBe(2);
    const [photo, blank] = await shown(page);
    const [a, b] = (await answered()).map((x) => x.json);
    expect(a.confidence).toBe(0.5);
    expect(b.confidence).toBeLessThan(0.2);
    expect(photo.low).toBeNull();
    expect(blank.low).toMatch(/Low confidence/);
    expect(blank.rating).toBe(`confidence ${Math.round(b.confidence! * 100)}% · score ${b.alternatives[0].score.toFixed(3)}`);
    expect(await page.locator('.result.uncertain img').getAttribute('alt')).toBe(`possibly: ${b.caption}`);
    mkdirSync(shots, { recursive: true });
    await page.screenshot({ path: join(shots, 'upload-page-low-confidence.png'), fullPage: true });
    await page.close();
  });

  it('a bad file in a batch gets its own error beside it; the good ones are captioned; the next upload clears it', async () => {
    const page = await browser.newPage();
    const answered = await answers(page);
    await page.goto(server.url);
    await page.setInputFiles('#file', [join(root, 'photo.jpg'), join(root, 'not-an-image.png'), join(root, 'photo2.jpg')]);
    await expect.poll(async () => (await answered()).length, { timeout: 60_000 }).toBe(3);
    await expect.poll(async () => (await shown(page)).filter((c) => c.timings || c.error).length, { timeout: 10_000 }).toBe(3);
    const cards = await shown(page);
    const got = await answered();
    expect(cards[1].error).toBe(got[1].json.error!.message);
    expect(cards[1].error).toMatch(/image/i);
    expect(got[1].status).toBeGreaterThanOrEqual(400);
    expect(cards[0].caption).toBe(got[0].json.caption);
    expect(cards[2].caption).toBe(got[2].json.caption);
    expect(await page.locator('[role=alert]').count()).toBe(1);
    await page.setInputFiles('#file', join(root, 'photo.jpg'));
    await expect.poll(async () => (await answered()).length, { timeout: 60_000 }).toBe(4);
    await expect.poll(async () => (await shown(page)).map((c) => c.error), { timeout: 10_000 }).toEqual([null]);
    await page.close();
  });

  it('fits a 390 px phone screen without sideways scrolling, and is usable by keyboard', async () => {
    const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
    const answered = await answers(page);
    await page.goto(server.url);
    await page.setInputFiles('#file', [join(root, 'photo.jpg'), join(root, 'photo2.jpg')]);
    await expect.poll(async () => (await answered()).length, { timeout: 60_000 }).toBe(2);
    await expect.poll(async () => (await shown(page)).filter((c) => c.timings).length, { timeout: 10_000 }).toBe(2);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(overflow).toBe(0);
    // Nothing overlaps the drop zone: it sits between the subtitle and the controls.
    const box = async (sel: string) => (await page.locator(sel).boundingBox())!;
    const [sub, drop, controls] = [await box('.sub'), await box('#drop'), await box('.controls')];
    expect(drop.y).toBeGreaterThanOrEqual(sub.y + sub.height);
    expect(controls.y).toBeGreaterThanOrEqual(drop.y + drop.height);
    // The file input is reachable with Tab.
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('file');
    mkdirSync(shots, { recursive: true });
    await page.screenshot({ path: join(shots, 'upload-page-390.png'), fullPage: true });
    await page.close();
  });
});
