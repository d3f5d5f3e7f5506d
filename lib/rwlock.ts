// Read-write locks: many readers or one writer at once, with writer preference. Each hold is a
// Lease (events, signal, fencing token, renewal by the manager's watchdog), like a semaphore's
// permit. See docs/semaphores.md.
import { invalidType, LockErrorCode, LockStateError } from './errors.js';
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
import { acquireRwCommand, rwInfoProjection, type RwLockDocument, type RwMode } from './rwlock-commands.js';
import { waitCounter } from './semaphore.js';
import type { SemaphoreHolder, SemaphoreStore } from './semaphore-store.js';
import type { LockStore } from './store.js';
import type { WatchdogStore } from './watchdog.js';

/**
 * Options of {@link LockManager.readWriteLock}: the ttl and heartbeat of its holds (the manager's
 * by default), and `fair`: readers and writers served strictly in the order they began to wait
 * (the manager's `fair` by default).
 */
export type ReadWriteLockOptions = LeaseOptions;

/** One live hold of a read-write lock, as `inspect()` shows it: a semaphore holder's fields. */
export type ReadWriteLockHolder = SemaphoreHolder;

/** What {@link ReadWriteLock.inspect} says. */
export interface ReadWriteLockInfo {
  readonly name: string;
  /** The live readers by the server's clock, by token. */
  readonly readers: readonly ReadWriteLockHolder[];
  /** The live writer by the server's clock, or `null`. */
  readonly writer: ReadWriteLockHolder | null;
  /**
   * A writer waits and holds new readers back (the live `writerWaiting` marker, see
   * docs/semaphores.md): when its marker expires unless renewed; `null` when no writer waits (and
   * always with `fair`, whose queue keeps a writer's turn).
   */
  readonly writerWaiting: { readonly expiresAt: Date } | null;
  /**
   * Without `fair`: acquisitions of this lock (reads and writes) waiting in this manager, through
   * any of its declarations; other processes' waits are not recorded (a waiting writer elsewhere
   * shows as `writerWaiting`). With `fair`: the live fair waiters queued in the lock's document,
   * from every process.
   */
  readonly waiting: number;
}

/**
 * A read-write lock, declared by {@link LockManager.readWriteLock}: many readers at once, or one
 * writer and no reader, judged by the server's clock, across every process that declares it on the
 * same collection. Each hold is a held {@link Lease} (renewed by the manager's watchdog, lost if
 * the database stops listing it, released by the manager's `close()`), with a fencing token: the
 * tokens of one read-write lock grow across all of its holds, reads and writes.
 *
 * Without `fair`, writer preference: a writer that waits marks the lock, and while the mark is
 * live no new reader is admitted; the writer gets the lock once the current readers release or
 * expire. Among several waiting writers no order is promised. With `fair`, first come, first
 * served: readers and writers are granted in the order they began to wait (consecutive readers
 * together), and a release hands the lock to the waiters at the head of the queue.
 */
export class ReadWriteLock {
  /** The lock's name. */
  readonly name: string;
  readonly #timing: LeaseTiming;
  readonly #declared: Declared;
  readonly #poll: number;
  /** The waits in progress for this name in this manager (shared by its declarations of the name). */
  readonly #waits: { count: number };

  /** @internal Use {@link LockManager.readWriteLock}. */
  constructor(name: string, timing: LeaseTiming, declared: Declared, poll: number) {
    this.name = name;
    this.#timing = timing;
    this.#declared = declared;
    this.#poll = poll;
    this.#waits = rwWaits(declared.base, name);
  }

  /** A hold's ttl in ms. */
  get ttl(): number {
    return this.#timing.ttl;
  }

  /**
   * Resolves a held shared lease, waiting as long as it takes by default (`wait: Infinity`); with
   * `wait: '5s'` rejects with a LockTimeoutError after that long; `strategy` and `signal` as for
   * `manager.acquire()`. Waits while a writer holds the lock or waits for it.
   */
  read(options?: AcquireOptions): Promise<HeldLease> {
    return this.#acquire('read', options, 'read() options');
  }

  /** Resolves a held exclusive lease (no reader, no other writer); waits like {@link read}. */
  write(options?: AcquireOptions): Promise<HeldLease> {
    return this.#acquire('write', options, 'write() options');
  }

  /**
   * Runs `fn` holding a shared lease and always releases it afterwards, as `manager.withLock()`
   * does: if the hold ended before `fn` settled, rejects with the loss even if `fn` resolved.
   */
  withRead<T>(fn: (lease: HeldLease) => T | Promise<T>, options?: AcquireOptions): Promise<T> {
    return this.#with('read', fn, options);
  }

  /** Runs `fn` holding the exclusive lease, as {@link withRead} does with a shared one. */
  withWrite<T>(fn: (lease: HeldLease) => T | Promise<T>, options?: AcquireOptions): Promise<T> {
    return this.#with('write', fn, options);
  }

  /** The live readers and writer (by the server's clock), a waiting writer's marker, and this manager's waits. */
  inspect(): Promise<ReadWriteLockInfo> {
    const { closing, host } = this.#declared.base;
    closing.throwIfAborted();
    const work = this.#declared.read(this.name).then(([stored]) => ({
      name: this.name,
      readers: stored?.readers ?? [],
      writer: stored?.writer ?? null,
      writerWaiting: stored?.writerWaiting ?? null,
      waiting: this.#timing.fair === true ? (stored?.queued ?? 0) : this.#waits.count,
    }));
    host.pending(work);
    return work;
  }

  #acquire(mode: RwMode, options: AcquireOptions | undefined, what: string): Promise<HeldLease> {
    const plan = this.#plan(options, what);
    return this.#counted(
      plan,
      this.#attempt(mode, (lease) => acquireHeld(lease, plan)),
    );
  }

  /** Counts a waiting acquisition (for inspect()) until it settles. */
  #counted<T>(plan: WaitPlan, work: Promise<T>): Promise<T> {
    if (plan.waits) {
      const waits = this.#waits;
      waits.count++;
      const settled = () => void waits.count--;
      work.then(settled, settled);
    }
    return work;
  }

  #with<T>(mode: RwMode, fn: (lease: HeldLease) => T | Promise<T>, options: AcquireOptions | undefined) {
    const what = mode === 'read' ? 'withRead' : 'withWrite';
    if (typeof fn !== 'function') throw invalidType(`${what}(fn): fn`, 'a function', fn);
    const plan = this.#plan(options, `${what}() options`);
    const { host } = this.#declared.base;
    return this.#counted(
      plan,
      this.#attempt(mode, (lease) => withExclusive(lease, plan, fn, (error) => host.report(error, lease))),
    );
  }

  /**
   * Runs `work` with a new lease in `mode`. A writer that waited and failed (gave up, aborted, or
   * its function failed) takes its `writerWaiting` marker away, if it is still there, before it
   * rejects: the readers it held back need not wait for the marker to expire.
   */
  async #attempt<T>(mode: RwMode, work: (lease: Lease) => Promise<T>): Promise<T> {
    const waited = new Set<string>();
    const context = this.#declared.context(mode, waited);
    try {
      return await work(new Lease(this.name, this.#timing, context));
    } catch (error) {
      if (waited.size > 0) {
        const clear = this.#declared.clearMarker([...waited]).catch((e: unknown) => context.host.report(e));
        context.host.pending(clear);
        await clear;
      }
      throw error;
    }
  }

  /** Checks an acquisition's options (throwing at once); waits forever unless told otherwise. */
  #plan(input: AcquireOptions | undefined, what: string): WaitPlan {
    const options = checkObject(input, what);
    return waitPlan({ ...options, wait: options.wait ?? Infinity }, this.#poll, what);
  }
}

/** Checks a read-write lock's declaration (throwing a TypeError or RangeError at once) and makes it. */
export function declareReadWriteLock(
  name: unknown,
  input: ReadWriteLockOptions | undefined,
  settings: ManagerSettings,
  context: LeaseContext,
  store: SemaphoreStore,
  read: RwLockReader,
): ReadWriteLock {
  const checked = checkName(name, 'read-write lock name');
  const what = 'read-write lock options';
  const { ttl, heartbeat, fair } = checkObject(input, what);
  const timing = leaseTiming(settings, { ttl, heartbeat, fair }, what);
  const timeout = settings.commandTimeout;
  const declared: Declared = {
    base: context,
    context: (mode, waited) => holdContext(context, store, checked, mode, timeout, waited),
    clearMarker: (leaseIds) => store.clearMarker(checked, leaseIds),
    read,
  };
  return new ReadWriteLock(checked, timing, declared, settings.poll);
}

/** What a {@link ReadWriteLock} is made with. @internal */
interface Declared {
  readonly base: LeaseContext;
  /** The context of one lease in `mode`; the ids of its attempts that waited go into `waited`. */
  context(mode: RwMode, waited: Set<string>): LeaseContext;
  /** Takes away a waiting writer's marker if one of `leaseIds` set it. */
  clearMarker(leaseIds: readonly string[]): Promise<unknown>;
  /** Reads the lock `name` as stored (see {@link rwLockReader}). */
  read: RwLockReader;
}

/** The waits of the read-write lock `name` in a manager: counted apart from a semaphore's of the same name. */
const rwWaits = (context: LeaseContext, name: string) => waitCounter(context, `rwlock:${name}`);

/** How many acquisitions of the read-write lock `name` wait in the manager of `context`. @internal */
export const rwWaiting = (context: LeaseContext, name: string): number => rwWaits(context, name).count;

/**
 * A read-write lock as stored: {@link ReadWriteLockInfo} without this manager's waits, and the
 * live fair waiters queued in its document. @internal
 */
export type StoredRwLock = Omit<ReadWriteLockInfo, 'waiting'> & { readonly queued: number };

/** Reads the read-write lock `name` (a list of one, or none), or every one without a name, by name. @internal */
export type RwLockReader = (name?: string) => Promise<StoredRwLock[]>;

/**
 * Reads read-write locks from `collection` through the lock store (its timeouts and error
 * mapping), judging "live" by the server's clock as acquisitions do.
 */
export function rwLockReader(store: LockStore, collection: string, timeout: number): RwLockReader {
  type Read = { _id: string; readers: ReadWriteLockHolder[]; writers: ReadWriteLockHolder[] } & Pick<
    StoredRwLock,
    'writerWaiting' | 'queued'
  >;
  const byToken = (holders: ReadWriteLockHolder[]) =>
    holders.map((h) => ({ ...h, token: Number(h.token) })).sort((a, b) => a.token - b.token);
  return async (name) => {
    const what = name === undefined ? 'list read-write locks' : `readWriteLock("${name}").inspect`;
    const docs = await store.run<Read[], RwLockDocument>(
      what,
      (c) =>
        c
          .find(name === undefined ? {} : { _id: name }, { projection: rwInfoProjection, maxTimeMS: timeout })
          .sort({ _id: 1 })
          .toArray() as unknown as Promise<Read[]>,
      { collection },
    );
    return docs.map((doc) => ({
      name: doc._id,
      readers: byToken(doc.readers),
      writer: byToken(doc.writers)[0] ?? null,
      writerWaiting: doc.writerWaiting ?? null,
      queued: doc.queued ?? 0,
    }));
  };
}

/** The holds and fair waits of read-write locks, as the watchdog is given them: renewed in their own collection. */
const rwHolds = new WeakSet<object>();

/** Where a lock's waits and release signals would go, a read-write lock's go under this key. */
const wakeKey = (name: string) => `rwlock:${name}`;

/**
 * The context of a read-write lock's holds in `mode`: the manager's, with the lock's acquisition
 * and release in place of a lock's, its own wake-up key, and its holds marked for the watchdog.
 */
function holdContext(
  base: LeaseContext,
  store: SemaphoreStore,
  name: string,
  mode: RwMode,
  timeout: number,
  waited: Set<string>,
): LeaseContext {
  const { host } = base;
  return {
    ...base,
    permit: true,
    kind: mode,
    store: {
      acquire(request, late) {
        if (request.force) {
          return Promise.reject(
            new LockStateError(
              LockErrorCode.NotAcquired,
              `forceAcquire(): read-write lock "${name}" is never taken by force`,
            ),
          );
        }
        const { leaseId, owner, ttl, waiting, fair } = request;
        if (waiting && mode === 'write' && !fair) waited.add(leaseId);
        const built = acquireRwCommand({ name, mode, leaseId, owner, ttl, waiting, fair, maxTimeMS: timeout });
        return store.acquireBy(`readWriteLock("${name}").${mode}`, { name, leaseId }, built, late);
      },
      release: (_name, leaseId, releaseTimeout, _lapsed, fair) => store.release(name, leaseId, releaseTimeout, fair),
    },
    host: {
      ...host,
      held: (lease, hold, isHeld) => {
        if (isHeld) rwHolds.add(hold);
        host.held(lease, hold, isHeld);
      },
      waiting: (wait, queued) => {
        if (queued) rwHolds.add(wait);
        host.waiting?.(wait, queued);
      },
      watch: () => host.watch(wakeKey(name)),
      freed: (_name, contended) => host.freed(wakeKey(name), contended),
    },
  };
}

/**
 * The watchdog's commands for permits and read-write holds: each kind renewed and read back in its
 * own collection, both sent at once (constant round trips per tick; a kind with no hold sends nothing).
 */
export function permitStores(permits: SemaphoreStore, rwlocks: SemaphoreStore): NonNullable<WatchdogStore['permits']> {
  type Keys = Parameters<SemaphoreStore['read']>[0];
  const split = (holds: Keys): [Keys, Keys] => [
    holds.filter((h) => !rwHolds.has(h)),
    holds.filter((h) => rwHolds.has(h)),
  ];
  return {
    renew: (holds, timeout) => {
      const [ofPermits, ofRw] = split(holds);
      return Promise.all([
        ofPermits.length > 0 ? permits.renew(ofPermits, timeout) : undefined,
        ofRw.length > 0 ? rwlocks.renew(ofRw, timeout) : undefined,
      ]);
    },
    read: async (holds, timeout) => {
      const [ofPermits, ofRw] = split(holds);
      const [a, b] = await Promise.all([
        ofPermits.length > 0 ? permits.read(ofPermits, timeout) : undefined,
        ofRw.length > 0 ? rwlocks.read(ofRw, timeout) : undefined,
      ]);
      return new Map([...(a ?? []), ...(b ?? [])]);
    },
    renewQueued: (waits, timeout) => {
      const [ofPermits, ofRw] = split(waits);
      return Promise.all([
        ofPermits.length > 0 ? permits.renewQueued(ofPermits, timeout) : undefined,
        ofRw.length > 0 ? rwlocks.renewQueued(ofRw, timeout) : undefined,
      ]);
    },
  };
}
