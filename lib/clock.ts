// Time, for the parts of the library that measure or wait: real by default, injectable in unit tests.

/** Monotonic time and timers. */
export interface Clock {
  /** Monotonic milliseconds (`performance.now()`). */
  now(): number;
  /** Returns a handle for `clearTimeout`. */
  setTimeout(callback: () => void, delay: number): unknown;
  clearTimeout(timer: unknown): void;
}

/** The process's clock: `performance.now()` and Node's timers (whose handles have `unref()`). */
export const realClock: Clock = {
  now: () => performance.now(),
  setTimeout: (callback, delay) => setTimeout(callback, delay),
  clearTimeout: (timer) => clearTimeout(timer as NodeJS.Timeout),
};
