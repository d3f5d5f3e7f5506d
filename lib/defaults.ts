/**
 * Every default of the library in one frozen place: the manager's options, the 0.0.1 API's and
 * the `mdlock` command's read them from here. Durations are milliseconds.
 */
export const DEFAULTS = Object.freeze({
  /** The lock collection. */
  collection: 'locks',
  /** How long a lease lasts without renewal. */
  ttl: 60_000,
  /** Renewals per ttl: the heartbeat is ttl / 3 (less with a margin above 1/3: see `defaultHeartbeat`). */
  renewalsPerTtl: 3,
  /** Polling interval of waits. */
  poll: 500,
  /** Safety margin, as a fraction of the ttl. */
  margin: 0.1,
  /** Longest wait for one MongoDB command. */
  commandTimeout: 10_000,
  /** Cross-process wake-ups. */
  wakeups: true,
  /** How long a free lock document is kept (an `ms` string, as the option takes it). */
  cleanupAfter: '1d',
  /** How long a history record is kept. */
  historyRetain: '30d',
  /** The 0.0.1 API: `Lock(name, { timeout, pollInterval })`. */
  compat: Object.freeze({ timeout: 60_000, pollInterval: 500 }),
  /** The `mdlock` command. */
  cli: Object.freeze({ ttl: 30_000, grace: 10_000, connectTimeout: 10_000 }),
} as const);
