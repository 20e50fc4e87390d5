import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import jpeg from 'jpeg-js';
import { chooseJpegScale, decodeJpegScaled, type JpegScale } from '../shared/image/jpeg-scaled';
import { resizeToFloat } from '../shared/image/resize';
import { ImageInputError, type RgbImage } from '../shared/image/types';
import { rng } from '../offline/random';
import { concatBytes, jpegSegments, tinyJpeg } from './helpers/hostile-inputs';
import { BitWriter, errorOf } from './helpers/jpeg-bits';

// ---------------------------------------------------------------------------------------------
// A small baseline JPEG encoder for the cases jpeg-js cannot write (it only writes one interleaved
// 4:4:4 scan): chroma subsampling, restart intervals, grayscale, one scan per component. Plain
// float FDCT, a linear quantiser ramp, and Huffman tables built from the symbol counts (T.81 K.2).

type Rgb = [number, number, number];

interface EncodeOptions {
  width: number;
  height: number;
  pixel: (x: number, y: number) => Rgb;
  components?: 1 | 3;
  /** Luma sampling factors [h, v]; chroma is always 1×1. */
  sampling?: [number, number];
  restartInterval?: number;
  /** false: one scan per component instead of one interleaved scan. */
  interleaved?: boolean;
  /** Quantiser step growth per (u + v). */
  qstep?: number;
}

const ZZ = (() => {
  const out: number[] = [];
  for (let d = 0; d < 15; d++) {
    const rows: number[] = [];
    for (let r = Math.max(0, d - 7); r <= Math.min(d, 7); r++) rows.push(r);
    if (d % 2 === 0) rows.reverse();
    for (const r of rows) out.push(r * 8 + (d - r));
  }
  return out;
})();

/** Code lengths from symbol counts (Huffman with a reserved all-ones code), limited to 16 bits. */
function huffmanSpec(freq: number[]): { counts: number[]; symbols: number[] } {
  const f = [...freq, 1];
  const size = new Array(257).fill(0);
  const next = new Array(257).fill(-1);
  for (;;) {
    let a = -1;
    let b = -1;
    for (let i = 0; i < 257; i++) if (f[i] > 0 && (a < 0 || f[i] <= f[a])) a = i;
    for (let i = 0; i < 257; i++) if (f[i] > 0 && i !== a && (b < 0 || f[i] <= f[b])) b = i;
    if (b < 0) break;
    f[a] += f[b];
    f[b] = 0;
    let i = a;
    size[i]++;
    while (next[i] >= 0) size[(i = next[i])]++;
    next[i] = b;
    i = b;
    size[i]++;
    while (next[i] >= 0) size[(i = next[i])]++;
  }
  const bits = new Array(33).fill(0);
  for (let i = 0; i < 257; i++) if (size[i] > 0) bits[size[i]]++;
  for (let i = 32; i > 16; i--) {
    while (bits[i] > 0) {
      let j = i - 2;
      while (bits[j] === 0) j--;
      bits[i] -= 2;
      bits[i - 1]++;
      bits[j + 1] += 2;
      bits[j]--;
    }
  }
  let top = 16;
  while (bits[top] === 0) top--;
  bits[top]--; // the reserved symbol, sorted last
  const symbols = Array.from({ length: 256 }, (_, i) => i).filter((i) => size[i] > 0).sort((p, q) => size[p] - size[q] || p - q);
  return { counts: bits.slice(1, 17), symbols };
}

function canonicalCodes(spec: { counts: number[]; symbols: number[] }): Map<number, [number, number]> {
  const codes = new Map<number, [number, number]>();
  let code = 0;
  let k = 0;
  for (let l = 1; l <= 16; l++) {
    for (let i = 0; i < spec.counts[l - 1]; i++) codes.set(spec.symbols[k++], [code++, l]);
    code <<= 1;
  }
  return codes;
}

const segment = (marker: number, payload: number[]) => [0xff, marker, (payload.length + 2) >> 8, (payload.length + 2) & 255, ...payload];

function encodeJpeg(o: EncodeOptions): Uint8Array {
  const { width: w, height: h } = o;
  const nc = o.components ?? 3;
  const [H, V] = nc === 1 ? [1, 1] : o.sampling ?? [2, 2];
  const ri = o.restartInterval ?? 0;
  const qstep = o.qstep ?? 2;
  const comps = Array.from({ length: nc }, (_, c) => ({
    h: c === 0 ? H : 1,
    v: c === 0 ? V : 1,
    cw: c === 0 ? w : Math.ceil(w / H),
    ch: c === 0 ? h : Math.ceil(h / V),
    q: Array.from({ length: 64 }, (_, i) => Math.max(1, Math.min(255, Math.round(1 + ((i >> 3) + (i & 7)) * qstep * (c === 0 ? 1 : 1.5))))),
    plane: new Float64Array(0),
  }));
  // Colour conversion (JFIF) and chroma box-filter subsampling.
  const ycc = new Float64Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const [r, g, b] = o.pixel(x, y);
      const i = (y * w + x) * 3;
      ycc[i] = 0.299 * r + 0.587 * g + 0.114 * b;
      ycc[i + 1] = -0.168736 * r - 0.331264 * g + 0.5 * b + 128;
      ycc[i + 2] = 0.5 * r - 0.418688 * g - 0.081312 * b + 128;
    }
  comps.forEach((c, ci) => {
    c.plane = new Float64Array(c.cw * c.ch);
    const fx = H / c.h;
    const fy = V / c.v;
    for (let y = 0; y < c.ch; y++)
      for (let x = 0; x < c.cw; x++) {
        let s = 0;
        let n = 0;
        for (let yy = y * fy; yy < Math.min(h, (y + 1) * fy); yy++)
          for (let xx = x * fx; xx < Math.min(w, (x + 1) * fx); xx++) {
            s += ycc[(yy * w + xx) * 3 + ci];
            n++;
          }
        c.plane[y * c.cw + x] = s / n;
      }
  });
  const cosT = Array.from({ length: 64 }, (_, i) => ((i & 7) === 0 ? Math.SQRT1_2 / 2 : 0.5) * Math.cos(((2 * (i >> 3) + 1) * (i & 7) * Math.PI) / 16)); // [x][u]
  const block = (ci: number, bx: number, by: number): number[] => {
    const c = comps[ci];
    const px = new Float64Array(64);
    for (let y = 0; y < 8; y++)
      for (let x = 0; x < 8; x++) px[y * 8 + x] = c.plane[Math.min(c.ch - 1, by * 8 + y) * c.cw + Math.min(c.cw - 1, bx * 8 + x)] - 128;
    const tmp = new Float64Array(64); // [y][u]
    for (let y = 0; y < 8; y++)
      for (let u = 0; u < 8; u++) {
        let s = 0;
        for (let x = 0; x < 8; x++) s += px[y * 8 + x] * cosT[x * 8 + u];
        tmp[y * 8 + u] = s;
      }
    const out: number[] = [];
    for (let k = 0; k < 64; k++) {
      const v = ZZ[k] >> 3;
      const u = ZZ[k] & 7;
      let s = 0;
      for (let y = 0; y < 8; y++) s += tmp[y * 8 + u] * cosT[y * 8 + v];
      out.push(Math.round(s / c.q[ZZ[k]]));
    }
    return out;
  };

  // Pass 1: the symbol stream per scan (table key, symbol, extra bits), with restart points.
  type Ev = { t: string; sym: number; bits: number; len: number } | 'RST';
  const scans: { ids: number[]; events: Ev[] }[] = [];
  const freq = new Map<string, number[]>();
  const emit = (events: Ev[], t: string, sym: number, value: number, len: number) => {
    events.push({ t, sym, bits: value, len });
    if (!freq.has(t)) freq.set(t, new Array(256).fill(0));
    freq.get(t)![sym]++;
  };
  const magnitude = (v: number) => (v === 0 ? 0 : 32 - Math.clz32(Math.abs(v)));
  const extra = (v: number, s: number) => (v >= 0 ? v : v + (1 << s) - 1);
  const hmax = H;
  const vmax = V;
  const groups = (o.interleaved ?? true) ? [comps.map((_, i) => i)] : comps.map((_, i) => [i]);
  for (const ids of groups) {
    const events: Ev[] = [];
    const pred = new Array(nc).fill(0);
    const single = ids.length === 1;
    const c0 = comps[ids[0]];
    const mcusX = single ? Math.ceil(c0.cw / 8) : Math.ceil(w / (8 * hmax));
    const mcusY = single ? Math.ceil(c0.ch / 8) : Math.ceil(h / (8 * vmax));
    let mcu = 0;
    for (let my = 0; my < mcusY; my++)
      for (let mx = 0; mx < mcusX; mx++) {
        if (ri > 0 && mcu > 0 && mcu % ri === 0) {
          events.push('RST');
          pred.fill(0);
        }
        for (const ci of ids) {
          const c = comps[ci];
          const nh = single ? 1 : c.h;
          const nv = single ? 1 : c.v;
          const key = ci === 0 ? '0' : '1';
          for (let v = 0; v < nv; v++)
            for (let hh = 0; hh < nh; hh++) {
              const z = block(ci, mx * nh + hh, my * nv + v);
              const diff = z[0] - pred[ci];
              pred[ci] = z[0];
              const s = magnitude(diff);
              emit(events, `dc${key}`, s, extra(diff, s), s);
              let run = 0;
              for (let k = 1; k < 64; k++) {
                if (z[k] === 0) {
                  run++;
                  continue;
                }
                while (run > 15) {
                  emit(events, `ac${key}`, 0xf0, 0, 0);
                  run -= 16;
                }
                const sa = magnitude(z[k]);
                emit(events, `ac${key}`, (run << 4) | sa, extra(z[k], sa), sa);
                run = 0;
              }
              if (run > 0) emit(events, `ac${key}`, 0x00, 0, 0);
            }
        }
        mcu++;
      }
    scans.push({ ids, events });
  }

  // Pass 2: tables, headers, entropy-coded data.
  const specs = new Map([...freq].map(([t, f]) => [t, huffmanSpec(f)]));
  const codes = new Map([...specs].map(([t, s]) => [t, canonicalCodes(s)]));
  const out: number[] = [0xff, 0xd8];
  out.push(...segment(0xe0, [0x4a, 0x46, 0x49, 0x46, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0]));
  out.push(...segment(0xdb, [0, ...ZZ.map((i) => comps[0].q[i]), ...(nc > 1 ? [1, ...ZZ.map((i) => comps[1].q[i])] : [])]));
  out.push(...segment(0xc0, [8, h >> 8, h & 255, w >> 8, w & 255, nc, ...comps.flatMap((c, i) => [i + 1, (c.h << 4) | c.v, i === 0 ? 0 : 1])]));
  for (const [t, s] of specs) out.push(...segment(0xc4, [(t.startsWith('ac') ? 0x10 : 0) | Number(t[2]), ...s.counts, ...s.symbols]));
  if (ri > 0) out.push(...segment(0xdd, [ri >> 8, ri & 255]));
  for (const scan of scans) {
    out.push(...segment(0xda, [scan.ids.length, ...scan.ids.flatMap((i) => [i + 1, i === 0 ? 0x00 : 0x11]), 0, 63, 0]));
    const bw = new BitWriter();
    let rst = 0;
    for (const e of scan.events) {
      if (e === 'RST') {
        bw.flush();
        bw.bytes.push(0xff, 0xd0 + (rst++ & 7));
        continue;
      }
      const [code, len] = codes.get(e.t)!.get(e.sym)!;
      bw.write(code, len);
      if (e.len > 0) bw.write(e.bits, e.len);
    }
    bw.flush();
    out.push(...bw.bytes);
  }
  out.push(0xff, 0xd9);
  return new Uint8Array(out);
}

// ---------------------------------------------------------------------------------------------

/** Smooth gradients plus some mid-frequency texture. */
const photo = (x: number, y: number): Rgb => [
  128 + 80 * Math.sin(x / 11) * Math.cos(y / 9) + 10 * Math.sin((x + y) / 3),
  120 + 70 * Math.sin((x + 2 * y) / 17),
  100 + 60 * Math.cos(x / 23) + 25 * Math.sin(y / 5),
];

function rgbaOf(w: number, h: number, f: (x: number, y: number) => Rgb): Uint8Array {
  const d = new Uint8Array(w * h * 4);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const [r, g, b] = f(x, y);
      d.set([r, g, b, 255], (y * w + x) * 4);
    }
  return d;
}

const jpegJs = (w: number, h: number, quality = 90) => new Uint8Array(jpeg.encode({ width: w, height: h, data: rgbaOf(w, h, photo) }, quality).data);

function reference(bytes: Uint8Array): RgbImage {
  const r = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false });
  return { width: r.width, height: r.height, data: r.data };
}

function mae(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s / a.length;
}

/** The image extended to w × h by repeating its last column and row (what the encoders pad blocks with). */
function padTo(img: RgbImage, w: number, h: number): RgbImage {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const s = (Math.min(y, img.height - 1) * img.width + Math.min(x, img.width - 1)) * 3;
      data.set(img.data.subarray(s, s + 3), (y * w + x) * 3);
    }
  return { width: w, height: h, data };
}

/**
 * Decodes at every scale and compares with jpeg-js: exact size at 1/1; otherwise jpeg-js's decode
 * area-downscaled with resizeToFloat. Output pixel j at 1/s covers source pixels [j·s, (j + 1)·s),
 * the last one partly over the block padding, so the reference is first padded to a multiple of s
 * (edge repeated, as both encoders pad); without that, odd sizes would compare shifted grids.
 */
function expectMatchesReference(bytes: Uint8Array, tol1 = 2, tolScaled = 4): void {
  const ref = reference(bytes);
  for (const scale of [1, 2, 4, 8] as JpegScale[]) {
    const img = decodeJpegScaled(bytes, scale);
    expect(img).not.toBeNull();
    const { width, height, data } = img!;
    expect([width, height]).toEqual([Math.ceil(ref.width / scale), Math.ceil(ref.height / scale)]);
    expect(data.length).toBe(width * height * 3);
    const err = scale === 1 ? mae(data, ref.data) : mae(data, resizeToFloat(padTo(ref, width * scale, height * scale), width, height));
    expect(err, `1/${scale}`).toBeLessThan(scale === 1 ? tol1 : tolScaled);
  }
}

/** Offset of the first byte of entropy-coded data (after the first SOS header). */
function scanStart(b: Uint8Array): number {
  const sos = jpegSegments(b).find((s) => s.marker === 0xda)!;
  return sos.offset + sos.length;
}

describe('chooseJpegScale', () => {
  it('picks the largest scale that keeps the short side', () => {
    expect(chooseJpegScale(4032, 3024, 256)).toBe(8);
    expect(chooseJpegScale(3024, 4032, 256)).toBe(8);
    expect(chooseJpegScale(1920, 1080, 256)).toBe(4);
    expect(chooseJpegScale(1024, 600, 256)).toBe(2);
    expect(chooseJpegScale(512, 512, 256)).toBe(2);
    expect(chooseJpegScale(640, 480, 256)).toBe(1);
    expect(chooseJpegScale(224, 224, 256)).toBe(1);
    expect(chooseJpegScale(4032, 3024, 4000)).toBe(1);
    expect(chooseJpegScale(100, 100, 0)).toBe(8);
  });
});

describe('decodeJpegScaled matches jpeg-js', () => {
  it('jpeg-js files (4:4:4, standard tables incl. long codes), odd and even sizes', () => {
    expectMatchesReference(jpegJs(64, 48));
    expectMatchesReference(jpegJs(101, 77, 75));
  });

  it('4:2:0 at sizes that are not multiples of 16', () => {
    expectMatchesReference(encodeJpeg({ width: 100, height: 75, pixel: photo }));
    expectMatchesReference(encodeJpeg({ width: 33, height: 17, pixel: photo, qstep: 4 }));
  });

  it('4:2:2 and 1:2 sampling', () => {
    expectMatchesReference(encodeJpeg({ width: 90, height: 61, pixel: photo, sampling: [2, 1] }));
    expectMatchesReference(encodeJpeg({ width: 70, height: 45, pixel: photo, sampling: [1, 2] }));
  });

  it('restart intervals (DRI + RST0..7, interval not dividing the MCU count)', () => {
    const bytes = encodeJpeg({ width: 77, height: 53, pixel: photo, restartInterval: 3 });
    expect(jpegSegments(bytes).some((s) => s.marker === 0xdd)).toBe(true);
    let rst = 0;
    for (let i = scanStart(bytes); i + 1 < bytes.length; i++) if (bytes[i] === 0xff && bytes[i + 1] >= 0xd0 && bytes[i + 1] <= 0xd7) rst++;
    expect(rst).toBe(Math.ceil((5 * 4) / 3) - 1); // 5×4 MCUs of 16×16
    expectMatchesReference(bytes);
    expectMatchesReference(encodeJpeg({ width: 40, height: 24, pixel: photo, sampling: [1, 1], restartInterval: 1 }));
  });

  it('one scan per component (non-interleaved baseline)', () => {
    expectMatchesReference(encodeJpeg({ width: 60, height: 35, pixel: photo, interleaved: false }));
  });

  it('grayscale (one component) to gray RGB', () => {
    const gray = (x: number, y: number): Rgb => {
      const v = photo(x, y)[0];
      return [v, v, v];
    };
    const bytes = encodeJpeg({ width: 57, height: 43, pixel: gray, components: 1, restartInterval: 4 });
    expectMatchesReference(bytes);
    const img = decodeJpegScaled(bytes, 2)!;
    for (let i = 0; i < img.data.length; i += 3) expect(img.data[i]).toBe(img.data[i + 2]);
    // The DC-only writer from the hostile-input helpers (4-bit DC codes, EOB-only AC table).
    expectMatchesReference(tinyJpeg({ width: 24, height: 40, components: 1, sample: (x, y) => 40 + x * 3 + y * 2 }), 1, 3);
  });

  it('keeps a flat colour at every scale', () => {
    const bytes = encodeJpeg({ width: 48, height: 40, pixel: () => [200, 60, 30] });
    const full = decodeJpegScaled(bytes, 1)!;
    const colour = Array.from(full.data.subarray(0, 3));
    colour.forEach((v, k) => expect(Math.abs(v - [200, 60, 30][k])).toBeLessThanOrEqual(2));
    for (const scale of [1, 2, 4, 8] as JpegScale[]) {
      const img = decodeJpegScaled(bytes, scale)!;
      for (let i = 0; i < img.data.length; i += 3) expect(Array.from(img.data.subarray(i, i + 3))).toEqual(colour);
    }
  });
});

/** libjpeg-turbo's jpegtran rewrites a file's coefficients, losslessly, in another layout. */
function jpegtran(bytes: Uint8Array, args: string[]): Uint8Array {
  const r = spawnSync('jpegtran', args, { input: bytes, maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`jpegtran ${args.join(' ')}: ${r.stderr}`);
  return new Uint8Array(r.stdout);
}
const HAS_JPEGTRAN = spawnSync('jpegtran', ['-copy', 'none'], { input: jpegJs(8, 8) }).status === 0;

// Progressive files from an independent encoder (jpegtran's default script: DC first + refinement,
// AC bands with successive approximation and EOB runs) hold the same coefficients as the baseline
// file they come from, so every scale must decode to the very same pixels. .ci/run installs it.
describe.skipIf(!HAS_JPEGTRAN)('progressive JPEG (SOF2) decodes exactly like its baseline original', () => {
  const layouts: [string, Uint8Array][] = [
    ['jpeg-js 4:4:4', jpegJs(101, 77, 75)],
    ['4:2:0, odd size', encodeJpeg({ width: 100, height: 75, pixel: photo })],
    ['4:2:2', encodeJpeg({ width: 90, height: 61, pixel: photo, sampling: [2, 1] })],
    ['grayscale', encodeJpeg({ width: 57, height: 43, pixel: (x, y) => [photo(x, y)[0], photo(x, y)[0], photo(x, y)[0]], components: 1 })],
  ];
  it.each(layouts)('%s, with and without restart intervals', (_, baseline) => {
    for (const args of [['-progressive'], ['-progressive', '-restart', '1'], ['-progressive', '-restart', '2B']]) {
      const progressive = jpegtran(baseline, args);
      expect(jpegSegments(progressive).some((s) => s.marker === 0xc2)).toBe(true);
      let scans = 0;
      for (let i = 0; i + 1 < progressive.length; i++) if (progressive[i] === 0xff && progressive[i + 1] === 0xda) scans++;
      expect(scans).toBeGreaterThan(3);
      for (const scale of [1, 2, 4, 8] as JpegScale[]) {
        const a = decodeJpegScaled(baseline, scale)!;
        const b = decodeJpegScaled(progressive, scale);
        expect(b, `${args.join(' ')} 1/${scale}`).not.toBeNull();
        expect([b!.width, b!.height]).toEqual([a.width, a.height]);
        expect(Buffer.from(b!.data).equals(Buffer.from(a.data)), `${args.join(' ')} 1/${scale}`).toBe(true);
      }
    }
  });

  it('a coefficient store over the memory cap is image_too_large before it is allocated', () => {
    const progressive = jpegtran(jpegJs(256, 256), ['-progressive']);
    expect(decodeJpegScaled(progressive, 8, { maxProgressiveBytes: 1_000_000 })).not.toBeNull();
    const e = errorOf(() => decodeJpegScaled(progressive, 8, { maxProgressiveBytes: 1000 }));
    expect(e.code).toBe('image_too_large');
    expect(e.message).toMatch(/progressive JPEG 256x256 needs .* coefficients/);
  });

  it('truncated and mutated progressive files decode, fall back or throw ImageInputError, and never hang', () => {
    const good = jpegtran(encodeJpeg({ width: 64, height: 48, pixel: photo, restartInterval: 2 }), ['-progressive']);
    const start = scanStart(good);
    for (const cut of [start + 5, (start + good.length) >> 1, good.length - 40]) {
      const e = errorOf(() => decodeJpegScaled(good.subarray(0, cut), 4));
      expect(e.code).toBe('undecodable_image');
    }
    const r = rng(12);
    const int = (k: number) => Math.floor(r() * k);
    for (let i = 0; i < 200; i++) {
      const b = good.slice();
      for (let j = 0; j < 1 + int(6); j++) b[2 + int(b.length - 2)] ^= 1 << int(8);
      try {
        const img = decodeJpegScaled(b, ([1, 2, 4, 8] as JpegScale[])[i % 4]);
        if (img) expect(img.data.length).toBe(img.width * img.height * 3);
      } catch (e) {
        expect(e, String(e)).toBeInstanceOf(ImageInputError);
      }
    }
  });
});

describe('decodeJpegScaled: what it leaves to the fallback', () => {
  it('returns null for Adobe/CMYK, 12-bit and 2-component files', () => {
    expect(decodeJpegScaled(tinyJpeg({ width: 16, height: 16, components: 4, adobeTransform: 2 }), 2)).toBeNull();
    expect(decodeJpegScaled(tinyJpeg({ width: 16, height: 16, components: 4 }), 2)).toBeNull();
    expect(decodeJpegScaled(tinyJpeg({ width: 16, height: 16, components: 3, adobeTransform: 1 }), 2)).toBeNull();
    const twelve = jpegJs(32, 32).slice();
    const sof = jpegSegments(twelve).find((s) => s.marker === 0xc0)!;
    twelve[sof.offset + 4] = 12;
    expect(decodeJpegScaled(twelve, 1)).toBeNull();
  });
});

describe('decodeJpegScaled: corrupt input', () => {
  const good = encodeJpeg({ width: 64, height: 48, pixel: photo, restartInterval: 2 });

  it('throws undecodable_image for truncated scans', () => {
    const start = scanStart(good);
    for (const cut of [start, start + 10, (start + good.length) >> 1, good.length - 12]) {
      const e = errorOf(() => decodeJpegScaled(good.subarray(0, cut), 4));
      expect(e.code).toBe('undecodable_image');
      expect(e.message).toMatch(/JPEG/);
    }
    expect(errorOf(() => decodeJpegScaled(good.subarray(0, 30), 8)).code).toBe('undecodable_image'); // inside the headers
    // A missing EOI alone is tolerated: every MCU is there.
    expect(decodeJpegScaled(good.subarray(0, good.length - 2), 8)).not.toBeNull();
  });

  it('throws on an invalid Huffman code', () => {
    const start = scanStart(good);
    const bad = good.slice();
    for (let i = start; i + 1 < bad.length - 2; i += 2) bad.set([0xff, 0x00], i); // all ones: the code no table assigns
    expect(errorOf(() => decodeJpegScaled(bad, 8)).message).toMatch(/Huffman/);
  });

  it('throws on bad segment lengths and missing tables', () => {
    const dqt = jpegSegments(good).find((s) => s.marker === 0xdb)!;
    for (const len of [0, 1, 0xffff]) {
      const bad = good.slice();
      bad.set([len >> 8, len & 255], dqt.offset + 2);
      expect(errorOf(() => decodeJpegScaled(bad, 8)).code).toBe('undecodable_image');
    }
    const noDht = concatBytes(...jpegSegments(good).filter((s) => s.marker !== 0xc4).map((s) => good.subarray(s.offset, s.offset + s.length)));
    expect(errorOf(() => decodeJpegScaled(concatBytes([0xff, 0xd8], noDht, good.subarray(scanStart(good))), 2)).message).toMatch(/Huffman table/);
  });

  it('throws when a restart interval is declared but the RST markers are missing', () => {
    const plain = encodeJpeg({ width: 64, height: 48, pixel: photo });
    const withDri = concatBytes(plain.subarray(0, 2), [0xff, 0xdd, 0, 4, 0, 1], plain.subarray(2));
    expect(errorOf(() => decodeJpegScaled(withDri, 4)).message).toMatch(/restart marker/);
  });

  it('mutated files decode, fall back or throw ImageInputError, and never hang', () => {
    const r = rng(11);
    const int = (k: number) => Math.floor(r() * k);
    const t0 = performance.now();
    for (let i = 0; i < 300; i++) {
      const b = good.slice();
      const kind = i % 4;
      if (kind === 0) for (let j = 0; j < 1 + int(6); j++) b[2 + int(b.length - 2)] ^= 1 << int(8);
      else if (kind === 1) b[2 + int(b.length - 2)] = [0x00, 0xff, 0xd9, 0xda, 0x7f][int(5)];
      else if (kind === 2) {
        const segs = jpegSegments(b);
        const s = segs[int(segs.length)];
        const len = [0, 1, 2, 3, 0xffff, int(0x10000)][int(6)];
        b.set([len >> 8, len & 255], s.offset + 2);
      }
      const input = kind === 3 ? b.subarray(0, 2 + int(b.length - 2)) : b;
      try {
        const img = decodeJpegScaled(input, ([1, 2, 4, 8] as JpegScale[])[i % 4]);
        if (img) expect(img.data.length).toBe(img.width * img.height * 3);
      } catch (e) {
        expect(e, String(e)).toBeInstanceOf(ImageInputError);
      }
    }
    expect(performance.now() - t0).toBeLessThan(20_000);
  });
});
