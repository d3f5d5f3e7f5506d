// What a lease emits and what it needs from its manager and its store: the types of lib/lease.ts.
import type { Clock } from './clock.js';
import type { AcquireRequest } from './commands.js';
import type { ListenerArgs } from './emit.js';
import type { LeaseLostError } from './errors.js';
import type { Hold } from './hold.js';
import type { Lease } from './lease.js';
import type { ManagerSettings } from './options.js';
import type { AcquireResult, Grant, ReleaseResult } from './store.js';
import type { HoldKind } from './telemetry.js';
import type { Watch } from './wakeups.js';
import type { WatchedWait } from './watchdog.js';

/** Payload of `acquired`. */
export interface AcquiredEvent {
  readonly name: string;
  /** Fencing token of this hold: larger than every earlier token of this lock. */
  readonly token: number;
  readonly owner: string;
  /** When the hold ends unless renewed, by the server's clock. */
  readonly expiresAt: Date;
}

/** Payload of `released`. */
export interface ReleasedEvent {
  readonly name: string;
  readonly token: number;
}

/** Payload of `timeout`: a bounded wait gave up (`acquire`), or a lease without heartbeat ran out (`hold`). */
export interface TimeoutEvent {
  readonly name: string;
  readonly phase: 'acquire' | 'hold';
  /** The token of the hold that ran out (phase `hold` only). */
  readonly token?: number;
}

/** Events of a {@link Lease}. */
export interface LeaseEvents {
  /** The lock is held now. */
  acquired: (event: AcquiredEvent) => void;
  /** `release()` freed the lock while it was still ours. */
  released: (event: ReleasedEvent) => void;
  /** A bounded wait gave up, or a lease without heartbeat reached its ttl. */
  timeout: (event: TimeoutEvent) => void;
  /** The lock is no longer ours: taken, deleted, or expired before a renewal could land. */
  lost: (error: LeaseLostError) => void;
}

/** The listener argument lists of a lease's events: `{ acquired: [event: AcquiredEvent], ... }`. */
export type LeaseEventArgs = ListenerArgs<LeaseEvents>;

/**
 * A lease that holds its lock: what `manager.acquire()` resolves and what `withLock` passes to its
 * function. Its `token` and `expiresAt` are always defined (they stay the hold's once it ends).
 */
export type HeldLease = Lease & { readonly token: number; readonly expiresAt: Date };

/** The two commands a lease sends (implemented by LockStore; unit tests pass a fake). @internal */
export interface LeaseStore {
  /**
   * One attempt to take the lock. `late` gets the answer of an attempt that was reported as failed
   * (no answer in time) and that the server applied after all.
   */
  acquire(request: AcquireRequest, late?: (result: AcquireResult) => void): Promise<AcquireResult>;
  /** Frees the lock if `leaseId` holds it. `lapsed`: the hold ran out locally (history says expired). */
  release(name: string, leaseId: string, timeout?: number, lapsed?: boolean, fair?: boolean): Promise<ReleaseResult>;
}

/** What a lease needs from its manager. @internal */
export interface LeaseContext {
  /** The owner stored on the locks it takes, and the poll interval of a plain `wait`. */
  readonly settings: Pick<ManagerSettings, 'owner' | 'poll'>;
  readonly store: LeaseStore;
  /** Measures the local deadlines and the waits, and times the sleeps between attempts. */
  readonly clock: Clock;
  /** Aborts (with a LockStateError `closed`) when the manager closes. */
  readonly closing: AbortSignal;
  readonly host: LeaseHost;
  /** The leases are a semaphore's permits: their holds are marked so for the watchdog. */
  readonly permit?: boolean;
  /** What the leases hold, as telemetry names it. @defaultValue `'lock'` */
  readonly kind?: HoldKind;
}

/** The manager's side of its leases: what it tracks of them, and where their events go. @internal */
export interface LeaseHost {
  /**
   * `hold` began (`isHeld`) or ended: the manager keeps its held leases (to release them on
   * close), and its watchdog renews and re-reads the hold while it lasts.
   */
  held(lease: Lease, hold: Hold, isHeld: boolean): void;
  /** A fair waiter joined (`true`) or left (`false`) a queue: the watchdog renews its entry meanwhile. */
  waiting?(wait: WatchedWait, isWaiting: boolean): void;
  /** Resolves once the watchdog's tick in flight has settled: no renewal of it lands after this. */
  settled(): Promise<void>;
  /** Registers a wait for `name` (its sleeps end early when the lock is freed); `done()` it at the end. */
  watch(name: string): Watch;
  /** Work the manager's close waits for (acquisitions in flight, give-backs). */
  pending(work: Promise<unknown>): unknown;
  /**
   * `name` was freed by this manager: wake its waiters here, and tell other processes if it was
   * `contended`, and the waiter it was handed to (`grant`, a fair hand-over). Resolves once they
   * have been told (never rejects: a failure is reported).
   */
  freed(name: string, contended: boolean, grant?: Grant): Promise<void>;
  /** Re-emits a lease's event to the manager's listeners, with the lease first. */
  forward<E extends keyof LeaseEvents>(event: E, lease: Lease, args: LeaseEventArgs[E]): void;
  /** Reports a background error on the manager's `error` event. */
  report(error: unknown, lease?: Lease): void;
}
