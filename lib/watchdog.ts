import type { LeaseTiming } from './options.js';
import type { HoldKey, HoldState } from './store.js';
import { LockError, LockErrorCode, type LostReason } from './errors.js';
import { realClock, type Clock } from './clock.js';
import { publishHeartbeat } from './telemetry.js';

export type { Clock } from './clock.js';

/** A held lease, as the watchdog sees it. */
export interface WatchedHold extends HoldKey {
  readonly timing: LeaseTiming;
  /** Monotonic time (the clock's `now()`) at which the hold counts as lost locally. */
  deadline: number;
  /** When the hold ends on the server's clock, as last read. */
  expiresAt: Date;
  /** The server says the hold is no longer ours. */
  lost(reason: LostReason): void;
  /** The local deadline passed with no renewal. */
  deadlinePassed(): void;
  /** A semaphore's permit: renewed and read back by {@link WatchdogStore.permits}, by its lease id. */
  readonly permit?: boolean;
}

/**
 * A fair waiter queued in a lock's or a semaphore's document (see docs/fairness.md): the watchdog
 * renews its queue entry while it waits, so that the entry outlives long sleeps between attempts
 * and ends only when its waiter stops (gives up, or dies).
 */
export interface WatchedWait extends HoldKey {
  /** How often to renew the entry: its lease's interval. */
  readonly interval: number;
  /** Queued for a semaphore's permit (renewed by {@link WatchdogStore.permits}). */
  readonly permit?: boolean;
}

/** The two commands a tick sends (implemented by LockStore; unit tests pass a stub). */
export interface WatchdogStore {
  renew(holds: readonly HoldKey[], timeout: number): Promise<unknown>;
  read(names: readonly string[], timeout: number): Promise<Map<string, HoldState>>;
  /** Renews fair waiters' queue entries in lock documents (sent beside `renew`). */
  renewQueued?(waits: readonly HoldKey[], timeout: number): Promise<unknown>;
  /** The same two commands for semaphore permits (their read answers by lease id), if there can be any. */
  readonly permits?: {
    renew(holds: readonly HoldKey[], timeout: number): Promise<unknown>;
    read(holds: readonly HoldKey[], timeout: number): Promise<Map<string, HoldState>>;
    renewQueued?(waits: readonly HoldKey[], timeout: number): Promise<unknown>;
  };
}

/**
 * One loop per manager that keeps its held leases alive and honest. Each tick renews every held
 * lease that has a heartbeat (one batched update) and then re-reads every held lease (one batched
 * find): two round trips however many leases are held. Semaphore permits have their own batched
 * update and find, sent beside the locks' (two more commands, no more round trips). The read gives
 * each lease's remaining time by the server's clock, from which its local deadline is set: read's
 * send time + remaining − margin. A second timer fires at the earliest local deadline, whether or not a tick is stuck on
 * a hanging command. Ticks never overlap: the next is scheduled when one settles. Both timers are
 * unref'ed: holding a lease does not by itself keep a process alive.
 */
export class Watchdog {
  readonly #store: WatchdogStore;
  readonly #onError: (error: unknown) => void;
  readonly #clock: Clock;
  readonly #holds = new Set<WatchedHold>();
  /** Fair waiters whose queue entries each tick renews, beside the holds (same round trip). */
  readonly #waits = new Set<WatchedWait>();
  #tickTimer: unknown;
  #tickAt = Infinity;
  #ticking = false;
  /** The tick in flight, if any. */
  #inFlight: Promise<void> | undefined;
  #deadlineTimer: unknown;
  #deadlineAt = Infinity;
  #stopped = false;
  /** The last server-minus-local clock offset seen, and how uncertain it was (half a round trip). */
  #clockSample: { offset: number; uncertainty: number } | undefined;
  /** Completed ticks (for tests and the benchmark). */
  ticks = 0;

  constructor(store: WatchdogStore, onError: (error: unknown) => void, clock: Clock = realClock) {
    this.#store = store;
    this.#onError = onError;
    this.#clock = clock;
  }

  /** Number of holds watched. */
  get size(): number {
    return this.#holds.size;
  }

  add(hold: WatchedHold): void {
    if (this.#stopped) return;
    this.#holds.add(hold);
    if (!this.#ticking) this.#scheduleTick(this.#clock.now() + hold.timing.interval);
    if (hold.deadline < this.#deadlineAt) this.#armDeadline(); // only a sooner deadline needs the timer moved
  }

  remove(hold: WatchedHold): void {
    this.#holds.delete(hold);
  }

  /** Renews `wait`'s queue entry at each tick until {@link removeWait}. */
  addWait(wait: WatchedWait): void {
    if (this.#stopped) return;
    this.#waits.add(wait);
    if (!this.#ticking) this.#scheduleTick(this.#clock.now() + wait.interval);
  }

  removeWait(wait: WatchedWait): void {
    this.#waits.delete(wait);
  }

  /** Resolves once no tick is in flight (at once if none is): its renewals have landed or failed. */
  idle(): Promise<void> {
    return this.#inFlight ?? Promise.resolve();
  }

  /** Stops both timers for good; safe to call twice. */
  stop(): void {
    this.#stopped = true;
    this.#holds.clear();
    this.#waits.clear();
    this.#clock.clearTimeout(this.#tickTimer);
    this.#clock.clearTimeout(this.#deadlineTimer);
    this.#tickAt = this.#deadlineAt = Infinity;
  }

  /** Schedules the next tick at `at`, unless one is already due sooner. */
  #scheduleTick(at: number): void {
    if (this.#stopped || (this.#holds.size === 0 && this.#waits.size === 0) || at >= this.#tickAt) return;
    this.#clock.clearTimeout(this.#tickTimer);
    this.#tickAt = at;
    this.#tickTimer = this.#clock.setTimeout(
      () => {
        const tick = this.#tick().finally(() => {
          if (this.#inFlight === tick) this.#inFlight = undefined;
        });
        this.#inFlight = tick;
      },
      Math.max(0, at - this.#clock.now()),
    );
    (this.#tickTimer as { unref?(): unknown }).unref?.();
  }

  #latestDeadline(): number {
    let latest = -Infinity;
    for (const hold of this.#holds) latest = Math.max(latest, hold.deadline);
    return latest;
  }

  #shortestInterval(): number {
    let shortest = Infinity;
    for (const hold of this.#holds) shortest = Math.min(shortest, hold.timing.interval);
    for (const wait of this.#waits) shortest = Math.min(shortest, wait.interval);
    return shortest;
  }

  async #tick(): Promise<void> {
    this.#tickAt = Infinity;
    if (this.#holds.size === 0 && this.#waits.size === 0) return; // everything ended since the tick was scheduled
    this.#ticking = true;
    const started = this.#clock.now();
    let failed = false;
    /** For telemetry: holds watched, renewed, and found lost by this tick. */
    const count = { leases: this.#holds.size, renewed: 0, lost: 0 };
    try {
      const holds = [...this.#holds];
      // A renewal is worth waiting for as long as some hold's deadline has not passed (the deadline
      // timer ends the others on time, however long this takes); at least one interval.
      const timeout = Math.max(this.#shortestInterval(), this.#latestDeadline() - started);
      const renewable = holds.filter((h) => h.timing.heartbeat !== false);
      const renewSent = this.#clock.now();
      // Queue entries are renewed beside the holds, in the same round trip; never read back (the
      // waiter's next attempt finds where it stands). A failure only leaves them to expire.
      const waits = [...this.#waits];
      const queued =
        waits.length > 0
          ? this.#renewQueued(waits, timeout).catch((error: unknown) => {
              failed = true;
              this.#onError(error);
            })
          : undefined;
      let renewed = false;
      if (renewable.length > 0) {
        await this.#byKind(
          renewable,
          (locks) => this.#store.renew(locks, timeout),
          (permits, store) => store.renew(permits, timeout),
        ).then(
          () => {
            renewed = true;
            count.renewed = renewable.length;
          },
          (error: unknown) => {
            failed = true;
            this.#onError(error);
          },
        );
      }
      await queued;
      const readSent = this.#clock.now();
      const [locks, permits] = await this.#byKind(
        holds,
        (some) =>
          this.#store.read(
            some.map((h) => h.name),
            timeout,
          ),
        (some, store) => store.read(some, timeout),
      );
      this.#sampleServerClock(
        [...(locks ?? []).values(), ...(permits ?? []).values()],
        readSent,
        this.#clock.now(),
        holds,
      );
      for (const hold of holds) {
        if (!this.#holds.has(hold)) continue; // released or lost while the tick was out
        const state = hold.permit ? permits?.get(hold.leaseId) : locks?.get(hold.name);
        const reason: LostReason | undefined = !state
          ? 'deleted'
          : state.leaseId === null
            ? 'freed'
            : state.leaseId !== hold.leaseId
              ? 'taken'
              : state.remaining <= 0
                ? 'expired'
                : undefined;
        if (reason || !state) {
          this.#holds.delete(hold);
          count.lost++;
          hold.lost(reason ?? 'deleted');
          continue;
        }
        // The server said, at some moment after readSent, that the hold has `remaining` ms left.
        let deadline = readSent + state.remaining - hold.timing.margin;
        if (state.confirmed === false) {
          // Not a majority read: what it shows may not survive a failover. Rest the deadline only on
          // this tick's acknowledged (majority) renewal, sent at renewSent, or keep the old one.
          const acknowledged = renewed && hold.timing.heartbeat !== false;
          deadline = Math.min(
            deadline,
            acknowledged ? renewSent + hold.timing.ttl - hold.timing.margin : hold.deadline,
          );
        }
        hold.deadline = deadline;
        hold.expiresAt = state.expiresAt;
      }
    } catch (error) {
      failed = true;
      this.#onError(error);
    } finally {
      this.#ticking = false;
      this.ticks++;
      publishHeartbeat(count.leases, count.renewed, count.lost, failed, this.#clock.now() - started);
      this.#armDeadline();
      const interval = this.#shortestInterval();
      // After a failure, try again sooner: the deadline still bounds what a lost lease can do.
      this.#scheduleTick(failed ? this.#clock.now() + interval / 2 : started + interval);
    }
  }

  /** Renews the queue entries of `waits`: those of locks and of permits at once. */
  #renewQueued(waits: readonly WatchedWait[], timeout: number): Promise<unknown> {
    const ofLocks = waits.filter((w) => !w.permit);
    const ofPermits = waits.filter((w) => w.permit);
    return Promise.all([
      ofLocks.length > 0 ? this.#store.renewQueued?.(ofLocks, timeout) : undefined,
      ofPermits.length > 0 ? this.#store.permits?.renewQueued?.(ofPermits, timeout) : undefined,
    ]);
  }

  /** Sends `locks` the holds of locks and `permits` those of permits, at once (each only if there are any). */
  #byKind<T>(
    holds: readonly WatchedHold[],
    locks: (holds: readonly WatchedHold[]) => Promise<T>,
    permits: (holds: readonly WatchedHold[], store: NonNullable<WatchdogStore['permits']>) => Promise<T>,
  ): Promise<[T | undefined, T | undefined]> {
    const ofLocks = holds.filter((h) => !h.permit);
    const ofPermits = holds.filter((h) => h.permit);
    const store = this.#store.permits;
    return Promise.all([
      ofLocks.length > 0 ? locks(ofLocks) : undefined,
      ofPermits.length > 0 && store ? permits(ofPermits, store) : undefined,
    ]);
  }

  /**
   * Tracks the offset between the server's clock (the judge of every expiry) and this process's
   * monotonic clock, from the `$$NOW` a read carries. A jump larger than half the smallest margin
   * (beyond what the round trip can explain) means the judge's clock moved: a clock stepped on the
   * server, or a failover to a member whose clock differs. Held leases already follow the server's
   * new view from this read on; the jump is reported, since it ate into (or past) the margin.
   */
  #sampleServerClock(states: Iterable<HoldState>, sent: number, received: number, holds: readonly WatchedHold[]): void {
    let now: Date | undefined;
    for (const state of states) if (state.now) now = state.now;
    if (!now || holds.length === 0) return;
    const sample = { offset: now.getTime() - (sent + received) / 2, uncertainty: (received - sent) / 2 };
    const previous = this.#clockSample;
    this.#clockSample = sample;
    if (!previous) return;
    const jump = sample.offset - previous.offset;
    const margin = Math.min(...holds.map((h) => h.timing.margin));
    const noise = sample.uncertainty + previous.uncertainty;
    if (Math.abs(jump) - noise > margin / 2) {
      this.#onError(
        new LockError(
          LockErrorCode.Clock,
          `the server's clock jumped ${jump > 0 ? 'ahead' : 'back'} by about ${Math.round(Math.abs(jump))} ms against this process's (a stepped clock, or a failover to a member whose clock differs); the safety margin is ${Math.round(margin)} ms: keep the clocks of every member that can become primary within the margin of each other`,
        ),
      );
    }
  }

  /** Points the deadline timer at the earliest local deadline. */
  #armDeadline(): void {
    if (this.#stopped) return;
    let earliest = Infinity;
    for (const hold of this.#holds) earliest = Math.min(earliest, hold.deadline);
    this.#clock.clearTimeout(this.#deadlineTimer);
    this.#deadlineAt = earliest;
    if (earliest === Infinity) return;
    this.#deadlineTimer = this.#clock.setTimeout(() => this.#deadlinesDue(), Math.max(0, earliest - this.#clock.now()));
    (this.#deadlineTimer as { unref?(): unknown }).unref?.();
  }

  #deadlinesDue(): void {
    this.#deadlineAt = Infinity;
    const now = this.#clock.now();
    for (const hold of [...this.#holds]) {
      if (hold.deadline <= now) {
        this.#holds.delete(hold);
        hold.deadlinePassed();
      }
    }
    this.#armDeadline();
  }
}
