/**
 * The API's OpenAPI 3.1 description, served at GET /v1/openapi.json. test/http/openapi.test.ts
 * validates real answers of a running worker against these schemas, so it cannot drift.
 */
import { QUANTIZATIONS } from '../shared/bundle/manifest';

const error = {
  type: 'object',
  required: ['error'],
  additionalProperties: false,
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      additionalProperties: false,
      properties: {
        code: {
          type: 'string',
          enum: ['bad_request', 'invalid_parameter', 'payload_too_large', 'unsupported_media_type', 'undecodable_image', 'image_too_large', 'model_unavailable', 'not_found', 'method_not_allowed', 'unauthorized', 'rate_limited', 'internal_error'],
        },
        message: { type: 'string', description: 'What to change, in words.' },
      },
    },
  },
} as const;

const errorResponse = (description: string) => ({ description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } });
const ms = { type: 'number', minimum: 0 } as const;
const confidence = {
  type: ['number', 'null'],
  minimum: 0,
  maximum: 1,
  description: 'How far the caption can be trusted, in [0, 1]: the probability, fitted on Flickr8k dev photos, that it scores above the median caption there (4 decimals). Photos unlike the training photos (blank, screenshots) get less. null when the model is not calibrated.',
} as const;

export const OPENAPI = {
  openapi: '3.1.0',
  info: {
    title: 'edge-captioner',
    version: '1',
    description: 'Upload a photo, get a sentence describing it. A compact VGG16 and an LSTM on WebAssembly, at the edge.',
  },
  paths: {
    '/v1/captions': {
      post: {
        summary: 'Caption one photo (raw body) or several (multipart).',
        parameters: [
          { name: 'beam', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 10, default: 3 }, description: 'Beam width; 1 = greedy.' },
          { name: 'alternatives', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 10, default: 1 }, description: 'Captions returned, best first (at most beam).' },
          { name: 'maxLength', in: 'query', schema: { type: 'integer', minimum: 1 }, description: "Longest caption in words (at most the model's)." },
          {
            name: 'attention',
            in: 'query',
            schema: { type: 'string', enum: ['1', '0', 'true', 'false'], default: '0' },
            description: 'Add `attention`: for each word of the caption, where the model looked (a 400 when the model has no attention decoder).',
          },
        ],
        security: [{}, { bearer: [] }],
        requestBody: {
          required: true,
          content: {
            'image/jpeg': { schema: { type: 'string', contentMediaType: 'image/jpeg' } },
            'image/png': { schema: { type: 'string', contentMediaType: 'image/png' } },
            'application/octet-stream': { schema: { type: 'string', description: 'A JPEG or PNG; the bytes are sniffed.' } },
            'multipart/form-data': {
              schema: { type: 'object', required: ['image'], properties: { image: { type: 'array', maxItems: 8, items: { type: 'string', contentMediaType: 'application/octet-stream' } } } },
            },
          },
        },
        responses: {
          '200': {
            description: 'A raw body: one caption object. Multipart: an array, one entry per `image` field (a caption, or that file\'s own error).',
            headers: {
              'Server-Timing': { schema: { type: 'string' } },
              'Cache-Status': { schema: { type: 'string' }, description: 'RFC 9211: `edge-captioner; hit`, or `…; fwd=uri-miss; stored`.' },
            },
            content: {
              'application/json': {
                schema: { oneOf: [{ $ref: '#/components/schemas/Caption' }, { type: 'array', items: { anyOf: [{ $ref: '#/components/schemas/Caption' }, { $ref: '#/components/schemas/FileError' }] } }] },
              },
            },
          },
          '400': errorResponse('Bad parameter, empty body or unreadable multipart.'),
          '401': errorResponse('API_KEYS is set and no valid `Authorization: Bearer <key>` came.'),
          '413': errorResponse('Body over the limit (MAX_BODY_BYTES), too many images, or an image over MAX_PIXELS.'),
          '415': errorResponse('Not an accepted image type, or undecodable. (Multipart where every file failed: the per-file array.)'),
          '429': errorResponse('Rate limit (RATE_LIMIT=on); see Retry-After.'),
          '503': errorResponse('The model bundle is missing or invalid.'),
        },
      },
    },
    '/v1/model': {
      get: {
        summary: 'The model card: architecture, sizes, training, dev metrics, limits.',
        responses: { '200': { description: 'The card.', content: { 'application/json': { schema: { $ref: '#/components/schemas/ModelCard' } } } }, '503': errorResponse('The model bundle is missing or invalid.') },
      },
    },
    '/v1/openapi.json': { get: { summary: 'This document.', responses: { '200': { description: 'OpenAPI 3.1', content: { 'application/json': { schema: { type: 'object' } } } } } } },
    '/healthz': {
      get: {
        summary: 'Liveness, plus backend, tensor count and wasm memory once the model is loaded.',
        responses: { '200': { description: 'Alive.', content: { 'application/json': { schema: { $ref: '#/components/schemas/Health' } } } } },
      },
    },
  },
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'Only when the deployment sets API_KEYS.' } },
    schemas: {
      Error: error,
      FileError: {
        type: 'object',
        required: ['file', 'error'],
        additionalProperties: false,
        properties: { file: { type: ['string', 'null'] }, error: error.properties.error },
      },
      Caption: {
        type: 'object',
        required: ['caption', 'score', 'confidence', 'alternatives', 'model', 'timings'],
        additionalProperties: false,
        properties: {
          caption: { type: 'string', minLength: 1 },
          score: { type: 'number', maximum: 0, description: 'Mean log-probability per word (4 decimals).' },
          confidence,
          alternatives: {
            type: 'array',
            minItems: 1,
            items: {
              type: 'object',
              required: ['caption', 'score', 'confidence'],
              additionalProperties: false,
              properties: { caption: { type: 'string', minLength: 1 }, score: { type: 'number', maximum: 0 }, confidence },
            },
          },
          model: { type: 'object', required: ['id', 'version'], additionalProperties: false, properties: { id: { type: 'string' }, version: { type: 'string' } } },
          attention: {
            type: 'object',
            description: 'Only with ?attention=1. One row per word of `caption` (split on spaces): weights over the grid cells, row-major, summing to 1 (3 decimals).',
            required: ['grid', 'weights'],
            additionalProperties: false,
            properties: {
              grid: { type: 'array', minItems: 2, maxItems: 2, items: { type: 'integer', minimum: 1 }, description: '[rows, columns] of the grid over the photo.' },
              weights: { type: 'array', items: { type: 'array', items: { type: 'number', minimum: 0, maximum: 1 } } },
            },
          },
          timings: {
            type: 'object',
            required: ['decodeMs', 'preprocessMs', 'encoderMs', 'decoderMs', 'totalMs'],
            additionalProperties: false,
            properties: { decodeMs: ms, preprocessMs: ms, encoderMs: ms, decoderMs: ms, totalMs: ms },
          },
        },
      },
      ModelCard: {
        type: 'object',
        required: ['id', 'version', 'encoder', 'decoder', 'quantization', 'bundleBytes', 'metrics', 'limits'],
        properties: {
          id: { type: 'string' },
          version: { type: 'string' },
          createdAt: { type: ['string', 'null'] },
          description: { type: ['string', 'null'] },
          encoder: { type: 'object', required: ['architecture', 'inputSize', 'featureSize'] },
          decoder: { type: 'object', required: ['architecture', 'vocabSize', 'maxLength'] },
          quantization: { type: 'string', enum: [...QUANTIZATIONS] },
          bundleBytes: { type: 'integer', minimum: 0 },
          training: { type: ['object', 'null'] },
          metrics: { type: ['object', 'null'] },
          limits: { type: 'array', items: { type: 'string' } },
          loadMs: { type: ['number', 'null'] },
        },
      },
      Health: {
        type: 'object',
        required: ['status', 'modelLoaded'],
        properties: {
          status: { const: 'ok' },
          modelLoaded: { type: 'boolean' },
          backend: { type: ['string', 'null'] },
          tensors: { type: ['integer', 'null'] },
          wasmMemoryBytes: { type: ['integer', 'null'] },
          load: {
            description: "Where this isolate's model load went, in ms: wasm backend start, reading the bundle, building the models (parse, dequantise, upload), warm-up. null before the first load.",
            oneOf: [
              { type: 'null' },
              { type: 'object', required: ['backendMs', 'readMs', 'buildMs', 'warmupMs'], additionalProperties: false, properties: { backendMs: ms, readMs: ms, buildMs: ms, warmupMs: ms } },
            ],
          },
          isolateWarmup: {
            description: "The isolate's start-up warm-up (a tiny bundle and photo captioned in global scope): its wall time in ms (null until done; on Cloudflare the clock does not advance during it, so 0) or why it failed.",
            type: 'object',
            required: ['ms', 'error'],
            additionalProperties: false,
            properties: { ms: { type: ['number', 'null'] }, error: { type: ['string', 'null'] } },
          },
        },
      },
    },
  },
} as const;
