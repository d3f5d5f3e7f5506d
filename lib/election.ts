import { setTimeout as sleep } from 'node:timers/promises';
import { EventEmitter } from 'eventemitter3';
import { parseDuration, type Duration } from './duration.js';
import { safeEmit, type ListenerArgs } from './emit.js';
import { LeaseLostError, LockErrorCode, LockStateError, LockTimeoutError, invalidType } from './errors.js';
import type { Lease } from './lease.js';
import { checkObject } from './options.js';
import { publishLeadership } from './telemetry.js';
import type { LockInfo } from './types.js';

/** Options of {@link LockManager.elect}: the leadership lease's timing. */
export interface ElectionOptions {
  /** How long leadership outlives a leader that stopped renewing (a crash). @defaultValue the manager's `ttl` */
  readonly ttl?: Duration;
  /** How often the leader renews its lease; a leader must renew, so `false` is refused. @defaultValue ttl / 3 */
  readonly heartbeat?: Duration;
}

/** Options of {@link Election.resign}. */
export interface ResignOptions {
  /**
   * How long the resigner stays out of the race before campaigning again, so that another
   * candidate takes over instead of the resigner winning its own lock back. With the default,
   * every live candidate gets at least one attempt first: a waiting candidate tries again no later
   * than the expiry it last saw, which is at most one ttl away. @defaultValue the election's ttl
   */
  readonly rejoinAfter?: Duration;
}

/** Why leadership ended: the lease was lost, `resign()` stepped down, or the election or its manager closed. */
export type RevokedReason = 'lost' | 'resigned' | 'closed';

/** Who leads now, as the server says ({@link Election.current}). */
export interface ElectionLeader {
  /** The leader's `owner` string (by default `hostname:pid`). */
  readonly owner: string;
  /** The leader's term: its lease's fencing token, larger than every earlier term's. */
  readonly token: number;
  /** When this leader was elected, by the server's clock. */
  readonly since: Date;
  /** When its leadership ends unless renewed, by the server's clock. */
  readonly expiresAt: Date;
}

/** Events of an {@link Election}. */
export interface ElectionEvents {
  /** This process leads now; `lease.token` is the term (a fencing token) and `lease.signal` aborts when it ends. */
  elected: (lease: Lease) => void;
  /** This process's leadership ended, for `reason`; `token` is the term that ended. */
  revoked: (reason: RevokedReason, token: number) => void;
}

/** What an election needs from its manager. @internal */
export interface ElectionContext {
  /** Aborts when the manager closes. */
  readonly closing: AbortSignal;
  /** Reports a background error on the manager's `error` event. */
  report(error: unknown): void;
  /** Identifies the lock across this process's managers: server, database, collection and name. */
  key(): string;
  /** Reads the lock as stored. */
  inspect(): Promise<LockInfo | null>;
}

/** A `leading()` registration: its function, and the run of it in progress (runs never overlap). */
interface Duty {
  readonly fn: (signal: AbortSignal) => unknown;
  last: Promise<void>;
  /** The term it last ran for: a run per term, however it was registered. */
  term: AbortSignal | undefined;
}

/**
 * The election that leads each lock in this process. Two elections of one process on the same
 * lock (through two managers) can never both hold it, but without this one could still be
 * reporting a term that ended on the server when the other reports its own (a timer that fired
 * late); so the newcomer first ends the old one's term locally.
 */
const localLeaders = new Map<string, Election>();

/**
 * A candidate for the leadership of one named lock, created by {@link LockManager.elect}. It
 * campaigns from creation until `close()`: it waits for the lock (polling, and waking at once
 * when a lease of the same manager frees it), leads while it holds it (the manager's watchdog
 * renews the lease), and after leadership ends campaigns again. At most one election of one
 * lock leads at a time, across processes and within one.
 *
 * Events: `elected` and `revoked` (see {@link ElectionEvents}). Background errors go to the
 * manager's `error` event.
 */
export class Election extends EventEmitter<ElectionEvents> {
  /** The lock's name. */
  readonly name: string;
  readonly #lease: Lease;
  readonly #context: ElectionContext;
  /** Aborts when the election or its manager closes: ends waits and rests. */
  readonly #halt = new AbortController();
  readonly #onManagerClose: () => void;
  readonly #loop: Promise<void>;
  readonly #duties = new Set<Duty>();
  readonly #runs = new Set<Promise<void>>();
  /** The lease while it leads. */
  #leading: Lease | undefined;
  /** Why the current term is ending, when this election ends it. */
  #ending: 'resigned' | 'closed' | 'superseded' | undefined;
  /** Monotonic time before which the election does not campaign (after resigning). */
  #restUntil = 0;
  #closed: Promise<void> | undefined;

  /** @internal Use {@link LockManager.elect}. */
  constructor(lease: Lease, context: ElectionContext) {
    super();
    if (lease.heartbeat === false) {
      throw invalidType(
        'elect() options.heartbeat',
        'a duration: a leader must renew its lease (with a manager whose heartbeat is false, give the election its own)',
        false,
      );
    }
    this.name = lease.name;
    this.#lease = lease;
    this.#context = context;
    this.#onManagerClose = () => this.#halt.abort(context.closing.reason);
    context.closing.addEventListener('abort', this.#onManagerClose, { once: true });
    this.#loop = this.#campaign();
  }

  /**
   * True while this process leads, as far as it can tell: like `lease.held`, reading it compares
   * with the lease's local deadline, so after the event loop was blocked past it, it is false at
   * the first look (and `revoked` is emitted with `'lost'`).
   */
  get isLeader(): boolean {
    return this.#leading?.held === true;
  }

  /**
   * The leadership lease while this process leads (`token` is the term, `signal` aborts when the
   * term ends), else `undefined`. Local state. The election acquires and releases it: step down
   * with `resign()`, not `lease.release()`.
   */
  get leader(): Lease | undefined {
    return this.#leading?.held === true ? this.#leading : undefined;
  }

  /** True once `close()` has been called or the manager has closed. */
  get closed(): boolean {
    return this.#halt.signal.aborted;
  }

  /**
   * Who leads now, read from the server (whichever process it is), or `null` when nobody does.
   * Rejects with a LockStateError `closed` once the manager is closed.
   */
  async current(): Promise<ElectionLeader | null> {
    const info = await this.#context.inspect();
    if (!info?.held) return null;
    return { owner: info.owner, token: info.token, since: info.acquiredAt, expiresAt: info.expiresAt };
  }

  /**
   * Steps down now if this process leads: frees the lock at once so that another candidate takes
   * over without waiting for the ttl, then stays out of the race for `rejoinAfter` (by default one
   * ttl) before campaigning again. Emits `revoked` with `'resigned'` before the lock is freed.
   * Resolves `true` if it stepped down, `false` if it was not leading. Rejects if the release
   * failed (the leadership then ends when its lease expires) or the manager is closed.
   */
  resign(options?: ResignOptions): Promise<boolean> {
    const opts = checkObject(options, 'resign() options');
    const rest =
      opts.rejoinAfter === undefined
        ? this.#lease.ttl
        : parseDuration(opts.rejoinAfter, 'resign() options.rejoinAfter', { allowZero: true });
    return this.#resign(rest);
  }

  async #resign(rest: number): Promise<boolean> {
    this.#context.closing.throwIfAborted();
    const lease = this.#leading;
    if (!lease) return false;
    this.#ending = 'resigned';
    this.#restUntil = performance.now() + rest;
    return lease.release();
  }

  /**
   * Runs `fn(signal)` each time this process is elected (at once if it leads now), with a signal
   * that aborts when that term ends: stop the work when it does. A run's errors go to the
   * manager's `error` event (not once its signal has aborted). Runs of one `fn` never overlap: if
   * a run is still going when a new term starts, the new run waits for it. Returns a function
   * that stops future runs.
   */
  leading(fn: (signal: AbortSignal) => unknown): () => void {
    if (typeof fn !== 'function') throw invalidType('leading(fn): fn', 'a function', fn);
    const duty: Duty = { fn, last: Promise.resolve(), term: undefined };
    this.#duties.add(duty);
    if (this.#leading) this.#perform(duty, this.#leading.signal);
    return () => void this.#duties.delete(duty);
  }

  /**
   * Stops campaigning for good: ends a wait, and steps down if leading (emitting `revoked` with
   * `'closed'`, freeing the lock at once). Resolves once the campaign has stopped and the runs of
   * `leading()` functions have settled. Closing twice is safe. The manager stays open.
   */
  close(): Promise<void> {
    return (this.#closed ??= this.#close());
  }

  async #close(): Promise<void> {
    this.#halt.abort(new LockStateError(LockErrorCode.Closed, `the election for "${this.name}" is closed`));
    this.#context.closing.removeEventListener('abort', this.#onManagerClose);
    const lease = this.#leading;
    if (lease && !this.#context.closing.aborted) {
      this.#ending = 'closed';
      await lease.release().catch((error: unknown) => this.#context.report(error));
    }
    await this.#loop;
    await Promise.allSettled([...this.#runs]);
  }

  async #campaign(): Promise<void> {
    const halt = this.#halt.signal;
    while (!halt.aborted) {
      try {
        const rest = this.#restUntil - performance.now();
        if (rest > 0) await sleep(rest, undefined, { signal: halt });
        await this.#lease.acquire({ wait: Infinity, signal: halt });
        if (!this.#lease.held) continue; // a listener of the manager ended it already
        const signal = this.#lease.signal;
        this.#elected(this.#lease);
        await new Promise<void>((resolve) => {
          if (signal.aborted) resolve();
          else signal.addEventListener('abort', () => resolve(), { once: true });
        });
      } catch (error) {
        if (halt.aborted) break;
        this.#context.report(error); // not a passing outage (waits ride those out): back off, then campaign again
        await sleep(this.#lease.heartbeat as number, undefined, { signal: halt }).catch(() => {});
      }
    }
  }

  #elected(lease: Lease): void {
    const key = this.#context.key();
    const previous = localLeaders.get(key);
    if (previous && previous !== this) previous.#supersede();
    localLeaders.set(key, this);
    const token = lease.token!;
    this.#leading = lease;
    this.#ending = undefined;
    lease.signal.addEventListener('abort', () => this.#revoked(key, token, lease.signal.reason), { once: true });
    this.#emit('elected', lease);
    publishLeadership('elected', this.name, lease.owner, token);
    for (const duty of this.#duties) {
      if (lease.signal.aborted) break;
      this.#perform(duty, lease.signal);
    }
  }

  #revoked(key: string, token: number, cause: unknown): void {
    if (localLeaders.get(key) === this) localLeaders.delete(key);
    this.#leading = undefined;
    const ending = this.#ending;
    this.#ending = undefined;
    let reason: RevokedReason;
    if (ending === 'superseded' || cause instanceof LeaseLostError || cause instanceof LockTimeoutError) {
      reason = 'lost';
    } else if (ending === 'closed' || this.#halt.signal.aborted || this.#context.closing.aborted) {
      reason = 'closed';
    } else {
      reason = 'resigned';
      // Released some other way than resign() (lease.release()): rest all the same, or we would win it back.
      if (ending !== 'resigned') this.#restUntil = performance.now() + this.#lease.ttl;
    }
    this.#emit('revoked', reason, token);
    publishLeadership('revoked', this.name, this.#lease.owner, token, reason);
  }

  /** Another election of this process holds the lock now: so this term is over, whatever our timers say. */
  #supersede(): void {
    const lease = this.#leading;
    if (!lease) return;
    this.#ending = 'superseded';
    lease.release().catch(() => {}); // ends the term locally at once; the server has given the lock away
  }

  #perform(duty: Duty, signal: AbortSignal): void {
    if (duty.term === signal) return; // registered during this term's `elected`: it runs once
    duty.term = signal;
    const run = duty.last
      .then(async () => {
        if (!signal.aborted) await duty.fn(signal);
      })
      .catch((error: unknown) => {
        if (!signal.aborted) this.#context.report(error);
      });
    duty.last = run;
    this.#runs.add(run);
    void run.then(() => this.#runs.delete(run));
  }

  #emit<E extends keyof ElectionEvents>(event: E, ...args: ListenerArgs<ElectionEvents>[E]): void {
    // A throwing listener must not break the campaign.
    safeEmit<ListenerArgs<ElectionEvents>, E>(this, event, args, (error) => this.#context.report(error));
  }
}
