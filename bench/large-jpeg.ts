/**
 * Large-JPEG decoding: jpeg-js at full size vs the reduced-scale path of decodeImage (DCT-domain
 * decode, shared/image/jpeg-scaled.ts), for photo-like baseline JPEGs of 4032x3024 (12 MP phone
 * photo), 1920x1080 and 640x480.
 *   npx tsx bench/large-jpeg.ts                    # 9 timed runs per decoder (3 for jpeg-js at 12 MP)
 *   npx tsx bench/large-jpeg.ts --runs 15 --quality 92
 *
 * Per image and decoder it prints the median warm decode time, wall clock and CPU (process.cpuUsage:
 * on a busy machine the wall time includes waiting for a core), and two memory figures measured in
 * a fresh child process:
 *  - peak RSS growth: VmHWM reset through /proc/self/clear_refs right before the first (cold)
 *    decode, minus the RSS then (Linux only; includes compiling the decoder);
 *  - JS growth: process.memoryUsage() arrayBuffers + heapUsed, from after a forced GC to right
 *    after a second (warm) decode returns: everything it allocated, live or garbage, unless a GC
 *    ran during the decode (the count is printed; a GC can only make the figure smaller).
 * jpeg-js writes 4:4:4 (no chroma subsampling): twice the blocks of a phone's 4:2:0, so these
 * timings are on the slow side for the reduced-scale decoder.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import jpeg from 'jpeg-js';
import { decodeImage } from '../shared/image/decode';
import { chooseJpegScale } from '../shared/image/jpeg-scaled';
import type { RgbImage } from '../shared/image/types';
import { median } from './stats';

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '9' },
    quality: { type: 'string', default: '90' },
    child: { type: 'string' },
    file: { type: 'string' },
  },
});

type DecoderName = 'jpeg-js' | 'scaled';
const DECODERS: Record<DecoderName, (b: Uint8Array) => RgbImage> = {
  // Full size, without the edge limits (they would refuse the 12 MP file).
  'jpeg-js': (b) => {
    const r = jpeg.decode(b, { useTArray: true, formatAsRGBA: false, maxMemoryUsageInMB: 4096, maxResolutionInMP: 200 });
    return { width: r.width, height: r.height, data: r.data };
  },
  // What the API does: decodeImage with its defaults (minSide 256, 24 MP, 96 MB).
  scaled: (b) => decodeImage(b),
};

const MB = 2 ** 20;
const jsMem = () => {
  const m = process.memoryUsage();
  return m.arrayBuffers + m.heapUsed;
};

function gcFunction(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

function procStatusKB(field: string): number | null {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Child mode: decode the file once and print the memory figures as JSON. */
async function child(name: DecoderName, file: string): Promise<void> {
  const bytes = new Uint8Array(readFileSync(file));
  const decode = DECODERS[name];
  const gc = gcFunction();
  gc();
  let hwmReset = false;
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    hwmReset = true;
  } catch {
    /* not Linux, or not allowed */
  }
  const rss0 = procStatusKB('VmRSS');
  const img = decode(bytes);
  const hwm = procStatusKB('VmHWM');

  let gcs = 0;
  const obs = new PerformanceObserver((list) => (gcs += list.getEntries().length));
  obs.observe({ entryTypes: ['gc'] });
  gc();
  gc();
  await new Promise((r) => setTimeout(r, 50)); // deliver the forced GCs' entries now
  gcs = 0;
  const before = jsMem();
  decode(bytes);
  const after = jsMem();
  await new Promise((r) => setTimeout(r, 50));
  obs.disconnect();
  const out = {
    width: img.width,
    height: img.height,
    jsGrowthMB: (after - before) / MB,
    gcDuringDecode: gcs,
    peakRssGrowthMB: hwmReset && rss0 !== null && hwm !== null ? (hwm - rss0) / 1024 : null,
  };
  process.stdout.write(JSON.stringify(out));
}

function measureMemory(name: DecoderName, file: string) {
  const script = fileURLToPath(import.meta.url);
  const out = execFileSync(process.execPath, [...process.execArgv, script, '--child', name, '--file', file], { encoding: 'utf8', maxBuffer: 1 << 20 });
  return JSON.parse(out) as { width: number; height: number; jsGrowthMB: number; gcDuringDecode: number; peakRssGrowthMB: number | null };
}

/** A photo-like test image: smooth gradients, edges, texture and sensor-like noise. */
function photoRgba(w: number, h: number): Uint8Array {
  const d = new Uint8Array(w * h * 4);
  let seed = 12345;
  const noise = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 24) / 32 - 4; // ±4 levels
  for (let y = 0; y < h; y++) {
    const fy = y / h;
    for (let x = 0; x < w; x++) {
      const fx = x / w;
      const i = (y * w + x) * 4;
      const sky = fy < 0.45 - 0.1 * Math.sin(fx * 7);
      const t = Math.sin(x / 37) * Math.cos(y / 29) + 0.3 * Math.sin((x + 2 * y) / 7);
      if (sky) {
        d[i] = 110 + 60 * fy + 10 * t + noise();
        d[i + 1] = 150 + 40 * fy + 8 * t + noise();
        d[i + 2] = 230 - 30 * fy + noise();
      } else {
        const grass = 0.5 + 0.5 * Math.sin(x / 3.1 + Math.sin(y / 5.3) * 2);
        d[i] = 60 + 50 * t + 30 * grass + noise();
        d[i + 1] = 100 + 40 * t + 50 * grass + noise();
        d[i + 2] = 40 + 20 * t + noise();
      }
      d[i + 3] = 255;
    }
  }
  return d;
}


function time(f: () => unknown, runs: number, warmup: number): { wall: number; cpu: number } {
  for (let i = 0; i < warmup; i++) f();
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < runs; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    f();
    wall.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  return { wall: median(wall), cpu: median(cpu) };
}

async function main(): Promise<void> {
  const runs = Number(args.runs);
  const quality = Number(args.quality);
  const tmp = mkdtempSync(join(tmpdir(), 'bench-large-jpeg-'));
  console.log(`node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  console.log(`jpeg-js encoder, quality ${quality}, baseline 4:4:4; median of ${runs} warm runs (jpeg-js at 12 MP: 3)\n`);
  const rows: string[][] = [['image', 'file', 'decoder', 'output', 'wall ms', 'CPU ms', 'JS growth MB (GCs)', 'peak RSS growth MB']];
  try {
    for (const [w, h] of [[4032, 3024], [1920, 1080], [640, 480]]) {
      const t0 = performance.now();
      const bytes = new Uint8Array(jpeg.encode({ width: w, height: h, data: photoRgba(w, h) }, quality).data);
      const file = join(tmp, `${w}x${h}.jpg`);
      writeFileSync(file, bytes);
      process.stderr.write(`encoded ${w}x${h} (${(bytes.length / MB).toFixed(2)} MB) in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
      for (const name of ['jpeg-js', 'scaled'] as DecoderName[]) {
        const decode = DECODERS[name];
        const big = name === 'jpeg-js' && w * h > 4e6;
        const ms = time(() => decode(bytes), big ? 3 : runs, big ? 1 : 3);
        const mem = measureMemory(name, file);
        const scale = chooseJpegScale(w, h, 256);
        const label = name === 'scaled' ? (scale > 1 ? `decodeImage (1/${scale})` : 'decodeImage (1/1: jpeg-js)') : 'jpeg-js full';
        rows.push([
          `${w}x${h}`,
          `${(bytes.length / MB).toFixed(2)} MB`,
          label,
          `${mem.width}x${mem.height}`,
          ms.wall.toFixed(1),
          ms.cpu.toFixed(1),
          `${mem.jsGrowthMB.toFixed(1)} (${mem.gcDuringDecode})`,
          mem.peakRssGrowthMB === null ? 'n/a' : mem.peakRssGrowthMB.toFixed(1),
        ]);
        process.stderr.write(`  ${label}: ${ms.wall.toFixed(1)} ms\n`);
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  for (const r of rows) console.log(r.map((v, c) => (c >= 4 ? v.padStart(widths[c]) : v.padEnd(widths[c]))).join('  '));
}

if (args.child) await child(args.child as DecoderName, args.file!);
else await main();
