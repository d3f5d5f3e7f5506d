import { parseDuration, type Duration } from './duration.js';
import { invalidType, outOfRange } from './errors.js';
import { checkObject } from './options.js';

/**
 * How a waiting `acquire()` polls: after each failed attempt, `next` says how long to sleep
 * before the next one, or `null` to give up (the wait then rejects with a LockTimeoutError).
 * Any object with this method will do; the library's are in {@link strategies}.
 *
 * A waiter also wakes early, and tries again at once, when the lock is released or when the
 * expiry it observed on the server comes round, so a strategy's delay is an upper bound.
 */
export interface PollStrategy {
  /**
   * @param attempt - attempts made so far, the first included (1 after the first attempt)
   * @param elapsed - milliseconds since the wait began
   * @returns milliseconds to sleep before the next attempt, or `null` to stop
   */
  next(attempt: number, elapsed: number): number | null;
}

/** Options of {@link strategies.bounded}. */
export interface BoundedOptions {
  /** Delay between attempts. */
  readonly interval: Duration;
  /** Give up after this many attempts in all, the first included. */
  readonly attempts?: number;
  /** Give up once this much time has passed; the last attempt falls on the limit. */
  readonly within?: Duration;
}

/** Options of {@link strategies.infinite}. */
export interface InfiniteOptions {
  /** Delay between attempts. */
  readonly interval: Duration;
}

/** Options of {@link strategies.backoff}. */
export interface BackoffOptions {
  /** Delay after the first attempt. */
  readonly initial: Duration;
  /** Longest delay. */
  readonly max: Duration;
  /** Growth of the delay per attempt. @defaultValue 2 */
  readonly factor?: number;
  /** Fraction (0 to 1) of each delay randomly taken off, so waiters do not retry in step. @defaultValue 0.2 */
  readonly jitter?: number;
  /** Give up once this much time has passed; without it the wait is infinite. */
  readonly within?: Duration;
  /** Source of randomness for the jitter, in [0, 1). @defaultValue Math.random */
  readonly random?: () => number;
}

/** Reads a strategy's options once: own properties, `undefined` ones left out (see checkObject). */
function objectOptions<T extends object>(options: T, what: string): Partial<T> {
  if (typeof options !== 'object' || options === null) throw invalidType(what, 'an options object', options);
  return checkObject(options, what);
}

function attemptsOption(value: unknown, what: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number') throw invalidType(what, 'a whole number', value);
  if (!Number.isInteger(value) || value < 1) throw outOfRange(what, 'a whole number of at least 1', value);
  return value;
}

/** A total time to wait: 0 or more ms, or undefined for no bound. */
function withinOption(value: Duration | undefined, what: string): number | undefined {
  return value === undefined
    ? undefined
    : parseDuration(value, what, { allowZero: true, max: Number.MAX_SAFE_INTEGER });
}

/** Caps a delay by what is left of `within`; null once nothing is left. */
function withinLimit(delay: number, elapsed: number, within: number | undefined): number | null {
  if (within === undefined) return delay;
  if (elapsed >= within) return null;
  return Math.min(delay, within - elapsed);
}

/** Polls at a fixed interval for a bounded number of attempts and/or a bounded time. */
function bounded(input: BoundedOptions): PollStrategy {
  const options = objectOptions(input, 'strategies.bounded(options)');
  const interval = parseDuration(options.interval, 'strategies.bounded: interval');
  const attempts = attemptsOption(options.attempts, 'strategies.bounded: attempts');
  const within = withinOption(options.within, 'strategies.bounded: within');
  if (attempts === undefined && within === undefined) {
    throw invalidType(
      'strategies.bounded(options)',
      'given attempts, within, or both (for no bound use strategies.infinite)',
      options,
    );
  }
  return {
    next(attempt, elapsed) {
      if (attempts !== undefined && attempt >= attempts) return null;
      return withinLimit(interval, elapsed, within);
    },
  };
}

/** Polls at a fixed interval until the lock is held (or the wait is aborted). */
function infinite(input: InfiniteOptions): PollStrategy {
  const options = objectOptions(input, 'strategies.infinite(options)');
  const interval = parseDuration(options.interval, 'strategies.infinite: interval');
  return { next: () => interval };
}

/** Exponential backoff with jitter: initial, initial × factor, … up to max. */
function backoff(input: BackoffOptions): PollStrategy {
  const options = objectOptions(input, 'strategies.backoff(options)');
  const initial = parseDuration(options.initial, 'strategies.backoff: initial');
  const max = parseDuration(options.max, 'strategies.backoff: max');
  if (max < initial) throw outOfRange('strategies.backoff: max', `at least initial (${initial} ms)`, options.max);
  const factor = options.factor === undefined ? 2 : options.factor;
  if (typeof factor !== 'number') throw invalidType('strategies.backoff: factor', 'a number', factor);
  if (!Number.isFinite(factor) || factor < 1)
    throw outOfRange('strategies.backoff: factor', 'a finite number of at least 1', factor);
  const jitter = options.jitter === undefined ? 0.2 : options.jitter;
  if (typeof jitter !== 'number') throw invalidType('strategies.backoff: jitter', 'a number', jitter);
  if (!(jitter >= 0 && jitter <= 1)) throw outOfRange('strategies.backoff: jitter', 'a fraction from 0 to 1', jitter);
  const within = withinOption(options.within, 'strategies.backoff: within');
  const random = options.random === undefined ? Math.random : options.random;
  if (typeof random !== 'function') throw invalidType('strategies.backoff: random', 'a function', random);
  return {
    next(attempt, elapsed) {
      const grown = Math.min(max, initial * factor ** Math.max(0, attempt - 1));
      // A source of randomness outside [0, 1) must not make a negative or longer delay.
      const drawn = Number(random());
      const fraction = Number.isFinite(drawn) ? Math.min(1, Math.max(0, drawn)) : 0;
      return withinLimit(grown * (1 - jitter * fraction), elapsed, within);
    },
  };
}

/** The library's polling strategies; see {@link PollStrategy} to write your own. */
export const strategies = Object.freeze({ bounded, infinite, backoff });

/** Checks a user-supplied strategy's shape once, when a wait starts. */
export function checkStrategy(value: unknown, what: string): PollStrategy {
  if (typeof value !== 'object' || value === null || typeof (value as PollStrategy).next !== 'function') {
    throw invalidType(what, 'a strategy: an object with a next(attempt, elapsed) method', value);
  }
  return value as PollStrategy;
}
