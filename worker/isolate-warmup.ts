import * as tf from '@tensorflow/tfjs-core';
import { memorySource } from '../shared/bundle/source';
import { warmupBundle, warmupJpeg } from '../shared/bundle/warmup-bundle';
import { loadCaptioner } from '../shared/captioner';
import { decodeImage } from '../shared/image/decode';
import { initWasmBackend } from './tfjs-wasm-backend';

/**
 * Wasm heap written once at start-up. The first writes to fresh wasm memory are slow here (page
 * faults on growth: filling 32 MB costs ≈ 110 ms in workerd on the dev machine) and the first
 * caption would otherwise pay them; the shipped bundle's heap settles at ≈ 40 MB.
 */
const STARTUP_HEAP_BYTES = 32 << 20;

/** What the isolate's start-up warm-up did: its wall time (ms; null until done) or why it failed. */
export const isolateWarmup: { ms: number | null; error: string | null } = { ms: null, error: null };

/**
 * Starts the wasm backend and captions a tiny photo with a tiny bundle, in the isolate's global
 * scope: the whole chain is promise reactions (the wasm module is instantiated synchronously), so
 * it finishes before the isolate takes its first request, and V8 has compiled the JPEG decoder,
 * the loader, the encoder ops and beam search by then, and the wasm heap has grown. A failure here
 * is recorded, never thrown: the first request then loads as it would without it. Cost: ≈ 190 ms
 * of start-up in workerd here, within Workers' 1 s start-up limit.
 *
 * @example
 * // worker/index.ts, at top level:
 * warmIsolate();
 */
export function warmIsolate(): Promise<void> {
  const t0 = Date.now();
  return (async () => {
    await initWasmBackend();
    const captioner = await loadCaptioner(memorySource(warmupBundle(), 'isolate warm-up bundle'), { warmup: false });
    try {
      const image = decodeImage(warmupJpeg());
      // Twice: V8 optimises a function only after it has seen it run.
      for (let i = 0; i < 2; i++) captioner.caption(image, { beam: 3 });
    } finally {
      captioner.dispose();
    }
    touchWasmHeap(STARTUP_HEAP_BYTES);
  })().then(
    () => {
      isolateWarmup.ms = Date.now() - t0;
    },
    (e: unknown) => {
      isolateWarmup.error = e instanceof Error ? e.message : String(e);
    },
  );
}

/** Grows the tfjs wasm heap to hold `bytes` more and writes them once; freed, they serve later tensors. */
function touchWasmHeap(bytes: number): void {
  const wasm = (tf.backend() as unknown as { wasm?: { _malloc(n: number): number; _free(p: number): void; HEAPU8: Uint8Array } }).wasm;
  if (!wasm) return;
  const p = wasm._malloc(bytes);
  if (!p) return;
  // HEAPU8 is read after the malloc: growing the memory replaces the view.
  wasm.HEAPU8.fill(0, p, p + bytes);
  wasm._free(p);
}
