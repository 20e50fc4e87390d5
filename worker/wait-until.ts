import type { Context } from 'hono';

/**
 * The request's `waitUntil` (work that may outlive the response), or null where there is no
 * ExecutionContext (`app.request` in tests): callers then await the work or skip it.
 */
export function waitUntilOf(c: Context): ((p: Promise<unknown>) => void) | null {
  try {
    const ctx = c.executionCtx;
    return (p) => ctx.waitUntil(p);
  } catch {
    return null;
  }
}
