import { ApiError } from './errors';
import type { CaptionOptions } from '../shared/captioner';

const NAMES = ['beam', 'alternatives', 'maxLength'] as const;

/** Query parameters → caption options. Unknown names and non-integers are 400s; ranges are checked by the captioner. */
export function parseCaptionParams(query: Record<string, string>): CaptionOptions {
  const out: CaptionOptions = {};
  for (const [key, raw] of Object.entries(query)) {
    if (!(NAMES as readonly string[]).includes(key)) {
      throw new ApiError(400, 'invalid_parameter', `unknown query parameter '${key}'; accepted: ${NAMES.join(', ')}`);
    }
    if (!/^\d{1,4}$/.test(raw)) {
      throw new ApiError(400, 'invalid_parameter', `${key} must be a positive integer, got '${raw.slice(0, 40)}'`);
    }
    out[key as (typeof NAMES)[number]] = Number(raw);
  }
  return out;
}
