import * as tf from '@tensorflow/tfjs-core';
import { Hono } from 'hono';
import { cors } from 'hono/cors';
import { HTTPException } from 'hono/http-exception';
import type { BundleSource } from '../shared/bundle/source';
import { accessControl, corsFromEnv, type AccessBindings } from './access';
import { assetsSource } from './assets-source';
import { requestLog, type LogFields } from './request-log';
import { ApiError, errorResponse } from './errors';
import { isolateWarmup } from './isolate-warmup';
import { ModelStore } from './model-store';
import { captionsRoute } from './routes/captions';
import { OPENAPI } from './openapi';
import { modelRoute } from './routes/model';

export interface Bindings extends AccessBindings {
  ASSETS: Fetcher;
  MAX_BODY_BYTES?: string;
  MAX_IMAGES?: string;
  MAX_PIXELS?: string;
  /** Seconds a caption response stays in the Cache API; 0 turns the cache off. Default one day. */
  CACHE_TTL_SECONDS?: string;
}

export interface ServiceConfig {
  /** Largest request body accepted, in bytes. */
  maxBodyBytes: number;
  /** Most images in one multipart request. */
  maxImages: number;
  /** Largest decoded image, in pixels (width × height). */
  maxPixels: number;
  /** Response cache lifetime in seconds (0 = off). */
  cacheTtlSeconds: number;
}

export type AppEnv = { Bindings: Bindings; Variables: { config: ServiceConfig; models: ModelStore; client: string; log: LogFields } };

export interface AppOptions {
  /** Where the bundle comes from; default: the ASSETS binding's /model/ folder. */
  bundleSource?: (env: Bindings) => BundleSource;
}

const intVar = (v: string | undefined, fallback: number) => (v && /^\d+$/.test(v) ? Number(v) : fallback);

export function configFrom(env: Bindings): ServiceConfig {
  return {
    maxBodyBytes: intVar(env.MAX_BODY_BYTES, 10 * 1024 * 1024),
    maxImages: intVar(env.MAX_IMAGES, 8),
    maxPixels: intVar(env.MAX_PIXELS, 24_000_000),
    cacheTtlSeconds: intVar(env.CACHE_TTL_SECONDS, 86_400),
  };
}

/** Wasm heap size of the tfjs backend, when it is the wasm backend. */
function wasmMemoryBytes(): number | null {
  if (tf.getBackend() !== 'wasm') return null;
  const backend = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
  return backend.wasm?.HEAPU8?.byteLength ?? null;
}

/**
 * The captioning API. One ModelStore per app (so per isolate); routes are mounted under /v1.
 *
 * @example
 * export default createApp(); // wrangler's entry point
 */
export function createApp(options: AppOptions = {}) {
  let models: ModelStore | null = null;
  const app = new Hono<AppEnv>();
  app.use('*', requestLog());
  app.use('*', async (c, next) => {
    models ??= new ModelStore(() => (options.bundleSource ?? ((env: Bindings) => assetsSource(env.ASSETS)))(c.env));
    c.set('models', models);
    c.set('config', configFrom(c.env ?? {}));
    await next();
  });
  app.use('/v1/*', corsFromEnv({ allowMethods: ['GET', 'POST', 'OPTIONS'], exposeHeaders: ['Server-Timing', 'Retry-After'] }));
  app.use('/healthz', cors({ origin: '*' }));
  app.use('/v1/captions', accessControl());

  const routes = app
    .route('/v1/captions', captionsRoute)
    .route('/v1/model', modelRoute)
    .get('/v1/openapi.json', (c) => c.json(OPENAPI))
    .get('/healthz', (c) => {
      const store = c.get('models');
      return c.json({
        status: 'ok',
        modelLoaded: store.current !== null,
        backend: store.current ? tf.getBackend() : null,
        tensors: store.current ? tf.memory().numTensors : null,
        wasmMemoryBytes: store.current ? wasmMemoryBytes() : null,
        // Where this isolate's model load went (ms). On Cloudflare the clock only advances across I/O, so there CPU-only phases read 0.
        load: store.loadBreakdown,
        isolateWarmup,
      });
    });

  app.notFound((c) => errorResponse(c, 404, 'not_found', `no route for ${c.req.method} ${new URL(c.req.url).pathname}`));
  app.onError((err, c) => {
    if (err instanceof ApiError) return errorResponse(c, err.status, err.code, err.message);
    if (err instanceof HTTPException) return errorResponse(c, err.status as 400, 'bad_request', err.message);
    console.error('unhandled error', err);
    return errorResponse(c, 500, 'internal_error', 'internal error');
  });
  return routes;
}

export type AppType = ReturnType<typeof createApp>;
