import type { RgbImage } from './types';

/**
 * EXIF orientation (1..8) from a JPEG's APP1 "Exif" segment, or 1 when absent or unreadable.
 * Only walks the marker segments before the scan data; never throws.
 */
export function readJpegOrientation(bytes: Uint8Array): number {
  let p = 2; // after SOI
  while (p + 4 <= bytes.length) {
    if (bytes[p] !== 0xff) return 1;
    const marker = bytes[p + 1];
    if (marker === 0xff) { p++; continue; } // fill byte
    if (marker === 0xda || marker === 0xd9) return 1; // SOS / EOI: no Exif before the image data
    const len = (bytes[p + 2] << 8) | bytes[p + 3];
    if (len < 2) return 1;
    if (marker === 0xe1 && isExifHeader(bytes, p + 4)) {
      return orientationFromTiff(bytes.subarray(p + 10, Math.min(bytes.length, p + 2 + len)));
    }
    p += 2 + len;
  }
  return 1;
}

function isExifHeader(b: Uint8Array, p: number): boolean {
  return b[p] === 0x45 && b[p + 1] === 0x78 && b[p + 2] === 0x69 && b[p + 3] === 0x66 && b[p + 4] === 0 && b[p + 5] === 0;
}

function orientationFromTiff(t: Uint8Array): number {
  if (t.length < 8) return 1;
  const le = t[0] === 0x49 && t[1] === 0x49; // "II" little-endian, "MM" big-endian
  if (!le && !(t[0] === 0x4d && t[1] === 0x4d)) return 1;
  const u16 = (o: number) => (le ? t[o] | (t[o + 1] << 8) : (t[o] << 8) | t[o + 1]);
  const u32 = (o: number) => (le ? (u16(o) | (u16(o + 2) << 16)) >>> 0 : ((u16(o) << 16) | u16(o + 2)) >>> 0);
  const ifd = u32(4);
  if (ifd + 2 > t.length) return 1;
  const count = u16(ifd);
  for (let i = 0; i < count; i++) {
    const e = ifd + 2 + i * 12;
    if (e + 12 > t.length) return 1;
    if (u16(e) === 0x0112) {
      const v = u16(e + 8); // SHORT value, left-aligned in the 4-byte value field
      return v >= 1 && v <= 8 ? v : 1;
    }
  }
  return 1;
}

/** Returns the image as it should be displayed for the given EXIF orientation. */
export function applyOrientation(img: RgbImage, orientation: number): RgbImage {
  if (orientation <= 1 || orientation > 8) return img;
  const { width: w, height: h, data: src } = img;
  const swap = orientation >= 5; // 5..8 transpose the axes
  const ow = swap ? h : w;
  const oh = swap ? w : h;
  const out = new Uint8Array(src.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let dx: number, dy: number;
      switch (orientation) {
        case 2: dx = w - 1 - x; dy = y; break; // mirror horizontal
        case 3: dx = w - 1 - x; dy = h - 1 - y; break; // rotate 180
        case 4: dx = x; dy = h - 1 - y; break; // mirror vertical
        case 5: dx = y; dy = x; break; // transpose
        case 6: dx = h - 1 - y; dy = x; break; // rotate 90 CW
        case 7: dx = h - 1 - y; dy = w - 1 - x; break; // transverse
        default: dx = y; dy = w - 1 - x; break; // 8: rotate 90 CCW
      }
      const s = (y * w + x) * 3;
      const d = (dy * ow + dx) * 3;
      out[d] = src[s];
      out[d + 1] = src[s + 1];
      out[d + 2] = src[s + 2];
    }
  }
  return { width: ow, height: oh, data: out };
}
