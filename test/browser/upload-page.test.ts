import * as tf from '@tensorflow/tfjs';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import jpeg from 'jpeg-js';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWranglerDev, type DevServer } from '../helpers/wrangler-dev';
import { tinyBundle } from '../helpers/tiny-bundle';

function findChromium(): string | null {
  for (const p of [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser']) if (p && existsSync(p)) return p;
  try {
    return execFileSync('which', ['chromium'], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

const chromiumPath = findChromium();
const root = mkdtempSync(join(tmpdir(), 'upload-page-'));
let server: DevServer;
let browser: Browser;

describe.skipIf(!chromiumPath)(`upload page in headless Chromium${chromiumPath ? '' : ' (SKIPPED: no chromium; apt-get install chromium)'}`, () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
    // The page served with a tiny random-weight bundle, so the test needs no trained model.
    const assets = join(root, 'assets');
    mkdirSync(assets, { recursive: true });
    copyFileSync(join(import.meta.dirname, '..', '..', 'assets', 'index.html'), join(assets, 'index.html'));
    for (const [p, b] of await tinyBundle({ quantization: 'uint8' })) {
      mkdirSync(dirname(join(assets, 'model', p)), { recursive: true });
      writeFileSync(join(assets, 'model', p), b);
    }
    const w = 900;
    const h = 600;
    const px = new Uint8Array(w * h * 4).map((_, i) => (i % 4 === 3 ? 255 : (i * 31) % 251));
    writeFileSync(join(root, 'photo.jpg'), jpeg.encode({ width: w, height: h, data: px }, 85).data);
    writeFileSync(join(root, 'not-an-image.png'), 'hello');
    server = await startWranglerDev({ assetsDir: assets });
    browser = await chromium.launch({
      executablePath: chromiumPath!,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('captions a picked photo, shrunk in the browser, and shows alternatives and timings', async () => {
    const page = await browser.newPage();
    const uploads: number[] = [];
    page.on('request', (r) => {
      if (r.url().includes('/v1/captions')) uploads.push(r.postDataBuffer()?.byteLength ?? -1);
    });
    await page.goto(server.url);
    await expect.poll(() => page.textContent('#model'), { timeout: 30_000 }).toContain('tiny-test');
    await page.selectOption('#beam', '3');
    await page.setInputFiles('#file', join(root, 'photo.jpg'));
    await page.waitForSelector('#result:not([hidden])', { timeout: 60_000 });
    expect((await page.textContent('#caption'))!.trim().length).toBeGreaterThan(0);
    expect(await page.textContent('#timings')).toMatch(/encoder [\d.]+ ms/);
    expect(await page.locator('#alternatives li').count()).toBeGreaterThanOrEqual(0);
    // 900×600 was shrunk to at most 640 px on its long side before upload.
    const dims = await page.evaluate(() => {
      const img = document.getElementById('preview') as HTMLImageElement;
      return [img.naturalWidth, img.naturalHeight];
    });
    expect(Math.max(...dims)).toBeLessThanOrEqual(640);
    expect(uploads.length).toBe(1);
    await page.close();
  });

  it('shows the server\'s error for a file that is not an image', async () => {
    const page = await browser.newPage();
    await page.goto(server.url);
    await page.setInputFiles('#file', join(root, 'not-an-image.png'));
    await page.waitForSelector('#error:not([hidden])', { timeout: 30_000 });
    expect(await page.textContent('#error')).toMatch(/image/i);
    await page.close();
  });
});
