import { Hono } from 'hono';
import { CaptionOptionError, resolveOptions, type CaptionOptions, type Captioner } from '../../shared/captioner';
import { decodeImage } from '../../shared/image/decode';
import { ACCEPTED_IMAGE_TYPES, ImageInputError, type RgbImage } from '../../shared/image/types';
import { readBodyLimited } from '../body';
import { ApiError } from '../errors';
import { parseCaptionParams } from '../params';
import type { AppEnv } from '../app';

const ACCEPTED_TYPES: readonly string[] = ACCEPTED_IMAGE_TYPES;

export interface CaptionResponse {
  caption: string;
  score: number;
  alternatives: { caption: string; score: number }[];
  model: { id: string; version: string };
  timings: { decodeMs: number; preprocessMs: number; encoderMs: number; decoderMs: number; totalMs: number };
}

const round = (x: number) => Math.round(x * 100) / 100;
const now = () => performance.now();

/** The uploaded images: a raw image body, or multipart/form-data with one or more `image` fields. */
async function uploadedImages(req: Request, maxBytes: number, maxImages: number): Promise<Uint8Array[]> {
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
    const out: Uint8Array[] = [];
    for (const f of files) {
      if (typeof f === 'string') throw new ApiError(400, 'bad_request', "each 'image' field must be a file upload");
      out.push(new Uint8Array(await f.arrayBuffer()));
    }
    return out;
  }
  if (!ACCEPTED_TYPES.includes(type)) {
    throw new ApiError(415, 'unsupported_media_type', `Content-Type '${type}' is not accepted; use ${ACCEPTED_TYPES.join(', ')} or multipart/form-data`);
  }
  return [body];
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
    score: round(r.score * 1000) / 1000,
    alternatives: r.alternatives.map((a) => ({ caption: a.caption, score: Math.round(a.score * 1e5) / 1e5 })),
    model: { id: m.id, version: m.version },
    timings: {
      decodeMs: round(decodeMs),
      preprocessMs: round(r.timings.preprocessMs),
      encoderMs: round(r.timings.encoderMs),
      decoderMs: round(r.timings.decoderMs),
      totalMs: round(decodeMs + t2 - t1),
    },
  };
}

function serverTiming(results: CaptionResponse[]): string {
  const sum = (k: keyof CaptionResponse['timings']) => round(results.reduce((a, r) => a + r.timings[k], 0));
  return (['decodeMs', 'preprocessMs', 'encoderMs', 'decoderMs', 'totalMs'] as const)
    .map((k) => `${k.replace('Ms', '')};dur=${sum(k)}`)
    .join(', ');
}

export const captionsRoute = new Hono<AppEnv>().post('/', async (c) => {
  const cfg = c.get('config');
  const options = parseCaptionParams(c.req.query());
  // Input errors (4xx) come before the model is touched: bad uploads never wait for a load.
  const uploads = await uploadedImages(c.req.raw, cfg.maxBodyBytes, cfg.maxImages);
  let captioner: Captioner | null = null;
  const results: CaptionResponse[] = [];
  // One image at a time, so only one decoded photo is held in memory.
  for (const bytes of uploads) {
    const t0 = now();
    const image = decode(bytes, { maxPixels: cfg.maxPixels });
    const decodeMs = now() - t0;
    if (!captioner) {
      captioner = await c.get('models').get();
      try {
        resolveOptions(options, captioner.manifest.decoder.maxLength - 1);
      } catch (e) {
        if (e instanceof CaptionOptionError) throw new ApiError(400, 'invalid_parameter', e.message);
        throw e;
      }
    }
    results.push(captionOne(captioner, image, decodeMs, options));
  }
  c.header('Server-Timing', serverTiming(results));
  return c.json(results.length === 1 ? results[0] : results);
});
