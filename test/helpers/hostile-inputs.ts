import { encode as encodePng } from 'fast-png';
import jpeg from 'jpeg-js';
import { rng } from '../../offline/random';
import { BitWriter } from './jpeg-bits';

/**
 * Hostile uploads for `POST /v1/captions`, all built in code (no fixture files). Each case says
 * what the API must answer: `4xx` (a JSON error) or `2xx-or-4xx` (the input is valid or arguably
 * valid, so a caption is fine too). Nothing may ever give a 5xx or hang.
 *
 * @example
 * for (const c of await hostileInputs({ maxBodyBytes: 200_000 })) await post(bodyOf(c), c.contentType, c.query);
 * for (const c of moreHostileInputs(7, 60)) ...; // mutated JPEG/PNG files, for fuzz-style runs
 */
export interface HostileCase {
  name: string;
  /** The request body; a function gives a fresh stream per request (sent chunked, no Content-Length). */
  body: Uint8Array | (() => ReadableStream<Uint8Array>);
  /** The Content-Type header, or null to send none. */
  contentType: string | null;
  /** Query string including the leading '?'. */
  query?: string;
  headers?: Record<string, string>;
  /** 'per-file-error': a multipart batch answered 200 where exactly the `badParts` entries carry their own error. */
  expect: '4xx' | '2xx-or-4xx' | 'per-file-error';
  /** The exact status when the API contract fixes it (README: 400 / 413 / 415). */
  status?: number;
  /** For 'per-file-error': the indexes of the parts that must get an error entry. */
  badParts?: number[];
}

// ---------------------------------------------------------------------------------------------
// Small byte utilities

const ascii = (s: string) => Uint8Array.from(s, (ch) => ch.charCodeAt(0) & 255);

export function concatBytes(...parts: (Uint8Array | number[])[]): Uint8Array {
  const n = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}


function randomBytes(n: number, seed: number): Uint8Array {
  const r = rng(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (r() * 256) | 0;
  // Never start like a JPEG or PNG by accident.
  if (out[0] === 0xff || out[0] === 0x89) out[0] = 0x42;
  return out;
}

function pattern(w: number, h: number, channels: number, seed = 1): Uint8Array {
  const data = new Uint8Array(w * h * channels);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let c = 0; c < channels; c++) data[(y * w + x) * channels + c] = c === 3 ? 255 : (x * (seed + c + 1) * 7 + y * 13 * (c + seed)) & 255;
  return data;
}

// ---------------------------------------------------------------------------------------------
// Valid base images

/** A baseline 4:2:0 JPEG from jpeg-js (with its JFIF APP0). */
export const jpegOf = (w: number, h: number, seed = 1) => new Uint8Array(jpeg.encode({ width: w, height: h, data: pattern(w, h, 4, seed) }, 85).data);

/** An 8-bit RGB PNG from fast-png. */
export const pngOf = (w: number, h: number, seed = 1) => encodePng({ width: w, height: h, data: pattern(w, h, 3, seed), channels: 3, depth: 8 });

// ---------------------------------------------------------------------------------------------
// A hand-written JPEG writer: DC-only blocks (each 8×8 block is flat), so the entropy coding is
// two tiny Huffman tables. jpeg-js can only encode baseline YCbCr; this one also writes
// grayscale, CMYK/YCCK (Adobe APP14) and progressive (SOF2) files.

function segment(marker: number, payload: Uint8Array | number[]): Uint8Array {
  const len = payload.length + 2;
  return concatBytes([0xff, marker, len >> 8, len & 255], payload);
}

/** DC categories 0..11 all get 4-bit codes (code = category); the AC table only has EOB, code '00'. */
const DC_BITS = [0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
const AC_BITS = [0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

function writeDc(bw: BitWriter, diff: number): void {
  const mag = Math.abs(diff);
  const cat = mag === 0 ? 0 : 32 - Math.clz32(mag);
  bw.write(cat, 4);
  if (cat > 0) bw.write(diff > 0 ? diff : diff + (1 << cat) - 1, cat);
}
const writeEob = (bw: BitWriter) => bw.write(0, 2);

export interface TinyJpegOptions {
  width: number;
  height: number;
  components: 1 | 3 | 4;
  progressive?: boolean;
  /** Adds an Adobe APP14 segment with this transform code (0 = none/CMYK, 1 = YCbCr, 2 = YCCK). */
  adobeTransform?: number;
  /** Extra segments written right after SOI (APPn, COM...). */
  segments?: Uint8Array[];
  /** Sample value 0..255 of component c at (x, y). */
  sample?: (x: number, y: number, c: number) => number;
}

export function tinyJpeg(o: TinyJpegOptions): Uint8Array {
  const { width: w, height: h, components: nc } = o;
  const sample = o.sample ?? ((x: number, y: number, c: number) => (x * 5 + y * 3 + c * 60) & 255);
  const bw = Math.ceil(w / 8);
  const bh = Math.ceil(h / 8);
  // DC coefficient per block and component: 8 × (block mean − 128), quantiser 1.
  const dc: number[][] = [];
  for (let c = 0; c < nc; c++) {
    const plane: number[] = [];
    for (let by = 0; by < bh; by++)
      for (let bx = 0; bx < bw; bx++) {
        let sum = 0;
        let n = 0;
        for (let y = by * 8; y < Math.min(h, by * 8 + 8); y++)
          for (let x = bx * 8; x < Math.min(w, bx * 8 + 8); x++) {
            sum += sample(x, y, c);
            n++;
          }
        plane.push(Math.round(8 * (sum / n - 128)));
      }
    dc.push(plane);
  }
  const ids = Array.from({ length: nc }, (_, i) => i + 1);
  const sof = [8, h >> 8, h & 255, w >> 8, w & 255, nc, ...ids.flatMap((id) => [id, 0x11, 0])];
  const parts: Uint8Array[] = [new Uint8Array([0xff, 0xd8]), ...(o.segments ?? [])];
  if (o.adobeTransform !== undefined) parts.push(segment(0xee, [...ascii('Adobe'), 0, 100, 0, 0, 0, 0, o.adobeTransform]));
  parts.push(segment(0xdb, [0, ...new Array(64).fill(1)]));
  parts.push(segment(o.progressive ? 0xc2 : 0xc0, sof));
  parts.push(segment(0xc4, [0x00, ...DC_BITS, ...Array.from({ length: 12 }, (_, i) => i)]));
  parts.push(segment(0xc4, [0x10, ...AC_BITS, 0x00]));
  const blocks = bw * bh;
  if (!o.progressive) {
    const bits = new BitWriter();
    const pred = new Array(nc).fill(0);
    for (let b = 0; b < blocks; b++)
      for (let c = 0; c < nc; c++) {
        writeDc(bits, dc[c][b] - pred[c]);
        pred[c] = dc[c][b];
        writeEob(bits);
      }
    parts.push(segment(0xda, [nc, ...ids.flatMap((id) => [id, 0x00]), 0, 63, 0]), new Uint8Array(bits.flush()));
  } else {
    // Scan 1: DC first (all components, interleaved). Then one AC scan (1..63) per component: all EOB.
    const bits = new BitWriter();
    const pred = new Array(nc).fill(0);
    for (let b = 0; b < blocks; b++)
      for (let c = 0; c < nc; c++) {
        writeDc(bits, dc[c][b] - pred[c]);
        pred[c] = dc[c][b];
      }
    parts.push(segment(0xda, [nc, ...ids.flatMap((id) => [id, 0x00]), 0, 0, 0]), new Uint8Array(bits.flush()));
    for (const id of ids) {
      const ac = new BitWriter();
      for (let b = 0; b < blocks; b++) writeEob(ac);
      parts.push(segment(0xda, [1, id, 0x00, 1, 63, 0]), new Uint8Array(ac.flush()));
    }
  }
  parts.push(new Uint8Array([0xff, 0xd9]));
  return concatBytes(...parts);
}

interface JpegSegment {
  marker: number;
  /** Offset of the 0xFF of the marker. */
  offset: number;
  /** Bytes of the whole segment including marker and length (for SOS: header only). */
  length: number;
}

/** Marker segments before the first scan's data (and the SOS header itself). */
export function jpegSegments(b: Uint8Array): JpegSegment[] {
  const out: JpegSegment[] = [];
  let p = 2;
  while (p + 4 <= b.length && b[p] === 0xff) {
    const marker = b[p + 1];
    const len = (b[p + 2] << 8) | b[p + 3];
    out.push({ marker, offset: p, length: len + 2 });
    if (marker === 0xda) break;
    p += 2 + len;
  }
  return out;
}

function withSofSize(b: Uint8Array, width: number, height: number): Uint8Array {
  const out = b.slice();
  const sof = jpegSegments(out).find((s) => s.marker >= 0xc0 && s.marker <= 0xc2);
  if (!sof) throw new Error('no SOF');
  const p = sof.offset;
  out[p + 5] = height >> 8;
  out[p + 6] = height & 255;
  out[p + 7] = width >> 8;
  out[p + 8] = width & 255;
  return out;
}

/** Inserts segments right after SOI. */
const afterSoi = (b: Uint8Array, ...segs: Uint8Array[]) => concatBytes(b.subarray(0, 2), ...segs, b.subarray(2));

// EXIF: an APP1 "Exif\0\0" + TIFF structure, written by hand so offsets and types can lie.
interface IfdEntry {
  tag: number;
  type: number;
  count: number;
  /** The 4-byte value/offset field, already in the file's byte order. */
  value: number[];
}

function tiff(le: boolean, entries: IfdEntry[], opts: { ifdOffset?: number; count?: number; order?: string } = {}): Uint8Array {
  const u16 = (v: number) => (le ? [v & 255, (v >> 8) & 255] : [(v >> 8) & 255, v & 255]);
  const u32 = (v: number) => (le ? [v & 255, (v >>> 8) & 255, (v >>> 16) & 255, (v >>> 24) & 255] : [(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255]);
  const order = opts.order ?? (le ? 'II' : 'MM');
  const bytes = [...ascii(order), ...u16(42), ...u32(opts.ifdOffset ?? 8), ...u16(opts.count ?? entries.length)];
  for (const e of entries) bytes.push(...u16(e.tag), ...u16(e.type), ...u32(e.count), ...e.value);
  bytes.push(0, 0, 0, 0); // next IFD
  return new Uint8Array(bytes);
}

const exifSegment = (tiffBytes: Uint8Array) => segment(0xe1, concatBytes(ascii('Exif\0\0'), tiffBytes));
const shortValue = (le: boolean, v: number) => (le ? [v & 255, v >> 8, 0, 0] : [v >> 8, v & 255, 0, 0]);

// ---------------------------------------------------------------------------------------------
// PNG chunk surgery

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(...parts: Uint8Array[]): number {
  let c = 0xffffffff;
  for (const p of parts) for (let i = 0; i < p.length; i++) c = CRC_TABLE[(c ^ p[i]) & 255] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export interface PngChunk {
  type: string;
  data: Uint8Array;
}

const PNG_SIGNATURE = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const u32be = (v: number) => [(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
const readU32 = (b: Uint8Array, o: number) => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;

export function pngChunks(b: Uint8Array): PngChunk[] {
  const out: PngChunk[] = [];
  let p = 8;
  while (p + 12 <= b.length) {
    const len = readU32(b, p);
    out.push({ type: String.fromCharCode(...b.subarray(p + 4, p + 8)), data: b.slice(p + 8, p + 8 + len) });
    p += 12 + len;
  }
  return out;
}

/** Chunks → PNG file, with correct CRCs unless `badCrc` names a chunk type. */
export function buildPng(chunks: PngChunk[], badCrc?: string): Uint8Array {
  const parts: Uint8Array[] = [PNG_SIGNATURE];
  for (const c of chunks) {
    const type = ascii(c.type);
    let crc = crc32(type, c.data);
    if (c.type === badCrc) crc = (crc ^ 0x5a5a5a5a) >>> 0;
    parts.push(new Uint8Array(u32be(c.data.length)), type, c.data, new Uint8Array(u32be(crc)));
  }
  return concatBytes(...parts);
}

function ihdr(width: number, height: number, depth: number, colorType: number, interlace = 0): PngChunk {
  return { type: 'IHDR', data: new Uint8Array([...u32be(width), ...u32be(height), depth, colorType, 0, 0, interlace]) };
}

/** A zlib stream of `n` zero bytes, deflated in chunks (never holds `n` bytes at once). */
async function zlibZeros(n: number): Promise<Uint8Array> {
  const zeros = new Uint8Array(1 << 20);
  const cs = new CompressionStream('deflate');
  const writer = cs.writable.getWriter();
  const out: Uint8Array[] = [];
  const reading = (async () => {
    const reader = cs.readable.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      out.push(value);
    }
  })();
  for (let left = n; left > 0; left -= zeros.length) await writer.write(left >= zeros.length ? zeros : zeros.subarray(0, left));
  await writer.close();
  await reading;
  return concatBytes(...out);
}

// ---------------------------------------------------------------------------------------------
// Multipart bodies, written by hand so boundaries and parts can be malformed.

interface Part {
  name?: string;
  filename?: string;
  type?: string;
  data: Uint8Array | string;
  /** Raw header lines instead of the generated ones. */
  rawHeaders?: string;
}

function multipart(boundary: string, parts: Part[], { close = true } = {}): Uint8Array {
  const out: Uint8Array[] = [];
  for (const p of parts) {
    const headers =
      p.rawHeaders ??
      `Content-Disposition: form-data; name="${p.name ?? 'image'}"${p.filename ? `; filename="${p.filename}"` : ''}\r\n` + (p.type ? `Content-Type: ${p.type}\r\n` : '');
    out.push(ascii(`--${boundary}\r\n${headers}\r\n`), typeof p.data === 'string' ? ascii(p.data) : p.data, ascii('\r\n'));
  }
  if (close) out.push(ascii(`--${boundary}--\r\n`));
  return concatBytes(...out);
}

function chunkedStream(bytes: Uint8Array, chunk = 16384): () => ReadableStream<Uint8Array> {
  return () =>
    new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < bytes.length; i += chunk) c.enqueue(bytes.slice(i, i + chunk));
        c.close();
      },
    });
}

/** A stream that sends some bytes, then fails as when the client goes away mid-upload. */
function failingStream(prefix: Uint8Array): () => ReadableStream<Uint8Array> {
  return () => {
    let sent = false;
    return new ReadableStream<Uint8Array>({
      pull(c) {
        if (!sent) {
          sent = true;
          c.enqueue(prefix.slice());
        } else c.error(new Error('connection reset by peer'));
      },
    });
  };
}

// ---------------------------------------------------------------------------------------------

export interface HostileOptions {
  /** The MAX_BODY_BYTES the app runs with (the over-limit bodies are one byte larger). */
  maxBodyBytes?: number;
}

/** Every named hostile case. Async only because the zlib-bomb PNGs are deflated with CompressionStream. */
export async function hostileInputs(opts: HostileOptions = {}): Promise<HostileCase[]> {
  const maxBody = opts.maxBodyBytes ?? 200_000;
  const cases: HostileCase[] = [];
  const add = (c: HostileCase) => cases.push(c);
  const J = jpegOf(64, 48);
  const P = pngOf(40, 30);

  // --- empty and random bodies
  add({ name: 'empty body, image/jpeg', body: new Uint8Array(0), contentType: 'image/jpeg', expect: '4xx', status: 400 });
  add({ name: 'empty body, image/png', body: new Uint8Array(0), contentType: 'image/png', expect: '4xx', status: 400 });
  add({ name: 'empty body, multipart', body: new Uint8Array(0), contentType: 'multipart/form-data; boundary=xyz', expect: '4xx' });
  add({ name: 'empty body, no content type', body: new Uint8Array(0), contentType: null, expect: '4xx' });
  for (const [n, seed] of [[1, 1], [100, 2], [5000, 3], [150_000, 4]] as const) {
    add({ name: `random ${n} bytes as image/jpeg`, body: randomBytes(n, seed), contentType: 'image/jpeg', expect: '4xx', status: 415 });
    add({ name: `random ${n} bytes as image/png`, body: randomBytes(n, seed + 10), contentType: 'image/png', expect: '4xx', status: 415 });
  }
  add({ name: 'JPEG SOI + random bytes', body: concatBytes([0xff, 0xd8, 0xff], randomBytes(3000, 21)), contentType: 'image/jpeg', expect: '4xx' });
  add({ name: 'JPEG headers + random scan data', body: concatBytes(J.subarray(0, jpegSegments(J).at(-1)!.offset + jpegSegments(J).at(-1)!.length), randomBytes(2000, 22), [0xff, 0xd9]), contentType: 'image/jpeg', expect: '2xx-or-4xx' });
  add({ name: 'PNG signature + random bytes', body: concatBytes(PNG_SIGNATURE, randomBytes(3000, 23)), contentType: 'image/png', expect: '4xx', status: 415 });
  add({ name: 'PNG IHDR + random IDAT', body: buildPng([pngChunks(P)[0], { type: 'IDAT', data: randomBytes(2000, 24) }, { type: 'IEND', data: new Uint8Array(0) }]), contentType: 'image/png', expect: '4xx' });

  // --- truncated files
  const jSegs = jpegSegments(J);
  const sof = jSegs.find((s) => s.marker === 0xc0)!;
  const dht = jSegs.find((s) => s.marker === 0xc4)!;
  const sos = jSegs.find((s) => s.marker === 0xda)!;
  const scanStart = sos.offset + sos.length;
  const jpegCuts: [string, number][] = [
    ['SOI only', 2],
    ['SOI + 1 byte', 3],
    ['inside APP0', 10],
    ['inside SOF', sof.offset + 6],
    ['after SOF', sof.offset + sof.length],
    ['inside DHT', dht.offset + 10],
    ['after SOS header', scanStart],
    ['10% into the scan', scanStart + Math.floor((J.length - scanStart) * 0.1)],
    ['half the scan', scanStart + Math.floor((J.length - scanStart) / 2)],
    ['10 bytes before the end', J.length - 10],
  ];
  for (const [what, at] of jpegCuts) add({ name: `truncated JPEG: ${what} (${at}/${J.length} bytes)`, body: J.slice(0, at), contentType: 'image/jpeg', expect: '4xx' });
  // Only the EOI marker missing: some decoders accept that.
  add({ name: 'truncated JPEG: no EOI', body: J.slice(0, J.length - 2), contentType: 'image/jpeg', expect: '2xx-or-4xx' });
  const pngCuts: [string, number][] = [
    ['signature only', 8],
    ['inside IHDR', 20],
    ['IHDR without CRC', 29],
    ['after IHDR', 33],
    ['inside IDAT', 33 + Math.floor((P.length - 45) / 2)],
    ['IDAT without CRC', P.length - 16],
  ];
  for (const [what, at] of pngCuts) add({ name: `truncated PNG: ${what} (${at}/${P.length} bytes)`, body: P.slice(0, at), contentType: 'image/png', expect: '4xx', status: at < 26 ? 415 : undefined });
  add({ name: 'truncated PNG: no IEND', body: P.slice(0, P.length - 12), contentType: 'image/png', expect: '2xx-or-4xx' });
  add({ name: 'truncated PNG: IEND without CRC', body: P.slice(0, P.length - 4), contentType: 'image/png', expect: '2xx-or-4xx' });

  // --- JPEG headers that lie, and JPEG variants
  add({ name: 'JPEG whose SOF declares 65535x65535', body: withSofSize(J, 65535, 65535), contentType: 'image/jpeg', expect: '4xx', status: 413 });
  add({ name: 'JPEG whose SOF declares 0x48', body: withSofSize(J, 0, 48), contentType: 'image/jpeg', expect: '4xx' });
  add({ name: 'JPEG whose SOF declares 1x1 (data for 64x48)', body: withSofSize(J, 1, 1), contentType: 'image/jpeg', expect: '2xx-or-4xx' });
  add({ name: 'JPEG whose SOF declares 2000x1500 (data for 64x48)', body: withSofSize(J, 2000, 1500), contentType: 'image/jpeg', expect: '2xx-or-4xx' });
  add({ name: 'JPEG whose SOF declares 9000x9000 with no room to decode', body: withSofSize(tinyJpeg({ width: 16, height: 16, components: 3 }), 9000, 9000), contentType: 'image/jpeg', expect: '4xx', status: 413 });
  add({ name: 'JPEG with two SOF markers', body: afterSoi(J, J.slice(sof.offset, sof.offset + sof.length)), contentType: 'image/jpeg', expect: '4xx' });
  add({ name: 'JPEG with no SOF', body: concatBytes(...[J.subarray(0, sof.offset), J.subarray(sof.offset + sof.length)]), contentType: 'image/jpeg', expect: '4xx' });
  add({ name: 'JPEG with no Huffman tables', body: concatBytes(J.subarray(0, 2), ...jSegs.filter((s) => s.marker !== 0xc4).map((s) => J.subarray(s.offset, s.offset + s.length)), J.subarray(scanStart)), contentType: 'image/jpeg', expect: '4xx' });
  add({ name: 'JPEG with a zero-length APP0', body: afterSoi(J, new Uint8Array([0xff, 0xe0, 0, 0])), contentType: 'image/jpeg', expect: '2xx-or-4xx' });
  add({ name: 'JPEG with DRI restart interval 1 but no RST markers', body: afterSoi(J, segment(0xdd, [0, 1])), contentType: 'image/jpeg', expect: '2xx-or-4xx' });
  add({ name: 'JPEG 12-bit precision SOF', body: (() => { const b = J.slice(); b[sof.offset + 4] = 12; return b; })(), contentType: 'image/jpeg', expect: '2xx-or-4xx' });
  add({ name: 'progressive JPEG (SOF2, DC + AC scans)', body: tinyJpeg({ width: 40, height: 24, components: 3, progressive: true }), contentType: 'image/jpeg', expect: '2xx-or-4xx' });
  add({ name: 'progressive grayscale JPEG', body: tinyJpeg({ width: 24, height: 40, components: 1, progressive: true }), contentType: 'image/jpeg', expect: '2xx-or-4xx' });
  add({ name: 'grayscale JPEG (1 component)', body: tinyJpeg({ width: 33, height: 17, components: 1 }), contentType: 'image/jpeg', expect: '2xx-or-4xx' });
  add({ name: 'CMYK JPEG (4 components, Adobe APP14 transform 0)', body: tinyJpeg({ width: 32, height: 32, components: 4, adobeTransform: 0 }), contentType: 'image/jpeg', expect: '2xx-or-4xx' });
  add({ name: 'YCCK JPEG (4 components, Adobe APP14 transform 2)', body: tinyJpeg({ width: 32, height: 24, components: 4, adobeTransform: 2 }), contentType: 'image/jpeg', expect: '2xx-or-4xx' });
  add({ name: 'CMYK JPEG without Adobe APP14', body: tinyJpeg({ width: 16, height: 16, components: 4 }), contentType: 'image/jpeg', expect: '2xx-or-4xx' });
  add({ name: 'hand-written baseline YCbCr JPEG', body: tinyJpeg({ width: 20, height: 20, components: 3 }), contentType: 'image/jpeg', expect: '2xx-or-4xx' });
  add({ name: 'JPEG 1x1', body: jpegOf(1, 1), contentType: 'image/jpeg', expect: '2xx-or-4xx' });
  add({ name: 'JPEG 4000x1', body: tinyJpeg({ width: 4000, height: 1, components: 3 }), contentType: 'image/jpeg', expect: '2xx-or-4xx' });
  add({ name: 'JPEG 1x4000', body: tinyJpeg({ width: 1, height: 4000, components: 1 }), contentType: 'image/jpeg', expect: '2xx-or-4xx' });

  // --- EXIF APP1 that lies (orientation is read by hand in shared/image/exif-orientation.ts)
  const ORIENT = 0x0112;
  const exifCases: [string, Uint8Array][] = [
    ['IFD offset past the segment', exifSegment(tiff(true, [{ tag: ORIENT, type: 3, count: 1, value: shortValue(true, 6) }], { ifdOffset: 0xfffffff0 }))],
    ['IFD offset 0 (points at the header)', exifSegment(tiff(false, [{ tag: ORIENT, type: 3, count: 1, value: shortValue(false, 3) }], { ifdOffset: 0 }))],
    ['IFD entry count 65535 with one entry', exifSegment(tiff(true, [{ tag: ORIENT, type: 3, count: 1, value: shortValue(true, 8) }], { count: 0xffff }))],
    ['orientation tag with type ASCII', exifSegment(tiff(true, [{ tag: ORIENT, type: 2, count: 4, value: [...ascii('abc'), 0] }]))],
    ['orientation tag with type LONG = 6', exifSegment(tiff(true, [{ tag: ORIENT, type: 4, count: 1, value: [6, 0, 0, 0] }]))],
    ['orientation tag with type RATIONAL pointing past the end', exifSegment(tiff(false, [{ tag: ORIENT, type: 5, count: 1, value: [0x7f, 0xff, 0xff, 0xff] }]))],
    ['orientation SHORT count 1000 (values offset)', exifSegment(tiff(false, [{ tag: ORIENT, type: 3, count: 1000, value: [0, 0, 0, 5] }]))],
    ['orientation value 0', exifSegment(tiff(true, [{ tag: ORIENT, type: 3, count: 1, value: shortValue(true, 0) }]))],
    ['orientation value 9', exifSegment(tiff(false, [{ tag: ORIENT, type: 3, count: 1, value: shortValue(false, 9) }]))],
    ['orientation value 65535', exifSegment(tiff(true, [{ tag: ORIENT, type: 3, count: 1, value: shortValue(true, 65535) }]))],
    ['orientation 7 on a non-square image', exifSegment(tiff(false, [{ tag: ORIENT, type: 3, count: 1, value: shortValue(false, 7) }]))],
    ['bad byte order mark', exifSegment(tiff(true, [{ tag: ORIENT, type: 3, count: 1, value: shortValue(true, 6) }], { order: 'XY' }))],
    ['TIFF header cut to 3 bytes', segment(0xe1, concatBytes(ascii('Exif\0\0'), ascii('II*')))],
    ['"Exif" without the two NULs', segment(0xe1, ascii('Exif'))],
    ['APP1 length 2 (no payload)', new Uint8Array([0xff, 0xe1, 0x00, 0x02])],
    ['two conflicting Exif segments', concatBytes(
      exifSegment(tiff(true, [{ tag: ORIENT, type: 3, count: 1, value: shortValue(true, 6) }])),
      exifSegment(tiff(false, [{ tag: ORIENT, type: 3, count: 1, value: shortValue(false, 3) }])),
    )],
  ];
  for (const [what, seg] of exifCases) add({ name: `JPEG with corrupt EXIF: ${what}`, body: afterSoi(J, seg), contentType: 'image/jpeg', expect: '2xx-or-4xx' });
  // A segment length that runs past the end of the file makes the JPEG itself invalid.
  const longExif = exifSegment(tiff(true, [{ tag: ORIENT, type: 3, count: 1, value: shortValue(true, 6) }]));
  longExif[2] = 0xff;
  longExif[3] = 0xf0;
  add({ name: 'JPEG with corrupt EXIF: APP1 length runs past the end of the file', body: afterSoi(J, longExif), contentType: 'image/jpeg', expect: '2xx-or-4xx' });

  // --- PNG variants and lies
  const pc = pngChunks(P);
  add({ name: 'PNG with a bad IDAT CRC', body: buildPng(pc, 'IDAT'), contentType: 'image/png', expect: '4xx', status: 415 });
  add({ name: 'PNG with a bad IHDR CRC', body: buildPng(pc, 'IHDR'), contentType: 'image/png', expect: '4xx', status: 415 });
  add({ name: 'PNG 16-bit RGB', body: encodePng({ width: 20, height: 12, data: Uint16Array.from(pattern(20, 12, 3), (v) => v * 257), channels: 3, depth: 16 }), contentType: 'image/png', expect: '2xx-or-4xx' });
  add({ name: 'PNG 16-bit gray + alpha', body: encodePng({ width: 9, height: 7, data: Uint16Array.from(pattern(9, 7, 2), (v) => v * 250), channels: 2, depth: 16 }), contentType: 'image/png', expect: '2xx-or-4xx' });
  add({ name: 'PNG interlaced (Adam7) RGB', body: encodePng({ width: 37, height: 23, data: pattern(37, 23, 3), channels: 3, depth: 8 }, { interlace: 'Adam7' }), contentType: 'image/png', expect: '2xx-or-4xx' });
  add({ name: 'PNG interlaced (Adam7) 16-bit RGBA', body: encodePng({ width: 5, height: 9, data: Uint16Array.from(pattern(5, 9, 4), (v) => v * 257), channels: 4, depth: 16 }, { interlace: 'Adam7' }), contentType: 'image/png', expect: '2xx-or-4xx' });
  add({ name: 'PNG 1-bit grayscale', body: encodePng({ width: 16, height: 3, data: new Uint8Array([0xa5, 0x5a, 0xff, 0x00, 0x0f, 0xf0]), channels: 1, depth: 1 }), contentType: 'image/png', expect: '2xx-or-4xx' });
  const withIhdr = (w: number, h: number, depth = 8, colorType = 2) => buildPng([ihdr(w, h, depth, colorType), ...pc.slice(1)]);
  add({ name: 'PNG whose IHDR declares 100000x100000', body: withIhdr(100_000, 100_000), contentType: 'image/png', expect: '4xx', status: 413 });
  add({ name: 'PNG whose IHDR declares 4294967295x1', body: withIhdr(0xffffffff, 1), contentType: 'image/png', expect: '4xx', status: 413 });
  // Interlaced PNGs are decoded in full, so this one is over the decode memory budget before any work;
  // the same header without interlacing is streamed row by row and its 40x30 of data is too short.
  add({ name: 'interlaced PNG whose IHDR declares 4800x4800 RGBA 16-bit (over the decode memory budget)', body: buildPng([ihdr(4800, 4800, 16, 6, 1), ...pc.slice(1)]), contentType: 'image/png', expect: '4xx', status: 413 });
  add({ name: 'PNG whose IHDR declares 4800x4800 RGBA 16-bit (IDAT for 40x30)', body: withIhdr(4800, 4800, 16, 6), contentType: 'image/png', expect: '4xx', status: 415 });
  add({ name: 'PNG whose IHDR declares 2000x2000 (IDAT for 40x30)', body: withIhdr(2000, 2000), contentType: 'image/png', expect: '4xx' });
  add({ name: 'PNG whose IHDR declares 0x30', body: withIhdr(0, 30), contentType: 'image/png', expect: '4xx' });
  add({ name: 'PNG with invalid colour type 7', body: withIhdr(40, 30, 8, 7), contentType: 'image/png', expect: '4xx', status: 415 });
  add({ name: 'PNG with invalid bit depth 3', body: withIhdr(40, 30, 3, 2), contentType: 'image/png', expect: '4xx', status: 415 });
  add({ name: 'PNG with compression method 1', body: buildPng([{ type: 'IHDR', data: (() => { const d = pc[0].data.slice(); d[10] = 1; return d; })() }, ...pc.slice(1)]), contentType: 'image/png', expect: '4xx' });
  add({ name: 'PNG with interlace method 2', body: buildPng([ihdr(40, 30, 8, 2, 2), ...pc.slice(1)]), contentType: 'image/png', expect: '4xx' });
  add({ name: 'PNG without IDAT', body: buildPng([pc[0], { type: 'IEND', data: new Uint8Array(0) }]), contentType: 'image/png', expect: '4xx' });
  add({ name: 'PNG with an empty IDAT', body: buildPng([pc[0], { type: 'IDAT', data: new Uint8Array(0) }, { type: 'IEND', data: new Uint8Array(0) }]), contentType: 'image/png', expect: '4xx' });
  add({ name: 'PNG indexed without PLTE', body: buildPng([ihdr(40, 30, 8, 3), ...pc.slice(1)]), contentType: 'image/png', expect: '2xx-or-4xx' });
  add({ name: 'PNG with a chunk length of 2^31', body: concatBytes(P.subarray(0, 33), [0x80, 0, 0, 0], ascii('tEXt'), P.subarray(33)), contentType: 'image/png', expect: '4xx' });
  // Pixel-limit bypass: a second IHDR (ignored by the header check) declaring 6000x4001 (> 24 MP),
  // with IDAT data that really inflates to that size (24 MB of zeros → ~24 kB deflated).
  add({
    name: 'PNG with a second IHDR declaring 6000x4001 (over MAX_PIXELS)',
    body: buildPng([ihdr(40, 30, 8, 0), ihdr(6000, 4001, 8, 0), { type: 'IDAT', data: await zlibZeros(4001 * 6001) }, { type: 'IEND', data: new Uint8Array(0) }]),
    contentType: 'image/png',
    expect: '4xx',
  });
  // zlib bomb: a 16x16 image whose IDAT inflates to 64 MB (~64 kB on the wire).
  add({
    name: 'PNG zlib bomb: 16x16 whose IDAT inflates to 64 MB',
    body: buildPng([ihdr(16, 16, 8, 2), { type: 'IDAT', data: await zlibZeros(64 << 20) }, { type: 'IEND', data: new Uint8Array(0) }]),
    contentType: 'image/png',
    expect: '4xx',
  });

  // --- size limit
  const overLimit = concatBytes(J, new Uint8Array(maxBody + 1 - J.length));
  add({ name: `body of ${maxBody + 1} bytes (limit + 1) with Content-Length`, body: overLimit, contentType: 'image/jpeg', headers: { 'Content-Length': String(overLimit.length) }, expect: '4xx', status: 413 });
  add({ name: `body of ${maxBody + 1} bytes (limit + 1), chunked without Content-Length`, body: chunkedStream(overLimit), contentType: 'image/jpeg', expect: '4xx', status: 413 });
  add({ name: `body of ${maxBody + 1} bytes (limit + 1), multipart, chunked`, body: chunkedStream(multipart('b0und', [{ filename: 'a.jpg', type: 'image/jpeg', data: overLimit.subarray(0, maxBody - 100) }])), contentType: 'multipart/form-data; boundary=b0und', expect: '4xx', status: 413 });
  add({ name: `body of exactly ${maxBody} bytes (JPEG + trailing zeros), chunked`, body: chunkedStream(overLimit.subarray(0, maxBody)), contentType: 'image/jpeg', expect: '2xx-or-4xx' });
  add({ name: 'Content-Length declares 10 GB', body: J, contentType: 'image/jpeg', headers: { 'Content-Length': '10000000000' }, expect: '4xx', status: 413 });
  add({ name: 'body stream fails mid-upload (client went away)', body: failingStream(J.subarray(0, 500)), contentType: 'image/jpeg', expect: '4xx' });
  add({ name: 'multipart body stream fails mid-upload', body: failingStream(multipart('zz', [{ filename: 'a.jpg', type: 'image/jpeg', data: J }]).subarray(0, 300)), contentType: 'multipart/form-data; boundary=zz', expect: '4xx' });

  // --- multipart
  const small = jpegOf(16, 16);
  add({ name: 'multipart with 100 image parts', body: multipart('many', Array.from({ length: 100 }, (_, i) => ({ filename: `${i}.jpg`, type: 'image/jpeg', data: small }))), contentType: 'multipart/form-data; boundary=many', expect: '4xx', status: 413 });
  add({ name: 'multipart with 100 image parts, chunked', body: chunkedStream(multipart('many', Array.from({ length: 100 }, (_, i) => ({ filename: `${i}.jpg`, type: 'image/jpeg', data: small }))), 1000), contentType: 'multipart/form-data; boundary=many', expect: '4xx', status: 413 });
  const one = multipart('realboundary', [{ filename: 'a.jpg', type: 'image/jpeg', data: J }]);
  add({ name: 'multipart whose body uses another boundary', body: one, contentType: 'multipart/form-data; boundary=otherboundary', expect: '4xx', status: 400 });
  add({ name: 'multipart without a boundary parameter', body: one, contentType: 'multipart/form-data', expect: '4xx', status: 400 });
  add({ name: 'multipart with an empty boundary', body: one, contentType: 'multipart/form-data; boundary=', expect: '4xx', status: 400 });
  add({ name: 'multipart with an unterminated quoted boundary', body: one, contentType: 'multipart/form-data; boundary="realboundary', expect: '2xx-or-4xx' });
  add({ name: 'multipart with a 200-character boundary', body: multipart('x'.repeat(200), [{ filename: 'a.jpg', type: 'image/jpeg', data: J }]), contentType: `multipart/form-data; boundary=${'x'.repeat(200)}`, expect: '2xx-or-4xx' });
  add({ name: 'multipart without the closing boundary', body: multipart('open', [{ filename: 'a.jpg', type: 'image/jpeg', data: J }], { close: false }), contentType: 'multipart/form-data; boundary=open', expect: '2xx-or-4xx' });
  add({ name: 'multipart part without Content-Disposition', body: multipart('nd', [{ rawHeaders: 'Content-Type: image/jpeg\r\n', data: J }]), contentType: 'multipart/form-data; boundary=nd', expect: '4xx', status: 400 });
  add({ name: "multipart 'image' field as text", body: multipart('tx', [{ data: 'not a file' }]), contentType: 'multipart/form-data; boundary=tx', expect: '4xx', status: 400 });
  add({ name: "multipart without an 'image' field", body: multipart('nf', [{ name: 'photo', filename: 'a.jpg', type: 'image/jpeg', data: J }]), contentType: 'multipart/form-data; boundary=nf', expect: '4xx', status: 400 });
  add({ name: 'multipart with an empty image file', body: multipart('ef', [{ filename: 'a.jpg', type: 'image/jpeg', data: new Uint8Array(0) }]), contentType: 'multipart/form-data; boundary=ef', expect: '4xx', status: 400 });
  add({ name: 'multipart: good JPEG + GIF', body: multipart('mix', [{ filename: 'a.jpg', type: 'image/jpeg', data: J }, { filename: 'b.gif', type: 'image/gif', data: GIF }]), contentType: 'multipart/form-data; boundary=mix', expect: 'per-file-error', badParts: [1] });
  add({ name: 'multipart: good PNG + truncated JPEG', body: multipart('mix2', [{ filename: 'a.png', type: 'image/png', data: P }, { filename: 'b.jpg', type: 'image/jpeg', data: J.subarray(0, 300) }]), contentType: 'multipart/form-data; boundary=mix2', expect: 'per-file-error', badParts: [1] });
  add({ name: 'multipart declared, raw JPEG sent', body: J, contentType: 'multipart/form-data; boundary=abc', expect: '4xx', status: 400 });

  // --- wrong or missing content type
  add({ name: 'JPEG sent as text/plain', body: J, contentType: 'text/plain', expect: '4xx', status: 415 });
  add({ name: 'JSON sent as application/json', body: ascii(JSON.stringify({ image: 'aGVsbG8=' })), contentType: 'application/json', expect: '4xx', status: 415 });
  add({ name: 'form-urlencoded body', body: ascii('image=abc'), contentType: 'application/x-www-form-urlencoded', expect: '4xx', status: 415 });
  add({ name: 'real GIF as image/gif', body: GIF, contentType: 'image/gif', expect: '4xx', status: 415 });
  add({ name: 'real GIF declared as image/jpeg', body: GIF, contentType: 'image/jpeg', expect: '4xx', status: 415 });
  add({ name: 'WebP magic as image/webp', body: WEBP, contentType: 'image/webp', expect: '4xx', status: 415 });
  add({ name: 'WebP magic declared as image/png', body: WEBP, contentType: 'image/png', expect: '4xx', status: 415 });
  add({ name: 'PNG declared as image/jpeg', body: P, contentType: 'image/jpeg', expect: '2xx-or-4xx' });
  add({ name: 'missing Content-Type (JPEG body)', body: J, contentType: null, expect: '4xx', status: 415 });
  add({ name: 'Content-Type with parameters only', body: J, contentType: '; charset=utf-8', expect: '4xx', status: 415 });
  add({ name: 'Content-Type image/jpeg with odd case and parameters', body: J, contentType: 'IMAGE/JPEG; q=0.5', expect: '2xx-or-4xx' });
  add({ name: 'Content-Type 1 kB long', body: J, contentType: `image/${'x'.repeat(1000)}`, expect: '4xx', status: 415 });

  // --- bad query values (valid JPEG body)
  const queries: [string, HostileCase['expect']][] = [
    ['?beam=-1', '4xx'],
    ['?beam=1.5', '4xx'],
    ['?beam=99999', '4xx'],
    ['?beam=0', '4xx'],
    ['?beam=11', '4xx'],
    ['?beam=', '4xx'],
    ['?beam', '4xx'],
    ['?beam=1e1', '4xx'],
    ['?beam=0x3', '4xx'],
    ['?beam=%2B3', '4xx'],
    ['?beam=%D9%A3', '4xx'], // Arabic-Indic digit three
    ['?beam=%ZZ', '4xx'],
    [`?beam=${'9'.repeat(5000)}`, '4xx'],
    ['?alternatives=0', '4xx'],
    ['?beam=2&alternatives=3', '4xx'],
    ['?maxLength=abc', '4xx'],
    ['?maxLength=0', '4xx'],
    ['?maxLength=1000', '4xx'],
    ['?temperature=0.7', '4xx'],
    ['?BEAM=3', '4xx'],
    ['?beam=2&beam=3', '2xx-or-4xx'],
    ['?beam=3&beam=abc', '2xx-or-4xx'],
    ['?=3', '2xx-or-4xx'],
  ];
  for (const [query, expect] of queries) add({ name: `query ${query.length > 40 ? `${query.slice(0, 30)}… (${query.length} chars)` : query}`, body: J, contentType: 'image/jpeg', query, expect, status: expect === '4xx' ? 400 : undefined });

  return cases;
}

// A real 1x1 GIF89a and the first bytes of a WebP (RIFF....WEBPVP8L).
const GIF = new Uint8Array([
  0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x21, 0xf9, 0x04, 0x01, 0x00,
  0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
]);
const WEBP = concatBytes(ascii('RIFF'), [26, 0, 0, 0], ascii('WEBPVP8L'), [13, 0, 0, 0, 0x2f, 0, 0, 0, 0x10, 0x07, 0x10, 0x11, 0x11, 0x88, 0x88, 0xfe, 0x07, 0x00]);

// ---------------------------------------------------------------------------------------------
// Mutation fuzzing

/**
 * `n` mutated copies of valid JPEG and PNG files (bit flips, byte overwrites, segment/chunk
 * deletion and duplication, length-field edits, truncation, insertion), deterministic for a seed.
 * PNG chunks that are edited get their CRC recomputed half of the time, so the decoder proper is
 * reached and not only the CRC check. All are `2xx-or-4xx`.
 */
export function moreHostileInputs(seed: number, n: number): HostileCase[] {
  const r = rng(seed);
  const int = (k: number) => Math.floor(r() * k);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
  const bases: { kind: 'jpeg' | 'png'; label: string; bytes: Uint8Array }[] = [
    { kind: 'jpeg', label: 'baseline 4:2:0 JPEG', bytes: jpegOf(48, 40, 3) },
    { kind: 'jpeg', label: 'progressive JPEG', bytes: tinyJpeg({ width: 40, height: 32, components: 3, progressive: true }) },
    { kind: 'jpeg', label: 'grayscale JPEG', bytes: tinyJpeg({ width: 24, height: 24, components: 1 }) },
    { kind: 'png', label: 'RGB PNG', bytes: pngOf(32, 24, 5) },
    { kind: 'png', label: 'interlaced RGBA PNG', bytes: encodePng({ width: 20, height: 20, data: pattern(20, 20, 4, 2), channels: 4, depth: 8 }, { interlace: 'Adam7' }) },
  ];
  const out: HostileCase[] = [];
  for (let i = 0; i < n; i++) {
    const base = bases[i % bases.length];
    let b: Uint8Array = base.bytes.slice();
    const steps: string[] = [];
    const rounds = 1 + int(3);
    for (let k = 0; k < rounds; k++) {
      const [mutated, what] = base.kind === 'jpeg' ? mutateJpeg(b, r, int, pick) : mutatePng(b, r, int, pick);
      b = mutated;
      steps.push(what);
    }
    const contentType = r() < 0.9 ? `image/${base.kind}` : `image/${base.kind === 'jpeg' ? 'png' : 'jpeg'}`;
    out.push({ name: `fuzz #${i} (seed ${seed}) ${base.label}: ${steps.join(', ')} as ${contentType}`, body: b, contentType, expect: '2xx-or-4xx' });
  }
  return out;
}

type Mutation = [Uint8Array, string];
const INTERESTING = [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff];

function genericMutation(b: Uint8Array, r: () => number, int: (k: number) => number, pick: <T>(xs: readonly T[]) => T): Mutation {
  const choice = int(4);
  if (choice === 0) {
    const flips = 1 + int(8);
    const out = b.slice();
    for (let j = 0; j < flips; j++) {
      const at = 2 + int(out.length - 2);
      out[at] ^= 1 << int(8);
    }
    return [out, `${flips} bit flips`];
  }
  if (choice === 1) {
    const out = b.slice();
    const at = 2 + int(out.length - 2);
    const v = pick(INTERESTING);
    out[at] = v;
    return [out, `byte ${at} := 0x${v.toString(16)}`];
  }
  if (choice === 2) {
    const at = 2 + int(b.length - 2);
    return [b.slice(0, at), `truncated at ${at}`];
  }
  const at = 2 + int(b.length - 2);
  const len = 1 + int(64);
  const junk = new Uint8Array(len).map(() => (r() < 0.3 ? 0xff : int(256)));
  return [concatBytes(b.subarray(0, at), junk, b.subarray(at)), `${len} bytes inserted at ${at}`];
}

function mutateJpeg(b: Uint8Array, r: () => number, int: (k: number) => number, pick: <T>(xs: readonly T[]) => T): Mutation {
  const segs = jpegSegments(b);
  const choice = int(6);
  if (choice >= 3 || segs.length === 0) return genericMutation(b, r, int, pick);
  const s = pick(segs);
  const name = `0xFF${s.marker.toString(16).toUpperCase()}`;
  if (choice === 0) return [concatBytes(b.subarray(0, s.offset), b.subarray(s.offset + s.length)), `segment ${name} deleted`];
  if (choice === 1) return [concatBytes(b.subarray(0, s.offset + s.length), b.subarray(s.offset, s.offset + s.length), b.subarray(s.offset + s.length)), `segment ${name} duplicated`];
  const out = b.slice();
  const len = pick([0, 1, 2, 3, 0xffff, ((out[s.offset + 2] << 8) | out[s.offset + 3]) + pick([-3, -1, 1, 5]), int(0x10000)]) & 0xffff;
  out[s.offset + 2] = len >> 8;
  out[s.offset + 3] = len & 255;
  return [out, `segment ${name} length := ${len}`];
}

function mutatePng(b: Uint8Array, r: () => number, int: (k: number) => number, pick: <T>(xs: readonly T[]) => T): Mutation {
  const chunks = pngChunks(b);
  const choice = int(7);
  if (choice >= 4 || chunks.length === 0) return genericMutation(b, r, int, pick);
  const i = int(chunks.length);
  const c = chunks[i];
  const name = c.type.replace(/[^\x21-\x7e]/g, '?'); // mutated types can be any bytes
  if (choice === 0) return [buildPng(chunks.filter((_, j) => j !== i)), `chunk ${name} deleted`];
  if (choice === 1) return [buildPng([...chunks.slice(0, i + 1), c, ...chunks.slice(i + 1)]), `chunk ${name} duplicated`];
  if (choice === 2) {
    // Length field edit (the CRC no longer lines up with anything).
    const out = b.slice();
    let p = 8;
    for (let j = 0; j < i; j++) p += 12 + chunks[j].data.length;
    const len = pick([0, 1, 0x7fffffff, 0xffffffff, c.data.length + pick([-4, -1, 1, 4]), int(1 << 20)]) >>> 0;
    out.set(u32be(len), p);
    return [out, `chunk ${name} length := ${len}`];
  }
  // Corrupt the chunk's data, then (half the time) give it a valid CRC so the decoder sees it.
  const data = c.data.slice();
  const flips = 1 + int(4);
  for (let j = 0; j < flips && data.length; j++) data[int(data.length)] ^= 1 << int(8);
  const fixCrc = r() < 0.5;
  const next = chunks.map((x, j) => (j === i ? { type: x.type, data } : x));
  return [buildPng(next, fixCrc ? undefined : c.type), `${flips} bit flips in ${name}${fixCrc ? ' (CRC fixed)' : ''}`];
}
