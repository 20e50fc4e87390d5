/**
 * The tfjs wasm backend's own speed on this machine, measured in this Node process (V8) with the
 * SIMD, single-threaded tfjs-backend-wasm binary the worker bundles: matmul and the encoder's
 * 3×3 convolutions in GFLOP/s, and the whole encoder of a bundle on one image. `npm run bench`
 * divides workerd's encoder time by the time the encoder's FLOPs take at this conv speed, so runs
 * on machines of different speed or load can be compared by that ratio rather than by raw ms.
 * Not measured inside workerd: same wasm binary, different host (V8 version, embedder).
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { cpus, loadavg } from 'node:os';
import { selectBackend } from '../offline/backend';
import { fileSource } from '../offline/fs-source';
import { loadBundle } from '../shared/bundle/load';
import { toEncoderInput } from '../shared/image/normalize';
import type { RgbImage } from '../shared/image/types';
import { blockWidths, compactVgg16Cost, VGG16_BLOCKS, type CompactVgg16Config } from '../shared/models/vgg16';
import { median } from './stats';

export interface KernelRate {
  name: string;
  /** FLOPs of one call (2 × multiply-adds). */
  flops: number;
  medianMs: number;
  gflops: number;
}

export interface ConvRate extends KernelRate {
  /** Encoder layers with this shape. */
  layers: string[];
}

export interface Roofline {
  measuredIn: string;
  reps: number;
  matmul: KernelRate[];
  /** One row per distinct 3×3 conv shape of the encoder (batch 1, same padding, bias + ReLU fused, as tfjs-layers runs them). */
  conv: ConvRate[];
  /** Σ layer FLOPs ÷ Σ layer median times over the encoder's 13 convolutions. */
  convGflops: number;
  /**
   * The same 13 convolutions back-to-back in one timed call. On a loaded machine a 1–2 ms call
   * often fits between preemptions and a 20 ms run does not, so this is slower than convGflops
   * says by about what the load costs a whole encoder run.
   */
  convChain: KernelRate;
  encoder: {
    config: CompactVgg16Config;
    /** compactVgg16Cost: convolutions and projection, per image. */
    flops: number;
    /** encoder FLOPs at convGflops. */
    rooflineMs: number;
    /** The bundle's encoder in this process on one image (predict + read back, like the worker's encoderMs). */
    nodeMedianMs: number;
    nodeGflops: number;
    /** nodeMedianMs ÷ rooflineMs. */
    nodeRatio: number;
    /** Encoder median inside workerd, from the bench's own requests (set by withWorkerd). */
    workerdMedianMs?: number;
    workerdGflops?: number;
    /** workerdMedianMs ÷ rooflineMs. */
    workerdRatio?: number;
  };
}

interface ConvLayer {
  name: string;
  side: number;
  inCh: number;
  outCh: number;
}

/** The encoder's convolutions, walked the same way as compactVgg16Cost. */
function convLayers(cfg: CompactVgg16Config): ConvLayer[] {
  const layers: ConvLayer[] = [];
  const widths = blockWidths(cfg.widthMultiplier);
  let side = cfg.inputSize;
  let inCh = 3;
  VGG16_BLOCKS.forEach(([, convs], b) => {
    for (let c = 1; c <= convs; c++) {
      layers.push({ name: `block${b + 1}_conv${c}`, side, inCh, outCh: widths[b] });
      inCh = widths[b];
    }
    side = Math.floor(side / 2);
  });
  return layers;
}

const convFlops = (l: ConvLayer) => 2 * l.side * l.side * 9 * l.inCh * l.outCh;

interface Case {
  name: string;
  flops: number;
  run: () => tf.TensorContainer;
}

/**
 * Warm-up, then `reps` rounds that each time every case once: on a shared machine a burst of
 * load then hits all cases alike instead of a few. wasm kernels run synchronously, so the wall
 * clock around the call is the kernel's time.
 */
function timeCases(cases: Case[], reps: number, warmup: number): number[] {
  const times = cases.map(() => [] as number[]);
  for (let r = -warmup; r < reps; r++) {
    cases.forEach((c, i) => {
      const t0 = performance.now();
      const out = c.run();
      const ms = performance.now() - t0;
      tf.dispose(out);
      if (r >= 0) times[i].push(ms);
    });
  }
  return times.map(median);
}

const rate = (c: Case, ms: number): KernelRate => ({ name: c.name, flops: c.flops, medianMs: round(ms, 3), gflops: round(c.flops / ms / 1e6, 2) });
const round = (x: number, d: number) => Math.round(x * 10 ** d) / 10 ** d;

/**
 * Measures the roofline for the compact-VGG16 encoder of the bundle in `bundleDir` (a few seconds).
 * Leaves tfjs on the wasm backend.
 */
export async function measureWasmRoofline(bundleDir: string, { reps = 15, warmup = 2 } = {}): Promise<Roofline> {
  // Node would pick the single-threaded binary anyway; pinned so it stays the worker's binary.
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  await selectBackend('wasm');
  if (!tf.env().getBool('WASM_HAS_SIMD_SUPPORT')) throw new Error('roofline: this Node has no wasm SIMD, so it would not run the binary the worker uses');

  const bundle = await loadBundle(fileSource(bundleDir));
  const spec = bundle.manifest.encoder;
  if (spec.architecture !== 'compact-vgg16' || spec.widthMultiplier === undefined) {
    throw new Error(`roofline: the bundle's encoder is ${spec.architecture}, not a compact VGG16 with a width multiplier`);
  }
  const config: CompactVgg16Config = { widthMultiplier: spec.widthMultiplier, inputSize: spec.inputSize, featureSize: spec.featureSize };
  const { flops } = compactVgg16Cost(config);
  const layers = convLayers(config);
  const convTotal = layers.reduce((s, l) => s + convFlops(l), 0);
  if (convTotal + 2 * layers[layers.length - 1].outCh * config.featureSize !== flops) throw new Error('roofline: conv layers disagree with compactVgg16Cost');

  const seeded = (shape: number[], seed: number) => tf.randomUniform(shape, -1, 1, 'float32', seed);
  const owned: tf.Tensor[] = [];
  const keep = <T extends tf.Tensor>(t: T): T => (owned.push(t), t);

  const matmul = (m: number, k: number, n: number, label: string): Case => {
    const a = keep(seeded([m, k], 1)) as tf.Tensor2D, b = keep(seeded([k, n], 2)) as tf.Tensor2D;
    return { name: `${label} [${m}×${k}]·[${k}×${n}]`, flops: 2 * m * k * n, run: () => tf.matMul(a, b) };
  };
  // The conv with the most FLOPs (several tie at this width; the one with the most weights is the
  // least skinny matmul) as its im2col product.
  const big = layers.reduce((p, l) => (convFlops(l) > convFlops(p) || (convFlops(l) === convFlops(p) && l.inCh * l.outCh > p.inCh * p.outCh) ? l : p));
  const matmulCases = [matmul(512, 512, 512, 'square'), matmul(big.side * big.side, 9 * big.inCh, big.outCh, `${big.name} im2col`)];

  const shapeKey = (l: ConvLayer) => `${l.side}×${l.side}×${l.inCh}→${l.outCh}`;
  const shapes = new Map<string, { layer: ConvLayer; names: string[] }>();
  for (const l of layers) {
    const key = shapeKey(l);
    const s = shapes.get(key);
    if (s) s.names.push(l.name);
    else shapes.set(key, { layer: l, names: [l.name] });
  }
  const convCases = [...shapes].map(([key, { layer: l }], i): Case => {
    const x = keep(seeded([1, l.side, l.side, l.inCh], 10 + i)) as tf.Tensor4D;
    const filter = keep(seeded([3, 3, l.inCh, l.outCh], 30 + i)) as tf.Tensor4D;
    const bias = keep(seeded([l.outCh], 50 + i)) as tf.Tensor1D;
    return { name: key, flops: convFlops(l), run: () => tf.fused.conv2d({ x, filter, bias, strides: 1, pad: 'same', activation: 'relu' }) };
  });

  const keys = [...shapes.keys()];
  const chain = layers.map((l) => convCases[keys.indexOf(shapeKey(l))].run);
  const convChain: Case = {
    name: `${layers.length} convs back-to-back`,
    flops: convTotal,
    run: () => chain.forEach((run) => tf.dispose(run())),
  };

  const size = spec.inputSize;
  const image: RgbImage = { width: size, height: size, data: new Uint8Array(size * size * 3).map((_, i) => (i * 37 + (i >> 7)) % 256) };
  const input = toEncoderInput(image, size, spec.normalization);
  const encoderCase: Case = {
    name: 'encoder',
    flops,
    // Attention bundles' encoders also output their grid: read back every output, as the worker does.
    run: () => tf.tidy(() => void [bundle.encoder.predict(tf.tensor4d(input, [1, size, size, 3]))].flat().forEach((t) => t.dataSync())),
  };

  try {
    const times = timeCases([...matmulCases, ...convCases, convChain, encoderCase], reps, warmup);
    const matmulRates = matmulCases.map((c, i) => rate(c, times[i]));
    const convRates: ConvRate[] = convCases.map((c, i) => ({ ...rate(c, times[matmulCases.length + i]), layers: [...shapes.values()][i].names }));
    const convMs = convRates.reduce((s, r, i) => s + r.layers.length * times[matmulCases.length + i], 0);
    const convGflops = convTotal / convMs / 1e6;
    const rooflineMs = flops / convGflops / 1e6;
    const nodeMs = times[times.length - 1];
    return {
      measuredIn: `Node ${process.version} (V8), tfjs ${tf.version.tfjs} wasm SIMD single-threaded, ${cpus().length} cores, load avg ${loadavg()[0].toFixed(2)}`,
      reps,
      matmul: matmulRates,
      conv: convRates,
      convGflops: round(convGflops, 2),
      convChain: rate(convChain, times[times.length - 2]),
      encoder: {
        config, flops, rooflineMs: round(rooflineMs, 2),
        nodeMedianMs: round(nodeMs, 2), nodeGflops: round(flops / nodeMs / 1e6, 2), nodeRatio: round(nodeMs / rooflineMs, 2),
      },
    };
  } finally {
    tf.dispose(owned);
    bundle.encoder.dispose();
    bundle.decoder.dispose();
  }
}

/** Adds workerd's encoder median (ms) and its ratio to the roofline. */
export function withWorkerd(r: Roofline, workerdEncoderMs: number | undefined): Roofline {
  if (workerdEncoderMs === undefined || !(workerdEncoderMs > 0)) return r;
  const e = r.encoder;
  return {
    ...r,
    encoder: { ...e, workerdMedianMs: workerdEncoderMs, workerdGflops: round(e.flops / workerdEncoderMs / 1e6, 2), workerdRatio: round(workerdEncoderMs / e.rooflineMs, 2) },
  };
}

export function printRoofline(r: Roofline | { error: string }): void {
  if ('error' in r) {
    console.log(`roofline: not measured (${r.error})`);
    return;
  }
  const row = (what: string, flops: number, ms: number, gflops: number, ratio?: number) => ({
    what, MFLOP: round(flops / 1e6, 1), ms: round(ms, 2), 'GFLOP/s': gflops, '× roofline': ratio ?? '',
  });
  const e = r.encoder;
  const convFlopsTotal = r.conv.reduce((s, c) => s + c.layers.length * c.flops, 0);
  const convLayersTotal = r.conv.reduce((s, c) => s + c.layers.length, 0);
  console.log(`roofline: ${r.measuredIn}; median of ${r.reps}. Measured in Node's V8 with the worker's wasm binary, not inside workerd.`);
  console.table([
    ...r.matmul.map((m) => row(`matmul ${m.name}`, m.flops, m.medianMs, m.gflops)),
    ...r.conv.map((c) => row(`conv3×3 ${c.name} (${c.layers.length > 1 ? `${c.layers.length}×, ` : ''}${c.layers[0]}${c.layers.length > 1 ? '…' : ''})`, c.flops, c.medianMs, c.gflops)),
    row(`conv3×3 all ${convLayersTotal} layers, FLOP-weighted`, convFlopsTotal, convFlopsTotal / r.convGflops / 1e6, r.convGflops),
    row(`conv3×3 all ${convLayersTotal} layers back-to-back, one timed call`, r.convChain.flops, r.convChain.medianMs, r.convChain.gflops, round(r.convGflops / r.convChain.gflops, 2)),
    row(`encoder at the FLOP-weighted conv rate (roofline)`, e.flops, e.rooflineMs, r.convGflops, 1),
    row(`encoder in Node wasm (this process)`, e.flops, e.nodeMedianMs, e.nodeGflops, e.nodeRatio),
    ...(e.workerdMedianMs !== undefined ? [row(`encoder in workerd (median over the latency rows)`, e.flops, e.workerdMedianMs, e.workerdGflops!, e.workerdRatio)] : []),
  ]);
}
