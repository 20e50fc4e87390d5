import { ApiError } from './errors';
import type { CaptionOptions } from '../shared/captioner';

const INTEGERS = ['beam', 'alternatives', 'maxLength'] as const;
const FLAGS = ['attention'] as const;
const NAMES = [...INTEGERS, ...FLAGS];
const FLAG_VALUES: Record<string, boolean> = { '1': true, true: true, '0': false, false: false };

/** Query parameters → caption options. Unknown names, non-integers and non-flags are 400s; ranges are checked by the captioner. */
export function parseCaptionParams(query: Record<string, string>): CaptionOptions {
  const out: CaptionOptions = {};
  for (const [key, raw] of Object.entries(query)) {
    if (!(NAMES as readonly string[]).includes(key)) {
      throw new ApiError(400, 'invalid_parameter', `unknown query parameter '${key}'; accepted: ${NAMES.join(', ')}`);
    }
    if ((FLAGS as readonly string[]).includes(key)) {
      if (!(raw in FLAG_VALUES)) throw new ApiError(400, 'invalid_parameter', `${key} must be 1 or 0 (true or false), got '${raw.slice(0, 40)}'`);
      // Off is the default: leaving it out keeps the cache key of a plain request.
      if (FLAG_VALUES[raw]) out.attention = true;
      continue;
    }
    if (!/^\d{1,4}$/.test(raw)) {
      throw new ApiError(400, 'invalid_parameter', `${key} must be a positive integer, got '${raw.slice(0, 40)}'`);
    }
    out[key as (typeof INTEGERS)[number]] = Number(raw);
  }
  return out;
}
