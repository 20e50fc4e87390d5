import Ajv2020 from 'ajv/dist/2020';
import jpeg from 'jpeg-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTinyWorker, type DevServer } from '../helpers/wrangler-dev';

/** Real answers of a running worker (`wrangler dev`), each validated against GET /v1/openapi.json. */
let server: DevServer;
let spec: any;
const photo = (seed: number) => new Uint8Array(jpeg.encode({ width: 48, height: 40, data: new Uint8Array(48 * 40 * 4).map((_, i) => (i * seed) % 256) }, 90).data);

beforeAll(async () => {
  server = await startTinyWorker();
  spec = await (await fetch(`${server.url}/v1/openapi.json`)).json();
}, 180_000);

afterAll(async () => {
  await server?.stop();
});

/** The response schema the document gives for this path, method and status. */
function validatorFor(path: string, method: string, status: number) {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  ajv.addSchema({ $id: 'doc', components: spec.components });
  const response = spec.paths[path]?.[method]?.responses?.[String(status)];
  expect(response, `${method.toUpperCase()} ${path} → ${status} is documented`).toBeDefined();
  const schema = JSON.parse(JSON.stringify(response.content['application/json'].schema).replaceAll('"#/components', '"doc#/components'));
  return ajv.compile(schema);
}

async function check(path: string, method: 'get' | 'post', init: RequestInit, status: number): Promise<unknown> {
  const res = await fetch(`${server.url}${path}`, { ...init, method: method.toUpperCase() });
  expect(res.status).toBe(status);
  const body = await res.json();
  const validate = validatorFor(path.split('?')[0], method, status);
  expect(validate(body), JSON.stringify(validate.errors)).toBe(true);
  return body;
}

describe('OpenAPI 3.1 description', () => {
  it('is served and is an OpenAPI 3.1 document with every route', () => {
    expect(spec.openapi).toBe('3.1.0');
    expect(Object.keys(spec.paths).sort()).toEqual(['/healthz', '/v1/captions', '/v1/model', '/v1/openapi.json']);
  });

  it('good and error answers of the running worker match their documented schemas', async () => {
    const jpegHeaders = { 'Content-Type': 'image/jpeg' };
    const one = (await check('/v1/captions?beam=3&alternatives=2', 'post', { body: photo(3), headers: jpegHeaders }, 200)) as any;
    expect(typeof one.caption).toBe('string');
    const form = new FormData();
    form.append('image', new Blob([photo(5)], { type: 'image/jpeg' }), 'a.jpg');
    form.append('image', new Blob([new Uint8Array(30).fill(1)], { type: 'image/png' }), 'junk.png');
    const many = (await check('/v1/captions', 'post', { body: form }, 200)) as any[];
    expect(many[1].error.code).toBe('unsupported_media_type');
    await check('/v1/captions?beam=99', 'post', { body: photo(3), headers: jpegHeaders }, 400);
    await check('/v1/captions', 'post', { body: new Uint8Array(100).fill(7), headers: jpegHeaders }, 415);
    await check('/v1/captions', 'post', { body: photo(3), headers: { 'Content-Type': 'image/gif' } }, 415);
    await check('/v1/model', 'get', {}, 200);
    const health = (await check('/healthz', 'get', {}, 200)) as any;
    // The isolate warmed up in its global scope, before its first request, and that did not fail.
    expect(health.isolateWarmup.error).toBeNull();
    expect(health.isolateWarmup.ms).toBeGreaterThan(0);
    // The schemas are strict enough to catch a wrong answer.
    const validate = validatorFor('/v1/captions', 'post', 200);
    expect(validate({ ...one, score: '−1' })).toBe(false);
    expect(validate({ ...one, extra: 1 })).toBe(false);
  });
});
