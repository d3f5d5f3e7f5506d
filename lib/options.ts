import os from 'node:os';
import mongoose, { type Connection } from 'mongoose';
import { parseDuration, type Duration } from './duration.js';
import { argumentError, invalidType, outOfRange } from './errors.js';
import { DEFAULTS } from './defaults.js';

/** Options of {@link LockManager}. Durations are milliseconds or `ms` strings (`'30s'`). */
export interface LockManagerOptions {
  /** The mongoose connection holding the lock collection. @defaultValue `mongoose.connection` */
  readonly connection?: Connection;
  /** Name of the lock collection. @defaultValue `'locks'` */
  readonly collection?: string;
  /** How long a lease lasts without renewal. @defaultValue `'60s'` */
  readonly ttl?: Duration;
  /** How often held leases are renewed; `false`: never (a lease then lasts exactly `ttl`). @defaultValue ttl / 3 */
  readonly heartbeat?: Duration | false;
  /** Polling interval of waits (`acquire({ wait })`). @defaultValue `500` */
  readonly poll?: Duration;
  /** Who holds the lock, as shown by `inspect()`, `list()` and `mdlock ls`; informational only. @defaultValue `` `${os.hostname()}:${process.pid}` `` */
  readonly owner?: string;
  /**
   * Safety margin, as a fraction of the ttl: a lease counts as lost locally (its `signal` aborts)
   * this long before it could expire on the server, so work that stops on the signal stops before
   * anyone else can hold the lock. Covers timer lateness and clock-rate drift. @defaultValue `0.1`
   */
  readonly margin?: number;
  /** Longest wait for one MongoDB command before it counts as failed (code `connection`). @defaultValue `'10s'` */
  readonly commandTimeout?: Duration;
  /**
   * Cross-process wake-ups: a release that someone waited for inserts a signal into the capped
   * collection `<collection>.signals`, which each waiting manager tails with one cursor, so
   * waiters in other processes try again within a round trip instead of at their next poll.
   * `false`: waits rely on polling alone. @defaultValue `true`
   */
  readonly wakeups?: boolean;
  /**
   * How long a free lock document stays before MongoDB's TTL monitor removes it (a TTL index on
   * `freedAt`, a field set only while the lock is free), in whole seconds, rounded up. `false`:
   * never removed, and no clean-up index is made. A held lock is never removed, and fencing
   * tokens keep growing across removals. @defaultValue `'1d'`
   */
  readonly cleanupAfter?: Duration | false;
  /**
   * Record every ended hold (released, expired, or taken) in a history collection: `true` for
   * the defaults, or where and for how long. See {@link LockManager.history}. @defaultValue `false`
   */
  readonly history?: boolean | HistoryOptions;
  /**
   * Fair waiting for every lock and semaphore of this manager that does not say otherwise: waiters
   * are served in the order they began to wait, across processes. See {@link LeaseOptions.fair}.
   * @defaultValue `false`
   */
  readonly fair?: boolean;
}

/** Where and for how long {@link LockManagerOptions.history} keeps its records. */
export interface HistoryOptions {
  /** The history collection. @defaultValue `` `${collection}.history` `` (for example `'locks.history'`) */
  readonly collection?: string;
  /** How long a record is kept (a TTL index on `endedAt`); `false`: forever. @defaultValue `'30d'` */
  readonly retain?: Duration | false;
}

/** Options of {@link LockManager.lease}: a lease can have its own ttl and heartbeat. */
export interface LeaseOptions {
  /** @defaultValue the manager's `ttl` */
  readonly ttl?: Duration;
  /** @defaultValue the manager's `heartbeat`, or the lease's ttl / 3 when it sets its own ttl */
  readonly heartbeat?: Duration | false;
  /**
   * Fair (FIFO) waiting: among live waiters, one is granted before every waiter that began waiting
   * after it, across processes; a release hands the lock straight to the next waiter. A waiter that
   * gives up or dies leaves the queue (at the latest when its entry's ttl runs out). Contenders
   * without `fair` are not held back by the queue. See docs/fairness.md. @defaultValue the manager's `fair`
   */
  readonly fair?: boolean;
}

/** The manager's options, parsed and checked once. */
export interface ManagerSettings {
  readonly connection: Connection;
  readonly collection: string;
  readonly ttl: number;
  /** `false` only if given as `false`: leases with a ttl of their own then have no heartbeat either. */
  readonly heartbeat: number | false;
  readonly poll: number;
  readonly owner: string;
  readonly margin: number;
  readonly commandTimeout: number;
  readonly wakeups: boolean;
  /** Seconds a free lock document is kept, or `false`: kept forever. */
  readonly cleanupAfter: number | false;
  readonly history: HistorySettings;
  /** Fair waiting by default. */
  readonly fair: boolean;
}

/** The history's settings: read from `collection` always, written to only when `enabled`. */
export interface HistorySettings {
  readonly enabled: boolean;
  readonly collection: string;
  /** Seconds a record is kept, or `false`: kept forever. */
  readonly retain: number | false;
}

/** A lease's timing, in milliseconds. */
export interface LeaseTiming {
  readonly ttl: number;
  readonly heartbeat: number | false;
  /** How long before the server-side expiry the lease counts as lost locally. */
  readonly margin: number;
  /** How often the watchdog checks the lease: its heartbeat, or ttl / 3 without one. */
  readonly interval: number;
  /** Fair (FIFO) waiting; absent: not fair. */
  readonly fair?: boolean;
}

const MAX_NAME_BYTES = 512;
/** With the `u` flag a surrogate pair is one code point, so this matches only unpaired halves. */
const LONE_SURROGATE = /\p{Surrogate}/u;

/**
 * Reads an options object once, at the edge: its own enumerable properties (as a spread reads
 * them), leaving out every property whose value is `undefined`, so that `{ wait: undefined }`
 * means exactly what `{}` means. A getter that throws is reported as a TypeError naming it.
 */
export function checkObject<T extends object>(value: T | undefined, what: string): Partial<T> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw invalidType(what, 'an options object', value);
  const snapshot: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    let field: unknown;
    try {
      field = (value as Record<string, unknown>)[key];
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw argumentError(
        new TypeError(`${what}.${key} could not be read: ${reason}`, { cause: error }),
        `${what}.${key}`,
      );
    }
    if (field !== undefined) snapshot[key] = field;
  }
  return snapshot as Partial<T>;
}

/** A lock name: a non-empty string of at most 512 bytes (it is the lock document's `_id`). */
export function checkName(name: unknown, what = 'lock name'): string {
  if (typeof name !== 'string') throw invalidType(what, 'a non-empty string', name);
  if (name.length === 0) throw invalidType(what, 'a non-empty string', name);
  // A lone surrogate would be stored as U+FFFD: two names would share a lock, and its holder
  // would not find it again.
  if (LONE_SURROGATE.test(name)) throw invalidType(what, 'a well-formed string (no lone surrogate)', name);
  const bytes = Buffer.byteLength(name);
  if (bytes > MAX_NAME_BYTES) throw outOfRange(what, `at most ${MAX_NAME_BYTES} bytes long (it was ${bytes})`, name);
  return name;
}

function checkCollectionName(name: unknown, what: string): string {
  if (typeof name !== 'string' || name.length === 0) throw invalidType(what, 'a non-empty string', name);
  if (/[$\0]/.test(name) || name.startsWith('system.') || name.startsWith('.') || name.endsWith('.')) {
    throw outOfRange(what, 'a collection name MongoDB accepts (no "$" or NUL, not "system.*")', name);
  }
  if (Buffer.byteLength(name) > 200) throw outOfRange(what, 'at most 200 bytes long', name);
  return name;
}

function checkConnection(connection: unknown): Connection {
  const candidate = connection as Partial<Connection> | null;
  if (
    typeof candidate !== 'object' ||
    candidate === null ||
    typeof candidate.readyState !== 'number' ||
    typeof candidate.once !== 'function'
  ) {
    throw invalidType('options.connection', 'a mongoose Connection', connection);
  }
  return candidate as Connection;
}

function booleanOption(value: unknown, fallback: boolean, what: string): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw invalidType(what, 'true or false', value);
  return value;
}

/** The longest expireAfterSeconds MongoDB accepts. */
const MAX_TTL_SECONDS = 2 ** 31 - 1;

/** A retention for a TTL index: whole seconds (rounded up), or `false` for none. */
function retentionOption(value: unknown, fallback: string, what: string): number | false {
  if (value === false) return false;
  const millis = parseDuration(value === undefined ? fallback : value, what, {
    allowZero: true,
    max: MAX_TTL_SECONDS * 1000,
  });
  return Math.ceil(millis / 1000);
}

function historyOption(value: unknown, collection: string): HistorySettings {
  const what = 'options.history';
  if (value !== undefined && typeof value !== 'boolean' && (typeof value !== 'object' || value === null)) {
    throw invalidType(what, 'true, false, or { collection, retain }', value);
  }
  const options: HistoryOptions = typeof value === 'object' ? checkObject(value as HistoryOptions, what) : {};
  const name =
    options.collection === undefined
      ? `${collection}.history`
      : checkCollectionName(options.collection, `${what}.collection`);
  if (name === collection) throw outOfRange(`${what}.collection`, 'another collection than the locks', name);
  return {
    enabled: value === true || typeof value === 'object',
    collection: name,
    retain: retentionOption(options.retain, DEFAULTS.historyRetain, `${what}.retain`),
  };
}

function heartbeatOption(value: unknown, what: string): number | false {
  return value === false ? false : parseDuration(value, what);
}

export function resolveManagerOptions(input: LockManagerOptions | undefined): ManagerSettings {
  const options = checkObject(input, 'LockManager options');
  const ttl = options.ttl === undefined ? DEFAULTS.ttl : parseDuration(options.ttl, 'options.ttl');
  const margin = options.margin === undefined ? DEFAULTS.margin : options.margin;
  if (typeof margin !== 'number') throw invalidType('options.margin', 'a fraction of the ttl', margin);
  if (!(margin > 0 && margin < 0.5)) throw outOfRange('options.margin', 'a fraction above 0 and below 0.5', margin);
  const owner = options.owner === undefined ? `${os.hostname()}:${process.pid}` : options.owner;
  checkName(owner, 'options.owner');
  const settings: Omit<ManagerSettings, 'heartbeat' | 'history'> = {
    connection: options.connection === undefined ? mongoose.connection : checkConnection(options.connection),
    collection:
      options.collection === undefined
        ? DEFAULTS.collection
        : checkCollectionName(options.collection, 'options.collection'),
    ttl,
    poll: options.poll === undefined ? DEFAULTS.poll : parseDuration(options.poll, 'options.poll'),
    owner,
    margin,
    commandTimeout:
      options.commandTimeout === undefined
        ? DEFAULTS.commandTimeout
        : parseDuration(options.commandTimeout, 'options.commandTimeout'),
    wakeups: booleanOption(options.wakeups, DEFAULTS.wakeups, 'options.wakeups'),
    cleanupAfter: retentionOption(options.cleanupAfter, DEFAULTS.cleanupAfter, 'options.cleanupAfter'),
    fair: booleanOption(options.fair, false, 'options.fair'),
  };
  const heartbeat =
    options.heartbeat === undefined
      ? defaultHeartbeat(ttl, margin)
      : heartbeatOption(options.heartbeat, 'options.heartbeat');
  const history = historyOption(options.history, settings.collection);
  const full = { ...settings, heartbeat, history };
  leaseTiming(full, {}, 'options'); // the manager's own defaults must make a valid lease
  return full;
}

/** A third of the ttl, or less with a wide margin: a renewal must leave one margin for its round trips. */
function defaultHeartbeat(ttl: number, margin: number): number {
  return Math.min(ttl / DEFAULTS.renewalsPerTtl, ttl * (1 - 2 * margin));
}

/** The timing of one lease: its own ttl/heartbeat, or the manager's. Throws if they cannot work. */
export function leaseTiming(
  settings: ManagerSettings,
  input: LeaseOptions | undefined,
  what = 'lease options',
): LeaseTiming {
  const options = checkObject(input, what);
  const ownTtl = options.ttl !== undefined;
  const ttl = ownTtl ? parseDuration(options.ttl, `${what}.ttl`) : settings.ttl;
  let heartbeat: number | false;
  if (options.heartbeat !== undefined) heartbeat = heartbeatOption(options.heartbeat, `${what}.heartbeat`);
  else if (ownTtl) heartbeat = settings.heartbeat === false ? false : defaultHeartbeat(ttl, settings.margin);
  else heartbeat = settings.heartbeat;
  const margin = ttl * settings.margin;
  // A renewal sent at the heartbeat must land, and be read back, before the local deadline (the
  // ttl less the margin): give its round trips at least one more margin of time.
  const latest = ttl - 2 * margin;
  if (heartbeat !== false && heartbeat > latest) {
    throw outOfRange(
      `${what}.heartbeat`,
      `at most the ttl less twice the safety margin (${latest} ms), or a renewal could not land before the lease counts as lost`,
      heartbeat,
    );
  }
  const fair = booleanOption(options.fair, settings.fair, `${what}.fair`);
  return { ttl, heartbeat, margin, interval: heartbeat === false ? ttl / 3 : heartbeat, fair };
}
