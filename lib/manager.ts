import { setMaxListeners } from 'node:events';
import { EventEmitter } from 'eventemitter3';
import { realClock } from './clock.js';
import { Election, type ElectionOptions } from './election.js';
import { prepend, safeEmit, type Listeners, type Prepended } from './emit.js';
import { acquireHeld, withExclusive } from './exclusive.js';
import { LockErrorCode, LockStateError, LockError, invalidType, outOfRange } from './errors.js';
import { Lease, type HeldLease, type LeaseContext, type LeaseEventArgs } from './lease.js';
import { waitPlan, type AcquireOptions } from './plan.js';
import {
  checkName,
  checkObject,
  leaseTiming,
  resolveManagerOptions,
  type LeaseOptions,
  type LockManagerOptions,
  type ManagerSettings,
} from './options.js';
import type { RunOnceOptions, RunOnceResult, RunRecord, RunsQuery, Run } from './runs.js';
import {
  Scheduling,
  type RunCoordinator,
  type ScheduleOptions,
  type ScheduledFunction,
  type ScheduledJob,
} from './schedule.js';
import {
  declareSemaphore,
  waitCounter,
  type Semaphore,
  type SemaphoreInfo,
  type SemaphoreOptions,
} from './semaphore.js';
import { semaphoreInfoProjection, type SemaphoreDocument } from './semaphore-commands.js';
import { SemaphoreStore, type SemaphoreHolder } from './semaphore-store.js';
import {
  declareReadWriteLock,
  permitStores,
  rwLockReader,
  rwWaiting,
  type ReadWriteLock,
  type ReadWriteLockInfo,
  type ReadWriteLockOptions,
  type RwLockReader,
} from './rwlock.js';
import { fairReleaseRwCommand, forceReleaseHoldersCommand } from './rwlock-commands.js';
import { setUp } from './setup.js';
import { ReleaseSignals } from './signals.js';
import { LockStore, type Grant } from './store.js';
import type { HistoryRecord, LockInfo } from './types.js';
import { Wakeups, grantKey } from './wakeups.js';
import { Watchdog } from './watchdog.js';

/** Options of {@link LockManager.acquire} and {@link LockManager.withLock}: a lease's and a wait's. */
export interface ManagerAcquireOptions extends LeaseOptions, AcquireOptions {}

/** Options of {@link LockManager.history}. */
export interface HistoryQuery {
  /** How many records at most. @defaultValue `100` */
  readonly limit?: number;
}

/** Options of {@link LockManager.tryAcquire}. */
export interface TryAcquireOptions extends LeaseOptions {
  readonly signal?: AbortSignal;
}

/** Options of {@link LockManager.list}. */
export interface ListOptions {
  /**
   * List every kind: the locks, then the semaphores, then the read-write locks, each by name and
   * each entry with its `kind`. Without it, `list()` lists the locks only, as {@link LockInfo}s.
   * @defaultValue `false`
   */
  readonly all?: boolean;
}

/** What `list({ all: true })` adds to every entry. */
export interface Queued {
  /** The live fair waiters queued in the document (see docs/fairness.md), from every process. */
  readonly queued: number;
}

/** One entry of `list({ all: true })`: a lock, a semaphore or a read-write lock, told apart by `kind`. */
export type ListedInfo =
  | (LockInfo & Queued & { readonly kind: 'lock' })
  | (SemaphoreInfo & Queued & { readonly kind: 'semaphore' })
  | (ReadWriteLockInfo & Queued & { readonly kind: 'rwlock' });

/** Options of {@link LockManager.forceRelease}. */
export interface ForceReleaseOptions {
  /** What `name` names: a lock, a semaphore or a read-write lock. @defaultValue `'lock'` */
  readonly kind?: 'lock' | 'semaphore' | 'rwlock';
  /**
   * A semaphore's or read-write lock's only hold whose fencing token this is (tokens of one
   * semaphore or read-write lock are all different); without it, every holder of it. Refused
   * for a lock, which has one holder.
   */
  readonly token?: number;
}

/** The argument lists of a lease's events as its manager re-emits them: the lease first. */
type ForwardedArgs = Prepended<LeaseEventArgs, Lease>;

/**
 * Events of a {@link LockManager}: every lease's events (see {@link LeaseEvents}), with the lease
 * first (`manager.on('acquired', (lease, event) => ...)`), and background errors.
 */
export interface LockManagerEvents extends Listeners<ForwardedArgs> {
  /**
   * A background failure (a heartbeat tick, a clean-up, a listener that threw, a passing outage
   * during a wait), with the lease concerned if there is one. Nothing is thrown from timers: without
   * an `error` listener these are reported once per kind through `process.emitWarning`.
   */
  error: (error: Error, lease?: Lease) => void;
}

/**
 * Holds many named leases on one MongoDB collection: creates them, renews and watches the
 * held ones with one watchdog loop, relays their events, and releases them all on `close()`.
 */
export class LockManager extends EventEmitter<LockManagerEvents> {
  readonly #settings: ManagerSettings;
  readonly #store: LockStore;
  readonly #semaphores: SemaphoreStore;
  readonly #rwlocks: SemaphoreStore;
  readonly #readRwLocks: RwLockReader;
  readonly #watchdog: Watchdog;
  readonly #wakeups: Wakeups;
  readonly #signals: ReleaseSignals | undefined;
  readonly #closing = new AbortController();
  readonly #held = new Set<Lease>();
  readonly #pending = new Set<Promise<unknown>>();
  readonly #warned = new Set<string>();
  readonly #context: LeaseContext;
  readonly #ready: Promise<void>;
  #closed: Promise<void> | undefined;
  /** Scheduled jobs, runOnce, runs() and the run coordinator: made on first use. */
  #scheduling: Scheduling | undefined;

  constructor(options?: LockManagerOptions) {
    super();
    this.#settings = resolveManagerOptions(options);
    // Every wait listens to this one signal: many concurrent waits are normal, not a leak.
    setMaxListeners(0, this.#closing.signal);
    const settings = this.#settings;
    this.#store = new LockStore(settings.connection, settings.collection, settings.commandTimeout, {
      history: settings.history.enabled ? settings.history.collection : undefined,
      report: (error) => this.#report(error),
      track: (work) => void this.#track(work),
    });
    const store = this.#store;
    this.#semaphores = new SemaphoreStore(store, `${settings.collection}.semaphores`, settings.commandTimeout);
    const semaphores = this.#semaphores;
    this.#rwlocks = new SemaphoreStore(
      store,
      `${settings.collection}.rwlocks`,
      settings.commandTimeout,
      fairReleaseRwCommand,
    );
    this.#readRwLocks = rwLockReader(store, this.#rwlocks.collectionName, settings.commandTimeout);
    this.#watchdog = new Watchdog(
      {
        renew: (h, t) => store.renew(h, t),
        read: (n, t) => store.read(n, t),
        renewQueued: (w, t) => store.renewQueued(w, t),
        permits: permitStores(semaphores, this.#rwlocks),
      },
      (error) => this.#report(error),
    );
    const signals = settings.wakeups
      ? new ReleaseSignals(
          this.#store,
          settings.collection,
          (name, grant) => this.#wakeups.wake(name, grant),
          (error) => this.#report(error),
        )
      : undefined;
    this.#signals = signals;
    this.#wakeups = new Wakeups((watching) => signals?.demand(watching));
    this.#context = {
      settings,
      store: this.#store,
      clock: realClock,
      closing: this.#closing.signal,
      host: {
        held: (lease, hold, isHeld) => {
          if (isHeld) {
            this.#held.add(lease);
            this.#watchdog.add(hold);
          } else {
            this.#watchdog.remove(hold);
            this.#held.delete(lease);
          }
        },
        waiting: (wait, isWaiting) => (isWaiting ? this.#watchdog.addWait(wait) : this.#watchdog.removeWait(wait)),
        settled: () => this.#watchdog.idle(),
        watch: (name) => this.#wakeups.watch(name),
        pending: (work) => this.#track(work),
        freed: (name, contended, grant) => this.#freed(name, contended, grant),
        forward: (event, lease, args) => this.#forward(event, lease, args),
        report: (error, lease) => this.#report(error, lease),
      },
    };
    this.#ready = this.#track(setUp(this.#store, settings, (error) => this.#report(error), this.#closing.signal));
  }

  /**
   * Resolves once the manager's set-up is done: its indexes checked and made (the clean-up TTL
   * index, the history's), and holds whose holder crashed long ago freed for clean-up. It starts
   * when the manager is created, or when its connection opens. Never rejects: locks work without
   * it, so a failure (no createIndex privilege, say) goes to the `error` event and the rest goes on.
   */
  get ready(): Promise<void> {
    return this.#ready;
  }

  /** The owner string stored on locks this manager takes. */
  get owner(): string {
    return this.#settings.owner;
  }

  /** The lock collection's name. */
  get collectionName(): string {
    return this.#settings.collection;
  }

  /** True once `close()` has been called. */
  get closed(): boolean {
    return this.#closing.signal.aborted;
  }

  /** Leases of this manager that hold their lock now. */
  get heldLeases(): readonly Lease[] {
    return [...this.#held];
  }

  /**
   * A new, independent contender for the lock `name` (not yet acquiring). Throws a TypeError or
   * RangeError on a bad name or options, and a LockStateError once the manager is closed.
   */
  lease(name: string, options?: LeaseOptions): Lease {
    this.#checkOpen();
    return new Lease(checkName(name), leaseTiming(this.#settings, options), this.#context);
  }

  /**
   * A counting semaphore `name` with `limit` permits (at most `limit` holders at once, across
   * processes): see {@link Semaphore} and docs/semaphores.md. Each permit is a lease with the
   * given `ttl` and `heartbeat` (the manager's by default). Throws a TypeError or RangeError on a
   * bad name or options, and a LockStateError once the manager is closed.
   */
  semaphore(name: string, options: SemaphoreOptions): Semaphore {
    this.#checkOpen();
    return declareSemaphore(name, options, this.#settings, this.#context, this.#semaphores);
  }

  /**
   * A read-write lock `name`: many readers or one writer at once (across processes), a waiting
   * writer blocking new readers; see {@link ReadWriteLock} and docs/semaphores.md. Each hold is a
   * lease with the given `ttl` and `heartbeat` (the manager's by default). Throws a TypeError or
   * RangeError on a bad name or options, and a LockStateError once the manager is closed.
   */
  readWriteLock(name: string, options?: ReadWriteLockOptions): ReadWriteLock {
    this.#checkOpen();
    return declareReadWriteLock(name, options, this.#settings, this.#context, this.#rwlocks, this.#readRwLocks);
  }

  /**
   * Starts campaigning for the leadership of `name` at once, and for as long as the returned
   * {@link Election} is open: see its `elected` and `revoked` events and `leading(fn)`. The
   * leadership lease has its own `ttl` and `heartbeat` if given (a heartbeat is required).
   */
  elect(name: string, options?: ElectionOptions): Election {
    this.#checkOpen();
    // Its lease is a lock's, named an election's for telemetry.
    const context: LeaseContext = { ...this.#context, kind: 'election' };
    const lease = new Lease(checkName(name), leaseTiming(this.#settings, options), context);
    const { connection, collection } = this.#settings;
    return new Election(lease, {
      closing: this.#closing.signal,
      report: (error) => this.#report(error, lease),
      key: () => JSON.stringify([connection.host, connection.port, connection.name, collection, lease.name]),
      inspect: () => this.inspect(lease.name),
    });
  }

  /**
   * Resolves a held lease on `name`, waiting as long as it takes by default (`wait: Infinity`);
   * with `wait: '10s'` rejects with a LockTimeoutError after that long. Never resolves a lease
   * that does not hold the lock.
   */
  acquire(name: string, options?: ManagerAcquireOptions): Promise<HeldLease> {
    const { lease, plan } = this.#prepare(name, options, Infinity);
    return acquireHeld(lease, plan);
  }

  /**
   * A held lease on `name` after one attempt, or `null` if someone else holds it (or the answer
   * came too late to use). One attempt always: `wait` and `strategy` are refused (TypeError).
   */
  tryAcquire(name: string, options?: TryAcquireOptions): Promise<HeldLease | null> {
    const opts: Partial<ManagerAcquireOptions> = checkObject(options, 'options');
    for (const key of ['wait', 'strategy'] as const) {
      if (opts[key] !== undefined) {
        const why = 'absent: tryAcquire() makes one attempt (use acquire() to wait)';
        throw invalidType(`tryAcquire() options.${key}`, why, opts[key]);
      }
    }
    const { lease, plan } = this.#prepare(name, opts, undefined);
    return lease.acquirePlanned(plan).then((held) => (held ? (lease as HeldLease) : null));
  }

  /**
   * Runs `fn` while holding `name` and always releases afterwards, also when `fn` throws. `fn`
   * gets the held lease: pass `lease.signal` to the work, and `lease.token` to fenced resources.
   * `fn` is never called without the lock. Waits like {@link acquire}. If the hold ended before
   * `fn` settled (lost, ran out, or the manager closed), or the final release finds that the lock
   * was no longer ours, `withLock` rejects (with the LeaseLostError, the LockTimeoutError, or a
   * LockStateError `closed`) even if `fn` resolved: its work was not exclusive to the end.
   */
  withLock<T>(name: string, fn: (lease: HeldLease) => T | Promise<T>, options?: ManagerAcquireOptions): Promise<T> {
    if (typeof fn !== 'function') throw invalidType('withLock(name, fn): fn', 'a function', fn);
    const { lease, plan } = this.#prepare(name, options, Infinity);
    return withExclusive(lease, plan, fn, (error) => this.#report(error, lease));
  }

  /** The lock `name` as stored, or `null` if it has no document; `held` is judged by the server's clock. */
  inspect(name: string): Promise<LockInfo | null> {
    const checked = checkName(name);
    return this.#whenOpen(() => this.#store.inspect(checked));
  }

  /**
   * Every lock in the collection, by name. With `{ all: true }`, also every semaphore (its stored
   * limit and live holders) and read-write lock (live readers and writer, a waiting writer's
   * marker), each entry with its `kind`; `waiting` counts this manager's waits, as `inspect()` does.
   */
  list(): Promise<LockInfo[]>;
  list(options: ListOptions & { readonly all: true }): Promise<ListedInfo[]>;
  list(options?: ListOptions): Promise<LockInfo[] | ListedInfo[]>;
  list(options?: ListOptions): Promise<LockInfo[] | ListedInfo[]> {
    const { all = false } = checkObject(options, 'list() options') as ListOptions;
    if (typeof all !== 'boolean') throw invalidType('list() options.all', 'a boolean', all);
    if (!all) return this.#whenOpen(() => this.#store.list());
    return this.#whenOpen(async () => {
      const [locks, semaphores, rwlocks] = await Promise.all([
        this.#store.list({ queued: true }),
        this.#listSemaphores(),
        this.#readRwLocks(),
      ]);
      return [
        ...locks.map((info) => ({ kind: 'lock' as const, ...info, queued: info.queued ?? 0 })),
        ...semaphores,
        ...rwlocks.map((info) => ({ kind: 'rwlock' as const, ...info, waiting: rwWaiting(this.#context, info.name) })),
      ];
    });
  }

  /** Every semaphore with a stored limit, by name, as `list({ all: true })` shows it. */
  async #listSemaphores(): Promise<ListedInfo[]> {
    type Read = { _id: string; limit?: unknown; holders: SemaphoreHolder[]; waiting: number };
    const docs = await this.#store.run<Read[], SemaphoreDocument>(
      'list semaphores',
      (c) =>
        c
          .find({}, { projection: { ...semaphoreInfoProjection, _id: 1 }, maxTimeMS: this.#settings.commandTimeout })
          .sort({ _id: 1 })
          .toArray() as unknown as Promise<Read[]>,
      { collection: this.#semaphores.collectionName },
    );
    // A document without a limit yet (a creation in progress) has no holders either.
    return docs.flatMap(({ _id: name, limit, holders, waiting: queued }) =>
      typeof limit === 'number'
        ? [
            {
              kind: 'semaphore' as const,
              name,
              limit,
              holders: holders.map((h) => ({ ...h, token: Number(h.token) })).sort((a, b) => a.token - b.token),
              waiting: waitCounter(this.#context, name).count,
              queued,
            },
          ]
        : [],
    );
  }

  /**
   * The last recorded holds of `name`, newest first: who held it, with which token, from when to
   * when, and how each hold ended (`released`, `expired`, or `taken`). Managers with the
   * `history` option write these records; any manager can read them.
   */
  history(name: string, options?: HistoryQuery): Promise<HistoryRecord[]> {
    const checked = checkName(name);
    const { limit = 100 } = checkObject(options, 'history options') as HistoryQuery;
    if (typeof limit !== 'number') throw invalidType('history options.limit', 'a whole number', limit);
    if (!Number.isInteger(limit) || limit < 1)
      throw outOfRange('history options.limit', 'a whole number of at least 1', limit);
    return this.#whenOpen(() => this.#store.history(this.#settings.history.collection, checked, limit));
  }

  /**
   * Frees the lock `name` whoever holds it (for operators, like `mdlock release --force`).
   * The holder's watchdog then emits `lost`. Resolves whether a live hold was ended. With
   * `{ kind: 'semaphore' }` or `{ kind: 'rwlock' }`, frees every holder of that semaphore or
   * read-write lock instead, or with `token` only the hold with that fencing token.
   */
  forceRelease(name: string, options?: ForceReleaseOptions): Promise<boolean> {
    const checked = checkName(name);
    const { kind = 'lock', token } = checkObject(options, 'forceRelease() options') as ForceReleaseOptions;
    if (kind !== 'lock' && kind !== 'semaphore' && kind !== 'rwlock')
      throw invalidType('forceRelease() options.kind', "'lock', 'semaphore' or 'rwlock'", kind);
    if (token !== undefined) {
      if (kind === 'lock')
        throw invalidType(
          'forceRelease() options.token',
          "absent for a lock (one holder): kind 'semaphore' or 'rwlock'",
          token,
        );
      if (typeof token !== 'number') throw invalidType('forceRelease() options.token', 'a fencing token', token);
      if (!Number.isSafeInteger(token) || token < 1)
        throw outOfRange('forceRelease() options.token', 'a whole number of at least 1', token);
    }
    if (kind !== 'lock') return this.#whenOpen(() => this.#forceReleaseHolders(kind, checked, token));
    return this.#whenOpen(async () => {
      const { outcome, contended } = await this.#store.forceRelease(checked);
      if (outcome === 'released') await this.#freed(checked, contended);
      return outcome === 'released';
    });
  }

  /** Frees a semaphore's or read-write lock's holders (all, or the one with `token`), and wakes its waiters. */
  async #forceReleaseHolders(kind: 'semaphore' | 'rwlock', name: string, token: number | undefined) {
    const collection = (kind === 'semaphore' ? this.#semaphores : this.#rwlocks).collectionName;
    const { filter, update, options } = forceReleaseHoldersCommand(name, token, this.#settings.commandTimeout);
    const before = (await this.#store.run(
      `forceRelease("${name}", { kind: '${kind}' })`,
      (c) => c.findOneAndUpdate(filter, update, options),
      { collection },
    )) as { ended?: unknown[]; contended?: boolean } | null;
    const released = (before?.ended?.length ?? 0) > 0;
    // The wake-up key of the semaphore's or read-write lock's waits (see permitContext and holdContext).
    if (released) await this.#freed(`${kind}:${name}`, before?.contended === true);
    return released;
  }

  /**
   * Runs `fn` at each tick of the cron `pattern`, once per tick across every process that declares
   * the same schedule (on the same collection): see docs/scheduling.md. Needs croner (an optional
   * peer dependency). Throws a TypeError or RangeError on a bad name, pattern, function or option.
   */
  schedule(name: string, pattern: string, fn: ScheduledFunction, options?: ScheduleOptions): ScheduledJob {
    this.#checkOpen();
    return this.#jobs().schedule(name, pattern, fn, options);
  }

  /**
   * Runs the tick `scheduledAt` of `name` here unless it is done, or running or settled elsewhere:
   * `{ ran: true, result }`, or `{ ran: false, outcome }`. At most once per tick across processes.
   */
  runOnce<T>(
    name: string,
    scheduledAt: Date,
    fn: (run: Run) => T | Promise<T>,
    options?: RunOnceOptions,
  ): Promise<RunOnceResult<T>> {
    return this.#track(this.#jobs().runOnce(name, scheduledAt, fn, options));
  }

  /** The records of the last ticks of the schedule `name`, newest first. */
  runs(name: string, options?: RunsQuery): Promise<RunRecord[]> {
    return this.#whenOpen(this.#jobs().runsQuery(name, options));
  }

  /** A run coordinator for node-cron 4.6+: `cron.setRunCoordinator(locks.runCoordinator())`. */
  runCoordinator(): RunCoordinator {
    this.#checkOpen();
    return this.#jobs().runCoordinator();
  }

  #jobs(): Scheduling {
    const { connection, collection, commandTimeout, ttl } = this.#settings;
    return (this.#scheduling ??= new Scheduling({
      manager: this,
      connection,
      collection: `${collection}.runs`,
      commandTimeout,
      ttl,
      report: (error) => this.#report(error),
    }));
  }

  /**
   * Stops the watchdog, rejects pending waits with a LockStateError `closed`, releases every held
   * lease (each emits `released`; a `withLock` in progress rejects with code `closed`), and gives
   * back what acquisitions in flight got. Returns within about `commandTimeout` whatever the server
   * does: what has not been answered by then is left to expire at its ttl (and reported on the
   * `error` event). Later calls reject with a LockStateError `closed`; closing twice is safe. The
   * mongoose connection stays open: it is the application's.
   */
  close(): Promise<void> {
    return (this.#closed ??= this.#close());
  }

  async #close(): Promise<void> {
    // Schedules stop first: no more ticks; runs in progress end, or abort with their leases below.
    if (this.#scheduling) void this.#track(this.#scheduling.close());
    this.#closing.abort(new LockStateError(LockErrorCode.Closed, 'the lock manager is closed'));
    const budget = this.#settings.commandTimeout;
    let timer: NodeJS.Timeout | undefined;
    const timeUp = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), budget)));
    try {
      if ((await Promise.race([this.#drain(), timeUp])) === 'late') {
        this.#report(
          new LockError(
            LockErrorCode.Connection,
            `close(): MongoDB did not answer within ${budget} ms; the holds not given back yet expire at their ttl`,
          ),
        );
      }
    } finally {
      clearTimeout(timer);
      this.#watchdog.stop();
    }
  }

  /** Everything close() waits for: the releases, the acquisitions in flight and their give-backs, the signals. */
  async #drain(): Promise<'done'> {
    // Settled (never rejected) at once: a release failing while we wait for the tick must not
    // become an unhandled rejection.
    const releases = Promise.allSettled([...this.#held].map((lease) => lease.closeRelease()));
    this.#watchdog.stop();
    await this.#watchdog.idle(); // a tick in flight sends its last command before close() resolves
    for (const result of await releases) {
      if (result.status === 'rejected') this.#report(result.reason);
    }
    // Acquisitions that land now give back what they got, and releases signal waiters elsewhere:
    // wait for those too, and for whatever they start in turn.
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
    await this.#signals?.close();
    return 'done';
  }

  /**
   * `name` was freed here: its waiters in this manager try again now, and others are told if any
   * waited. `grant`: a fair release handed it to a waiter (here or elsewhere), which is told so.
   */
  async #freed(name: string, contended: boolean, grant?: Grant): Promise<void> {
    const signal = grant && { to: grantKey(grant.leaseId), token: grant.token, expiresAt: grant.expiresAt };
    this.#wakeups.wake(name, signal);
    if (contended && this.#signals)
      await this.#track(this.#signals.publish(name, signal)).catch((error: unknown) => this.#report(error));
  }

  /** Checks the arguments (throwing at once); a closed manager is left to the lease, which rejects. */
  #prepare(name: string, options: ManagerAcquireOptions | TryAcquireOptions | undefined, wait: number | undefined) {
    // Options whose value is undefined are left out here, so they cannot replace the default wait.
    const { ttl, heartbeat, fair, ...acquire } = checkObject(options, 'options');
    const plan = waitPlan({ wait, ...acquire }, this.#settings.poll, 'options');
    const lease = new Lease(
      checkName(name),
      leaseTiming(this.#settings, { ttl, heartbeat, fair }, 'options'),
      this.#context,
    );
    return { lease, plan };
  }

  #checkOpen(): void {
    this.#closing.signal.throwIfAborted();
  }

  async #whenOpen<T>(work: () => Promise<T>): Promise<T> {
    this.#checkOpen();
    return this.#track(work());
  }

  #track<T>(work: Promise<T>): Promise<T> {
    this.#pending.add(work);
    const forget = () => this.#pending.delete(work);
    work.then(forget, forget);
    return work;
  }

  /** Re-emits a lease's event with the lease first; a listener that throws is reported. */
  #forward<E extends keyof LeaseEventArgs>(event: E, lease: Lease, args: LeaseEventArgs[E]): void {
    const forwarded = prepend<LeaseEventArgs, E, Lease>(lease, args);
    safeEmit<ForwardedArgs, E>(this, event, forwarded, (error) => this.#report(error, lease));
  }

  #report(error: unknown, lease?: Lease): void {
    const err = error instanceof Error ? error : new Error(String(error));
    if (this.listenerCount('error') === 0) {
      const kind = (err as { code?: string }).code ?? err.name;
      if (!this.#warned.has(kind)) {
        this.#warned.add(kind);
        process.emitWarning(
          `${err.message} (further "${kind}" errors are not shown: listen to the manager's 'error' event)`,
          'LockManagerWarning',
        );
      }
      return;
    }
    try {
      this.emit('error', err, lease);
    } catch {
      // An 'error' listener that throws has nowhere left to report to.
    }
  }
}
