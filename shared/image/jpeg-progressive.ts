import { BitReader, corrupt, parseScanHeader, ZIGZAG, type HuffTable } from './jpeg-bits';
import type { Component, Frame } from './jpeg-scaled';

/**
 * Progressive JPEG (T.81 Annex G, Huffman) for the reduced-scale decoder in jpeg-scaled.ts.
 *
 * A progressive file sends each block's coefficients over several scans (DC first, then bands of
 * AC terms, each possibly refined bit by bit later), so nothing can be turned into samples before
 * the last scan. Instead of a full coefficient buffer (2 bytes × 64 per block: ~36 MB for a 12 MP
 * photo) each block keeps only the coefficients the reduced IDCT uses (1 at 1/8 scale for luma)
 * plus one bit per coefficient saying whether it is non-zero yet, which refinement scans need for
 * every coefficient of their band: 8 bytes per block. A 12 MP 4:2:0 photo at 1/8 needs ~7 MB.
 */

export interface ProgressiveCoefficients {
  /** Zig-zag index → slot in `values`, or -1 for a coefficient the reduced IDCT does not use. */
  slot: Int8Array;
  /** Slots per block. */
  kept: number;
  /** blocks × kept coefficients (quantised, as coded). */
  values: Int16Array;
  /** Two words per block: bit k (k < 32 in the first, k − 32 in the second) = coefficient k is non-zero. */
  nz: Uint32Array;
}

/** Bytes the coefficient store of a component needs (for the memory check before allocating). */
export function progressiveBytes(blocks: number, kept: number): number {
  return blocks * (8 + 2 * kept);
}

/** The store for one component; `used(k)` says whether zig-zag coefficient k reaches the output. */
export function progressiveCoefficients(c: Pick<Component, 'blocksX' | 'blocksY'>, used: (k: number) => boolean): ProgressiveCoefficients {
  const slot = new Int8Array(64).fill(-1);
  let kept = 0;
  for (let k = 0; k < 64; k++) if (used(k)) slot[k] = kept++;
  const blocks = c.blocksX * c.blocksY;
  return { slot, kept, values: new Int16Array(blocks * kept), nz: new Uint32Array(blocks * 2) };
}

interface ScanComponent {
  c: Component;
  dc: HuffTable | null;
  ac: HuffTable | null;
  pred: number;
}

export interface ProgressiveScan {
  comps: ScanComponent[];
  /** Spectral selection (zig-zag band) and successive approximation (bit positions). */
  ss: number;
  se: number;
  ah: number;
  al: number;
  /** Blocks left in the current end-of-band run (AC scans). */
  eobrun: number;
}

export function parseProgressiveScan(
  b: Uint8Array, s: number, e: number, frame: Frame,
  dcTables: (HuffTable | null)[], acTables: (HuffTable | null)[],
): ProgressiveScan {
  const { comps, ss, se, ah, al } = parseScanHeader(b, s, e, frame.components);
  // G.1.1.1.1: a DC scan is band 0..0; an AC band lies in 1..63 and covers one component.
  const validBand = ss === 0 ? se === 0 : se >= ss && se <= 63 && comps.length === 1;
  if (!validBand || ah > 13 || al > 13) throw corrupt(`progressive scan has spectral selection ${ss}..${se} / approximation ${ah}/${al} for ${comps.length} components`);
  return {
    comps: comps.map(({ c, td, ta }) => {
      // Only a first DC scan reads DC codes; only AC scans read AC codes.
      const dc = ss === 0 && ah === 0 ? dcTables[td] : null;
      const ac = ss > 0 ? acTables[ta] : null;
      if ((ss === 0 && ah === 0 && !dc) || (ss > 0 && !ac)) throw corrupt(`scan uses an undefined Huffman table for component ${c.id}`);
      return { c, dc, ac, pred: 0 };
    }),
    ss,
    se,
    ah,
    al,
    eobrun: 0,
  };
}

/** Decodes one progressive scan's entropy-coded data starting at `pos`; returns where the reader stopped. */
export function decodeProgressiveScan(data: Uint8Array, pos: number, frame: Frame, scan: ProgressiveScan, restartInterval: number): number {
  const r = new BitReader(data, pos);
  const comps = scan.comps;
  const single = comps.length === 1;
  const block = scan.ss === 0 ? (scan.ah === 0 ? dcFirst : dcRefine) : scan.ah === 0 ? acFirst : acRefine;
  let mcusX = frame.mcusX;
  let mcusY = frame.mcusY;
  if (single) {
    // Non-interleaved: one block per MCU, only the blocks that cover the component's samples.
    const c = comps[0].c;
    mcusX = Math.ceil(Math.ceil((frame.width * c.h) / frame.hmax) / 8);
    mcusY = Math.ceil(Math.ceil((frame.height * c.v) / frame.vmax) / 8);
  }
  const total = mcusX * mcusY;
  let mcu = 0;
  for (let my = 0; my < mcusY; my++) {
    for (let mx = 0; mx < mcusX; mx++) {
      for (const sc of comps) {
        const c = sc.c;
        if (single) block(r, scan, sc, my * c.blocksX + mx);
        else for (let v = 0; v < c.v; v++) for (let h = 0; h < c.h; h++) block(r, scan, sc, (my * c.v + v) * c.blocksX + mx * c.h + h);
      }
      mcu++;
      r.check();
      if (restartInterval > 0 && mcu % restartInterval === 0 && mcu < total) {
        r.restart();
        for (const sc of comps) sc.pred = 0;
        scan.eobrun = 0;
      }
    }
  }
  if (scan.ss === 0 && scan.ah === 0) for (const sc of comps) sc.c.decoded = true;
  return r.pos;
}

type BlockDecoder = (r: BitReader, scan: ProgressiveScan, sc: ScanComponent, b: number) => void;

const isNonZero = (st: ProgressiveCoefficients, b: number, k: number) => ((st.nz[2 * b + (k >> 5)] >>> (k & 31)) & 1) === 1;

function setCoefficient(st: ProgressiveCoefficients, b: number, k: number, v: number): void {
  st.nz[2 * b + (k >> 5)] |= 1 << (k & 31);
  const s = st.slot[k];
  if (s >= 0) st.values[b * st.kept + s] = v;
}

const dcFirst: BlockDecoder = (r, scan, sc, b) => {
  const t = r.decode(sc.dc!);
  if (t > 15) throw corrupt(`scan has a DC difference of ${t} bits`);
  sc.pred += r.receiveExtend(t);
  setCoefficient(sc.c.coefs!, b, 0, sc.pred * (1 << scan.al));
};

const dcRefine: BlockDecoder = (r, scan, sc, b) => {
  const st = sc.c.coefs!;
  if (r.bits(1)) st.values[b * st.kept + st.slot[0]] |= 1 << scan.al;
};

const acFirst: BlockDecoder = (r, scan, sc, b) => {
  if (scan.eobrun > 0) {
    scan.eobrun--;
    return;
  }
  const st = sc.c.coefs!;
  for (let k = scan.ss; k <= scan.se; ) {
    const rs = r.decode(sc.ac!);
    const run = rs >> 4;
    const size = rs & 15;
    if (size === 0) {
      if (run < 15) {
        // End of band for this block and the next (2^run − 1 + extra bits) blocks.
        scan.eobrun = (1 << run) - 1 + r.bits(run);
        return;
      }
      k += 16;
      continue;
    }
    k += run;
    if (k > scan.se) throw corrupt('scan has an AC run past the end of its band');
    setCoefficient(st, b, k, r.receiveExtend(size) * (1 << scan.al));
    k++;
  }
};

/** A correction bit for coefficient k, already non-zero: adds ±p1 to a kept value whose bit is not yet set. */
function refineCoefficient(r: BitReader, st: ProgressiveCoefficients, b: number, k: number, p1: number): void {
  if (!r.bits(1)) return;
  const s = st.slot[k];
  if (s < 0) return;
  const i = b * st.kept + s;
  const v = st.values[i];
  if ((v & p1) === 0) st.values[i] = v >= 0 ? v + p1 : v - p1;
}

/** libjpeg's decode_mcu_AC_refine: new ±1 bits placed after `run` still-zero coefficients, correction bits for the others. */
const acRefine: BlockDecoder = (r, scan, sc, b) => {
  const st = sc.c.coefs!;
  const p1 = 1 << scan.al;
  let k = scan.ss;
  if (scan.eobrun === 0) {
    for (; k <= scan.se; k++) {
      const rs = r.decode(sc.ac!);
      let run = rs >> 4;
      const size = rs & 15;
      let value = 0;
      if (size !== 0) {
        if (size !== 1) throw corrupt(`refinement scan codes a ${size}-bit coefficient`);
        value = r.bits(1) ? p1 : -p1;
      } else if (run !== 15) {
        scan.eobrun = (1 << run) + r.bits(run);
        break;
      }
      // Past `run` coefficients that are still zero, refining the non-zero ones on the way.
      for (; k <= scan.se; k++) {
        if (isNonZero(st, b, k)) refineCoefficient(r, st, b, k, p1);
        else if (run-- === 0) break;
      }
      if (value !== 0) {
        if (k > scan.se) throw corrupt('scan has an AC run past the end of its band');
        setCoefficient(st, b, k, value);
      }
    }
  }
  if (scan.eobrun > 0) {
    for (; k <= scan.se; k++) if (isNonZero(st, b, k)) refineCoefficient(r, st, b, k, p1);
    scan.eobrun--;
  }
};

/** After the last scan: dequantise the kept coefficients and write every block's samples. */
export function progressiveToPlanes(
  frame: Frame,
  quant: (Uint16Array | null)[],
  writeBlock: (c: Component, coef: Float64Array, tmp: Float64Array, bx: number, by: number, rows: number) => void,
): void {
  const coef = new Float64Array(64);
  const tmp = new Float64Array(64);
  for (const c of frame.components) {
    const q = quant[c.tq];
    if (!q) throw corrupt(`component ${c.id} uses undefined quantisation table ${c.tq}`);
    const st = c.coefs!;
    const used: { slot: number; nat: number }[] = [];
    for (let k = 0; k < 64; k++) if (st.slot[k] >= 0) used.push({ slot: st.slot[k], nat: ZIGZAG[k] });
    for (let by = 0; by < c.blocksY; by++) {
      for (let bx = 0; bx < c.blocksX; bx++) {
        const base = (by * c.blocksX + bx) * st.kept;
        let rows = 0;
        for (const { slot, nat } of used) {
          const v = st.values[base + slot];
          if (v === 0) continue;
          coef[nat] = v * q[nat];
          if (nat !== 0) rows |= 1 << (nat >> 3);
        }
        writeBlock(c, coef, tmp, bx, by, rows);
      }
    }
    c.coefs = undefined; // the store is no longer needed once the plane holds the samples
  }
}
