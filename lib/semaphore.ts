// Counting semaphores: at most `limit` holders of one name at once, each holding a permit that is
// a Lease (events, signal, fencing token, renewal by the manager's watchdog). See docs/semaphores.md.
import { invalidType, LockErrorCode, LockStateError, outOfRange } from './errors.js';
import { acquireHeld, withExclusive } from './exclusive.js';
import { Lease, type HeldLease, type LeaseContext } from './lease.js';
import {
  checkName,
  checkObject,
  leaseTiming,
  type LeaseOptions,
  type LeaseTiming,
  type ManagerSettings,
} from './options.js';
import { waitPlan, type AcquireOptions, type WaitPlan } from './plan.js';
import type { SemaphoreHolder, SemaphoreStore } from './semaphore-store.js';

export type { SemaphoreHolder } from './semaphore-store.js';

/** The largest `limit`: every permit of a semaphore is one entry of its document. */
const MAX_LIMIT = 10_000;

/** Options of {@link LockManager.semaphore}: how many permits, and a permit's ttl and heartbeat. */
export interface SemaphoreOptions extends LeaseOptions {
  /**
   * How many holders at most at once: a whole number from 1 to 10,000. Every declaration of the
   * semaphore (in any process) must give the same limit; the first acquisition stores it.
   */
  readonly limit: number;
}

/** Options of {@link Semaphore.tryAcquire}: one attempt, so no `wait` or `strategy`. */
export interface TryPermitOptions {
  readonly signal?: AbortSignal;
}

/** What {@link Semaphore.inspect} says. */
export interface SemaphoreInfo {
  readonly name: string;
  /** The limit as stored (this declaration's if the semaphore has no document yet). */
  readonly limit: number;
  /** The live holders by the server's clock, by token. */
  readonly holders: readonly SemaphoreHolder[];
  /**
   * Without `fair`: acquisitions of this semaphore (`acquire()`, `withPermit()`) waiting in this
   * manager, through any of its declarations; other processes' waits are not recorded. With
   * `fair`: the live fair waiters queued in the semaphore's document, from every process.
   */
  readonly waiting: number;
}

/**
 * A counting semaphore, declared by {@link LockManager.semaphore}: at most `limit` holders at
 * once, judged by the server's clock, across every process that declares it on the same
 * collection. Each hold is a permit: a held {@link Lease}, renewed by the manager's watchdog,
 * with its own fencing token (the tokens of one semaphore grow across all its holds) and its
 * `signal`; it emits `acquired`, `released`, `timeout` and `lost` like any lease, and the
 * manager's `close()` releases it.
 */
export class Semaphore {
  /** The semaphore's name. */
  readonly name: string;
  /** How many holders it admits at once. */
  readonly limit: number;
  readonly #timing: LeaseTiming;
  readonly #context: LeaseContext;
  readonly #store: SemaphoreStore;
  /** The waits in progress for this name in this manager (shared by its declarations of the name). */
  readonly #waits: { count: number };

  /** @internal Use {@link LockManager.semaphore}. */
  constructor(
    name: string,
    limit: number,
    timing: LeaseTiming,
    context: LeaseContext,
    store: SemaphoreStore,
    waits: { count: number },
  ) {
    this.name = name;
    this.limit = limit;
    this.#timing = timing;
    this.#context = context;
    this.#store = store;
    this.#waits = waits;
  }

  /** The permit's ttl in ms. */
  get ttl(): number {
    return this.#timing.ttl;
  }

  /**
   * Resolves a held permit, waiting as long as it takes by default (`wait: Infinity`); with
   * `wait: '10s'` rejects with a LockTimeoutError after that long; `strategy` and `signal` as for
   * `manager.acquire()`. Rejects with a LockError if the semaphore is stored with another limit.
   */
  acquire(options?: AcquireOptions): Promise<HeldLease> {
    const plan = this.#plan(options, Infinity);
    return this.#counted(plan, acquireHeld(this.#permit(), plan));
  }

  /** A held permit after one attempt, or `null` if every permit is taken. `wait` and `strategy` are refused. */
  tryAcquire(options?: TryPermitOptions): Promise<HeldLease | null> {
    const plan = this.#plan(options, undefined, 'tryAcquire() options');
    const permit = this.#permit();
    return permit.acquirePlanned(plan).then((held) => (held ? (permit as HeldLease) : null));
  }

  /**
   * Runs `fn` holding a permit and always releases it afterwards, as `manager.withLock()` does
   * with a lock: `fn` is never called without a permit, and if the hold ended before `fn`
   * settled, `withPermit` rejects with the loss even if `fn` resolved. Waits like {@link acquire}.
   */
  withPermit<T>(fn: (permit: HeldLease) => T | Promise<T>, options?: AcquireOptions): Promise<T> {
    if (typeof fn !== 'function') throw invalidType('withPermit(fn): fn', 'a function', fn);
    const plan = this.#plan(options, Infinity);
    const permit = this.#permit();
    return this.#counted(
      plan,
      withExclusive(permit, plan, fn, (error) => this.#context.host.report(error, permit)),
    );
  }

  /** The stored limit, the live holders (by the server's clock) and this manager's waits. */
  inspect(): Promise<SemaphoreInfo> {
    const { closing, host } = this.#context;
    closing.throwIfAborted();
    const work = this.#store.inspect(this.name).then((stored) => ({
      name: this.name,
      limit: stored?.limit ?? this.limit,
      holders: stored?.holders ?? [],
      // Fair: the live waiters queued in the document, from every process; else this manager's.
      waiting: this.#timing.fair === true ? (stored?.waiting ?? 0) : this.#waits.count,
    }));
    host.pending(work);
    return work;
  }

  #permit(): Lease {
    return new Lease(this.name, this.#timing, this.#context);
  }

  /** Checks an acquisition's options (throwing at once); `wait` is the default wait. */
  #plan(input: AcquireOptions | undefined, wait: number | undefined, what = 'options'): WaitPlan {
    const options = checkObject(input, what);
    if (wait === undefined) {
      const key = (['wait', 'strategy'] as const).find((k) => options[k] !== undefined);
      if (key) throw invalidType(`${what}.${key}`, 'absent: tryAcquire() makes one attempt', options[key]);
    }
    return waitPlan({ wait, ...options }, this.#context.settings.poll, what);
  }

  /** Counts a waiting acquisition while it is in progress. */
  async #counted<T>(plan: WaitPlan, work: Promise<T>): Promise<T> {
    if (!plan.waits) return work;
    this.#waits.count++;
    try {
      return await work;
    } finally {
      this.#waits.count--;
    }
  }
}

/** Checks a semaphore's declaration (throwing a TypeError or RangeError at once) and makes it. */
export function declareSemaphore(
  name: unknown,
  input: SemaphoreOptions | undefined,
  settings: ManagerSettings,
  context: LeaseContext,
  store: SemaphoreStore,
): Semaphore {
  const checked = checkName(name, 'semaphore name');
  const what = 'semaphore options';
  const { limit, ttl, heartbeat, fair } = checkObject(input, what);
  if (typeof limit !== 'number') throw invalidType(`${what}.limit`, 'a whole number of permits', limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT)
    throw outOfRange(`${what}.limit`, `a whole number from 1 to ${MAX_LIMIT}`, limit);
  const timing = leaseTiming(settings, { ttl, heartbeat, fair }, what);
  const permits = permitContext(context, store, checked, limit);
  return new Semaphore(checked, limit, timing, permits, store, waitCounter(context, checked));
}

/** Per manager (by its lease context) and semaphore name: the waits in progress, for inspect(). */
const waitsByManager = new WeakMap<LeaseContext, Map<string, { count: number }>>();

export function waitCounter(context: LeaseContext, name: string): { count: number } {
  let byName = waitsByManager.get(context);
  if (!byName) waitsByManager.set(context, (byName = new Map<string, { count: number }>()));
  let waits = byName.get(name);
  if (!waits) byName.set(name, (waits = { count: 0 }));
  return waits;
}

/** Where a lock's waits and release signals would go, a semaphore's go under this key. */
const wakeKey = (name: string) => `semaphore:${name}`;

/**
 * The context of a semaphore's permits: the manager's, with the semaphore's commands in place of
 * the lock's, and its own wake-up key (a lock of the same name is another thing).
 */
function permitContext(base: LeaseContext, store: SemaphoreStore, name: string, limit: number): LeaseContext {
  const { host } = base;
  return {
    ...base,
    permit: true,
    kind: 'permit',
    store: {
      acquire(request, late) {
        if (request.force) {
          return Promise.reject(
            new LockStateError(
              LockErrorCode.NotAcquired,
              `forceAcquire(): semaphore "${name}" gives no permit by force`,
            ),
          );
        }
        return store.acquire({ ...request, limit }, late);
      },
      release: (_name, leaseId, timeout, _lapsed, fair) => store.release(name, leaseId, timeout, fair),
    },
    host: {
      ...host,
      watch: () => host.watch(wakeKey(name)),
      freed: (_name, contended) => host.freed(wakeKey(name), contended),
    },
  };
}
