import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';

/** Error codes a client can branch on; the message says what to change. */
export type ErrorCode =
  | 'bad_request'
  | 'invalid_parameter'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'undecodable_image'
  | 'image_too_large'
  | 'model_unavailable'
  | 'not_found'
  | 'method_not_allowed'
  | 'unauthorized'
  | 'rate_limited'
  | 'internal_error';

/** A request failure with its HTTP status; rendered as `{ error: { code, message } }`. */
export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export function errorResponse(c: Context, status: ContentfulStatusCode, code: ErrorCode, message: string): Response {
  return c.json({ error: { code, message } }, status);
}
