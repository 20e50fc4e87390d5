import { ImageInputError } from './types';

/** What the JPEG decoders share: tables, segment parsers and the entropy-coded bit reader (T.81). */

export interface HuffTable {
  /** 9-bit lookahead: (length << 8) | symbol for codes up to 9 bits, 0 when longer. */
  fast: Uint16Array;
  maxcode: Int32Array;
  mincode: Int32Array;
  valptr: Int32Array;
  values: Uint8Array;
}

export const FAST_BITS = 9;
export const FAST_MASK = (1 << FAST_BITS) - 1;

/** Zig-zag index → natural (row-major) index, built by walking the anti-diagonals. */
export const ZIGZAG = (() => {
  const out = new Uint8Array(64);
  let i = 0;
  for (let d = 0; d < 15; d++) {
    if (d % 2 === 0) for (let r = Math.min(d, 7); r >= Math.max(0, d - 7); r--) out[i++] = r * 8 + (d - r);
    else for (let r = Math.max(0, d - 7); r <= Math.min(d, 7); r++) out[i++] = r * 8 + (d - r);
  }
  return out;
})();

export function corrupt(what: string): ImageInputError {
  return new ImageInputError('undecodable_image', `JPEG ${what}`);
}

export const hex = (m: number) => m.toString(16).toUpperCase().padStart(2, '0');

export function parseQuant(b: Uint8Array, s: number, e: number, quant: (Uint16Array | null)[]): void {
  let o = s;
  while (o < e) {
    const pq = b[o] >> 4;
    const tq = b[o] & 15;
    if (pq > 1 || tq > 3) throw corrupt(`DQT has precision/table ${pq}/${tq}`);
    const size = pq === 0 ? 64 : 128;
    if (o + 1 + size > e) throw corrupt('DQT segment is shorter than its tables');
    const q = new Uint16Array(64);
    for (let k = 0; k < 64; k++) q[ZIGZAG[k]] = pq === 0 ? b[o + 1 + k] : (b[o + 1 + 2 * k] << 8) | b[o + 2 + 2 * k];
    quant[tq] = q;
    o += 1 + size;
  }
}

/** A scan header (SOS, T.81 B.2.3): the components it codes with their DC/AC table ids, the spectral band and approximation bits. */
export interface ScanHeader<C> {
  comps: { c: C; td: number; ta: number }[];
  ss: number;
  se: number;
  ah: number;
  al: number;
}

/** Parses an SOS header against the frame's components: lengths, unknown or repeated components, blocks per MCU. */
export function parseScanHeader<C extends { id: number; h: number; v: number }>(b: Uint8Array, s: number, e: number, components: C[]): ScanHeader<C> {
  const ns = b[s];
  if (ns < 1 || ns > 4 || e - s !== 4 + 2 * ns) throw corrupt(`scan header for ${ns} components has length ${e - s + 2}`);
  const comps: ScanHeader<C>['comps'] = [];
  let blocksPerMcu = 0;
  for (let i = 0; i < ns; i++) {
    const id = b[s + 1 + 2 * i];
    const c = components.find((x) => x.id === id);
    if (!c) throw corrupt(`scan refers to unknown component ${id}`);
    if (comps.some((x) => x.c === c)) throw corrupt(`scan lists component ${id} twice`);
    comps.push({ c, td: b[s + 2 + 2 * i] >> 4, ta: b[s + 2 + 2 * i] & 15 });
    blocksPerMcu += c.h * c.v;
  }
  if (ns > 1 && blocksPerMcu > 10) throw corrupt(`interleaved scan has ${blocksPerMcu} blocks per MCU (at most 10)`);
  const a = b[s + 3 + 2 * ns];
  return { comps, ss: b[s + 1 + 2 * ns], se: b[s + 2 + 2 * ns], ah: a >> 4, al: a & 15 };
}

export function parseHuffman(b: Uint8Array, s: number, e: number, dc: (HuffTable | null)[], ac: (HuffTable | null)[]): void {
  let o = s;
  while (o < e) {
    const tc = b[o] >> 4;
    const th = b[o] & 15;
    if (tc > 1 || th > 3) throw corrupt(`DHT has class/table ${tc}/${th}`);
    if (o + 17 > e) throw corrupt('DHT segment is shorter than its code counts');
    const counts = b.subarray(o + 1, o + 17);
    let total = 0;
    for (let i = 0; i < 16; i++) total += counts[i];
    if (total > 256 || o + 17 + total > e) throw corrupt('DHT segment is shorter than its symbols');
    const table = buildHuffman(counts, b.slice(o + 17, o + 17 + total));
    (tc === 0 ? dc : ac)[th] = table;
    o += 17 + total;
  }
}

/** Canonical codes (T.81 Annex C) with the decoding limits of F.2.2.3, plus a 9-bit lookup table. */
function buildHuffman(counts: Uint8Array, values: Uint8Array): HuffTable {
  const maxcode = new Int32Array(18).fill(-1);
  const mincode = new Int32Array(17);
  const valptr = new Int32Array(17);
  const fast = new Uint16Array(1 << FAST_BITS);
  let code = 0;
  let k = 0;
  for (let l = 1; l <= 16; l++) {
    const cnt = counts[l - 1];
    valptr[l] = k;
    mincode[l] = code;
    if (cnt > 0) {
      if (code + cnt > 1 << l) throw corrupt('has an over-subscribed Huffman table');
      maxcode[l] = code + cnt - 1;
      if (l <= FAST_BITS) {
        for (let i = 0; i < cnt; i++) {
          const shift = FAST_BITS - l;
          const entry = (l << 8) | values[k + i];
          fast.fill(entry, (code + i) << shift, (code + i + 1) << shift);
        }
      }
    }
    code += cnt;
    k += cnt;
    code <<= 1;
  }
  return { fast, maxcode, mincode, valptr, values };
}

/**
 * Entropy-coded data reader. Bytes are fed MSB first into a 32-bit accumulator, 0xFF00 unstuffed.
 * At a marker (or the end of the data) it stops and feeds zero bytes instead, counting them in
 * `pad`: a valid scan never consumes those, so `pad > nbits` means the scan is truncated or corrupt.
 */
export class BitReader {
  acc = 0;
  nbits = 0;
  pad = 0;
  stopped = false;

  constructor(private readonly data: Uint8Array, public pos: number) {}

  fill(): void {
    const d = this.data;
    while (this.nbits <= 24) {
      let byte = 0;
      if (!this.stopped) {
        const p = this.pos;
        if (p >= d.length) {
          this.stopped = true;
          this.pad += 8;
        } else {
          byte = d[p];
          if (byte === 0xff) {
            if (p + 1 < d.length && d[p + 1] === 0) {
              this.pos = p + 2;
            } else {
              this.stopped = true; // a marker: leave pos on its 0xFF
              byte = 0;
              this.pad += 8;
            }
          } else {
            this.pos = p + 1;
          }
        }
      } else {
        this.pad += 8;
      }
      this.acc = (this.acc << 8) | byte;
      this.nbits += 8;
    }
  }

  /** A code longer than FAST_BITS (the caller has made sure 16 bits are buffered). */
  decodeSlow(t: HuffTable): number {
    const peek = (this.acc >>> (this.nbits - 16)) & 0xffff;
    for (let l = FAST_BITS + 1; l <= 16; l++) {
      const code = peek >>> (16 - l);
      if (code <= t.maxcode[l]) {
        this.nbits -= l;
        return t.values[t.valptr[l] + code - t.mincode[l]];
      }
    }
    throw corrupt('scan has an invalid Huffman code');
  }

  /** One Huffman symbol (the plain path; the baseline decoder inlines this in its hot loop). */
  decode(t: HuffTable): number {
    if (this.nbits < 16) this.fill();
    const e = t.fast[(this.acc >>> (this.nbits - FAST_BITS)) & FAST_MASK];
    if (e === 0) return this.decodeSlow(t);
    this.nbits -= e >> 8;
    return e & 255;
  }

  /** The next n raw bits (n ≤ 16) as an unsigned number. */
  bits(n: number): number {
    if (n === 0) return 0;
    if (this.nbits < n) this.fill();
    this.nbits -= n;
    return (this.acc >>> this.nbits) & ((1 << n) - 1);
  }

  /** n bits as a signed magnitude-category value (T.81 F.2.2.1, EXTEND). */
  receiveExtend(n: number): number {
    const v = this.bits(n);
    return n > 0 && v < 1 << (n - 1) ? v + 1 - (1 << n) : v;
  }

  /** Throws if the data consumed so far ran into the zero padding past the scan's bytes. */
  check(): void {
    if (this.pad > this.nbits) throw corrupt('scan data is truncated or corrupt');
  }

  /** Drops the buffered bits and moves past the next marker, which must be RST0..7. */
  restart(): void {
    this.acc = 0;
    this.nbits = 0;
    this.pad = 0;
    const d = this.data;
    let p = this.pos;
    // Skip what is left of the interval (normally nothing, or bits of padding) up to a marker.
    while (p + 1 < d.length && !(d[p] === 0xff && d[p + 1] !== 0 && d[p + 1] !== 0xff)) p++;
    if (p + 1 < d.length && d[p + 1] >= 0xd0 && d[p + 1] <= 0xd7) {
      this.pos = p + 2;
      this.stopped = false;
      return;
    }
    throw corrupt('scan is missing a restart marker');
  }
}

