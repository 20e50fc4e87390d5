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
  /** Milliseconds the last successful load took (backend init + bundle; the warm-up pass comes later). */
  loadMs: number | null = null;
  private backendMs = 0;

  constructor(private readonly source: () => BundleSource) {}

  private manifestHash: Promise<string> | null = null;
  private manifestBytes: Promise<Uint8Array> | null = null;

  /**
   * manifest.json, read once per isolate: the cache key and the model load share it (one asset read
   * fewer on a cold miss). A failed read is kept until the load it fails is over (`get` forgets it
   * then), so a request with a broken bundle reads it once, not once for the key and once to load.
   */
  private readManifest(): Promise<Uint8Array> {
    this.manifestBytes ??= this.source().read('manifest.json');
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

  /** The cold-start breakdown /healthz reports: wasm backend, bundle read, model build, warm-up pass. */
  get loadBreakdown(): { backendMs: number; readMs: number; buildMs: number; warmupMs: number } | null {
    return this.loaded && { backendMs: this.backendMs, ...this.loaded.loadTimings };
  }

  /**
   * Starts the load and returns it without waiting, kept alive by `waitUntil` so a request that
   * ends first (a bad upload) cannot leave it half done. The caller awaits the returned load, not a
   * new `get()`: after a failed load that would start a second one within the same request.
   */
  start(waitUntil: ((p: Promise<unknown>) => void) | null): Promise<Captioner> {
    if (this.loaded) return Promise.resolve(this.loaded); // every warm request passes here: nothing to schedule
    const p = this.get();
    p.catch(() => undefined); // reported to whoever awaits it; not an unhandled rejection meanwhile
    waitUntil?.(p.catch(() => undefined));
    return p;
  }

  /**
   * Warms the captioner once loaded, after the current response has gone out (it is CPU-bound), for
   * a client that asked for the model card first (the upload page does): the warm-up pass, then a
   * few full-size captions of noise, since V8 optimises the resize and search code only after some
   * runs (the page's first photo: ≈ 75 ms instead of ≈ 97; warm ≈ 50). Nothing to do when a real
   * caption already warmed it.
   */
  async warmUp(): Promise<void> {
    const c = await this.get();
    await new Promise((r) => setTimeout(r, 0));
    if (!c.warmUp()) return;
    const w = c.manifest.encoder.inputSize + 5; // not square, not the input size: the resize runs
    const h = w - 2;
    const noise = new Uint8Array(w * h * 3).map((_, k) => (k * 37) & 255);
    for (let i = 0; i < 3; i++) c.caption({ width: w, height: h, data: noise }, { beam: 3 });
  }

  get(): Promise<Captioner> {
    if (this.loaded) return Promise.resolve(this.loaded);
    if (!this.loading) {
      const t0 = Date.now();
      this.loading = (async () => {
        await initWasmBackend();
        this.backendMs = Date.now() - t0;
        const source = this.source();
        // No warm-up here: on a request's path the request's own caption warms up for about half the cost.
        return loadCaptioner({ description: source.description, read: (p) => (p === 'manifest.json' ? this.readManifest() : source.read(p)) }, { warmup: false });
      })().then(
        (c) => {
          this.loaded = c;
          this.loadMs = Date.now() - t0;
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
