import { Hono } from 'hono';
import type { AppEnv } from '../app';
import { methodNotAllowed } from './captions';
import { waitUntilOf } from '../wait-until';

/** The model card: what the manifest says about the served model, plus what this isolate measured. */
export const modelRoute = new Hono<AppEnv>().get('/', async (c) => {
  const models = c.get('models');
  const captioner = await models.get();
  const m = captioner.manifest;
  // The upload page asks for the card first: warm up before its first photo arrives.
  waitUntilOf(c)?.(models.warmUp().catch(() => undefined));
  return c.json({
    id: m.id,
    version: m.version,
    createdAt: m.createdAt,
    description: m.description ?? null,
    encoder: { architecture: m.encoder.architecture, inputSize: m.encoder.inputSize, widthMultiplier: m.encoder.widthMultiplier ?? null, headChannels: m.encoder.headChannels ?? null, featureSize: m.encoder.featureSize, params: m.encoder.params ?? null, flops: m.encoder.flops ?? null, normalization: m.encoder.normalization },
    decoder: { architecture: m.decoder.architecture, vocabSize: m.decoder.vocabSize, embeddingSize: m.decoder.embeddingSize, units: m.decoder.units, maxLength: m.decoder.maxLength, attention: m.decoder.attention ?? null },
    quantization: m.quantization,
    bundleBytes: captioner.bundleBytes,
    training: m.training ?? null,
    metrics: m.metrics ?? null,
    limits: m.limits ?? [],
    loadMs: models.loadMs,
  });
})
  .on(['POST', 'PUT', 'PATCH', 'DELETE'], '/', (c) => methodNotAllowed(c, 'GET'));
