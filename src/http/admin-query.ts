import { z } from 'zod';
import { errors } from '../core/errors.js';

/**
 * The query strings of the admin endpoints, checked before anything reaches a store: a value that
 * is not what the parameter holds is a 400 naming it, never a number a database cannot take.
 */

/** The latest time a JavaScript Date holds; far inside what both stores keep. */
const MAX_TIME_MS = 8_640_000_000_000_000;
const THIRTY_ONE_DAYS_S = 31 * 24 * 60 * 60;

const epochMs = z.string().regex(/^\d{1,16}$/).transform(Number).pipe(z.number().int().max(MAX_TIME_MS));
/** `2025-01-31`, `2025-01-31T12:00`, `2025-01-31T12:00:00.000Z`, `…+02:00`. */
const isoDate = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/)
  .transform((s) => Date.parse(s))
  .pipe(z.number().int().min(0).max(MAX_TIME_MS));
const time = z.union([epochMs, isoDate]);
const TIME = 'a time: whole milliseconds since 1970 or an ISO 8601 date (2025-01-31, 2025-01-31T12:00:00Z)';

/** A positive decimal number of seconds up to 31 days (`1`, `2.5`). */
const seconds = z
  .string()
  .regex(/^\d{1,10}(?:\.\d{1,3})?$/)
  .transform(Number)
  .pipe(z.number().positive().max(THIRTY_ONE_DAYS_S));
const SECONDS = `a number of seconds, more than 0 and at most ${THIRTY_ONE_DAYS_S} (31 days)`;

function parsed<T>(name: string, value: string | undefined, schema: z.ZodType<T, string>, expected: string): T | undefined {
  if (value === undefined || value === '') return undefined;
  const result = schema.safeParse(value);
  if (!result.success) throw errors.invalidQuery(name, expected);
  return result.data;
}

/** `since` / `until` of GET /stats. */
export function timeParam(name: string, value: string | undefined): number | undefined {
  return parsed(name, value, time, TIME);
}

/** `window` of GET /dashboard/data: `auto` or seconds. */
export function windowParam(value: string | undefined): 'auto' | number {
  if (value === undefined || value === '' || value === 'auto') return 'auto';
  return parsed('window', value, seconds, `'auto' or ${SECONDS}`)!;
}

/** `bucket` of GET /dashboard/data: seconds. */
export function bucketParam(value: string | undefined): number | undefined {
  return parsed('bucket', value, seconds, SECONDS);
}

/** `limit` of GET /dashboard/data: a whole number from 1 to `max`. */
export function limitParam(value: string | undefined, max: number): number | undefined {
  const count = z.string().regex(/^\d{1,6}$/).transform(Number).pipe(z.number().int().min(1).max(max));
  return parsed('limit', value, count, `a whole number from 1 to ${max}`);
}

/** A trace id as the stores keep them: 1 to 128 characters, no control characters. */
export const traceIdSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[^\u0000-\u001f\u007f]+$/, 'must hold no control characters');
