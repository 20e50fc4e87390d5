import { zlibSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { rng } from '../offline/random';
import { decodeImage } from '../shared/image/decode';
import { decodePngScaled, type PngHeader } from '../shared/image/png-scaled';
import { ImageInputError, type RgbImage } from '../shared/image/types';
import { buildPng, type PngChunk } from './helpers/hostile-inputs';
import { errorOf } from './helpers/jpeg-bits';

const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

interface RawPng {
  header: PngHeader;
  /** Packed samples, row by row, as PNG stores them before filtering. */
  rows: Uint8Array[];
  palette?: Uint8Array;
  trns?: Uint8Array;
}

/** Random samples for any colour type / depth (a few repeated values, so the tRNS key occurs). */
function randomPng(width: number, height: number, colorType: number, depth: number, seed: number): RawPng {
  const r = rng(seed);
  const channels = CHANNELS[colorType];
  const rowBytes = Math.ceil((width * channels * depth) / 8);
  const rows = Array.from({ length: height }, () => Uint8Array.from({ length: rowBytes }, () => (r() < 0.2 ? 0 : Math.floor(r() * 256))));
  const raw: RawPng = { header: { width, height, depth, colorType, interlace: 0 }, rows };
  if (colorType === 3) {
    const entries = Math.min(256, 1 << depth) - 1; // one index past the palette: shown white
    raw.palette = Uint8Array.from({ length: entries * 3 }, () => Math.floor(r() * 256));
    raw.trns = Uint8Array.from({ length: Math.min(entries, 5) }, () => Math.floor(r() * 256));
  } else if (colorType === 0) raw.trns = new Uint8Array([0, 0]);
  else if (colorType === 2) raw.trns = new Uint8Array(6);
  return raw;
}

/** Filters each row with `filterOf(y)` (PNG §9) and writes the file. */
function writePng(raw: RawPng, filterOf: (y: number) => number, chunks?: (idat: Uint8Array) => PngChunk[], trailingZeros = 0): Uint8Array {
  const { width, height, depth, colorType } = raw.header;
  const bpp = Math.max(1, (CHANNELS[colorType] * depth) >> 3);
  const rowBytes = raw.rows[0].length;
  const filtered = new Uint8Array(raw.rows.length * (rowBytes + 1) + trailingZeros);
  raw.rows.forEach((row, y) => {
    const up = y > 0 ? raw.rows[y - 1] : new Uint8Array(rowBytes);
    const f = filterOf(y);
    filtered[y * (rowBytes + 1)] = f;
    for (let i = 0; i < rowBytes; i++) {
      const a = i >= bpp ? row[i - bpp] : 0;
      const b = up[i];
      const c = i >= bpp ? up[i - bpp] : 0;
      const p = a + b - c;
      const paeth = Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c;
      const pred = [0, a, b, (a + b) >> 1, paeth][f];
      filtered[y * (rowBytes + 1) + 1 + i] = (row[i] - pred) & 255;
    }
  });
  const u32 = (v: number) => [(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
  const ihdr: PngChunk = { type: 'IHDR', data: new Uint8Array([...u32(width), ...u32(height), depth, colorType, 0, 0, 0]) };
  const idat = zlibSync(filtered);
  const middle = chunks ? chunks(idat) : [{ type: 'IDAT', data: idat }];
  const extra: PngChunk[] = [];
  if (raw.palette) extra.push({ type: 'PLTE', data: raw.palette });
  if (raw.trns) extra.push({ type: 'tRNS', data: raw.trns });
  return buildPng([ihdr, ...extra, ...middle, { type: 'IEND', data: new Uint8Array(0) }]);
}

/** k×k box means (rounded) of a full decode: what the scaled decoder must give. */
function boxMeans(img: RgbImage, k: number): RgbImage {
  const w = Math.ceil(img.width / k);
  const h = Math.ceil(img.height / k);
  const data = new Uint8Array(w * h * 3);
  for (let oy = 0; oy < h; oy++)
    for (let ox = 0; ox < w; ox++)
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        let n = 0;
        for (let y = oy * k; y < Math.min(img.height, (oy + 1) * k); y++)
          for (let x = ox * k; x < Math.min(img.width, (ox + 1) * k); x++, n++) sum += img.data[(y * img.width + x) * 3 + c];
        data[(oy * w + ox) * 3 + c] = Math.round(sum / n);
      }
  return { width: w, height: h, data };
}

// Reference: fast-png's full decode (an independent implementation) through decodeImage's colour handling.
const fullDecode = (bytes: Uint8Array) => decodeImage(bytes, { minSide: 1e9 });

const FORMATS: [number, number][] = [
  [0, 1], [0, 2], [0, 4], [0, 8], [0, 16], [2, 8], [2, 16], [3, 1], [3, 2], [3, 4], [3, 8], [4, 8], [4, 16], [6, 8], [6, 16],
];

describe('decodePngScaled: k×k box means while inflating', () => {
  it.each(FORMATS)('colour type %i, %i-bit, every filter type, odd sizes', (colorType, depth) => {
    const raw = randomPng(37, 23, colorType, depth, colorType * 100 + depth);
    const bytes = writePng(raw, (y) => y % 5);
    const full = fullDecode(bytes);
    for (const k of [1, 2, 3, 5, 8]) {
      const img = decodePngScaled(bytes, raw.header, k)!;
      expect(img, `k=${k}`).not.toBeNull();
      const ref = boxMeans(full, k);
      expect([img.width, img.height]).toEqual([ref.width, ref.height]);
      expect(Buffer.from(img.data).equals(Buffer.from(ref.data)), `k=${k}`).toBe(true);
    }
  });

  it('image data split over many IDAT chunks of any size', () => {
    const raw = randomPng(50, 31, 6, 8, 7);
    const split = (idat: Uint8Array): PngChunk[] => {
      const out: PngChunk[] = [];
      for (let o = 0, n = 1; o < idat.length; o += n, n = (n * 3) % 97 + 1) out.push({ type: 'IDAT', data: idat.slice(o, o + n) });
      return out;
    };
    const bytes = writePng(raw, (y) => (y * 3) % 5, split);
    expect(decodePngScaled(bytes, raw.header, 4)!.data).toEqual(boxMeans(fullDecode(bytes), 4).data);
  });

  it('decodeImage takes this path for big PNGs and keeps the short side ≥ minSide', () => {
    const raw = randomPng(300, 130, 2, 8, 9);
    const bytes = writePng(raw, () => 4);
    const img = decodeImage(bytes, { minSide: 64 });
    expect([img.width, img.height]).toEqual([150, 65]); // box 2: floor(130 / 64)
    expect(img.data).toEqual(boxMeans(fullDecode(bytes), 2).data);
  });

  it('leaves interlaced files to the full decoder', () => {
    const raw = randomPng(8, 8, 2, 8, 1);
    expect(decodePngScaled(writePng(raw, () => 0), { ...raw.header, interlace: 1 }, 2)).toBeNull();
  });

  it('refuses truncated, corrupt and over-long data with undecodable_image', () => {
    const raw = randomPng(40, 40, 2, 8, 3);
    const good = writePng(raw, (y) => y % 5);
    const h = raw.header;
    const cases: [string, Uint8Array, RegExp][] = [
      ['cut in the IDAT', good.subarray(0, good.length - 200), /truncated/],
      ['bad filter byte', writePng(raw, (y) => (y === 7 ? 9 : 0)), /filter type 9/],
      ['bad CRC', (() => { const b = good.slice(); b[40] ^= 1; return b; })(), /CRC/],
      ['too few rows', writePng({ ...raw, rows: raw.rows.slice(0, 30) }, () => 0), /30 of 40 rows/],
      ['too many rows', writePng({ ...raw, rows: [...raw.rows, ...raw.rows] }, () => 1), /longer than/],
      ['not zlib', writePng(raw, () => 0, (idat) => [{ type: 'IDAT', data: idat.map((v, i) => (i < 2 ? 0xff : v)) }]), /inflate/],
    ];
    for (const [what, bytes, message] of cases) {
      let e: ImageInputError;
      try {
        e = errorOf(() => decodePngScaled(bytes, h, 4));
      } catch (err) {
        throw new Error(`${what}: ${(err as Error).message}`);
      }
      expect(e, what).toBeInstanceOf(ImageInputError);
      expect(e.code, what).toBe('undecodable_image');
      expect(e.message, what).toMatch(message);
    }
    const noPalette = randomPng(10, 10, 3, 8, 4);
    delete noPalette.palette;
    expect(errorOf(() => decodePngScaled(writePng(noPalette, () => 0), noPalette.header, 2)).message).toMatch(/PLTE/);
  });

  it('a zlib bomb (megabytes of zeros after the rows) is refused once past 64 kB of padding', () => {
    const raw = randomPng(16, 16, 0, 8, 5);
    expect(decodePngScaled(writePng(raw, () => 0, undefined, 1000), raw.header, 2)).not.toBeNull(); // a little padding is fine
    const bomb = writePng(raw, () => 0, undefined, 32 << 20);
    expect(bomb.length).toBeLessThan(64 << 10);
    const e = errorOf(() => decodePngScaled(bomb, raw.header, 2));
    expect(e.code).toBe('undecodable_image');
    expect(e.message).toMatch(/longer than a 16x16 image/);
  });
});
