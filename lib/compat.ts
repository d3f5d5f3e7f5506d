import { EventEmitter } from 'eventemitter3';
import type { Connection } from 'mongoose';
import { parseDuration, type Duration } from './duration.js';
import { LockErrorCode, LockStateError, LockTimeoutError, invalidType, outOfRange } from './errors.js';
import type { Lease, LeaseEvents } from './lease.js';
import { LockManager } from './manager.js';
import { checkName, checkObject, resolveManagerOptions, type LockManagerOptions } from './options.js';
import { strategies, type PollStrategy } from './strategies.js';
import { DEFAULTS } from './defaults.js';

/**
 * Options of {@link Lock}: those of mongoose-distributed-lock 0.0.1 (`timeout`, `pollInterval`),
 * `probeMaxAttempts`, and the manager options that apply to locks of that API.
 */
export interface CompatLockOptions extends Pick<
  LockManagerOptions,
  'connection' | 'collection' | 'owner' | 'commandTimeout' | 'cleanupAfter' | 'history'
> {
  /** How long a hold lasts (there is no renewal): milliseconds, or an `ms` string. @defaultValue `60000` */
  readonly timeout?: Duration;
  /** How often `pollAcquire` tries: milliseconds, or an `ms` string. @defaultValue `500` */
  readonly pollInterval?: Duration;
  /** How many tries `pollAcquire` makes in all; `Infinity`: until it gets the lock. @defaultValue `timeout / pollInterval + 2` */
  readonly probeMaxAttempts?: number;
}

/** A Node-style callback of the 0.0.1 API: `(err, result)`, with `err` null on success. */
export type LockCallback<T> = (error: Error | null, result?: T) => void;

/**
 * How far before its server-side expiry a hold of this API counts as over locally (it then emits
 * `timeout` and is freed), as a fraction of `timeout`: the library's default, a tenth.
 *
 * The hold's end is a timer set `timeout - margin` ms after the try was sent (so before the server
 * granted the hold). A timer fires late, by a few ms on an idle machine and by tens of ms on a
 * busy one (garbage collection, a long synchronous callback), and whoever reacts to `timeout` also
 * needs its next command to reach the server in time. A margin smaller than that lateness (0.0.1's
 * semantics would ask for none, and a thousandth of `timeout` was tried: 1 ms on a 1 s lock) lets
 * `timeout` fire after the server has already freed the lock, when someone else may hold it: the
 * holder's view would outlast the server's. A tenth covers 100 ms of lateness on a 1 s lock and
 * 6 s on the default minute, and every lock of this API can still share one manager (the margin
 * is a manager option, a fraction of each lease's ttl). Locks of a few hundred ms get
 * proportionally less: 30 ms on a 300 ms lock.
 */
const COMPAT_MARGIN = DEFAULTS.margin;

/** The manager options Lock instances share a manager by. */
type SharedOptions = Omit<CompatLockOptions, 'timeout' | 'pollInterval' | 'probeMaxAttempts'>;

/** One manager per connection and set of manager options, shared by every Lock made with them. */
const sharedManagers = new WeakMap<Connection, Map<string, LockManager>>();

function sharedManager(options: SharedOptions): LockManager {
  const managerOptions: LockManagerOptions = { ...options, heartbeat: false, margin: COMPAT_MARGIN };
  const settings = resolveManagerOptions(managerOptions);
  const { collection, owner, commandTimeout, cleanupAfter, history } = settings;
  const key = JSON.stringify([collection, owner, commandTimeout, cleanupAfter, history]);
  let managers = sharedManagers.get(settings.connection);
  if (!managers) sharedManagers.set(settings.connection, (managers = new Map<string, LockManager>()));
  let manager = managers.get(key);
  if (!manager || manager.closed) {
    manager = new LockManager(managerOptions);
    managers.set(key, manager);
  }
  return manager;
}

/**
 * pollAcquire's schedule, as 0.0.1 had it: a try every `interval` ms, `maxAttempts` tries in all
 * (a fractional count is rounded up, `Infinity` never ends). A waiting lease also tries at once
 * when the lock is released or when the expiry its last try saw comes round; such a try counts
 * like any other, so `maxAttempts` bounds the tries whatever starts them. (Not counting early
 * tries let a holder that renews before its expiry, a lease with heartbeat, wake the poller at
 * each expiry it saw, so that it never ran out of tries while that holder lived.) The wait is at
 * most `(maxAttempts - 1) × interval` ms plus the tries' round trips, and shorter when woken early.
 */
export function pollSchedule(interval: number, maxAttempts: number): PollStrategy {
  if (maxAttempts === Infinity) return strategies.infinite({ interval });
  return strategies.bounded({ interval, attempts: Math.ceil(maxAttempts) });
}

function checkCallback<T>(callback: unknown, what: string): LockCallback<T> | undefined {
  if (callback !== undefined && typeof callback !== 'function') throw invalidType(what, 'a function', callback);
  return callback as LockCallback<T> | undefined;
}

/**
 * Hands `work`'s outcome to `callback` if there is one (on a later tick, outside any promise
 * chain, so a callback that throws is an uncaught exception as in 0.0.1, not a rejection), and
 * otherwise returns the promise. A timed-out `pollAcquire` calls back `(err, false)`, as 0.0.1 did.
 */
function settle<T>(work: Promise<T>, callback: LockCallback<T> | undefined): Promise<T> | undefined {
  if (!callback) return work;
  work.then(
    (result) => process.nextTick(callback, null, result),
    (error: Error) =>
      error instanceof LockTimeoutError ? process.nextTick(callback, error, false) : process.nextTick(callback, error),
  );
  return undefined;
}

function positiveCount(value: unknown, what: string): number {
  if (typeof value !== 'number') throw invalidType(what, 'a number (or Infinity)', value);
  if (!(value > 0)) throw outOfRange(what, 'above 0', value);
  return value;
}

/**
 * A lock of the mongoose-distributed-lock 0.0.1 API, made by {@link Lock}: callbacks (or
 * promises), `acquire`, `pollAcquire` (also spelled `pollAquire`), `release`, and properties
 * that can be changed between calls. A thin layer over a {@link Lease}: one atomic command per
 * try, judged by the server's clock, a fencing token per hold, no heartbeat (a hold lasts
 * `timeout`), and the manager's watchdog re-reading the lock while held.
 *
 * Events (as a lease's, see {@link LeaseEvents}): `acquired`, `released`, `timeout` (a hold ran
 * out, or `pollAcquire` gave up), `lost` (the lock was taken, for example by `forceAcquire`).
 */
export class CompatLock extends EventEmitter<LeaseEvents> {
  readonly #manager: LockManager;
  #name: string;
  #timeout: number;
  #pollInterval: number;
  #probeMaxAttempts: number | undefined;
  #lockId: string | null = null;
  #timeAquired: number | null = null;
  /** The lease of the current hold (or of the last, until it is released). */
  #lease: Lease | undefined;
  #acquiring = false;

  /** Use {@link Lock}. */
  constructor(name: string, options?: CompatLockOptions) {
    super();
    this.#name = checkName(name, 'Lock(name, options): name');
    const { timeout, pollInterval, probeMaxAttempts, ...shared } = checkObject(options, 'Lock(name, options): options');
    this.#timeout = timeout === undefined ? DEFAULTS.compat.timeout : parseDuration(timeout, 'options.timeout');
    this.#pollInterval =
      pollInterval === undefined ? DEFAULTS.compat.pollInterval : parseDuration(pollInterval, 'options.pollInterval');
    if (probeMaxAttempts !== undefined)
      this.#probeMaxAttempts = positiveCount(probeMaxAttempts, 'options.probeMaxAttempts');
    this.#manager = sharedManager(shared);
  }

  /** The lock's name. Changing it applies from the next acquisition; a held lock is released under its old name. */
  get name(): string {
    return this.#name;
  }

  set name(value: string) {
    this.#name = checkName(value, 'lock.name');
  }

  /**
   * Set while this instance holds the lock (from acquisition until `release()`, even if the hold
   * timed out meanwhile): the fencing token of the hold, as a string; otherwise `null`. Setting it
   * to `null` makes the instance forget a hold (which then lasts until its timeout).
   */
  get lockId(): string | null {
    return this.#lockId;
  }

  set lockId(value: string | null) {
    if (value !== null && typeof value !== 'string') throw invalidType('lock.lockId', 'a string or null', value);
    if (value !== this.#lockId) this.#lease = undefined;
    this.#lockId = value;
  }

  /** When (`Date.now()`) this instance acquired its current hold, or `null`. */
  get timeAquired(): number | null {
    return this.#timeAquired;
  }

  /** How long a hold lasts, in ms; a change applies from the next acquisition. */
  get timeout(): number {
    return this.#timeout;
  }

  set timeout(value: Duration) {
    this.#timeout = parseDuration(value, 'lock.timeout');
  }

  /** How often `pollAcquire` tries, in ms; a change applies from the next `pollAcquire`. */
  get pollInterval(): number {
    return this.#pollInterval;
  }

  set pollInterval(value: Duration) {
    this.#pollInterval = parseDuration(value, 'lock.pollInterval');
  }

  /**
   * How many tries `pollAcquire` makes: `timeout / pollInterval + 2` (so that a hold that times
   * out can still be taken at the last moment), following both, unless set (`Infinity`: no end).
   */
  get probeMaxAttempts(): number {
    return this.#probeMaxAttempts ?? this.#timeout / this.#pollInterval + 2;
  }

  set probeMaxAttempts(value: number) {
    this.#probeMaxAttempts = positiveCount(value, 'lock.probeMaxAttempts');
  }

  /** The manager this lock's holds belong to, shared with every Lock of the same connection and manager options. */
  get manager(): LockManager {
    return this.#manager;
  }

  /**
   * One try: `callback(null, true)` if this instance holds the lock now, `(null, false)` if
   * someone else does; error `lock_already_aquired` (a LockStateError) if this instance holds it
   * and has not released it. Without a callback, returns a promise of the same result.
   */
  acquire(): Promise<boolean>;
  acquire(callback: LockCallback<boolean>): void;
  acquire(callback?: LockCallback<boolean>): Promise<boolean> | undefined {
    const checked = checkCallback<boolean>(callback, 'acquire(callback): callback');
    return settle(
      this.#take((lease) => lease.acquire()),
      checked,
    );
  }

  /**
   * Tries every `pollInterval` ms, `probeMaxAttempts` tries at most: `callback(null, true)` once
   * held; error `timeout in pollAquire for lock name <name>` (a LockTimeoutError, with result
   * `false`) when the tries run out; `lock_already_aquired` as for `acquire`.
   */
  pollAcquire(): Promise<boolean>;
  pollAcquire(callback: LockCallback<boolean>): void;
  pollAcquire(callback?: LockCallback<boolean>): Promise<boolean> | undefined {
    const checked = checkCallback<boolean>(callback, 'pollAcquire(callback): callback');
    const name = this.#name;
    const strategy = pollSchedule(this.#pollInterval, this.probeMaxAttempts);
    const polled = this.#take((lease) => lease.acquire({ strategy })).catch((error: unknown) => {
      if (!(error instanceof LockTimeoutError)) throw error;
      throw new LockTimeoutError(name, 'acquire', `timeout in pollAquire for lock name ${name}`, { cause: error });
    });
    return settle(polled, checked);
  }

  /** {@link pollAcquire} as 0.0.1's code spelled it. */
  pollAquire(): Promise<boolean>;
  pollAquire(callback: LockCallback<boolean>): void;
  pollAquire(callback?: LockCallback<boolean>): Promise<boolean> | undefined {
    if (callback === undefined) return this.pollAcquire();
    this.pollAcquire(callback);
    return undefined;
  }

  /**
   * Takes the lock whatever its state (`callback(null, true)`); the previous holder's watchdog
   * then emits `lost` with reason `taken`. Error `lock_already_aquired` as for `acquire`, and a
   * LockError with code `connection` if the server's answer came after the hold's end (a
   * `timeout` near or below a round trip): never `(null, false)`, which 0.0.1 could not return.
   */
  forceAcquire(): Promise<true>;
  forceAcquire(callback: LockCallback<true>): void;
  forceAcquire(callback?: LockCallback<true>): Promise<true> | undefined {
    const checked = checkCallback<true>(callback, 'forceAcquire(callback): callback');
    return settle(this.#take((lease) => lease.forceAcquire()) as Promise<true>, checked);
  }

  /**
   * Frees the lock: `callback(null, false)` if it was still this instance's, `(null, true)` if the
   * hold had timed out (or been taken) before, in which case another holder probably has it now.
   * Error `releasing_not_aquired_lock` (a LockStateError) if this instance has not acquired it.
   */
  release(): Promise<boolean>;
  release(callback: LockCallback<boolean>): void;
  release(callback?: LockCallback<boolean>): Promise<boolean> | undefined {
    const checked = checkCallback<boolean>(callback, 'release(callback): callback');
    return settle(this.#release(), checked);
  }

  async #take(attempt: (lease: Lease) => Promise<boolean>): Promise<boolean> {
    if (this.#lockId || this.#acquiring)
      throw new LockStateError(LockErrorCode.AlreadyAcquired, 'lock_already_aquired');
    this.#acquiring = true;
    try {
      const lease = this.#newLease();
      const held = await attempt(lease);
      if (held) {
        this.#lease = lease;
        this.#lockId = String(lease.token);
        this.#timeAquired = Date.now();
      }
      return held;
    } finally {
      this.#acquiring = false;
    }
  }

  /** A lease on the current name, lasting the current timeout, whose events this lock re-emits. */
  #newLease(): Lease {
    const lease = this.#manager.lease(this.#name, { ttl: this.#timeout, heartbeat: false });
    lease.on('acquired', (event) => this.emit('acquired', event));
    lease.on('released', (event) => this.emit('released', event));
    lease.on('timeout', (event) => this.emit('timeout', event));
    lease.on('lost', (error) => this.emit('lost', error));
    return lease;
  }

  /** Resolves whether the hold had timed out (0.0.1's `lockTimeouted`). */
  async #release(): Promise<boolean> {
    if (!this.#lockId) throw new LockStateError(LockErrorCode.NotAcquired, 'releasing_not_aquired_lock');
    let timedOut = true;
    try {
      if (this.#lease) timedOut = !(await this.#lease.release());
    } catch (error) {
      // Nothing left to free: the hold ended and was given up before (or a release already ran).
      if (!(error instanceof LockStateError && error.code === LockErrorCode.NotAcquired)) throw error;
    }
    this.#lockId = null;
    this.#timeAquired = null;
    this.#lease = undefined;
    return timedOut;
  }
}

/**
 * `Lock(name, options)`: a lock of the mongoose-distributed-lock 0.0.1 API (the package's default
 * export, and what `require('mongoose-distributed-lock')` returns). See {@link CompatLock}.
 * Locks made with the same connection (by default `mongoose.connection`) and the same manager
 * options share one {@link LockManager}, `lock.manager`. Throws a TypeError or RangeError on a
 * bad name or option.
 */
export default function Lock(name: string, options?: CompatLockOptions): CompatLock {
  return new CompatLock(name, options);
}
