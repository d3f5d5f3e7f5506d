import ms from 'ms';
import { invalidType, outOfRange } from './errors.js';
import { MAX_TIMER } from './timeout.js';

/** A duration: milliseconds, or an `ms` string such as `'500ms'`, `'30s'`, `'2m'`. */
export type Duration = number | string;

/**
 * Parses a duration once, at the edge: a number of milliseconds or an `ms` string. Throws a
 * TypeError for anything else and a RangeError for a negative, non-finite or too large value.
 */
export function parseDuration(value: unknown, what: string, { allowZero = false, max = MAX_TIMER } = {}): number {
  let millis: number | undefined;
  if (typeof value === 'number') millis = value;
  else if (typeof value === 'string' && value.trim() !== '') millis = ms(value as ms.StringValue);
  if (millis === undefined || typeof millis !== 'number') {
    throw invalidType(what, 'a duration (milliseconds, or a string such as "30s")', value);
  }
  if (!Number.isFinite(millis) || millis < 0 || (!allowZero && millis === 0)) {
    throw outOfRange(what, allowZero ? 'a finite duration of 0 or more' : 'a finite duration above 0', value);
  }
  if (millis > max) throw outOfRange(what, `at most ${max} ms`, value);
  return millis;
}
