import * as tf from '@tensorflow/tfjs-core';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import simdModule from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm';

/**
 * tfjs WASM (SIMD, single-threaded) backend for workerd.
 *
 * workerd refuses to compile wasm from bytes, so the SIMD binary is imported as
 * a precompiled WebAssembly.Module. tfjs cannot take a Module, only a URL, so
 * during initialisation we give it sentinel URLs, answer the platform fetch for
 * them with a sentinel buffer, and turn `WebAssembly.instantiate(sentinel)` into
 * `WebAssembly.instantiate(simdModule)`. Both hooks are removed afterwards.
 */

export interface WasmBackendInfo {
  backend: 'wasm';
  simd: boolean;
}

const SIMD_URL = 'precompiled:tfjs-backend-wasm-simd.wasm';
const OTHER_URL = 'precompiled:unavailable.wasm';
const SENTINEL = new ArrayBuffer(0);

let initPromise: Promise<WasmBackendInfo> | null = null;

/**
 * Idempotent; concurrent callers share one initialisation (and its failure: tfjs cannot retry).
 * Call before any other tf.* use, or tfjs starts its own wasm init, which fails in workerd.
 */
export function initWasmBackend(): Promise<WasmBackendInfo> {
  initPromise ??= doInit();
  return initPromise;
}

async function doInit(): Promise<WasmBackendInfo> {
  const factory = tf.findBackendFactory('wasm');
  if (factory == null) {
    throw new Error('tfjs wasm backend is not registered (@tensorflow/tfjs-backend-wasm not loaded)');
  }
  if (!(simdModule instanceof WebAssembly.Module)) {
    throw new Error(
      'tfjs wasm backend: the .wasm import is not a precompiled WebAssembly.Module ' +
        '(the bundler must use the CompiledWasm module rule for *.wasm)',
    );
  }
  ensurePlatform();
  // No SharedArrayBuffer / worker threads in workerd; the SIMD binary is the one we ship.
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  tf.env().set('WASM_HAS_SIMD_SUPPORT', true);
  setWasmPaths(
    {
      'tfjs-backend-wasm.wasm': OTHER_URL,
      'tfjs-backend-wasm-simd.wasm': SIMD_URL,
      'tfjs-backend-wasm-threaded-simd.wasm': OTHER_URL,
    },
    true,
  );

  // Calling the factory ourselves (not tf.setBackend, which only returns false) keeps the reason.
  const backend = await withPrecompiledModule(async () => factory());
  tf.removeBackend('wasm');
  tf.registerBackend('wasm', () => backend, 2);
  const ok = await tf.setBackend('wasm');
  if (!ok || tf.getBackend() !== 'wasm') {
    throw new Error(`tfjs wasm backend: setBackend('wasm') failed (active backend: ${tf.getBackend()})`);
  }
  return { backend: 'wasm', simd: true };
}

/** Runs tfjs' wasm init with the fetch/instantiate hooks in place; always restores them. */
async function withPrecompiledModule<T>(run: () => Promise<T>): Promise<T> {
  const platform = tf.env().platform;
  const hadOwnFetch = Object.prototype.hasOwnProperty.call(platform, 'fetch');
  const prevFetch = platform.fetch;
  const wasmApi = WebAssembly as unknown as { instantiate: (...args: unknown[]) => Promise<unknown> };
  const prevInstantiate = wasmApi.instantiate;

  let fail!: (e: Error) => void;
  // tfjs' instantiate hook has no rejection handler: a failure there would hang init forever.
  const failed = new Promise<never>((_, reject) => (fail = reject));

  platform.fetch = ((path: string, init?: RequestInit, options?: unknown) => {
    if (path === SIMD_URL) {
      return Promise.resolve({ ok: true, arrayBuffer: () => Promise.resolve(SENTINEL) });
    }
    if (path === OTHER_URL) {
      fail(new Error('tfjs asked for a non-SIMD or threaded wasm binary; only the SIMD binary is bundled'));
      return new Promise<never>(() => {}); // settled through `failed`, not tfjs' unguarded chain
    }
    return prevFetch.call(platform, path, init, options as never);
  }) as typeof platform.fetch;

  wasmApi.instantiate = function (...args: unknown[]) {
    if (args[0] !== SENTINEL) return prevInstantiate.apply(WebAssembly, args);
    // Synchronous: then the whole init is promise reactions, which can finish in global scope.
    try {
      return Promise.resolve({ instance: new WebAssembly.Instance(simdModule, args[1] as WebAssembly.Imports), module: simdModule });
    } catch (e) {
      fail(new Error(`instantiating the precompiled SIMD module failed: ${describe(e)}`));
      return new Promise<never>(() => {});
    }
  };

  try {
    return await Promise.race([run(), failed]);
  } catch (e) {
    throw new Error(`tfjs wasm backend failed to initialise: ${describe(e)}`);
  } finally {
    if (hadOwnFetch) platform.fetch = prevFetch;
    else delete (platform as { fetch?: unknown }).fetch;
    wasmApi.instantiate = prevInstantiate;
  }
}

/**
 * tfjs normally picks its 'browser' platform in workerd (WorkerGlobalScope exists); if it found
 * none, give it the few services it needs.
 */
function ensurePlatform(): void {
  if (tf.env().platform != null) return;
  const encoder = new TextEncoder();
  tf.setPlatform('workerd', {
    fetch: (path, init) => fetch(path, init),
    now: () => performance.now(),
    encode: (text, encoding) => {
      if (encoding !== 'utf-8' && encoding !== 'utf8') throw new Error(`workerd platform: unsupported encoding ${encoding}`);
      return encoder.encode(text);
    },
    decode: (bytes, encoding) => new TextDecoder(encoding).decode(bytes),
    setTimeoutCustom: (fn, delay) => void setTimeout(fn as () => void, delay),
    isTypedArray: (a): a is Float32Array | Int32Array | Uint8Array | Uint8ClampedArray =>
      a instanceof Float32Array || a instanceof Int32Array || a instanceof Uint8Array || a instanceof Uint8ClampedArray,
  });
}

function describe(e: unknown): string {
  if (e instanceof Error) return e.message;
  if (e != null && typeof (e as { message?: unknown }).message === 'string') return (e as { message: string }).message;
  return String(e);
}
