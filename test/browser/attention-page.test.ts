import * as tf from '@tensorflow/tfjs';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decode as decodePng } from 'fast-png';
import jpeg from 'jpeg-js';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findChromium, launchChromium, uploadPageHtml } from '../helpers/chromium';
import { recordCaptionAnswers } from '../helpers/page-answers';
import { TINY_GRID, tinyBundle } from '../helpers/tiny-bundle';
import { startWranglerDev, tinyAssets, type DevServer } from '../helpers/wrangler-dev';

const chromiumPath = findChromium();
const shots = join(import.meta.dirname, '..', '..', 'test-results');
const root = mkdtempSync(join(tmpdir(), 'attention-page-'));
let server: DevServer;
let browser: Browser;
let assets: string | undefined;

interface Answer {
  caption: string;
  attention?: { grid: [number, number]; weights: number[][] };
}

/** Mean RGB of each grid cell of a PNG screenshot. */
function cellMeans(png: Buffer, grid: [number, number]): number[][] {
  const img = decodePng(png);
  const ch = img.channels;
  const [rows, cols] = grid;
  const sums = Array.from({ length: rows * cols }, () => [0, 0, 0, 0]);
  for (let y = 0; y < img.height; y++)
    for (let x = 0; x < img.width; x++) {
      const cell = Math.min(rows - 1, Math.floor((y * rows) / img.height)) * cols + Math.min(cols - 1, Math.floor((x * cols) / img.width));
      const o = (y * img.width + x) * ch;
      for (let c = 0; c < 3; c++) sums[cell][c] += img.data[o + c];
      sums[cell][3]++;
    }
  return sums.map(([r, g, b, n]) => [r / n, g / n, b / n]);
}

describe.skipIf(!chromiumPath)(`"where it looked" on the upload page, headless Chromium${chromiumPath ? '' : ' (SKIPPED: no chromium)'}`, () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
    // A mid-grey photo: the overlay's orange shows plainly against it.
    const w = 320;
    const h = 240;
    const px = new Uint8Array(w * h * 4).map((_, i) => (i % 4 === 3 ? 255 : 110 + ((i >> 2) % 7)));
    writeFileSync(join(root, 'grey.jpg'), jpeg.encode({ width: w, height: h, data: px }, 92).data);
    const px2 = new Uint8Array(w * h * 4).map((_, i) => (i % 4 === 3 ? 255 : (i * 37) % 200));
    writeFileSync(join(root, 'texture.jpg'), jpeg.encode({ width: w, height: h, data: px2 }, 92).data);
    assets = await tinyAssets({ pageHtml: uploadPageHtml(), bundle: await tinyBundle({ quantization: 'uint8', attention: true }) });
    server = await startWranglerDev({ assetsDir: assets });
    browser = await launchChromium(chromiumPath!);
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    rmSync(root, { recursive: true, force: true });
    if (assets) rmSync(assets, { recursive: true, force: true });
  });

  /** A page that has loaded the model card (so it knows the model attends), and a way to upload. */
  async function open(): Promise<{ page: Page; upload(files: string[]): Promise<Answer[]> }> {
    const page = await browser.newPage();
    const answered = await recordCaptionAnswers<Answer>(page);
    await page.goto(server.url);
    await expect.poll(() => page.textContent('#model'), { timeout: 30_000 }).toContain('tiny-test');
    return {
      page,
      async upload(files) {
        await page.setInputFiles('#file', files.map((f) => join(root, f)));
        await expect.poll(async () => (await answered()).length, { timeout: 60_000 }).toBe(files.length);
        await expect.poll(() => page.locator('#results .timings').count(), { timeout: 10_000 }).toBe(files.length);
        const got = await answered();
        for (const a of got) expect(new URL(a.url, server.url).searchParams.get('attention')).toBe('1');
        return got.map((a) => a.json);
      },
    };
  }

  it('each word of the caption is hoverable; hovering one overlays its map on the photo, hot where its weight is high', async () => {
    const { page, upload } = await open();
    const [answer] = await upload(['grey.jpg']);
    const words = answer.caption.split(' ');
    expect(await page.locator('#results .word').allTextContents()).toEqual(words);
    expect(await page.locator('#results .caption .words').textContent()).toBe(answer.caption);
    expect(answer.attention!.grid).toEqual(TINY_GRID);

    // The word whose map is least uniform: its hot and cold cells must differ on screen.
    const spread = (row: number[]) => Math.max(...row) - Math.min(...row);
    const i = answer.attention!.weights.reduce((best, row, k, all) => (spread(row) > spread(all[best]) ? k : best), 0);
    const weights = answer.attention!.weights[i];
    expect(spread(weights)).toBeGreaterThan(0.1);
    const photo = page.locator('#results .photo').first();
    const before = cellMeans(await photo.screenshot(), TINY_GRID);
    await page.locator('#results .word').nth(i).hover();
    await expect.poll(() => page.locator('#results canvas.heat.on').count()).toBe(1);
    await page.waitForTimeout(300); // the overlay fades in
    const after = cellMeans(await photo.screenshot(), TINY_GRID);
    // Orange overlay: red up, blue down, more so where the weight is higher.
    const warmth = after.map((c, k) => c[0] - c[2] - (before[k][0] - before[k][2]));
    const hot = weights.indexOf(Math.max(...weights));
    const cold = weights.indexOf(Math.min(...weights));
    expect(warmth[hot]).toBeGreaterThan(20);
    expect(warmth[hot]).toBeGreaterThan(warmth[cold] + 10);
    mkdirSync(shots, { recursive: true });
    await page.screenshot({ path: join(shots, 'attention-hover.png'), fullPage: true });

    // Leaving the word removes the overlay; focusing a word by keyboard shows it again.
    await page.mouse.move(5, 5);
    await expect.poll(() => page.locator('#results canvas.heat.on').count()).toBe(0);
    await page.locator('#results .word').nth(0).focus();
    await expect.poll(() => page.locator('#results canvas.heat.on').count()).toBe(1);
    await page.close();
  });

  it('several photos in a row: each card gets its own words and its own overlay', async () => {
    const { page, upload } = await open();
    const answers = await upload(['grey.jpg', 'texture.jpg']);
    const cards = page.locator('#results .result');
    for (let k = 0; k < 2; k++) {
      expect(await cards.nth(k).locator('.word').allTextContents()).toEqual(answers[k].caption.split(' '));
      await cards.nth(k).locator('.word').last().hover();
      await expect.poll(() => cards.nth(k).locator('canvas.heat.on').count()).toBe(1);
      expect(await cards.nth(1 - k).locator('canvas.heat.on').count()).toBe(0);
    }
    await page.close();
  });
});
