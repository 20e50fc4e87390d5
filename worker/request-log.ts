import type { MiddlewareHandler } from 'hono';

/** What a route adds to its request's log line. */
export interface LogFields {
  images?: number;
  /** Decoded size of each image, "w×h". */
  imageSizes?: string[];
  /** Response cache outcome. */
  cache?: 'hit' | 'miss';
}

/**
 * One JSON line per request on stdout (Workers Logs indexes JSON fields): route, status, bytes,
 * time and, for errors, the error code — never image data, keys or IP addresses.
 *
 * @example
 * app.use('*', requestLog());
 */
export function requestLog(): MiddlewareHandler<{ Variables: { log: LogFields } }> {
  return async (c, next) => {
    const t0 = performance.now();
    c.set('log', {});
    await next();
    const res = c.res;
    let error: string | undefined;
    if (res.status >= 400 && (res.headers.get('content-type') ?? '').includes('application/json')) {
      // Error bodies are small JSON objects; multipart arrays carry their own per-file errors.
      error = await res
        .clone()
        .json()
        .then((j: unknown) => (j as { error?: { code?: string } })?.error?.code)
        .catch(() => undefined);
    }
    const line = {
      message: 'request',
      method: c.req.method,
      path: new URL(c.req.url).pathname,
      status: res.status,
      ms: Math.round((performance.now() - t0) * 100) / 100,
      requestBytes: Number(c.req.header('content-length') ?? 0) || undefined,
      responseBytes: Number(res.headers.get('content-length') ?? 0) || undefined,
      ...c.get('log'),
      ...(error ? { error } : {}),
    };
    console.log(JSON.stringify(line));
  };
}
