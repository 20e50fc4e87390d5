import type { CaptionOptions } from '../shared/captioner';
import { sha256Hex } from './sha256';

/**
 * Caption responses in the Workers Cache API, keyed by SHA-256 of the image bytes, the options and
 * the model (its manifest's hash), so a new model never serves old captions. Every cache call is
 * best effort: a failing cache makes a miss, never a failed request.
 */
export interface CaptionCache {
  get(): Promise<string | undefined>;
  put(json: string): Promise<void>;
}

/** The cache entry for one image + options + model, or null when there is no Cache API here. */
export async function captionCache(bytes: Uint8Array, options: CaptionOptions, modelKey: string, ttlSeconds: number): Promise<CaptionCache | null> {
  const store = (globalThis as { caches?: { default?: Cache } }).caches?.default;
  if (!store || ttlSeconds <= 0) return null;
  const opts = Object.entries(options).sort(([a], [b]) => a.localeCompare(b));
  const key = new Request(`https://caption-cache.invalid/v1/${modelKey}/${await sha256Hex(bytes)}?${new URLSearchParams(opts.map(([k, v]): [string, string] => [k, String(v)]))}`);
  return {
    async get() {
      try {
        const hit = await store.match(key);
        return hit ? await hit.text() : undefined;
      } catch {
        return undefined;
      }
    },
    async put(json) {
      try {
        await store.put(key, new Response(json, { headers: { 'Content-Type': 'application/json', 'Cache-Control': `max-age=${ttlSeconds}` } }));
      } catch {
        /* best effort */
      }
    },
  };
}
