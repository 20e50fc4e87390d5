import { describe, expect, it } from 'vitest';
import jpeg from 'jpeg-js';
import { encode as encodePng } from 'fast-png';
import { decodeImage, sniffImageType } from '../shared/image/decode';
import { jpegSegments, tinyJpeg } from './helpers/hostile-inputs';
import { resizeToFloat } from '../shared/image/resize';
import type { RgbImage } from '../shared/image/types';
import { errorOf } from './helpers/jpeg-bits';

/** Left half red, right half blue; sizes are multiples of 16 so JPEG blocks don't mix the halves. */
function halves(w: number, h: number): Uint8Array {
  const rgba = new Uint8Array(w * h * 4);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) rgba.set(x < w / 2 ? [220, 20, 20, 255] : [20, 20, 220, 255], (y * w + x) * 4);
  return rgba;
}

function jpegOf(w: number, h: number, rgba = halves(w, h)): Uint8Array {
  return new Uint8Array(jpeg.encode({ width: w, height: h, data: rgba }, 95).data);
}

function px(img: RgbImage, x: number, y: number): number[] {
  const i = (y * img.width + x) * 3;
  return Array.from(img.data.subarray(i, i + 3));
}

function expectClose(actual: number[], expected: number[], tol: number): void {
  actual.forEach((v, i) => expect(Math.abs(v - expected[i])).toBeLessThanOrEqual(tol));
}

/** APP1 Exif segment (big-endian TIFF) holding only the orientation tag. */
function exifSegment(orientation: number): Uint8Array {
  const tiff = [0x4d, 0x4d, 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, orientation, 0, 0, 0, 0, 0, 0, 0, 0];
  const body = [0x45, 0x78, 0x69, 0x66, 0, 0, ...tiff];
  const len = body.length + 2;
  return new Uint8Array([0xff, 0xe1, len >> 8, len & 0xff, ...body]);
}

function withExif(jpg: Uint8Array, orientation: number): Uint8Array {
  const seg = exifSegment(orientation);
  const out = new Uint8Array(jpg.length + seg.length);
  out.set(jpg.subarray(0, 2));
  out.set(seg, 2);
  out.set(jpg.subarray(2), 2 + seg.length);
  return out;
}

describe('sniffImageType', () => {
  it('recognises JPEG and PNG by magic bytes only', () => {
    expect(sniffImageType(jpegOf(16, 16))).toBe('jpeg');
    expect(sniffImageType(encodePng({ width: 1, height: 1, data: new Uint8Array(3), channels: 3 }))).toBe('png');
    expect(sniffImageType(new TextEncoder().encode('GIF89a....'))).toBeNull();
    expect(sniffImageType(new Uint8Array(0))).toBeNull();
  });
});

describe('decodeImage: JPEG', () => {
  it('decodes to RGB with the right size and colours', () => {
    const img = decodeImage(jpegOf(32, 16));
    expect([img.width, img.height, img.data.length]).toEqual([32, 16, 32 * 16 * 3]);
    expectClose(px(img, 2, 8), [220, 20, 20], 12);
    expectClose(px(img, 29, 8), [20, 20, 220], 12);
  });

  it('applies EXIF orientation 6 (rotate 90° clockwise): left half becomes the top half', () => {
    const img = decodeImage(withExif(jpegOf(32, 16), 6));
    expect([img.width, img.height]).toEqual([16, 32]);
    expectClose(px(img, 8, 2), [220, 20, 20], 12);
    expectClose(px(img, 8, 29), [20, 20, 220], 12);
  });

  it('applies EXIF orientation 3 (rotate 180°)', () => {
    const img = decodeImage(withExif(jpegOf(32, 16), 3));
    expect([img.width, img.height]).toEqual([32, 16]);
    expectClose(px(img, 2, 8), [20, 20, 220], 12);
  });

  it('rejects truncated JPEGs as undecodable (415)', () => {
    const jpg = jpegOf(64, 48);
    for (const cut of [jpg.length >> 1, jpg.length - 40]) {
      const e = errorOf(() => decodeImage(jpg.subarray(0, cut)));
      expect([e.code, e.status]).toEqual(['undecodable_image', 415]);
      expect(e.message).toMatch(/JPEG/);
    }
    const headerOnly = errorOf(() => decodeImage(jpg.subarray(0, 20)));
    expect(headerOnly.code).toBe('undecodable_image');
  });

  it('rejects a header declaring 65535x65535 with 413 before decoding', () => {
    // SOI + SOF0 (8-bit, 65535 lines × 65535 samples, 3 components) and nothing else.
    const sof = [0xff, 0xc0, 0, 17, 8, 0xff, 0xff, 0xff, 0xff, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1];
    const bytes = new Uint8Array([0xff, 0xd8, ...sof, 0xff, 0xd9]);
    const t0 = performance.now();
    const e = errorOf(() => decodeImage(bytes));
    expect(performance.now() - t0).toBeLessThan(50); // nothing 4-gigapixel-sized was allocated
    expect([e.code, e.status]).toEqual(['image_too_large', 413]);
    expect(e.message).toContain('65535x65535');
    expect(e.message).toContain('24.0 MP');
  });

  it('names a custom pixel limit, and maps the decoder memory budget to 413', () => {
    const jpg = jpegOf(256, 256);
    expect(errorOf(() => decodeImage(jpg, { maxPixels: 10_000 })).message).toContain('10000 pixels');
    const e = errorOf(() => decodeImage(jpg, { maxMemoryMB: 0.5 }));
    expect([e.code, e.status]).toEqual(['image_too_large', 413]);
    expect(e.message).toContain('0.5 MB');
  });
});

describe('decodeImage: large JPEGs decode at reduced scale', () => {
  /** JFIF RGB → YCbCr, for the hostile-input helper's writer (it stores component samples as given). */
  const ycc = ([r, g, b]: number[]) => [
    0.299 * r + 0.587 * g + 0.114 * b,
    128 - 0.168736 * r - 0.331264 * g + 0.5 * b,
    128 + 0.5 * r - 0.418688 * g - 0.081312 * b,
  ];
  const withSof = (b: Uint8Array, w: number, h: number) => {
    const out = b.slice();
    const sof = jpegSegments(out).find((s) => s.marker === 0xc0)!;
    out.set([h >> 8, h & 255, w >> 8, w & 255], sof.offset + 5);
    return out;
  };

  it('decodes a 12 MP phone-size JPEG (4032x3024) with its short side >= 256, where it used to get 413', () => {
    const red = ycc([220, 20, 20]);
    const blue = ycc([20, 20, 220]);
    const big = tinyJpeg({ width: 4032, height: 3024, components: 3, sample: (x, _y, c) => (x < 2016 ? red : blue)[c] });
    const img = decodeImage(big);
    expect([img.width, img.height]).toEqual([504, 378]); // 1/8: 378 >= 256
    expect(Math.min(img.width, img.height)).toBeGreaterThanOrEqual(256);
    expectClose(px(img, 10, 200), [220, 20, 20], 12);
    expectClose(px(img, 493, 200), [20, 20, 220], 12);
    // Forced to full size it goes to jpeg-js, whose memory budget still refuses it.
    const e = errorOf(() => decodeImage(big, { minSide: 3024 }));
    expect([e.code, e.status]).toEqual(['image_too_large', 413]);
  });

  it('applies EXIF orientation after a reduced-scale decode', () => {
    const img = decodeImage(withExif(jpegOf(1024, 768), 6));
    expect([img.width, img.height]).toEqual([384, 512]); // 1/2 scale, then rotated
    expectClose(px(img, 192, 10), [220, 20, 20], 12);
    expectClose(px(img, 192, 500), [20, 20, 220], 12);
  });

  it('holds the pixel limit to the decoded size, with a ceiling on the declared one', () => {
    const tiny = tinyJpeg({ width: 16, height: 16, components: 3 });
    // 48 MP declared: decoded at 1/8 it is within 24 MP, so the decoder runs and finds the data missing.
    expect([errorOf(() => decodeImage(withSof(tiny, 8000, 6000))).status]).toEqual([415]);
    // 81 MP declared: over the 64 MP ceiling, refused before any work.
    const e = errorOf(() => decodeImage(withSof(tiny, 9000, 9000)));
    expect([e.code, e.status]).toEqual(['image_too_large', 413]);
    expect(e.message).toContain('9000x9000');
    // maxPixels applies to the decoded size: 1/8 of 4000x3000 is 500x375.
    const mid = tinyJpeg({ width: 4000, height: 3000, components: 1 });
    expect(decodeImage(mid, { maxPixels: 200_000 }).width).toBe(500);
    expect(errorOf(() => decodeImage(mid, { maxPixels: 150_000 })).status).toBe(413);
  });
});

describe('decodeImage: PNG', () => {
  it('decodes 8-bit RGB exactly', () => {
    const data = Uint8Array.from({ length: 5 * 4 * 3 }, (_, i) => (i * 37) % 256);
    const img = decodeImage(encodePng({ width: 5, height: 4, data, channels: 3, depth: 8 }));
    expect([img.width, img.height]).toEqual([5, 4]);
    expect(Array.from(img.data)).toEqual(Array.from(data));
  });

  it('composites RGBA over white', () => {
    const data = new Uint8Array([255, 0, 0, 255, 0, 0, 255, 0, 0, 0, 0, 128]);
    const img = decodeImage(encodePng({ width: 3, height: 1, data, channels: 4 }));
    expect(px(img, 0, 0)).toEqual([255, 0, 0]); // opaque
    expect(px(img, 1, 0)).toEqual([255, 255, 255]); // fully transparent → white
    expect(px(img, 2, 0)).toEqual([127, 127, 127]); // black at 50% over white
  });

  it('decodes gray, gray+alpha and 16-bit gray', () => {
    const gray = decodeImage(encodePng({ width: 2, height: 1, data: new Uint8Array([0, 200]), channels: 1 }));
    expect(Array.from(gray.data)).toEqual([0, 0, 0, 200, 200, 200]);
    const ga = decodeImage(encodePng({ width: 1, height: 1, data: new Uint8Array([0, 0]), channels: 2 }));
    expect(Array.from(ga.data)).toEqual([255, 255, 255]);
    const g16 = decodeImage(encodePng({ width: 3, height: 1, data: new Uint16Array([0, 32896, 65535]), channels: 1, depth: 16 }));
    expect(Array.from(g16.data)).toEqual([0, 0, 0, 128, 128, 128, 255, 255, 255]);
  });

  it('decodes 16-bit RGBA and 1-bit gray', () => {
    const rgba16 = new Uint16Array([65535, 0, 0, 65535, 0, 65535, 0, 0]);
    const img = decodeImage(encodePng({ width: 2, height: 1, data: rgba16, channels: 4, depth: 16 }));
    expect(Array.from(img.data)).toEqual([255, 0, 0, 255, 255, 255]);
    // 1-bit gray, 3 pixels per row packed MSB first (0b101 → white, black, white), rows byte-padded.
    const bits = decodeImage(encodePng({ width: 3, height: 2, data: new Uint8Array([0b10100000, 0b01000000]), channels: 1, depth: 1 }));
    expect(Array.from(bits.data)).toEqual([255, 255, 255, 0, 0, 0, 255, 255, 255, 0, 0, 0, 255, 255, 255, 0, 0, 0]);
  });

  it('decodes palette images (8-bit and 2-bit indices)', () => {
    const palette = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]];
    const p8 = decodeImage(encodePng({ width: 4, height: 1, data: new Uint8Array([3, 2, 1, 0]), channels: 1, depth: 8, palette }));
    expect(Array.from(p8.data)).toEqual([10, 20, 30, 0, 0, 255, 0, 255, 0, 255, 0, 0]);
    const p2 = decodeImage(encodePng({ width: 4, height: 1, data: new Uint8Array([0b00011011]), channels: 1, depth: 2, palette }));
    expect(Array.from(p2.data)).toEqual([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30]);
  });

  it('rejects truncated or corrupted PNGs as undecodable (415)', () => {
    const data = Uint8Array.from({ length: 32 * 32 * 3 }, (_, i) => (i * 7) % 256);
    const png = encodePng({ width: 32, height: 32, data, channels: 3 });
    for (const bad of [png.subarray(0, png.length >> 1), png.subarray(0, png.length - 13), png.subarray(0, 20)]) {
      const e = errorOf(() => decodeImage(bad));
      expect([e.code, e.status]).toEqual(['undecodable_image', 415]);
    }
    const flipped = png.slice();
    flipped[60] ^= 0xff; // inside IDAT: caught by the CRC check
    expect(errorOf(() => decodeImage(flipped)).code).toBe('undecodable_image');
  });

  it('rejects an IHDR declaring 100000x100000 with 413 before inflating', () => {
    const png = encodePng({ width: 1, height: 1, data: new Uint8Array(3), channels: 3 }).slice();
    new DataView(png.buffer).setUint32(16, 100_000);
    new DataView(png.buffer).setUint32(20, 100_000);
    const e = errorOf(() => decodeImage(png));
    expect([e.code, e.status]).toEqual(['image_too_large', 413]);
    expect(e.message).toContain('100000x100000');
  });
});

describe('decodeImage: unsupported input', () => {
  it('answers 415 listing the accepted types', () => {
    const e = errorOf(() => decodeImage(new TextEncoder().encode('hello, not an image')));
    expect([e.code, e.status]).toEqual(['unsupported_media_type', 415]);
    expect(e.message).toContain('image/jpeg');
    expect(e.message).toContain('image/png');
  });

  it('names recognised but unsupported formats', () => {
    const gif = new TextEncoder().encode('GIF89a\x01\x00\x01\x00');
    expect(errorOf(() => decodeImage(gif)).message).toMatch(/image\/gif.*image\/jpeg, image\/png/);
    const e = errorOf(() => decodeImage(new Uint8Array([1, 2, 3]), { declaredType: 'image/webp' }));
    expect(e.status).toBe(415);
    expect(e.message).toContain('image/webp');
  });

  it('treats bytes that do not match a declared JPEG/PNG type as undecodable (415)', () => {
    const e = errorOf(() => decodeImage(new Uint8Array([1, 2, 3, 4]), { declaredType: 'image/png' }));
    expect([e.code, e.status]).toEqual(['undecodable_image', 415]);
  });
});

describe('resizeToFloat', () => {
  const random = (w: number, h: number, seed = 1): RgbImage => {
    let s = seed;
    const data = Uint8Array.from({ length: w * h * 3 }, () => ((s = (s * 1103515245 + 12345) >>> 0) >>> 16) & 255);
    return { width: w, height: h, data };
  };
  const mean = (a: ArrayLike<number>) => Array.from(a).reduce((s, v) => s + v, 0) / a.length;

  it('keeps a constant image constant (shrink, enlarge, mixed)', () => {
    const img: RgbImage = { width: 37, height: 23, data: new Uint8Array(37 * 23 * 3).fill(91) };
    for (const [w, h] of [[10, 7], [80, 50], [224, 5], [1, 1]]) {
      const out = resizeToFloat(img, w, h);
      expect(out.length).toBe(w * h * 3);
      for (const v of out) expect(v).toBeCloseTo(91, 3);
    }
  });

  it('shrinks 4x4 to 2x2 as exact block means', () => {
    const data = new Uint8Array(16 * 3);
    for (let i = 0; i < 16; i++) data.set([i * 10, 255 - i * 10, i], i * 3);
    const out = resizeToFloat({ width: 4, height: 4, data }, 2, 2);
    const blockMean = (bx: number, by: number, c: number) =>
      ([0, 1].flatMap((dy) => [0, 1].map((dx) => data[((by * 2 + dy) * 4 + bx * 2 + dx) * 3 + c])).reduce((a, b) => a + b) / 4);
    for (let by = 0; by < 2; by++)
      for (let bx = 0; bx < 2; bx++)
        for (let c = 0; c < 3; c++) expect(out[(by * 2 + bx) * 3 + c]).toBeCloseTo(blockMean(bx, by, c), 4);
  });

  it('weights partially covered pixels (3 → 2 columns)', () => {
    const data = new Uint8Array([0, 0, 0, 90, 90, 90, 180, 180, 180]);
    const out = resizeToFloat({ width: 3, height: 1, data }, 2, 1);
    expect(out[0]).toBeCloseTo((0 * 1 + 90 * 0.5) / 1.5, 4);
    expect(out[3]).toBeCloseTo((90 * 0.5 + 180 * 1) / 1.5, 4);
  });

  it('preserves mean brightness', () => {
    const img = random(97, 61);
    expect(mean(resizeToFloat(img, 31, 17))).toBeCloseTo(mean(img.data), 2); // area: exact
    expect(Math.abs(mean(resizeToFloat(img, 224, 224)) - mean(img.data))).toBeLessThan(1.5); // bilinear: close
  });

  it('returns the identity at the same size', () => {
    const img = random(9, 5);
    expect(Array.from(resizeToFloat(img, 9, 5))).toEqual(Array.from(img.data));
  });
});
