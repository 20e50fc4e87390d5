import { BitReader, corrupt, FAST_BITS, FAST_MASK, hex, parseHuffman, parseQuant, parseScanHeader, ZIGZAG, type HuffTable } from './jpeg-bits';
import { decodeProgressiveScan, parseProgressiveScan, progressiveBytes, progressiveCoefficients, progressiveToPlanes, type ProgressiveCoefficients } from './jpeg-progressive';
import { ImageInputError, type RgbImage } from './types';

/**
 * A JPEG decoder (ITU T.81 sequential and progressive DCT, Huffman, 8-bit: SOF0, SOF1, SOF2) that decodes
 * straight to 1/1, 1/2, 1/4 or 1/8 of the frame size, in the DCT domain.
 *
 * Every 8×8 block is Huffman-decoded in full (the bitstream has to be walked), but only the
 * coefficients the reduced IDCT uses are dequantised and kept, and an N×8 IDCT per direction
 * (N = 8 / scale) turns them into N×N samples: 1/8 is the DC term alone, 1/4 gives 2×2 samples,
 * 1/2 4×4, 1/1 the full 8×8. Each sample is the exact mean of the full-size decode over its
 * (8/N)×(8/N) pixels (the basis functions averaged over the group; see reducedIdct), i.e. what a
 * full decode followed by an area downscale gives, without the full-size buffer.
 *
 * Samples go straight into one plane per component at the reduced size (bytes, padded to whole
 * MCUs), so memory is O(output): for a 4032×3024 photo at 1/8, ~0.4 MB of planes and 0.6 MB of RGB,
 * never a full-size buffer. A subsampled component (4:2:0 chroma) is decoded at a finer block
 * scale (2× at 4:2:0, capped at 8×8) so it keeps the output resolution; coarser planes are
 * upsampled (nearest, integer ratios) while converting YCbCr → RGB (JFIF). One-component
 * (grayscale) frames become gray RGB.
 *
 * Progressive frames (SOF2) are decoded too, at the same scales: their coefficients are gathered
 * over the scans first (only those the reduced IDCT uses, see jpeg-progressive.ts), then turned
 * into samples once, so memory stays O(output) plus a few bytes per block.
 *
 * Returns null for what it does not decode, so the caller can fall back to a general decoder:
 * lossless, hierarchical or arithmetic-coded frames, 12-bit precision, Adobe APP14
 * files (CMYK/YCCK/RGB transforms), 2- or 4-component frames, unusual sampling factors.
 * Corrupt data (truncated scan, invalid Huffman code, bad segment lengths, missing tables) throws
 * `ImageInputError('undecodable_image')`. Every loop advances through the bytes or is bounded by
 * the block count, and a scan that reads past its data stops at the next MCU boundary.
 */

export type JpegScale = 1 | 2 | 4 | 8;

/** Largest scale s in {8, 4, 2, 1} with min(width, height) / s ≥ minSide (1 when none fits). */
export function chooseJpegScale(width: number, height: number, minSide: number): JpegScale {
  const short = Math.min(width, height);
  for (const s of [8, 4, 2] as const) if (short / s >= minSide) return s;
  return 1;
}

/** Output size of a frame decoded at `scale`: each side rounded up. */
export function scaledSize(width: number, height: number, scale: JpegScale): { width: number; height: number } {
  return { width: Math.ceil(width / scale), height: Math.ceil(height / scale) };
}

/**
 * Decodes a baseline or progressive JPEG at 1/scale of its size; null when the file is not one
 * this decoder handles. `maxProgressiveBytes` caps a progressive frame's coefficient store
 * (image_too_large before it is allocated).
 */
export function decodeJpegScaled(bytes: Uint8Array, scale: JpegScale, opts: { maxProgressiveBytes?: number } = {}): RgbImage | null {
  if (scale !== 1 && scale !== 2 && scale !== 4 && scale !== 8) throw new RangeError(`JPEG scale must be 1, 2, 4 or 8, got ${scale}`);
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) throw corrupt('does not start with an SOI marker');
  const n = 8 / scale;
  const quant: (Uint16Array | null)[] = [null, null, null, null];
  const dcTables: (HuffTable | null)[] = [null, null, null, null];
  const acTables: (HuffTable | null)[] = [null, null, null, null];
  let frame: Frame | null = null;
  let restartInterval = 0;
  let p = 2;
  const len = bytes.length;

  while (p < len) {
    // Between segments: skip anything that is not a marker (libjpeg tolerates such bytes too).
    if (bytes[p] !== 0xff) { p++; continue; }
    if (p + 1 >= len) break;
    const m = bytes[p + 1];
    if (m === 0xff) { p++; continue; } // fill byte
    p += 2;
    if (m === 0x00) continue; // stray stuffed byte
    if (m === 0xd9) break; // EOI
    if (m === 0xd8 || m === 0x01 || (m >= 0xd0 && m <= 0xd7)) continue; // no length field
    if (p + 2 > len) throw corrupt(`segment 0xFF${hex(m)} is truncated`);
    const segLen = (bytes[p] << 8) | bytes[p + 1];
    if (segLen < 2 || p + segLen > len) throw corrupt(`segment 0xFF${hex(m)} has a bad length (${segLen})`);
    const s = p + 2;
    const e = p + segLen;
    p = e;

    if (m === 0xc0 || m === 0xc1 || m === 0xc2) {
      if (frame) throw corrupt('has more than one frame header');
      frame = parseFrame(bytes, s, e, n, m === 0xc2, opts.maxProgressiveBytes ?? Infinity);
      if (!frame) return null;
    } else if ((m >= 0xc3 && m <= 0xcf && m !== 0xc4 && m !== 0xc8) || m === 0xde) {
      // Lossless, hierarchical, arithmetic coding (SOF3/5-7/9-11/13-15, DAC, DHP).
      return null;
    } else if (m === 0xdb) {
      parseQuant(bytes, s, e, quant);
    } else if (m === 0xc4) {
      parseHuffman(bytes, s, e, dcTables, acTables);
    } else if (m === 0xdd) {
      if (segLen !== 4) throw corrupt(`DRI segment has length ${segLen}, not 4`);
      restartInterval = (bytes[s] << 8) | bytes[s + 1];
    } else if (m === 0xee) {
      // Adobe APP14: colour transform flags (CMYK, YCCK, RGB) that this decoder does not implement.
      if (e - s >= 5 && bytes[s] === 0x41 && bytes[s + 1] === 0x64 && bytes[s + 2] === 0x6f && bytes[s + 3] === 0x62 && bytes[s + 4] === 0x65) return null;
    } else if (m === 0xda) {
      if (!frame) throw corrupt('has a scan before the frame header');
      if (frame.progressive) {
        p = decodeProgressiveScan(bytes, p, frame, parseProgressiveScan(bytes, s, e, frame, dcTables, acTables), restartInterval);
      } else {
        const scan = parseScan(bytes, s, e, frame, dcTables, acTables, quant);
        p = decodeScan(bytes, p, frame, scan, restartInterval);
      }
    }
    // APPn, COM, DNL and anything else: skipped.
  }

  if (!frame) throw corrupt('has no frame header');
  for (const c of frame.components) if (!c.decoded) throw corrupt(`has no scan for component ${c.id}`);
  if (frame.progressive) progressiveToPlanes(frame, quant, writeBlock);
  return toRgb(frame, scale);
}

// ---------------------------------------------------------------------------------------------

export interface Component {
  id: number;
  h: number;
  v: number;
  tq: number;
  /** Blocks per row / column, padded to whole MCUs (what an interleaved scan codes). */
  blocksX: number;
  blocksY: number;
  /**
   * Output samples per block across / down: N = 8 / scale, times the subsampling ratio (capped at
   * 8), so that subsampled chroma keeps the output's resolution where it has it.
   */
  nh: number;
  nv: number;
  /** Reduced-size samples, `stride` = blocksX · nh per row; clamped + rounded on write. */
  plane: Uint8ClampedArray;
  stride: number;
  decoded: boolean;
  /** Progressive frames only: coefficients gathered over the scans (see jpeg-progressive.ts). */
  coefs?: ProgressiveCoefficients;
}

export interface Frame {
  width: number;
  height: number;
  hmax: number;
  vmax: number;
  mcusX: number;
  mcusY: number;
  components: Component[];
  progressive: boolean;
}

interface ScanComponent {
  c: Component;
  dc: HuffTable;
  ac: HuffTable;
  /** Dequantisation factor per zig-zag index; 0 for coefficients the N×N IDCT does not use. */
  qz: Float64Array;
  pred: number;
}

interface Scan {
  comps: ScanComponent[];
}

/**
 * Reduced IDCT matrices, N × 8: R[j·8 + u] is what coefficient u contributes to output sample j.
 * The 8-point JPEG basis is a(u)·cos((2x + 1)uπ/16), a(0) = √(1/8), a(u > 0) = 1/2. 'box': its mean
 * over the 8/N pixels x of group j, so each output sample is exactly the mean of the full-size
 * decode over its group (full decode + area downscale, without the full-size buffer). 'truncate':
 * the top-left N×N coefficients through an N-point IDCT (the basis sampled at the group centres).
 */
function reducedIdct(n: number, mode: 'box' | 'truncate'): Float64Array {
  const m = new Float64Array(n * 8);
  const k = 8 / n;
  for (let j = 0; j < n; j++)
    for (let u = 0; u < 8; u++) {
      const a = u === 0 ? Math.SQRT1_2 / 2 : 0.5;
      if (mode === 'truncate') {
        m[j * 8 + u] = u < n ? a * Math.cos(((2 * j + 1) * u * Math.PI) / (2 * n)) : 0;
      } else {
        let sum = 0;
        for (let x = j * k; x < (j + 1) * k; x++) sum += Math.cos(((2 * x + 1) * u * Math.PI) / 16);
        const v = (a * sum) / k;
        m[j * 8 + u] = Math.abs(v) < 1e-12 ? 0 : v;
      }
    }
  return m;
}

/**
 * 'box' is used: measured against jpeg-js + resizeToFloat (area), it is exact up to rounding (mean
 * absolute error ~0.6 levels at every scale), where 'truncate' was off by up to ~1.9; and area
 * averaging is what the preprocessing does to every image anyway. It costs little: the 1/8 case is
 * the DC term alone either way, and only rows that hold non-zero coefficients are transformed.
 */
const IDCT: Record<number, Float64Array> = {};
for (const n of [1, 2, 4, 8]) IDCT[n] = reducedIdct(n, 'box');

/** Frequencies u (0..7) that contribute to an N-sample output: a column of R that is not all zero. */
export function usedFrequencies(n: number): boolean[] {
  const m = IDCT[n];
  return Array.from({ length: 8 }, (_, u) => Array.from({ length: n }, (_, j) => m[j * 8 + u]).some((v) => v !== 0));
}

/** SOF0/SOF1/SOF2 → frame with its planes; null for what this decoder does not handle. */
function parseFrame(b: Uint8Array, s: number, e: number, n: number, progressive: boolean, maxProgressiveBytes: number): Frame | null {
  if (e - s < 6) throw corrupt('frame header is truncated');
  const precision = b[s];
  const height = (b[s + 1] << 8) | b[s + 2];
  const width = (b[s + 3] << 8) | b[s + 4];
  const nf = b[s + 5];
  if (e - s < 6 + 3 * nf) throw corrupt(`frame header is too short for its ${nf} components`);
  if (precision !== 8) return null;
  if (nf !== 1 && nf !== 3) return null;
  if (width === 0 || height === 0) throw corrupt(`declares an empty or DNL-sized image (${width}x${height})`);
  const raw: { id: number; h: number; v: number; tq: number }[] = [];
  for (let i = 0; i < nf; i++) {
    const o = s + 6 + 3 * i;
    const id = b[o];
    const h = b[o + 1] >> 4;
    const v = b[o + 1] & 15;
    const tq = b[o + 2];
    if (h < 1 || h > 4 || v < 1 || v > 4) throw corrupt(`component ${id} has sampling factors ${h}x${v}`);
    if (tq > 3) throw corrupt(`component ${id} uses quantisation table ${tq}`);
    if (raw.some((r) => r.id === id)) throw corrupt(`has two components with id ${id}`);
    raw.push({ id, h, v, tq });
  }
  const hmax = Math.max(...raw.map((r) => r.h));
  const vmax = Math.max(...raw.map((r) => r.v));
  // Nearest upsampling needs whole ratios (1:1, 2:1, 4:1...); anything else goes to the fallback.
  if (raw.some((r) => hmax % r.h !== 0 || vmax % r.v !== 0)) return null;
  // The reduced IDCTs exist for 1, 2, 4 and 8 samples per block; 3:1 sampling and the like fall back.
  const sides = raw.flatMap((r) => [Math.min(8, (n * hmax) / r.h), Math.min(8, (n * vmax) / r.v)]);
  if (sides.some((k) => !(k in IDCT))) return null;
  const mcusX = Math.ceil(width / (8 * hmax));
  const mcusY = Math.ceil(height / (8 * vmax));
  const components = raw.map((r): Component => {
    const blocksX = mcusX * r.h;
    const blocksY = mcusY * r.v;
    const nh = Math.min(8, (n * hmax) / r.h);
    const nv = Math.min(8, (n * vmax) / r.v);
    const stride = blocksX * nh;
    return { ...r, blocksX, blocksY, nh, nv, stride, plane: new Uint8ClampedArray(stride * blocksY * nv), decoded: false };
  });
  const frame: Frame = { width, height, hmax, vmax, mcusX, mcusY, components, progressive };
  if (progressive) {
    const used = components.map((c) => {
      const usedH = usedFrequencies(c.nh);
      const usedV = usedFrequencies(c.nv);
      return (k: number) => usedV[ZIGZAG[k] >> 3] && usedH[ZIGZAG[k] & 7];
    });
    const kept = used.map((u) => Array.from({ length: 64 }, (_, k) => u(k)).filter(Boolean).length);
    const bytes = components.reduce((sum, c, i) => sum + progressiveBytes(c.blocksX * c.blocksY, kept[i]), 0);
    if (bytes > maxProgressiveBytes) {
      throw new ImageInputError('image_too_large', `progressive JPEG ${width}x${height} needs ~${Math.ceil(bytes / 2 ** 20)} MB of coefficients at 1/${8 / n} scale; the limit is ${Math.floor(maxProgressiveBytes / 2 ** 20)} MB`);
    }
    components.forEach((c, i) => (c.coefs = progressiveCoefficients(c, used[i])));
  }
  return frame;
}

function parseScan(
  b: Uint8Array, s: number, e: number, frame: Frame,
  dcTables: (HuffTable | null)[], acTables: (HuffTable | null)[], quant: (Uint16Array | null)[],
): Scan {
  const { comps, ss, se, ah, al } = parseScanHeader(b, s, e, frame.components);
  if (ss !== 0 || se !== 63 || ah !== 0 || al !== 0) throw corrupt(`sequential scan has spectral selection ${ss}..${se} / approximation ${ah}/${al}`);
  return {
    comps: comps.map(({ c, td, ta }) => {
      const dc = dcTables[td];
      const ac = acTables[ta];
      if (!dc || !ac) throw corrupt(`scan uses an undefined Huffman table for component ${c.id}`);
      const q = quant[c.tq];
      if (!q) throw corrupt(`component ${c.id} uses undefined quantisation table ${c.tq}`);
      const qz = new Float64Array(64);
      const usedH = usedFrequencies(c.nh);
      const usedV = usedFrequencies(c.nv);
      for (let k = 0; k < 64; k++) {
        const nat = ZIGZAG[k];
        if (usedV[nat >> 3] && usedH[nat & 7]) qz[k] = q[nat];
      }
      return { c, dc, ac, qz, pred: 0 };
    }),
  };
}

/** Decodes one scan's entropy-coded data starting at `pos`; returns where the reader stopped. */
function decodeScan(data: Uint8Array, pos: number, frame: Frame, scan: Scan, restartInterval: number): number {
  const r = new BitReader(data, pos);
  const coef = new Float64Array(64);
  const tmp = new Float64Array(64);
  const comps = scan.comps;
  const single = comps.length === 1;
  let mcusX: number;
  let mcusY: number;
  if (single) {
    // Non-interleaved: one block per MCU, only the blocks that cover the component's samples.
    const c = comps[0].c;
    mcusX = Math.ceil(Math.ceil((frame.width * c.h) / frame.hmax) / 8);
    mcusY = Math.ceil(Math.ceil((frame.height * c.v) / frame.vmax) / 8);
  } else {
    mcusX = frame.mcusX;
    mcusY = frame.mcusY;
  }
  const total = mcusX * mcusY;
  let mcu = 0;
  for (let my = 0; my < mcusY; my++) {
    for (let mx = 0; mx < mcusX; mx++) {
      for (let i = 0; i < comps.length; i++) {
        const sc = comps[i];
        const c = sc.c;
        if (single) {
          decodeBlock(r, sc, coef, tmp, mx, my);
        } else {
          for (let v = 0; v < c.v; v++)
            for (let h = 0; h < c.h; h++) decodeBlock(r, sc, coef, tmp, mx * c.h + h, my * c.v + v);
        }
      }
      mcu++;
      r.check();
      if (restartInterval > 0 && mcu % restartInterval === 0 && mcu < total) {
        r.restart();
        for (let i = 0; i < comps.length; i++) comps[i].pred = 0;
      }
    }
  }
  for (const sc of comps) sc.c.decoded = true;
  return r.pos;
}

/** Huffman-decodes one block, keeps the coefficients the reduced IDCT uses and writes N×N samples. */
function decodeBlock(r: BitReader, sc: ScanComponent, coef: Float64Array, tmp: Float64Array, bx: number, by: number): void {
  const qz = sc.qz;
  // The reader's accumulator lives in locals here (the hot loop); written back around refills.
  let acc = r.acc;
  let nbits = r.nbits;

  const dcFast = sc.dc.fast;
  if (nbits < 16) {
    r.nbits = nbits;
    r.acc = acc;
    r.fill();
    acc = r.acc;
    nbits = r.nbits;
  }
  let e = dcFast[(acc >>> (nbits - FAST_BITS)) & FAST_MASK];
  let t: number;
  if (e !== 0) {
    nbits -= e >> 8;
    t = e & 255;
  } else {
    r.nbits = nbits;
    t = r.decodeSlow(sc.dc);
    nbits = r.nbits;
  }
  let diff = 0;
  if (t !== 0) {
    if (t > 15) throw corrupt(`scan has a DC difference of ${t} bits`);
    if (nbits < t) {
      r.nbits = nbits;
      r.acc = acc;
      r.fill();
      acc = r.acc;
      nbits = r.nbits;
    }
    nbits -= t;
    diff = (acc >>> nbits) & ((1 << t) - 1);
    if (diff < 1 << (t - 1)) diff += 1 - (1 << t);
  }
  const dc = sc.pred + diff;
  sc.pred = dc;
  coef[0] = dc * qz[0];

  let rows = 0; // bit v set: row v (vertical frequency v) has a kept non-zero AC coefficient
  const ac = sc.ac;
  const acFast = ac.fast;
  for (let k = 1; k < 64; ) {
    if (nbits < 16) {
      r.nbits = nbits;
      r.acc = acc;
      r.fill();
      acc = r.acc;
      nbits = r.nbits;
    }
    e = acFast[(acc >>> (nbits - FAST_BITS)) & FAST_MASK];
    let rs: number;
    if (e !== 0) {
      nbits -= e >> 8;
      rs = e & 255;
    } else {
      r.nbits = nbits;
      rs = r.decodeSlow(ac);
      nbits = r.nbits;
    }
    const s = rs & 15;
    if (s === 0) {
      if (rs !== 0xf0) break; // EOB
      k += 16; // ZRL
      continue;
    }
    k += rs >> 4;
    if (k > 63) throw corrupt('scan has an AC run past the end of a block');
    if (nbits < s) {
      r.nbits = nbits;
      r.acc = acc;
      r.fill();
      acc = r.acc;
      nbits = r.nbits;
    }
    nbits -= s;
    const q = qz[k];
    if (q !== 0) {
      let v = (acc >>> nbits) & ((1 << s) - 1);
      if (v < 1 << (s - 1)) v += 1 - (1 << s);
      const nat = ZIGZAG[k];
      coef[nat] = v * q;
      rows |= 1 << (nat >> 3);
    }
    k++;
  }
  r.acc = acc;
  r.nbits = nbits;
  writeBlock(sc.c, coef, tmp, bx, by, rows);
}

/**
 * Reduced IDCT of one block's dequantised coefficients (natural order; `rows` has bit v set when
 * row v holds a non-zero AC term) into its N×N samples of the component's plane. Zeroes `coef`.
 */
export function writeBlock(c: Component, coef: Float64Array, tmp: Float64Array, bx: number, by: number, rows: number): void {
  const plane = c.plane;
  const stride = c.stride;
  const nh = c.nh;
  const nv = c.nv;
  const base = by * nv * stride + bx * nh;
  if (rows === 0) {
    const val = coef[0] / 8 + 128;
    for (let y = 0; y < nv; y++) {
      const o = base + y * stride;
      for (let x = 0; x < nh; x++) plane[o + x] = val;
    }
    coef[0] = 0;
    return;
  }
  rows |= 1;
  // Separable: each non-zero row (horizontal frequencies) to nh values in tmp, then the columns.
  const mh = IDCT[nh];
  const mv = IDCT[nv];
  for (let v = 0; v < 8; v++) {
    if ((rows & (1 << v)) === 0) continue;
    const row = v * 8;
    for (let x = 0; x < nh; x++) {
      let sum = 0;
      for (let u = 0; u < 8; u++) sum += coef[row + u] * mh[x * 8 + u];
      tmp[v * 8 + x] = sum;
    }
    for (let u = 0; u < 8; u++) coef[row + u] = 0;
  }
  for (let y = 0; y < nv; y++) {
    const o = base + y * stride;
    for (let x = 0; x < nh; x++) {
      let sum = 128;
      for (let v = 0; v < 8; v++) if (rows & (1 << v)) sum += mv[y * 8 + v] * tmp[v * 8 + x];
      plane[o + x] = sum;
    }
  }
}

/** Planes → RGB at ceil(size / scale): nearest upsampling where a plane is coarser, JFIF YCbCr → RGB. */
function toRgb(frame: Frame, scale: JpegScale): RgbImage {
  const { width, height } = scaledSize(frame.width, frame.height, scale);
  const n = 8 / scale;
  const data = new Uint8Array(width * height * 3);
  const out = new Uint8ClampedArray(data.buffer, data.byteOffset, data.length); // rounds and clamps on write
  const cs = frame.components;
  // Output pixel x → plane column: a plane has h·nh samples where the output has hmax·n.
  const xmap = cs.map((c) => Int32Array.from({ length: width }, (_, x) => Math.floor((x * c.h * c.nh) / (frame.hmax * n))));
  const rowOf = (c: Component, y: number) => Math.floor((y * c.v * c.nv) / (frame.vmax * n)) * c.stride;
  if (cs.length === 1) {
    const [c] = cs;
    const [xs] = xmap;
    const plane = c.plane;
    for (let y = 0, o = 0; y < height; y++) {
      const row = rowOf(c, y);
      for (let x = 0; x < width; x++, o += 3) {
        const g = plane[row + xs[x]];
        data[o] = g;
        data[o + 1] = g;
        data[o + 2] = g;
      }
    }
    return { width, height, data };
  }
  const [cy, cb, cr] = cs;
  const [xy, xb, xr] = xmap;
  const py = cy.plane;
  const pb = cb.plane;
  const pr = cr.plane;
  for (let y = 0, o = 0; y < height; y++) {
    const ry = rowOf(cy, y);
    const rb = rowOf(cb, y);
    const rr = rowOf(cr, y);
    for (let x = 0; x < width; x++, o += 3) {
      const Y = py[ry + xy[x]];
      const Cb = pb[rb + xb[x]] - 128;
      const Cr = pr[rr + xr[x]] - 128;
      out[o] = Y + 1.402 * Cr;
      out[o + 1] = Y - 0.344136 * Cb - 0.714136 * Cr;
      out[o + 2] = Y + 1.772 * Cb;
    }
  }
  return { width, height, data };
}
