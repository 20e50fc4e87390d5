import jpeg from 'jpeg-js';
import { decode as decodePngRaw, type DecodedPng } from 'fast-png';
import { Unzlib } from 'fflate';
import { applyOrientation, readJpegOrientation } from './exif-orientation';
import { chooseJpegScale, decodeJpegScaled, scaledSize } from './jpeg-scaled';
import { decodePngScaled, type PngHeader } from './png-scaled';
import { ACCEPTED_IMAGE_TYPES, ImageInputError, type RgbImage } from './types';

export type ImageType = 'jpeg' | 'png';

export interface DecodeOptions {
  /** Largest accepted width × height, checked against the header before any pixel buffer exists. */
  maxPixels?: number;
  /** Decoder working-memory budget (MB); jpeg-js enforces it per allocation, PNG is estimated up front. */
  maxMemoryMB?: number;
  /** The client's Content-Type, only used to word errors: the bytes decide the format. */
  declaredType?: string;
  /**
   * Shortest side the decoded image must keep (default 256). A JPEG at least twice this
   * size is decoded at 1/2, 1/4 or 1/8 scale in the DCT domain, the largest that keeps it; a
   * non-interlaced PNG that size is averaged over k×k boxes while it inflates (png-scaled.ts);
   * smaller images (e.g. 224² training photos) decode at full size as before.
   */
  minSide?: number;
}

/**
 * Edge defaults. A Worker isolate has 128 MB, shared with the model's wasm heap. jpeg-js keeps
 * Int32 DCT blocks, component planes and two RGB copies: ~13.5 bytes/pixel for 4:2:0 photos,
 * 21 (measured) for 4:4:4, so 96 MB admits ~7 MP / ~4.7 MP; bigger JPEGs get a 413 before the
 * decoder allocates instead of killing the isolate. The 24 MP cap bounds the rest (e.g. a small
 * PNG that inflates to a huge canvas) and is checked from the header first. JPEGs big
 * enough to decode at 1/2..1/8 scale (see `minSide`) skip jpeg-js: memory O(decoded size), so a
 * 12 MP phone photo decodes to 504×378 in a few MB; `maxPixels` then applies to the decoded size.
 */
export const DEFAULT_MAX_PIXELS = 24_000_000;
export const DEFAULT_MAX_MEMORY_MB = 96;
export const DEFAULT_MIN_SIDE = 256;
/**
 * A JPEG decoded at reduced scale is held to `maxPixels` on its decoded size, so the declared size
 * needs its own ceiling: decoding time still grows with it (every block is Huffman-decoded). 64 MP
 * admits 48-50 MP phone photos (8000×6000, 8160×6120); bigger headers get a 413 before any work.
 */
export const MAX_DECLARED_JPEG_PIXELS = 64_000_000;

const ACCEPTED = ACCEPTED_IMAGE_TYPES.join(', ');

/** Format by magic bytes; null when neither JPEG nor PNG. */
export function sniffImageType(bytes: Uint8Array): ImageType | null {
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (bytes.length >= 8 && PNG_SIGNATURE.every((b, i) => bytes[i] === b)) return 'png';
  return null;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Decodes a JPEG or PNG to RGB (EXIF orientation applied, alpha composited over white). */
export function decodeImage(bytes: Uint8Array, opts: DecodeOptions = {}): RgbImage {
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  const maxMemoryMB = opts.maxMemoryMB ?? DEFAULT_MAX_MEMORY_MB;
  const type = sniffImageType(bytes);
  if (type === null) throw notSupported(bytes, opts.declaredType);

  const label = type === 'jpeg' ? 'JPEG' : 'PNG';
  const png = type === 'png' ? pngHeader(bytes) : null;
  const dims = type === 'jpeg' ? jpegDimensions(bytes) : png;
  if (dims === null) throw new ImageInputError('undecodable_image', `${label} header is truncated or has no image dimensions`);
  if (dims.width === 0 || dims.height === 0) throw new ImageInputError('undecodable_image', `${label} declares an empty image (${dims.width}x${dims.height})`);
  if (type === 'jpeg') return decodeJpegLimited(bytes, dims, opts.minSide ?? DEFAULT_MIN_SIDE, maxPixels, maxMemoryMB);
  if (dims.width * dims.height > maxPixels) throw tooLarge(dims, maxPixels);
  const box = Math.floor(Math.min(dims.width, dims.height) / (opts.minSide ?? DEFAULT_MIN_SIDE));
  if (box >= 2) {
    const img = decodePngScaled(bytes, png!, box);
    if (img) return img;
  }
  return decodePng(bytes, png!, maxMemoryMB);
}

function tooLarge(dims: { width: number; height: number }, maxPixels: number, extra = ''): ImageInputError {
  return new ImageInputError(
    'image_too_large',
    `image is ${dims.width}x${dims.height} (${mp(dims.width * dims.height)} MP); the limit is ${mp(maxPixels)} MP (${maxPixels} pixels)${extra}`,
  );
}

/**
 * Big baseline and progressive JPEGs decode at reduced scale (memory O(output) plus, for
 * progressive ones, a few bytes per 8×8 block; see jpeg-scaled.ts), held to
 * `maxPixels` on the decoded size and to MAX_DECLARED_JPEG_PIXELS on the declared one. Everything
 * else (small images, CMYK...) goes to jpeg-js, held to `maxPixels` as declared and to
 * its memory budget.
 */
function decodeJpegLimited(bytes: Uint8Array, dims: { width: number; height: number }, minSide: number, maxPixels: number, maxMemoryMB: number): RgbImage {
  const declared = dims.width * dims.height;
  const scale = chooseJpegScale(dims.width, dims.height, minSide);
  if (scale > 1) {
    const ceiling = Math.max(maxPixels, MAX_DECLARED_JPEG_PIXELS);
    if (declared > ceiling) throw tooLarge(dims, maxPixels, ` decoded, and ${mp(ceiling)} MP as declared by a JPEG decoded at reduced scale`);
    const out = scaledSize(dims.width, dims.height, scale);
    const outPixels = out.width * out.height;
    if (outPixels > maxPixels) throw tooLarge(dims, maxPixels, ` (${out.width}x${out.height} decoded at 1/${scale} scale)`);
    // Peak: component planes (≤ 3 bytes/pixel, MCU padding aside) + RGB, then RGB + its rotated copy.
    const orientation = readJpegOrientation(bytes);
    const estimate = outPixels * 6 + 65536;
    if (estimate > maxMemoryMB * 1024 * 1024) {
      throw new ImageInputError('image_too_large', `JPEG ${dims.width}x${dims.height} at 1/${scale} scale needs ~${Math.ceil(estimate / 2 ** 20)} MB to decode; the limit is ${maxMemoryMB} MB`);
    }
    const img = decodeJpegScaled(bytes, scale, { maxProgressiveBytes: maxMemoryMB * 1024 * 1024 - estimate });
    if (img) return applyOrientation(img, orientation);
  }
  if (declared > maxPixels) throw tooLarge(dims, maxPixels);
  return decodeJpeg(bytes, maxPixels, maxMemoryMB);
}

function decodeJpeg(bytes: Uint8Array, maxPixels: number, maxMemoryMB: number): RgbImage {
  let raw: { width: number; height: number; data: Uint8Array };
  try {
    raw = jpeg.decode(bytes, {
      useTArray: true, // no Buffer in workerd
      formatAsRGBA: false,
      // Truncated files fail either way; tolerance only accepts complete files with odd MCU counts.
      tolerantDecoding: true,
      maxResolutionInMP: maxPixels / 1e6,
      maxMemoryUsageInMB: maxMemoryMB,
    });
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    if (/maxMemoryUsageInMB|allocate enough memory|maxResolutionInMP/.test(msg)) {
      throw new ImageInputError('image_too_large', `JPEG needs more than the ${maxMemoryMB} MB decoding memory limit (${msg})`);
    }
    throw new ImageInputError('undecodable_image', `JPEG data is truncated or corrupt (${msg})`);
  }
  const img: RgbImage = { width: raw.width, height: raw.height, data: raw.data };
  return applyOrientation(img, readJpegOrientation(bytes));
}

function decodePng(bytes: Uint8Array, dims: PngHeader, maxMemoryMB: number): RgbImage {
  const { width, height, depth, colorType } = dims;
  const channels = ({ 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 } as Record<number, number>)[colorType] ?? 0;
  if (channels === 0 || ![1, 2, 4, 8, 16].includes(depth)) {
    throw new ImageInputError('undecodable_image', `PNG has an invalid colour type/bit depth (${colorType}/${depth})`);
  }
  // Inflated scanlines + unfiltered copy (+ unpacked indices) + RGB output.
  const rowBytes = Math.ceil((width * channels * depth) / 8);
  const estimate = 2 * height * (rowBytes + 1) + width * height * (colorType === 3 || depth < 8 ? 4 : 3);
  if (estimate > maxMemoryMB * 1024 * 1024) {
    throw new ImageInputError('image_too_large', `PNG ${width}x${height} needs ~${Math.ceil(estimate / 2 ** 20)} MB to decode; the limit is ${maxMemoryMB} MB`);
  }
  let png: DecodedPng;
  try {
    checkPngChunks(bytes, dims, 2 * height * (rowBytes + 1));
    png = decodePngRaw(bytes, { checkCrc: true });
  } catch (e) {
    if (e instanceof ImageInputError) throw e;
    const msg = e instanceof Error ? e.message : String(e);
    throw new ImageInputError('undecodable_image', `PNG data is truncated or corrupt (${msg})`);
  }
  return pngToRgb(png, colorType === 3);
}

/**
 * Walks the chunks fast-png reads (up to IEND) before it allocates anything. A second IHDR would
 * replace the dimensions checked against the limits; and fast-png inflates all IDAT data, however
 * much there is, so a zlib bomb (a few kB that inflate to GBs, for a 1-pixel header) would exhaust
 * the isolate. IDAT data is inflated here in small steps, only counting, and refused once it passes
 * `maxInflated` (~2× what the header implies: room for interlacing and sloppy encoders).
 */
function checkPngChunks(b: Uint8Array, h: PngHeader, maxInflated: number): void {
  const u32 = (o: number) => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
  const limit = maxInflated + 65536;
  let inflated = 0;
  const inflator = new Unzlib((chunk) => {
    inflated += chunk.length;
    if (inflated > limit) {
      throw new ImageInputError('undecodable_image', `PNG image data inflates to more than ${limit} bytes, far more than a ${h.width}x${h.height} image holds`);
    }
  });
  let ihdrs = 0;
  for (let p = 8; p + 8 <= b.length; ) {
    const len = u32(p);
    const type = String.fromCharCode(b[p + 4], b[p + 5], b[p + 6], b[p + 7]);
    if (type === 'IEND') break;
    if (type === 'IHDR' && ++ihdrs > 1) throw new ImageInputError('undecodable_image', 'PNG has more than one IHDR chunk');
    if (type === 'IDAT') {
      // Deflate expands at most ~1032:1, so a step this size cannot inflate past twice the limit.
      for (let o = p + 8, end = Math.min(b.length, p + 8 + len); o < end; ) {
        const next = Math.min(end, o + Math.max(1024, Math.min(65536, Math.floor((limit - inflated) / 1032))));
        inflator.push(b.subarray(o, next));
        o = next;
      }
    }
    p += 12 + len;
  }
}

/** Any PNG colour type / bit depth to 8-bit RGB; alpha (channel or tRNS) composited over white. */
function pngToRgb(png: DecodedPng, indexed: boolean): RgbImage {
  const { width, height, depth, channels } = png;
  const n = width * height;
  if (channels === 3 && depth === 8 && !png.transparency?.length) return { width, height, data: png.data as Uint8Array };
  const out = new Uint8Array(n * 3);
  if (indexed) {
    const idx = depth < 8 ? unpack(png.data as Uint8Array, width, height, depth) : (png.data as Uint8Array);
    const lut = new Uint8Array(256 * 3).fill(255); // out-of-range indices show as white
    (png.palette ?? []).forEach((c, i) => {
      const a = c.length > 3 ? c[3] : 255;
      for (let k = 0; k < 3; k++) lut[i * 3 + k] = over(c[k], a, 255);
    });
    for (let i = 0; i < n; i++) {
      const c = idx[i] * 3;
      out[i * 3] = lut[c];
      out[i * 3 + 1] = lut[c + 1];
      out[i * 3 + 2] = lut[c + 2];
    }
    return { width, height, data: out };
  }
  const hasAlpha = channels === 2 || channels === 4;
  const colours = hasAlpha ? channels - 1 : channels;
  const key = png.transparency?.length === colours ? png.transparency : null; // tRNS colour key
  const maxv = (1 << depth) - 1;
  const src = depth < 8 ? unpack(png.data as Uint8Array, width, height, depth) : png.data;
  for (let i = 0; i < n; i++) {
    const s = i * channels;
    let a = hasAlpha ? src[s + colours] : maxv;
    if (key && (colours === 1 ? src[s] === key[0] : src[s] === key[0] && src[s + 1] === key[1] && src[s + 2] === key[2])) a = 0;
    for (let k = 0; k < 3; k++) {
      const v = src[s + (colours === 1 ? 0 : k)];
      out[i * 3 + k] = Math.round(((v * a) / maxv + maxv - a) * (255 / maxv));
    }
  }
  return { width, height, data: out };
}

function over(c: number, a: number, maxv: number): number {
  return Math.round((c * a + 255 * (maxv - a)) / maxv);
}

/** Packed 1/2/4-bit samples (rows padded to whole bytes; PNG allows them for 1 channel only) to bytes. */
function unpack(data: Uint8Array, samplesPerRow: number, rows: number, depth: number): Uint8Array {
  const out = new Uint8Array(samplesPerRow * rows);
  const rowBytes = Math.ceil((samplesPerRow * depth) / 8);
  const mask = (1 << depth) - 1;
  for (let y = 0; y < rows; y++) {
    for (let x = 0; x < samplesPerRow; x++) {
      const bit = x * depth;
      out[y * samplesPerRow + x] = (data[y * rowBytes + (bit >> 3)] >> (8 - depth - (bit & 7))) & mask;
    }
  }
  return out;
}

function pngHeader(b: Uint8Array): PngHeader | null {
  // Signature, then IHDR: length(4) "IHDR"(4) width(4) height(4) depth(1) colourType(1) compression(1) filter(1) interlace(1).
  if (b.length < 29 || b[12] !== 0x49 || b[13] !== 0x48 || b[14] !== 0x44 || b[15] !== 0x52) return null;
  const u32 = (o: number) => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
  return { width: u32(16), height: u32(20), depth: b[24], colorType: b[25], interlace: b[28] };
}

/** Frame size from the first SOFn marker, or null if the header ends before one. */
function jpegDimensions(b: Uint8Array): { width: number; height: number } | null {
  let p = 2;
  while (p + 4 <= b.length) {
    if (b[p] !== 0xff) return null;
    const m = b[p + 1];
    if (m === 0xff) { p++; continue; }
    if (m === 0xd8 || (m >= 0xd0 && m <= 0xd7) || m === 0x01) { p += 2; continue; } // no length field
    if (m === 0xda || m === 0xd9) return null; // scan/EOI before any frame header
    const len = (b[p + 2] << 8) | b[p + 3];
    const isSof = m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;
    if (isSof) {
      if (p + 9 > b.length) return null;
      return { height: (b[p + 5] << 8) | b[p + 6], width: (b[p + 7] << 8) | b[p + 8] };
    }
    p += 2 + len;
  }
  return null;
}

function notSupported(bytes: Uint8Array, declared: string | undefined): ImageInputError {
  const seen = otherFormat(bytes) ?? (declared ? declared.split(';')[0].trim() : undefined);
  if (seen && /^image\/(jpe?g|png)$/i.test(seen)) {
    return new ImageInputError('undecodable_image', `body is declared as ${seen} but is not a valid ${seen.slice(6).toUpperCase()} file`);
  }
  const what = seen ? `unsupported image type ${seen}` : bytes.length === 0 ? 'empty body' : 'unrecognised image data';
  return new ImageInputError('unsupported_media_type', `${what}; accepted types: ${ACCEPTED}`);
}

/** Names a few common formats we do not decode, for a clearer 415 message. */
function otherFormat(b: Uint8Array): string | null {
  const ascii = (o: number, n: number) => String.fromCharCode(...b.subarray(o, o + n));
  if (ascii(0, 4) === 'GIF8') return 'image/gif';
  if (ascii(0, 4) === 'RIFF' && ascii(8, 4) === 'WEBP') return 'image/webp';
  if (ascii(0, 2) === 'BM') return 'image/bmp';
  if (ascii(0, 4) === 'II*\0' || ascii(0, 4) === 'MM\0*') return 'image/tiff';
  if (ascii(4, 4) === 'ftyp') return /avif|avis/.test(ascii(8, 4)) ? 'image/avif' : 'image/heic';
  return null;
}

function mp(pixels: number): string {
  return (pixels / 1e6).toFixed(1);
}
