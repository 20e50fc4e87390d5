import { ApiError } from './errors';

/**
 * An over-limit body is read on (and discarded) up to this many further bytes before the 413: a
 * body cancelled half-read leaves the connection unusable under `wrangler dev`, and the client's
 * next request on it failed with 503 "Your worker restarted mid-request". Beyond this, cancel.
 */
export const MAX_DRAIN_BYTES = 64 * 1024 * 1024;

/**
 * Reads a request body, refusing more than `maxBytes`. The declared Content-Length is checked
 * first, but the bytes are counted while reading as well: a chunked body declares no length, and
 * a wrong declaration must not get past the limit.
 */
export async function readBodyLimited(req: Request, maxBytes: number): Promise<Uint8Array> {
  const tooLarge = () => new ApiError(413, 'payload_too_large', `request body is larger than the limit of ${maxBytes} bytes`);
  const declared = req.headers.get('content-length');
  if (declared !== null && Number(declared) > maxBytes) throw tooLarge();
  if (!req.body) return new Uint8Array(0);
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    let chunk: ReadableStreamReadResult<Uint8Array>;
    try {
      chunk = await reader.read();
    } catch (e) {
      // The client went away or the stream broke mid-upload: its problem, not a 500.
      throw new ApiError(400, 'bad_request', `the request body could not be read (${e instanceof Error ? e.message : String(e)})`);
    }
    const { done, value } = chunk;
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await drain(reader, MAX_DRAIN_BYTES);
      throw tooLarge();
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(total);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.byteLength;
  }
  return out;
}

/** Reads and drops up to `limit` bytes until the stream ends; cancels it if there is more. */
async function drain(reader: ReadableStreamDefaultReader<Uint8Array>, limit: number): Promise<void> {
  let dropped = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      dropped += value.byteLength;
      if (dropped > limit) break;
    }
  } catch {
    return; // the client went away: nothing left to drain
  }
  await reader.cancel().catch(() => {});
}
