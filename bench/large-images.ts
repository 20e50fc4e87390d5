/**
 * Large-image decoding: the full-size decoders (jpeg-js, fast-png) vs what decodeImage does with
 * its edge defaults (JPEG: DCT-domain decode at 1/2–1/8 scale, baseline or progressive,
 * shared/image/jpeg-scaled.ts; PNG: box-averaged while inflating, shared/image/png-scaled.ts),
 * for photo-like images of 4032x3024 (12 MP phone photo), 1920x1080 and 640x480 as baseline 4:4:4
 * JPEG (jpeg-js), progressive 4:2:0 JPEG (cjpeg -progressive, what phones and editors write) and
 * 8-bit RGB PNG (fast-png). cjpeg comes from Debian's libjpeg-turbo-progs; without it the
 * progressive rows are left out.
 *   npx tsx bench/large-images.ts                    # 9 timed runs per decoder (3 for full decodes at 12 MP)
 *   npx tsx bench/large-images.ts --runs 15 --quality 92
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
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import jpeg from 'jpeg-js';
import { decode as decodePng, encode as encodePng } from 'fast-png';
import { decodeImage } from '../shared/image/decode';
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

type DecoderName = 'jpeg-js' | 'fast-png' | 'scaled';
const DECODERS: Record<DecoderName, (b: Uint8Array) => RgbImage> = {
  // Full size, without the edge limits (they would refuse the 12 MP file).
  'jpeg-js': (b) => {
    const r = jpeg.decode(b, { useTArray: true, formatAsRGBA: false, maxMemoryUsageInMB: 4096, maxResolutionInMP: 200 });
    return { width: r.width, height: r.height, data: r.data };
  },
  'fast-png': (b) => {
    const r = decodePng(b);
    return { width: r.width, height: r.height, data: r.data as Uint8Array };
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


function rgbOf(rgba: Uint8Array): Uint8Array {
  const out = new Uint8Array((rgba.length / 4) * 3);
  for (let i = 0, o = 0; i < rgba.length; i += 4, o += 3) out.set(rgba.subarray(i, i + 3), o);
  return out;
}

/** cjpeg's progressive 4:2:0 file, as phones and editors write them. */
function progressiveJpeg(rgba: Uint8Array, w: number, h: number, quality: number, dir: string): Uint8Array {
  const ppm = join(dir, 'in.ppm');
  writeFileSync(ppm, Buffer.concat([Buffer.from(`P6\n${w} ${h}\n255\n`), rgbOf(rgba)]));
  return new Uint8Array(execFileSync('cjpeg', ['-quality', String(quality), '-sample', '2x2', '-progressive', ppm], { maxBuffer: 1 << 28 }));
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
  const tmp = mkdtempSync(join(tmpdir(), 'bench-large-images-'));
  const hasCjpeg = spawnSync('cjpeg', ['-version']).error === undefined;
  console.log(`node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  console.log(`JPEG quality ${quality}; median of ${runs} warm runs (full decodes at 12 MP: 3)${hasCjpeg ? '' : '; cjpeg not found: no progressive rows'}\n`);
  const rows: string[][] = [['image', 'format', 'file', 'decoder', 'output', 'wall ms', 'CPU ms', 'JS growth MB (GCs)', 'peak RSS growth MB']];
  try {
    for (const [w, h] of [[4032, 3024], [1920, 1080], [640, 480]]) {
      const rgba = photoRgba(w, h);
      const formats: { format: string; full: DecoderName; make: () => Uint8Array | null }[] = [
        { format: 'JPEG baseline 4:4:4', full: 'jpeg-js', make: () => new Uint8Array(jpeg.encode({ width: w, height: h, data: rgba }, quality).data) },
        { format: 'JPEG progressive 4:2:0', full: 'jpeg-js', make: () => (hasCjpeg ? progressiveJpeg(rgba, w, h, quality, tmp) : null) },
        { format: 'PNG RGB 8-bit', full: 'fast-png', make: () => encodePng({ width: w, height: h, data: rgbOf(rgba), channels: 3, depth: 8 }) },
      ];
      for (const f of formats) {
        const t0 = performance.now();
        const bytes = f.make();
        if (!bytes) continue;
        const file = join(tmp, `${w}x${h}-${f.full}`);
        writeFileSync(file, bytes);
        process.stderr.write(`${f.format} ${w}x${h} (${(bytes.length / MB).toFixed(2)} MB) made in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
        for (const name of [f.full, 'scaled'] as DecoderName[]) {
          const decode = DECODERS[name];
          const big = name !== 'scaled' && w * h > 4e6;
          const ms = time(() => decode(bytes), big ? 3 : runs, big ? 1 : 3);
          const mem = measureMemory(name, file);
          const label = name === 'scaled' ? `decodeImage (${mem.width < w ? `1/${(w / mem.width).toFixed(0)}` : 'full size'})` : `${name} full size`;
          rows.push([
            `${w}x${h}`,
            f.format,
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
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  for (const r of rows) console.log(r.map((v, c) => (c >= 4 ? v.padStart(widths[c]) : v.padEnd(widths[c]))).join('  '));
}

if (args.child) await child(args.child as DecoderName, args.file!);
else await main();
