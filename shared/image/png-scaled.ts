import { Unzlib } from 'fflate';
import { ImageInputError, type RgbImage } from './types';

/**
 * A PNG decoder that shrinks while it inflates: scanlines are inflated, unfiltered and converted
 * one at a time (only the previous row is kept, as the filters need it) and averaged into k×k
 * boxes, so memory is O(width + output) instead of the ~3–8 bytes per pixel of a full decode:
 * a 12 MP screenshot becomes 504×378 without a 36 MB buffer. Each output pixel is the exact mean
 * (rounded) of the 8-bit RGB pixels of its box, what a full decode and an area downscale give.
 *
 * Non-interlaced PNGs of every colour type and bit depth; alpha (channel or tRNS) is composited
 * over white. Returns null for interlaced (Adam7) files, which the caller decodes in full.
 * Truncated or corrupt data (bad CRC, zlib errors, too little or too much image data) throws
 * `ImageInputError('undecodable_image')`.
 */

export interface PngHeader {
  width: number;
  height: number;
  depth: number;
  colorType: number;
  interlace: number;
}

const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

const corrupt = (what: string) => new ImageInputError('undecodable_image', `PNG ${what}`);

const CRC_TABLE = (() => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
})();

function crc32(b: Uint8Array, start: number, end: number): number {
  let c = -1;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ b[i]) & 255] ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

/** Output size at box factor k: each side rounded up (the last box holds what is left). */
export function pngScaledSize(width: number, height: number, k: number): { width: number; height: number } {
  return { width: Math.ceil(width / k), height: Math.ceil(height / k) };
}

/** Decodes a non-interlaced PNG averaged over k×k boxes; null for interlaced files. */
export function decodePngScaled(bytes: Uint8Array, header: PngHeader, k: number): RgbImage | null {
  const { width, height, depth, colorType } = header;
  if (header.interlace !== 0) return null;
  const channels = CHANNELS[colorType];
  if (!channels || ![1, 2, 4, 8, 16].includes(depth)) throw corrupt(`has an invalid colour type/bit depth (${colorType}/${depth})`);
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`PNG box factor must be a positive integer, got ${k}`);
  const u32 = (o: number) => ((bytes[o] << 24) | (bytes[o + 1] << 16) | (bytes[o + 2] << 8) | bytes[o + 3]) >>> 0;
  const out = pngScaledSize(width, height, k);
  const maxv = (1 << depth) - 1;
  const rowBytes = Math.ceil((width * channels * depth) / 8);
  const bpp = Math.max(1, (channels * depth) >> 3); // filter distance in bytes
  let prev = new Uint8Array(rowBytes);
  let cur = new Uint8Array(rowBytes);
  let filled = -1; // bytes of the current row so far; -1 = its filter byte is next
  let filter = 0;
  let y = 0;
  let extra = 0;
  // Colour lookup for palette / gray at ≤ 8 bits: sample → RGB over white, built once.
  let lut: Uint8Array | null = null;
  let key: number[] | null = null;
  let tables = false;
  const sums = new Uint32Array(out.width * 3);
  const data = new Uint8Array(out.width * out.height * 3);
  const rgb = new Uint8Array(width * 3);

  const sample = (row: Uint8Array, i: number): number => {
    if (depth === 8) return row[i];
    if (depth === 16) return (row[2 * i] << 8) | row[2 * i + 1];
    const bit = i * depth;
    return (row[bit >> 3] >> (8 - depth - (bit & 7))) & maxv;
  };
  const over8 = depth === 8 && (channels === 2 || channels === 4) ? alphaOverWhite() : null;
  const toRgb = (row: Uint8Array): Uint8Array => {
    if (depth === 8 && !key && !lut) {
      if (channels === 3) return row;
      for (let x = 0, s = 0, o = 0; x < width; x++, s += channels, o += 3) {
        if (channels === 1) {
          rgb[o] = rgb[o + 1] = rgb[o + 2] = row[s];
        } else if (channels === 2) {
          rgb[o] = rgb[o + 1] = rgb[o + 2] = over8![(row[s + 1] << 8) | row[s]];
        } else {
          const a = row[s + 3] << 8;
          rgb[o] = over8![a | row[s]];
          rgb[o + 1] = over8![a | row[s + 1]];
          rgb[o + 2] = over8![a | row[s + 2]];
        }
      }
      return rgb;
    }
    if (lut) {
      for (let x = 0; x < width; x++) {
        const c = sample(row, x) * 3;
        rgb[x * 3] = lut[c];
        rgb[x * 3 + 1] = lut[c + 1];
        rgb[x * 3 + 2] = lut[c + 2];
      }
      return rgb;
    }
    const colours = channels === 2 || channels === 4 ? channels - 1 : channels;
    const alpha = colours !== channels;
    for (let x = 0; x < width; x++) {
      const s = x * channels;
      let a = alpha ? sample(row, s + colours) : maxv;
      const v0 = sample(row, s);
      const v1 = colours === 1 ? v0 : sample(row, s + 1);
      const v2 = colours === 1 ? v0 : sample(row, s + 2);
      if (key && v0 === key[0] && (colours === 1 || (v1 === key[1] && v2 === key[2]))) a = 0;
      rgb[x * 3] = Math.round(((v0 * a) / maxv + maxv - a) * (255 / maxv));
      rgb[x * 3 + 1] = Math.round(((v1 * a) / maxv + maxv - a) * (255 / maxv));
      rgb[x * 3 + 2] = Math.round(((v2 * a) / maxv + maxv - a) * (255 / maxv));
    }
    return rgb;
  };
  const boxOf = Int32Array.from({ length: width }, (_, x) => Math.floor(x / k) * 3);
  const emit = (oy: number, rows: number) => {
    for (let ox = 0; ox < out.width; ox++) {
      const n = Math.min(k, width - ox * k) * rows;
      for (let c = 0; c < 3; c++) {
        data[(oy * out.width + ox) * 3 + c] = Math.round(sums[ox * 3 + c] / n);
        sums[ox * 3 + c] = 0;
      }
    }
  };
  const finishRow = () => {
    unfilter(filter, cur, prev, bpp);
    const px = toRgb(cur);
    for (let x = 0, i = 0; x < width; x++, i += 3) {
      const o = boxOf[x];
      sums[o] += px[i];
      sums[o + 1] += px[i + 1];
      sums[o + 2] += px[i + 2];
    }
    y++;
    if (y % k === 0 || y === height) emit(Math.floor((y - 1) / k), y - Math.floor((y - 1) / k) * k);
    [prev, cur] = [cur, prev];
    filled = -1;
  };
  const inflator = new Unzlib((chunk) => {
    for (let i = 0; i < chunk.length; ) {
      if (y >= height) {
        // A little zero padding is tolerated (some encoders write it); more is not image data.
        extra += chunk.length - i;
        for (; i < chunk.length; i++) if (chunk[i] !== 0) throw corrupt(`image data is longer than a ${width}x${height} image`);
        if (extra > 65536) throw corrupt(`image data is longer than a ${width}x${height} image`);
        return;
      }
      if (filled < 0) {
        filter = chunk[i++];
        if (filter > 4) throw corrupt(`row ${y} has an unknown filter type ${filter}`);
        filled = 0;
        continue;
      }
      const n = Math.min(rowBytes - filled, chunk.length - i);
      cur.set(chunk.subarray(i, i + n), filled);
      filled += n;
      i += n;
      if (filled === rowBytes) finishRow();
    }
  });

  let palette: Uint8Array | null = null;
  let trns: Uint8Array | null = null;
  let ended = false;
  for (let p = 8; p + 12 <= bytes.length; ) {
    const len = u32(p);
    if (p + 12 + len > bytes.length) throw corrupt(`chunk at byte ${p} is truncated`);
    const type = String.fromCharCode(bytes[p + 4], bytes[p + 5], bytes[p + 6], bytes[p + 7]);
    if (crc32(bytes, p + 4, p + 8 + len) !== u32(p + 8 + len)) throw corrupt(`${type} chunk has a bad CRC`);
    const body = bytes.subarray(p + 8, p + 8 + len);
    if (type === 'IHDR' && p !== 8) throw corrupt('has more than one IHDR chunk');
    if (type === 'PLTE') palette = body;
    else if (type === 'tRNS') trns = body;
    else if (type === 'IDAT') {
      // PLTE and tRNS come before the first IDAT (PNG §5.6), so the tables are complete here.
      if (!tables) {
        [lut, key] = colourTables(colorType, depth, palette, trns);
        tables = true;
      }
      try {
        // Steps of 8 kB: deflate expands up to ~1032:1, so one push never inflates more than ~8 MB.
        for (let o = 0; o < body.length; o += 8192) inflator.push(body.subarray(o, o + 8192));
      } catch (e) {
        if (e instanceof ImageInputError) throw e;
        throw corrupt(`image data does not inflate (${e instanceof Error ? e.message : String(e)})`);
      }
    } else if (type === 'IEND') {
      ended = true;
      break;
    }
    p += 12 + len;
  }
  if (!ended && y < height) throw corrupt(`data is truncated: ${y} of ${height} rows`);
  if (y < height) throw corrupt(`image data ends after ${y} of ${height} rows`);
  return { width: out.width, height: out.height, data };
}

let overWhite: Uint8Array | null = null;

/** over[(a << 8) | v] = round((v·a)/255 + 255 − a): an 8-bit sample with alpha a over white (built once). */
function alphaOverWhite(): Uint8Array {
  if (overWhite) return overWhite;
  overWhite = new Uint8Array(65536);
  for (let a = 0; a < 256; a++) for (let v = 0; v < 256; v++) overWhite[(a << 8) | v] = Math.round((v * a) / 255 + 255 - a);
  return overWhite;
}

/** Palette (or ≤ 8-bit gray) → RGB lookup over white, and the tRNS colour key of the other types. */
function colourTables(colorType: number, depth: number, palette: Uint8Array | null, trns: Uint8Array | null): [Uint8Array | null, number[] | null] {
  if (colorType === 3) {
    if (!palette || palette.length % 3 !== 0) throw corrupt('indexed image has no valid PLTE chunk');
    const lut = new Uint8Array(256 * 3).fill(255); // out-of-range indices show as white
    for (let i = 0; i < palette.length / 3; i++) {
      const a = trns && i < trns.length ? trns[i] : 255;
      for (let c = 0; c < 3; c++) lut[i * 3 + c] = Math.round((palette[i * 3 + c] * a + 255 * (255 - a)) / 255);
    }
    return [lut, null];
  }
  const u16 = (o: number) => (trns![o] << 8) | trns![o + 1];
  if (colorType === 0 && trns && trns.length >= 2) return [null, [u16(0)]];
  if (colorType === 2 && trns && trns.length >= 6) return [null, [u16(0), u16(2), u16(4)]];
  return [null, null];
}

/** Reverses one scanline's filter in place (PNG spec §9), given the unfiltered row above. */
function unfilter(type: number, row: Uint8Array, up: Uint8Array, bpp: number): void {
  const n = row.length;
  if (type === 1) for (let i = bpp; i < n; i++) row[i] += row[i - bpp];
  else if (type === 2) for (let i = 0; i < n; i++) row[i] += up[i];
  else if (type === 3) {
    for (let i = 0; i < n; i++) row[i] += ((i >= bpp ? row[i - bpp] : 0) + up[i]) >> 1;
  } else if (type === 4) {
    for (let i = 0; i < n; i++) {
      const a = i >= bpp ? row[i - bpp] : 0;
      const b = up[i];
      const c = i >= bpp ? up[i - bpp] : 0;
      const p = a + b - c;
      const pa = Math.abs(p - a);
      const pb = Math.abs(p - b);
      const pc = Math.abs(p - c);
      row[i] += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }
  }
}
