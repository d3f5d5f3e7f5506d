import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'eventemitter3';
import { parseDuration, type Duration } from './duration.js';
import {
  LeaseLostError,
  LockError,
  LockErrorCode,
  LockStateError,
  LockTimeoutError,
  invalidType,
  outOfRange,
  type LostReason,
} from './errors.js';
import { checkObject, type LeaseTiming, type ManagerSettings } from './options.js';
import { checkStrategy, strategies, type PollStrategy } from './strategies.js';
import { isClosedConnection, isConnectionError, type AcquireResult, type LockStore } from './store.js';
import type { Watchdog, WatchedHold } from './watchdog.js';
import type { Wakeups, Watch } from './wakeups.js';

/** Options of {@link Lease.acquire}. With none, `acquire()` makes exactly one attempt. */
export interface AcquireOptions {
  /**
   * Keep trying for this long (polling at the manager's `poll` interval), or forever with
   * `Infinity`. Without it (and without `strategy`), one attempt.
   */
  readonly wait?: Duration;
  /** How to poll; wins over `wait`. See {@link strategies}. */
  readonly strategy?: PollStrategy;
  /** Gives up waiting when aborted: `acquire()` then rejects with `signal.reason`. */
  readonly signal?: AbortSignal;
}

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

/** What a lease needs from its manager. @internal */
export interface LeaseContext {
  readonly settings: ManagerSettings;
  readonly store: LockStore;
  readonly watchdog: Watchdog;
  readonly wakeups: Wakeups;
  /** Aborts (with a LockStateError `closed`) when the manager closes. */
  readonly closing: AbortSignal;
  /** Forwards a lease's event to the manager's listeners. */
  forward(event: keyof LeaseEvents, lease: Lease, payload: unknown): void;
  /** Reports a background error on the manager's `error` event. */
  report(error: unknown, lease?: Lease): void;
  /** The manager tracks held leases (to release them on close) and acquisitions in flight. */
  held(lease: Lease, isHeld: boolean): void;
  pending(work: Promise<unknown>): unknown;
  /**
   * `name` was freed by this manager: wake its waiters here, and tell other processes if it was
   * `contended`. Resolves once they have been told (never rejects: a failure is reported).
   */
  freed(name: string, contended: boolean): Promise<void>;
}

/** A wait's plan, checked before any await. */
interface WaitPlan {
  readonly strategy: PollStrategy | undefined;
  readonly signal: AbortSignal | undefined;
  readonly force: boolean;
}

/** Leave a little slack after an observed expiry: the server takes the lock when expiresAt <= $$NOW. */
const EXPIRY_SLACK = 2;

function randomLeaseId(): string {
  return randomBytes(18).toString('base64url'); // 144 random bits
}

function checkSignal(signal: unknown, what: string): AbortSignal | undefined {
  if (signal === undefined) return undefined;
  if (!(signal instanceof AbortSignal)) throw invalidType(what, 'an AbortSignal', signal);
  return signal;
}

/** Parses acquire() options into a plan; throws synchronously on bad input. */
export function waitPlan(input: AcquireOptions | undefined, poll: number, what = 'acquire options'): WaitPlan {
  const options = checkObject(input, what);
  const signal = checkSignal(options.signal, `${what}.signal`);
  if (options.strategy !== undefined)
    return { strategy: checkStrategy(options.strategy, `${what}.strategy`), signal, force: false };
  if (options.wait === undefined) return { strategy: undefined, signal, force: false };
  if (options.wait === Infinity) return { strategy: strategies.infinite({ interval: poll }), signal, force: false };
  const within = parseDuration(options.wait, `${what}.wait`, { allowZero: true, max: Number.MAX_SAFE_INTEGER });
  return { strategy: strategies.bounded({ interval: poll, within }), signal, force: false };
}

/** The reason a hold's signal carries when `release()` ended it. */
function releasedReason(name: string): LockError {
  return new LockError(LockErrorCode.Released, `lease "${name}" was released`);
}

const notHeldSignal = AbortSignal.abort(
  new LockStateError(LockErrorCode.NotAcquired, 'this lease does not hold its lock'),
);

/** One hold of a lease: what the watchdog watches, and the AbortSignal of that hold. */
class Hold implements WatchedHold {
  readonly controller = new AbortController();

  constructor(
    readonly name: string,
    readonly leaseId: string,
    readonly timing: LeaseTiming,
    readonly token: number,
    readonly owner: string,
    public expiresAt: Date,
    public deadline: number,
    private readonly onLost: (hold: Hold, reason: LostReason) => void,
    private readonly onDeadline: (hold: Hold) => void,
  ) {}

  lost(reason: LostReason): void {
    this.onLost(this, reason);
  }

  deadlinePassed(): void {
    this.onDeadline(this);
  }
}

/**
 * A contender for one named lock, created by {@link LockManager.lease}. It holds the lock at
 * most once at a time, and can acquire it again after a hold ends. While held, the manager's
 * watchdog renews it (with a heartbeat) and re-reads it; `signal` aborts when the hold ends for
 * any reason, so work that checks it stops before anyone else can hold the lock.
 *
 * Events: `acquired`, `released`, `timeout`, `lost` (see {@link LeaseEvents}); the manager
 * re-emits each of them with the lease as first argument.
 */
export class Lease extends EventEmitter<LeaseEvents> implements AsyncDisposable {
  /** The lock's name. */
  readonly name: string;
  readonly #context: LeaseContext;
  readonly #timing: LeaseTiming;
  #state: 'idle' | 'acquiring' | 'held' = 'idle';
  #hold: Hold | undefined;
  #lastSignal: AbortSignal = notHeldSignal;
  /** The last hold ended without release() (lost or ran out): the next release() resolves false. */
  #endedUnreleased = false;

  /** @internal Use {@link LockManager.lease}. */
  constructor(name: string, timing: LeaseTiming, context: LeaseContext) {
    super();
    this.name = name;
    this.#timing = timing;
    this.#context = context;
  }

  /** True while this lease holds the lock (as far as it can tell; see `signal`). */
  get held(): boolean {
    return this.#state === 'held';
  }

  /** Fencing token of the current hold; `undefined` when not held. Pass it to the resources you protect. */
  get token(): number | undefined {
    return this.#hold?.token;
  }

  /** When the current hold ends unless renewed, by the server's clock; `undefined` when not held. */
  get expiresAt(): Date | undefined {
    return this.#hold ? new Date(this.#hold.expiresAt) : undefined;
  }

  /**
   * Aborts when the current hold ends (released, lost, ran out, manager closed), with the reason
   * as `signal.reason`. A fresh signal for each hold; when not held, the last hold's (aborted) signal.
   */
  get signal(): AbortSignal {
    return this.#hold?.controller.signal ?? this.#lastSignal;
  }

  /** The lease's duration in ms. */
  get ttl(): number {
    return this.#timing.ttl;
  }

  /** The renewal interval in ms, or `false` without heartbeat. */
  get heartbeat(): number | false {
    return this.#timing.heartbeat;
  }

  /**
   * Tries to take the lock. With no options: one attempt, resolving `true` (held now) or `false`
   * (someone else holds it, or the server's answer came too late to use). With `wait`: polls for
   * that long and rejects with a LockTimeoutError if it runs out (`wait: Infinity` polls forever);
   * with `strategy`: polls as the strategy says. A wait rides out connection failures, but not a
   * connection that was closed or never opened (code `connection`). Rejects with `signal.reason`
   * if `signal` aborts, with a LockStateError if this lease holds the lock or is acquiring it
   * already, or if its manager is closed.
   */
  acquire(options?: AcquireOptions): Promise<boolean> {
    return this.#acquire(waitPlan(options, this.#context.settings.poll));
  }

  /**
   * Takes the lock whatever its state, in one attempt. A previous holder's watchdog then
   * finds it gone and emits `lost` with reason `taken`. For operators and recovery, not for
   * normal contention: the previous holder may still be working until it notices.
   */
  forceAcquire(): Promise<true> {
    return this.#acquire({ strategy: undefined, signal: undefined, force: true }) as Promise<true>;
  }

  /**
   * Frees the lock. Resolves `true` if it was still ours, `false` if it had already expired or
   * been taken (the lease then also emits `lost`), or if the hold had already ended by itself
   * (`lost`, or `timeout` without heartbeat). Rejects with a LockStateError if this lease does
   * not hold the lock.
   */
  release(): Promise<boolean> {
    return this.#release(false);
  }

  /** `await using lease = await manager.acquire(name)` releases the lease at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#state === 'held') await this.#release(false);
  }

  /** Releases on the manager's close (which may not fail because the manager is closing). @internal */
  closeRelease(): Promise<boolean> {
    return this.#state === 'held' ? this.#release(true) : Promise.resolve(false);
  }

  async #acquire(plan: WaitPlan): Promise<boolean> {
    const context = this.#context;
    context.closing.throwIfAborted();
    if (this.#state !== 'idle') {
      throw new LockStateError(
        LockErrorCode.AlreadyAcquired,
        `acquire(): lease "${this.name}" ${this.#state === 'held' ? 'already holds its lock' : 'is already acquiring its lock'}`,
      );
    }
    this.#state = 'acquiring';
    const work = this.#attempts(plan);
    context.pending(work);
    try {
      return await work;
    } finally {
      if (this.#state === 'acquiring') this.#state = 'idle';
    }
  }

  async #attempts(plan: WaitPlan): Promise<boolean> {
    const watch = plan.strategy ? this.#context.wakeups.watch(this.name) : undefined;
    try {
      return await this.#attemptLoop(plan, watch);
    } finally {
      watch?.done();
    }
  }

  async #attemptLoop({ strategy, signal, force }: WaitPlan, watch: Watch | undefined): Promise<boolean> {
    const { store, settings, closing } = this.#context;
    const started = performance.now();
    for (let attempt = 1; ; attempt++) {
      signal?.throwIfAborted();
      closing.throwIfAborted();
      const leaseId = randomLeaseId();
      const request = {
        name: this.name,
        leaseId,
        owner: settings.owner,
        ttl: this.#timing.ttl,
        force,
        waiting: watch !== undefined,
      };
      watch?.mark();
      const sentAt = performance.now();
      let result: AcquireResult | undefined;
      try {
        // If the attempt times out here but succeeds on the server later, free the lock at once.
        result = await store.acquire(request, (late) => late.acquired && this.#freeQuietly(leaseId));
      } catch (error) {
        if (!strategy || !isConnectionError(error) || isClosedConnection(error)) throw error;
        this.#context.report(error, this); // a wait rides out a passing outage (not a closed connection), retrying
      }
      if (result?.acquired) {
        const abandoned = signal?.aborted ? signal : closing.aborted ? closing : undefined;
        if (abandoned) {
          this.#freeQuietly(leaseId);
          throw abandoned.reason;
        }
        // The server granted `remaining` ms at some moment after sentAt; stop a margin before that.
        const deadline = sentAt + result.remaining - this.#timing.margin;
        if (deadline > performance.now()) {
          this.#begin(leaseId, result, deadline);
          return true;
        }
        // The answer came too late (a reply held up in the network): the hold may have expired
        // and been taken by now. Give it back, and count the attempt as a failed one.
        this.#freeQuietly(leaseId);
        result = undefined;
      }
      if (!strategy) return false;
      const delay = strategy.next(attempt, performance.now() - started);
      if (delay === null) {
        this.#emit('timeout', { name: this.name, phase: 'acquire' });
        throw new LockTimeoutError(
          this.name,
          'acquire',
          `could not acquire lock "${this.name}" within ${Math.round(performance.now() - started)} ms (${attempt} attempts)`,
        );
      }
      if (typeof delay !== 'number' || !(delay >= 0)) {
        throw outOfRange('strategy.next() result', 'a delay of 0 ms or more, or null', delay);
      }
      // Wake when the expiry seen on the server comes round, if that is sooner than the next poll.
      const sooner = result ? Math.min(delay, Math.max(0, result.remaining) + EXPIRY_SLACK) : delay;
      await watch!.sleep(sooner, [signal, closing]);
    }
  }

  #begin(leaseId: string, result: AcquireResult, deadline: number): void {
    const timing = this.#timing;
    const hold = new Hold(
      this.name,
      leaseId,
      timing,
      result.token,
      result.owner,
      result.expiresAt,
      deadline,
      (h, reason) => this.#lose(h, reason),
      (h) => this.#deadlinePassed(h),
    );
    this.#hold = hold;
    this.#state = 'held';
    this.#endedUnreleased = false;
    this.#context.held(this, true);
    this.#context.watchdog.add(hold);
    this.#emit('acquired', {
      name: this.name,
      token: hold.token,
      owner: hold.owner,
      expiresAt: new Date(hold.expiresAt),
    });
  }

  /** Ends `hold` locally: no more renewals, the signal aborts with `reason`. False if it had already ended. */
  #end(hold: Hold, reason: Error): boolean {
    if (this.#hold !== hold) return false;
    this.#hold = undefined;
    this.#state = 'idle';
    this.#lastSignal = hold.controller.signal;
    this.#context.watchdog.remove(hold);
    this.#context.held(this, false);
    hold.controller.abort(reason);
    return true;
  }

  async #release(closing: boolean): Promise<boolean> {
    if (!closing) this.#context.closing.throwIfAborted();
    if (this.#state !== 'held') {
      if (this.#state === 'idle' && this.#endedUnreleased) {
        this.#endedUnreleased = false;
        return false;
      }
      throw new LockStateError(
        LockErrorCode.NotAcquired,
        `release(): lease "${this.name}" ${this.#state === 'acquiring' ? 'is still acquiring its lock' : 'does not hold its lock'}`,
      );
    }
    const hold = this.#hold!;
    this.#end(hold, releasedReason(this.name)); // stop the work and the renewals before the release lands
    const { outcome, contended } = await this.#context.store.release(this.name, hold.leaseId);
    // Resolve only once waiters elsewhere have been told: a process may exit right after this.
    if (outcome !== 'taken') await this.#context.freed(this.name, contended);
    if (outcome === 'released') {
      this.#emit('released', { name: this.name, token: hold.token });
      return true;
    }
    this.#emit('lost', this.#lostError(hold, outcome === 'taken' ? 'taken' : 'expired'));
    return false;
  }

  #lostError(hold: Hold, reason: LostReason): LeaseLostError {
    const why = {
      taken: 'another holder has it now',
      deleted: 'its lock document was deleted',
      expired: 'it expired before a renewal could land',
    }[reason];
    return new LeaseLostError(
      this.name,
      hold.token,
      reason,
      `lease "${this.name}" (token ${hold.token}) was lost: ${why}`,
    );
  }

  #lose(hold: Hold, reason: LostReason): void {
    const error = this.#lostError(hold, reason);
    if (!this.#end(hold, error)) return;
    this.#endedUnreleased = true;
    this.#emit('lost', error);
    if (reason === 'expired') this.#freeQuietly(hold.leaseId, true);
  }

  #deadlinePassed(hold: Hold): void {
    if (hold.timing.heartbeat !== false) return this.#lose(hold, 'expired');
    const error = new LockTimeoutError(
      this.name,
      'hold',
      `lease "${this.name}" (token ${hold.token}) reached its ttl of ${hold.timing.ttl} ms`,
    );
    if (!this.#end(hold, error)) return;
    this.#endedUnreleased = true;
    this.#emit('timeout', { name: this.name, phase: 'hold', token: hold.token });
    this.#freeQuietly(hold.leaseId, true);
  }

  /**
   * Best effort: frees the lock if `leaseId` still holds it (after a local loss, or an abandoned
   * acquire). `lapsed`: the hold ran out locally, so history records it as expired.
   */
  #freeQuietly(leaseId: string, lapsed = false): void {
    this.#context.store.release(this.name, leaseId, undefined, lapsed).then(
      ({ outcome, contended }) => outcome !== 'taken' && void this.#context.freed(this.name, contended),
      () => {}, // the lock then simply expires at its ttl
    );
  }

  #emit<E extends keyof LeaseEvents>(event: E, payload: Parameters<LeaseEvents[E]>[0]): void {
    try {
      (this.emit as (event: string, payload: unknown) => boolean)(event, payload);
    } catch (error) {
      this.#context.report(error, this); // a throwing listener must not break the lease
    }
    this.#context.forward(event, this, payload);
  }
}
