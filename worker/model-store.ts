import { loadCaptioner, type Captioner } from '../shared/captioner';
import type { BundleSource } from '../shared/bundle/source';
import { ApiError } from './errors';
import { sha256Hex } from './sha256';
import { initWasmBackend } from './tfjs-wasm-backend';

/**
 * One captioner per isolate, loaded on first use. Concurrent first requests await the same load;
 * a failed load is forgotten so a later request can retry (e.g. after assets are fixed).
 */
export class ModelStore {
  private loading: Promise<Captioner> | null = null;
  private loaded: Captioner | null = null;
  /** Milliseconds the last successful load took (backend init + bundle + warm-up). */
  loadMs: number | null = null;
  /** The same, by phase (the cold-start breakdown /healthz reports). */
  loadBreakdown: { backendMs: number; readMs: number; buildMs: number; warmupMs: number } | null = null;

  constructor(private readonly source: () => BundleSource) {}

  private manifestHash: Promise<string> | null = null;
  private manifestBytes: Promise<Uint8Array> | null = null;

  /** manifest.json, read once per isolate: the cache key and the model load share it (one asset read fewer on a cold miss). */
  private readManifest(): Promise<Uint8Array> {
    this.manifestBytes ??= this.source()
      .read('manifest.json')
      .catch((e: unknown) => {
        this.manifestBytes = null;
        throw e;
      });
    return this.manifestBytes;
  }

  /**
   * A short hash of the bundle's manifest.json, read once per isolate without loading the model:
   * what the response cache keys on, so a cache hit in a cold isolate costs no model load.
   */
  modelKey(): Promise<string> {
    this.manifestHash ??= this.readManifest()
      .then(async (bytes) => (await sha256Hex(bytes)).slice(0, 16))
      .catch((e: unknown) => {
        this.manifestHash = null;
        throw e;
      });
    return this.manifestHash;
  }

  get current(): Captioner | null {
    return this.loaded;
  }

  get(): Promise<Captioner> {
    if (this.loaded) return Promise.resolve(this.loaded);
    if (!this.loading) {
      const t0 = Date.now();
      let backendMs = 0;
      this.loading = (async () => {
        await initWasmBackend();
        backendMs = Date.now() - t0;
        const source = this.source();
        return loadCaptioner({ description: source.description, read: (p) => (p === 'manifest.json' ? this.readManifest() : source.read(p)) });
      })().then(
        (c) => {
          this.loaded = c;
          this.loadMs = Date.now() - t0;
          this.loadBreakdown = { backendMs, ...c.loadTimings };
          return c;
        },
        (e: unknown) => {
          this.loading = null;
          // A broken bundle may be fixed: read everything again next time.
          this.manifestBytes = null;
          this.manifestHash = null;
          throw new ApiError(503, 'model_unavailable', `the caption model could not be loaded: ${(e as Error).message}`);
        },
      );
    }
    return this.loading;
  }
}
