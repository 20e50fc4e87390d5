import { Hono, type Context } from 'hono';
import { CaptionOptionError, type AttentionMap, type CaptionOptions, type Captioner } from '../../shared/captioner';
import { decodeImage } from '../../shared/image/decode';
import { ACCEPTED_IMAGE_TYPES, ImageInputError, type RgbImage } from '../../shared/image/types';
import { readBodyLimited } from '../body';
import { captionCache } from '../response-cache';
import { ApiError, errorResponse } from '../errors';
import { parseCaptionParams } from '../params';
import { waitUntilOf } from '../wait-until';
import type { AppEnv } from '../app';

const ACCEPTED_TYPES: readonly string[] = ACCEPTED_IMAGE_TYPES;

/** One photo of a multipart request that could not be captioned; the others still are. */
export interface CaptionError {
  file: string | null;
  error: { code: string; message: string };
}

export interface CaptionResponse {
  caption: string;
  score: number;
  /** In [0, 1], fitted on the dev split (shared/confidence.ts); null when the bundle is not calibrated. */
  confidence: number | null;
  alternatives: { caption: string; score: number; confidence: number | null }[];
  model: { id: string; version: string };
  /** With ?attention=1: per word of `caption`, its weights over the encoder's grid cells (row-major). */
  attention?: AttentionMap;
  timings: { decodeMs: number; preprocessMs: number; encoderMs: number; decoderMs: number; totalMs: number };
}

/** Rounded once, so JSON prints the short decimal (-1.2022, not -1.2021700000000002). */
const roundTo = (x: number, digits: number) => Number(x.toFixed(digits));
const ms = (x: number) => roundTo(x, 2);
const now = () => performance.now();

interface Upload {
  bytes: Uint8Array;
  /** The multipart file name; null for a raw body. */
  name: string | null;
}

/** The uploaded images: a raw image body, or multipart/form-data with one or more `image` fields. */
async function uploadedImages(req: Request, maxBytes: number, maxImages: number): Promise<{ multipart: boolean; uploads: Upload[] }> {
  const type = (req.headers.get('content-type') ?? '').split(';')[0].trim().toLowerCase();
  if (!type) {
    throw new ApiError(415, 'unsupported_media_type', `missing Content-Type; send ${ACCEPTED_TYPES.join(' or ')} as the body, or multipart/form-data with 'image' fields`);
  }
  const body = await readBodyLimited(req, maxBytes);
  if (type === 'multipart/form-data') {
    let form: FormData;
    try {
      form = await new Request('http://body.local/', { method: 'POST', headers: req.headers, body }).formData();
    } catch {
      throw new ApiError(400, 'bad_request', 'the multipart/form-data body could not be parsed');
    }
    const files = form.getAll('image') as unknown as (File | string)[];
    if (files.length === 0) throw new ApiError(400, 'bad_request', "multipart body has no 'image' field");
    if (files.length > maxImages) throw new ApiError(413, 'payload_too_large', `at most ${maxImages} images per request, got ${files.length}`);
    const out: Upload[] = [];
    for (const f of files) {
      if (typeof f === 'string') throw new ApiError(400, 'bad_request', "each 'image' field must be a file upload");
      out.push({ bytes: new Uint8Array(await f.arrayBuffer()), name: f.name || null });
    }
    return { multipart: true, uploads: out };
  }
  // octet-stream: the bytes are sniffed anyway, so a client that cannot name the type is served.
  if (!ACCEPTED_TYPES.includes(type) && type !== 'application/octet-stream') {
    throw new ApiError(415, 'unsupported_media_type', `Content-Type '${type}' is not accepted; use ${ACCEPTED_TYPES.join(', ')}, application/octet-stream or multipart/form-data`);
  }
  return { multipart: false, uploads: [{ bytes: body, name: null }] };
}

function decode(bytes: Uint8Array, limits: { maxPixels: number }): RgbImage {
  if (bytes.byteLength === 0) throw new ApiError(400, 'bad_request', 'the image is empty');
  try {
    return decodeImage(bytes, limits);
  } catch (e) {
    if (e instanceof ImageInputError) throw new ApiError(e.status, e.code, e.message);
    throw new ApiError(415, 'undecodable_image', `the image could not be decoded: ${(e as Error).message}`);
  }
}

function captionOne(captioner: Captioner, image: RgbImage, decodeMs: number, options: CaptionOptions): CaptionResponse {
  const t1 = now();
  const r = captioner.caption(image, options);
  const t2 = now();
  const m = captioner.manifest;
  return {
    caption: r.caption,
    score: roundTo(r.score, 4),
    confidence: r.confidence === undefined ? null : roundTo(r.confidence, 4),
    alternatives: r.alternatives.map((a) => ({ caption: a.caption, score: roundTo(a.score, 4), confidence: a.confidence === undefined ? null : roundTo(a.confidence, 4) })),
    model: { id: m.id, version: m.version },
    ...(r.attention ? { attention: r.attention } : {}),
    timings: {
      decodeMs: ms(decodeMs),
      preprocessMs: ms(r.timings.preprocessMs),
      encoderMs: ms(r.timings.encoderMs),
      decoderMs: ms(r.timings.decoderMs),
      totalMs: ms(decodeMs + t2 - t1),
    },
  };
}

function serverTiming(results: CaptionResponse[]): string {
  const sum = (k: keyof CaptionResponse['timings']) => ms(results.reduce((a, r) => a + r.timings[k], 0));
  return (['decodeMs', 'preprocessMs', 'encoderMs', 'decoderMs', 'totalMs'] as const)
    .map((k) => `${k.replace('Ms', '')};dur=${sum(k)}`)
    .join(', ');
}

export const captionsRoute = new Hono<AppEnv>()
  .post('/', async (c) => {
    const cfg = c.get('config');
    const options = parseCaptionParams(c.req.query());
    // Input errors (4xx) come before the model is touched: bad uploads never wait for a load.
    const { multipart, uploads } = await uploadedImages(c.req.raw, cfg.maxBodyBytes, cfg.maxImages);
    // One photo, same bytes, options and model as before: the stored answer (RFC 9211 Cache-Status).
    const tCache = now();
    const cache = multipart || cfg.cacheTtlSeconds <= 0 ? null : await c.get('models').modelKey().then((key) => captionCache(uploads[0].bytes, options, key, cfg.cacheTtlSeconds), () => null);
    const cached = await cache?.get();
    const log = c.get('log');
    if (log && cache) log.cache = cached !== undefined ? 'hit' : 'miss';
    if (cached !== undefined) {
      c.header('Cache-Status', 'edge-captioner; hit');
      c.header('Server-Timing', `cache;dur=${ms(now() - tCache)}`);
      return c.body(cached, 200, { 'Content-Type': 'application/json' });
    }
    // A miss needs the model: start loading it now, so its reads overlap the JPEG decode.
    const loading = c.get('models').start(waitUntilOf(c));
    let captioner: Captioner | null = null;
    const results: (CaptionResponse | CaptionError)[] = [];
    let firstError: ApiError | null = null;
    // One image at a time, so only one decoded photo is held in memory.
    for (const { bytes, name } of uploads) {
      try {
        const t0 = now();
        const image = decode(bytes, { maxPixels: cfg.maxPixels });
        const decodeMs = now() - t0;
        if (log) (log.imageSizes ??= []).push(`${image.width}x${image.height}`);
        if (!captioner) {
          captioner = await loading;
          try {
            captioner.resolve(options);
          } catch (e) {
            if (e instanceof CaptionOptionError) throw new ApiError(400, 'invalid_parameter', e.message);
            throw e;
          }
        }
        results.push(captionOne(captioner, image, decodeMs, options));
      } catch (e) {
        // A photo's own problem (undecodable, too large) fails that photo only; anything else fails the request.
        const own = e instanceof ApiError && (e.code === 'undecodable_image' || e.code === 'unsupported_media_type' || e.code === 'image_too_large' || (e.code === 'bad_request' && bytes.byteLength === 0));
        if (!multipart || !own) throw e;
        firstError ??= e;
        results.push({ file: name, error: { code: e.code, message: e.message } });
      }
    }
    const captioned = results.filter((r): r is CaptionResponse => 'caption' in r);
    if (log) log.images = uploads.length;
    if (captioned.length) c.header('Server-Timing', serverTiming(captioned));
    if (!multipart) {
      const json = JSON.stringify(captioned[0]);
      if (cache) {
        c.header('Cache-Status', 'edge-captioner; fwd=uri-miss; stored');
        const put = cache.put(json);
        const waitUntil = waitUntilOf(c);
        if (waitUntil) waitUntil(put); // stored after the answer is sent
        else await put; // no ExecutionContext (tests, app.request): store before answering
      }
      return c.json(captioned[0]);
    }
    // Multipart always answers an array, one entry per file; 200 when any photo was captioned.
    return c.json(results, captioned.length ? 200 : (firstError?.status ?? 400));
  })
  .on(['GET', 'PUT', 'PATCH', 'DELETE'], '/', (c) => methodNotAllowed(c, 'POST, OPTIONS'));

/** 405 with the `Allow` header the RFC requires. */
export function methodNotAllowed(c: Context, allow: string): Response {
  c.header('Allow', allow);
  return errorResponse(c, 405, 'method_not_allowed', `${c.req.method} is not allowed here; use ${allow}`);
}
