import { randomFillSync } from 'node:crypto';
import { EventEmitter } from 'eventemitter3';
import {
  LeaseLostError,
  LockError,
  LockErrorCode,
  LockStateError,
  LockTimeoutError,
  outOfRange,
  type LostReason,
} from './errors.js';
import { safeEmit } from './emit.js';
import { logAttempt, publish, traceAcquire, traceAcquisitions, type HoldKind } from './telemetry.js';
import type { LeaseContext, LeaseEvents, LeaseEventArgs } from './lease-types.js';
import { Hold } from './hold.js';
import { isClosedConnection, isConnectionError } from './mongo-errors.js';
import type { LeaseTiming } from './options.js';
import { waitPlan, type AcquireOptions, type WaitPlan } from './plan.js';
import type { AcquireResult } from './store.js';
import type { GrantSignal, Watch } from './wakeups.js';

export type {
  AcquiredEvent,
  HeldLease,
  LeaseContext,
  LeaseEventArgs,
  LeaseEvents,
  LeaseHost,
  LeaseStore,
  ReleasedEvent,
  TimeoutEvent,
} from './lease-types.js';

/** Leave a little slack after an observed expiry: the server takes the lock when expiresAt <= $$NOW. */
const EXPIRY_SLACK = 2;

/** A lease id's random bytes: 144 bits. */
const ID_BYTES = 18;
/** Random bytes for the next lease ids, filled 128 ids at a time (one call to the system's source, not one per id). */
const idPool = Buffer.allocUnsafe(ID_BYTES * 128);
let idOffset = idPool.length;

function randomLeaseId(): string {
  if (idOffset + ID_BYTES > idPool.length) {
    randomFillSync(idPool);
    idOffset = 0;
  }
  const id = idPool.toString('base64url', idOffset, idOffset + ID_BYTES);
  idOffset += ID_BYTES;
  return id;
}

/**
 * The reason a hold's signal carries when `release()` ended it. Made on every release, and read by
 * few: without a stack trace, whose capture would cost more than the rest of the release's JavaScript
 * (where it was made says nothing anyway: `release()`, always).
 */
function releasedReason(name: string): LockError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new LockError(LockErrorCode.Released, `lease "${name}" was released`);
  } finally {
    Error.stackTraceLimit = limit;
  }
}

const notHeldSignal: AbortSignal = AbortSignal.abort(
  new LockStateError(LockErrorCode.NotAcquired, 'this lease does not hold its lock'),
);

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
  /** The hold that ended last: its token, expiry and (aborted) signal stay readable. */
  #last: Hold | undefined;
  /** The last hold ended without release() (lost or ran out): the next release() resolves false. */
  #endedUnreleased = false;

  /** @internal Use {@link LockManager.lease}. */
  constructor(name: string, timing: LeaseTiming, context: LeaseContext) {
    super();
    this.name = name;
    this.#timing = timing;
    this.#context = context;
  }

  /**
   * True while this lease holds the lock, as far as it can tell: reading it compares with the
   * local deadline, so after the event loop was blocked past the deadline it is false at the
   * first look (the lease then emits `lost` with reason `expired`, or `timeout` without heartbeat).
   */
  get held(): boolean {
    this.#hold?.check();
    return this.#state === 'held';
  }

  /**
   * Fencing token of the current hold, or of the last one once it has ended; `undefined` before
   * the first hold. Pass it to the resources you protect; `held` says whether the hold goes on.
   */
  get token(): number | undefined {
    return (this.#hold ?? this.#last)?.token;
  }

  /**
   * When the current hold ends unless renewed, by the server's clock (of the last hold once it has
   * ended, as last read); `undefined` before the first hold.
   */
  get expiresAt(): Date | undefined {
    const hold = this.#hold ?? this.#last;
    return hold ? new Date(hold.expiresAt) : undefined;
  }

  /**
   * Aborts when the current hold ends (released, lost, ran out, manager closed), with the reason
   * as `signal.reason`. A fresh signal for each hold; when not held, the last hold's (aborted)
   * signal. Like `held`, its `aborted` and `throwIfAborted()` compare with the local deadline.
   */
  get signal(): AbortSignal {
    this.#hold?.check();
    return (this.#hold ?? this.#last)?.signal ?? notHeldSignal;
  }

  /** The lease's duration in ms. */
  get ttl(): number {
    return this.#timing.ttl;
  }

  /** The renewal interval in ms, or `false` without heartbeat. */
  get heartbeat(): number | false {
    return this.#timing.heartbeat;
  }

  /** What this lease holds, as telemetry names it. @internal */
  get kind(): HoldKind {
    return this.#context.kind ?? 'lock';
  }

  /** The owner string its holds carry (its manager's). @internal */
  get owner(): string {
    return this.#context.settings.owner;
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

  /** acquire() with options the manager has already checked. @internal */
  acquirePlanned(plan: WaitPlan): Promise<boolean> {
    return this.#acquire(plan);
  }

  /**
   * Takes the lock whatever its state, in one attempt. A previous holder's watchdog then
   * finds it gone and emits `lost` with reason `taken`. For operators and recovery, not for
   * normal contention: the previous holder may still be working until it notices. Rejects
   * (code `connection`) if the server's answer came after the hold's local deadline (a ttl too
   * short for the round trip): the hold is then given back.
   */
  forceAcquire(): Promise<true> {
    return this.#acquire({ strategy: undefined, signal: undefined, force: true, waits: false }) as Promise<true>;
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
    const run = () => {
      // Without a strategy (one attempt) there is no wait to register: one async frame less.
      const work = plan.strategy ? this.#attempts(plan) : this.#attemptLoop(plan, undefined);
      context.host.pending(work);
      return work;
    };
    try {
      if (!traceAcquisitions()) return await run();
      const { name, kind, owner } = this;
      return await traceAcquire({ name, kind, owner, plan, run, token: () => this.token });
    } finally {
      if (this.#state === 'acquiring') this.#state = 'idle';
    }
  }

  async #attempts(plan: WaitPlan): Promise<boolean> {
    const watch = plan.strategy ? this.#context.host.watch(this.name) : undefined;
    try {
      return await this.#attemptLoop(plan, watch);
    } finally {
      watch?.done();
    }
  }

  /**
   * The attempts of one acquisition. An attempt whose outcome is unknown (its answer was lost or
   * timed out: the server may have applied it) is retried with the same lease id, which the
   * acquire pipeline recognises as its own hold; if the acquisition ends without a hold, that id
   * is given back (awaited) before it settles, so no hold is left behind that nobody knows of.
   */
  async #attemptLoop({ strategy, signal, force, waits }: WaitPlan, watch: Watch | undefined): Promise<boolean> {
    const { store, settings, closing, clock, host } = this.#context;
    const started = clock.now();
    const current = { leaseId: randomLeaseId(), ended: false };
    // Fair waiting: a busy answer queued this wait under its lease id, and a release may hand it
    // the lock at any moment. The watchdog renews the entry while the wait sleeps; the wait's end
    // (given up, timed out, aborted, closed) leaves the queue and gives back a lock handed to it.
    const fair = this.#timing.fair === true && waits && !force;
    const queued = fair
      ? {
          name: this.name,
          get leaseId() {
            return current.leaseId;
          },
          interval: this.#timing.interval,
          permit: this.#context.permit === true,
        }
      : undefined;
    let inQueue = false;
    /** The latest attempt answered "queued": its lease id, when it was sent, and the token it saw. */
    let queuedBy: { leaseId: string; sentAt: number; token: number } | undefined;
    /** The last attempt with `current.leaseId` may hold the lock. */
    let unknown: boolean;
    // A timed-out attempt that the server applied after all: give it back, unless this loop
    // still uses its id (its next attempt takes it over) or it became this lease's hold.
    const late = (leaseId: string) => (result: AcquireResult) => {
      const inUse = !current.ended && current.leaseId === leaseId;
      if (result.acquired && !inUse && this.#hold?.leaseId !== leaseId) void this.#giveBack(leaseId);
    };
    try {
      for (let attempt = 1; ; attempt++) {
        signal?.throwIfAborted();
        closing.throwIfAborted();
        const { leaseId } = current;
        // Fair: a release may have handed this wait the lock, and said so in its signal.
        const grant = queuedBy?.leaseId === leaseId ? watch?.granted() : undefined;
        if (grant && this.#granted(leaseId, grant, queuedBy!)) {
          unknown = false;
          return true;
        }
        const request = {
          name: this.name,
          leaseId,
          owner: settings.owner,
          ttl: this.#timing.ttl,
          force,
          waiting: waits,
          fair: this.#timing.fair === true,
          // Marked only for elections: every other acquisition's command stays as it was.
          ...(this.kind === 'election' && { election: true }),
        };
        watch?.mark();
        const sentAt = clock.now();
        let result: AcquireResult | undefined;
        try {
          unknown = true;
          result = await store.acquire(request, late(leaseId));
          // Queued (fair), this lease id may be handed the lock: as unknown as a lost answer.
          unknown = result.acquired || fair;
          logAttempt(this.name, attempt, result.acquired, clock.now() - sentAt);
          if (queued && !result.acquired) {
            if (!inQueue) host.waiting?.(queued, true);
            inQueue = true;
            queuedBy = { leaseId, sentAt, token: result.token };
            watch?.expect(leaseId);
          }
        } catch (error) {
          // a closed connection sent nothing; a queued fair wait must still leave its queue
          unknown = inQueue || (isConnectionError(error) && !isClosedConnection(error));
          if (!strategy || !isConnectionError(error) || isClosedConnection(error)) throw error;
          host.report(error, this); // a wait rides out a passing outage (not a closed connection), retrying
        }
        if (result?.acquired) {
          const abandoned = signal?.aborted ? signal : closing.aborted ? closing : undefined;
          if (abandoned) throw abandoned.reason; // given back below, before this rejects
          // The server granted `remaining` ms at some moment after sentAt; stop a margin before that.
          const deadline = sentAt + result.remaining - this.#timing.margin;
          if (deadline > clock.now()) {
            unknown = false;
            this.#begin(leaseId, result, deadline);
            return true;
          }
          // The answer came too late (a reply held up, or a ttl too short for a round trip): the
          // hold may have expired and been taken by now. Give it back under a retired id, and
          // count the attempt as a failed one; its own give-back does not cut the next sleep short.
          unknown = false;
          current.leaseId = randomLeaseId();
          await this.#giveBack(leaseId);
          watch?.mark();
          if (force) {
            throw new LockError(
              LockErrorCode.Connection,
              `forceAcquire("${this.name}"): the server's answer came after the hold's local deadline (a ttl of ${this.#timing.ttl} ms is too short for this round trip); the hold was given back`,
            );
          }
          result = undefined;
        }
        if (!strategy) return false;
        const delay = strategy.next(attempt, clock.now() - started);
        if (delay === null) {
          this.#emit('timeout', { name: this.name, phase: 'acquire' });
          throw new LockTimeoutError(
            this.name,
            'acquire',
            `could not acquire lock "${this.name}" within ${Math.round(clock.now() - started)} ms (${attempt} attempts)`,
          );
        }
        if (typeof delay !== 'number' || !(delay >= 0)) {
          throw outOfRange('strategy.next() result', 'a delay of 0 ms or more, or null', delay);
        }
        // Wake when the expiry seen on the server comes round, if that is sooner than the next poll.
        const sooner = result ? Math.min(delay, Math.max(0, result.remaining) + EXPIRY_SLACK) : delay;
        await watch!.sleep(sooner, [signal, closing]);
      }
    } finally {
      current.ended = true;
      if (inQueue) host.waiting?.(queued!, false);
      if (unknown!) await this.#giveBack(current.leaseId);
    }
  }

  /**
   * Begins the hold a fair release handed to this wait, as its signal tells (see docs/fairness.md),
   * if that is safe without asking the server; false: the wait confirms with an attempt, as when
   * no signal comes. The grant's token is larger than the one `queuedBy`'s answer saw, so the
   * hand-over came after that answer, and after its attempt was sent: the hold lasts at least until
   * that send time + ttl by the server's clock, and its local deadline is that, less the margin,
   * as an acquisition's is. Too little of it left for the watchdog's first renewal to land in time
   * (or at least half the ttl), or no heartbeat (a hold then lasts until its deadline): confirm.
   */
  #granted(leaseId: string, grant: GrantSignal, queuedBy: { sentAt: number; token: number }): boolean {
    const { ttl, margin, interval, heartbeat } = this.#timing;
    if (heartbeat === false || !(grant.token > queuedBy.token)) return false;
    const deadline = queuedBy.sentAt + ttl - margin;
    if (deadline - this.#context.clock.now() < Math.max(ttl / 2, interval + margin)) return false;
    const { token, expiresAt } = grant;
    const owner = this.#context.settings.owner;
    this.#begin(leaseId, { acquired: true, token, owner, expiresAt, remaining: ttl }, deadline);
    return true;
  }

  #begin(leaseId: string, result: AcquireResult, deadline: number): void {
    const hold = new Hold({
      name: this.name,
      leaseId,
      timing: this.#timing,
      token: result.token,
      owner: result.owner,
      expiresAt: result.expiresAt,
      deadline,
      permit: this.#context.permit,
      clock: this.#context.clock,
      onLost: (h, reason) => this.#lose(h, reason),
      onDeadline: (h) => this.#deadlinePassed(h),
    });
    this.#hold = hold;
    this.#state = 'held';
    this.#endedUnreleased = false;
    this.#context.host.held(this, hold, true);
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
    this.#last = hold;
    this.#state = 'idle';
    this.#context.host.held(this, hold, false);
    hold.end(reason);
    return true;
  }

  async #release(closing: boolean): Promise<boolean> {
    if (!closing) this.#context.closing.throwIfAborted();
    this.#hold?.check(); // a hold whose deadline passed has ended: release() then resolves false
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
    // Stop the work and the renewals before the release lands; a close says so in the reason.
    this.#end(hold, closing ? (this.#context.closing.reason as Error) : releasedReason(this.name));
    const { outcome, contended, grant } = await this.#context.store.release(
      this.name,
      hold.leaseId,
      undefined,
      false,
      this.#timing.fair === true,
    );
    // Resolve only once waiters elsewhere have been told: a process may exit right after this.
    if (outcome === 'released' || outcome === 'expired' || grant)
      await this.#context.host.freed(this.name, contended, grant);
    if (outcome === 'released') {
      this.#emit('released', { name: this.name, token: hold.token });
      return true;
    }
    this.#emit('lost', this.#lostError(hold, outcome));
    return false;
  }

  #lostError(hold: Hold, reason: LostReason): LeaseLostError {
    const why = {
      taken: 'another holder has it now',
      freed: 'someone else freed it (nobody holds it now)',
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
    if (reason === 'expired') void this.#giveBack(hold.leaseId, true);
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
    void this.#giveBack(hold.leaseId, true);
  }

  /**
   * Frees the lock if `leaseId` still holds it (after a local loss, or an acquisition that ended
   * without a hold it may have got). Never rejects: if it fails, the lock expires at its ttl. The
   * manager's close waits for it. It is sent after the watchdog's tick in flight has settled, so
   * a renewal of that tick cannot land after it and revive the hold. `lapsed`: the hold ran out
   * locally, so history records it as expired.
   */
  #giveBack(leaseId: string, lapsed = false): Promise<void> {
    const { store, host } = this.#context;
    const work = (async () => {
      await host.settled();
      const { outcome, contended, grant } = await store.release(
        this.name,
        leaseId,
        undefined,
        lapsed,
        this.#timing.fair,
      );
      // Fair: a waiter that left the queue ('freed') may have moved it on: a hand-over to signal.
      if (outcome === 'released' || outcome === 'expired' || contended) await host.freed(this.name, contended, grant);
    })().catch(() => {});
    host.pending(work);
    return work;
  }

  /** Emits to this lease's listeners, then to the manager's; a listener that throws is reported. */
  #emit<E extends keyof LeaseEvents>(event: E, ...args: LeaseEventArgs[E]): void {
    const { host } = this.#context;
    safeEmit<LeaseEventArgs, E>(this, event, args, (error) => host.report(error, this)); // a throwing listener must not break the lease
    host.forward(event, this, args);
    publish(event, this.#context.kind ?? 'lock', args);
  }
}
