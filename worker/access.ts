import type { MiddlewareHandler } from 'hono';
import { cors } from 'hono/cors';
import { errorResponse } from './errors';
import { sha256Hex } from './sha256';

/** Cloudflare's rate-limiting binding (`[[ratelimits]]` in wrangler.toml). */
export interface RateLimiter {
  limit(options: { key: string }): Promise<{ success: boolean }>;
}

export interface AccessBindings {
  /** Comma-separated API keys (a secret); when set, /v1/captions needs `Authorization: Bearer <key>`. */
  API_KEYS?: string;
  /** Comma-separated origins allowed by CORS; default `*`. */
  ALLOWED_ORIGINS?: string;
  /** 'on' enforces RATE_LIMITER per key (or per client IP without keys). */
  RATE_LIMIT?: string;
  RATE_LIMITER?: RateLimiter;
  /** Seconds a client is told to wait after a 429 (the limiter's period). */
  RATE_LIMIT_PERIOD?: string;
}

const list = (v: string | undefined) => (v ?? '').split(',').map((s) => s.trim()).filter(Boolean);

/**
 * CORS for the API with the origins from ALLOWED_ORIGINS (default: any).
 *
 * @example
 * app.use('/v1/*', corsFromEnv({ allowMethods: ['GET', 'POST', 'OPTIONS'] }));
 */
export function corsFromEnv(options: { allowMethods: string[]; exposeHeaders?: string[] }): MiddlewareHandler<{ Bindings: AccessBindings }> {
  return (c, next) => {
    const allowed = list(c.env?.ALLOWED_ORIGINS);
    const origin = allowed.length === 0 || allowed.includes('*') ? '*' : (o: string) => (allowed.includes(o) ? o : null);
    return cors({ origin, ...options, maxAge: 86400 })(c, next);
  };
}

/** Equal-time comparison, so response timing does not reveal how much of a key matched. */
export function timingSafeEqual(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

/**
 * API keys and rate limits for a public deployment; both off unless configured, so `npm start`
 * stays open. The key itself is never logged or echoed.
 */
export function accessControl(): MiddlewareHandler<{ Bindings: AccessBindings; Variables: { client: string } }> {
  return async (c, next) => {
    if (c.req.method === 'OPTIONS') return next();
    const keys = list(c.env?.API_KEYS);
    let client = `ip:${c.req.header('cf-connecting-ip') ?? 'local'}`;
    if (keys.length) {
      const m = /^Bearer\s+(\S+)$/i.exec(c.req.header('authorization') ?? '');
      // Compare against every key, so the time does not depend on which one matched.
      const matched = m ? keys.map((k) => timingSafeEqual(m[1], k)).reduce((a, b) => a || b, false) : false;
      if (!matched) {
        c.header('WWW-Authenticate', 'Bearer realm="captions"');
        return errorResponse(c, 401, 'unauthorized', m ? 'the API key is not valid' : "this API needs a key: send 'Authorization: Bearer <key>'");
      }
      client = `key:${(await sha256Hex(m![1])).slice(0, 16)}`;
    }
    c.set('client', client);
    const limiter = c.env?.RATE_LIMITER;
    if (c.env?.RATE_LIMIT === 'on' && limiter) {
      const { success } = await limiter.limit({ key: client });
      if (!success) {
        c.header('Retry-After', c.env.RATE_LIMIT_PERIOD ?? '60');
        return errorResponse(c, 429, 'rate_limited', 'too many requests; retry after the time in Retry-After');
      }
    }
    return next();
  };
}
