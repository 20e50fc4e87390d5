import { encode as encodePng } from 'fast-png';
import jpeg from 'jpeg-js';

/** RGBA pixels of a photo-like test image: smooth gradients plus texture. */
export function photoPixels(w: number, h: number): Uint8Array {
  const d = new Uint8Array(w * h * 4);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 4;
      const t = Math.sin(x / 23) * Math.cos(y / 17);
      d[i] = 120 + 80 * t + ((x * 7 + y * 3) % 20);
      d[i + 1] = 100 + 60 * Math.sin((x + y) / 40) + ((x * 5) % 15);
      d[i + 2] = 90 + 70 * Math.cos(y / 30);
      d[i + 3] = 255;
    }
  return d;
}

/** A photo-like baseline JPEG, so sizes and decode times are realistic. */
export function photoJpeg(w: number, h: number, quality = 88): Uint8Array {
  return new Uint8Array(jpeg.encode({ width: w, height: h, data: photoPixels(w, h) }, quality).data);
}

/** The same image as an 8-bit RGBA PNG. */
export function photoPng(w: number, h: number): Uint8Array {
  return encodePng({ width: w, height: h, data: photoPixels(w, h), channels: 4, depth: 8 });
}
