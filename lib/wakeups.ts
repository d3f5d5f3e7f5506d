import { createHash } from 'node:crypto';
import { realClock, type Clock } from './clock.js';
import { MAX_TIMER } from './timeout.js';

/**
 * A fair hand-over as a wake-up carries it (see docs/fairness.md): the lock went to the waiter
 * whose lease id has the digest `to`, with fencing token `token`, until `expiresAt` by the
 * server's clock. The lease id itself never leaves the process that made it.
 */
export interface GrantSignal {
  readonly to: string;
  readonly token: number;
  readonly expiresAt: Date;
}

/** The digest of a lease id that a grant is addressed to: 128 bits of its SHA-256. */
export function grantKey(leaseId: string): string {
  return createHash('sha256').update(leaseId).digest('base64url').slice(0, 22);
}

interface Interest {
  /** Bumped by every wake-up of the name. */
  epoch: number;
  /** Waits in progress for the name. */
  watchers: number;
  /** The waits asleep now, each with what ends its sleep. */
  sleepers: Map<Watch, () => void>;
  /** The waits that may be handed the lock, by the digest of their lease id. */
  expecting: Map<string, Watch>;
}

/**
 * One wait's interest in a lock name, from its first attempt to its end. Before each attempt
 * the wait marks the current epoch; a release of the name seen while the attempt was in flight
 * (when nobody was asleep to wake) then ends the next sleep at once instead of being missed.
 */
export class Watch {
  #marked = 0;
  #key: string | undefined;
  #grant: GrantSignal | undefined;

  constructor(
    private readonly interest: Interest,
    private readonly release: () => void,
    private readonly clock: Clock = realClock,
    private readonly asleep: () => void = () => {},
  ) {}

  /** Call just before sending an attempt. */
  mark(): void {
    this.#marked = this.interest.epoch;
  }

  /**
   * Sleeps up to `delay` ms, less if the name is released (now, or since the last mark).
   * Rejects with the reason of the first of `signals` to abort. The timer keeps the process
   * alive: someone is awaiting this wait.
   */
  sleep(delay: number, signals: readonly (AbortSignal | undefined)[]): Promise<void> {
    const { interest, clock } = this;
    this.asleep();
    return new Promise<void>((resolve, reject) => {
      const active = signals.filter((s): s is AbortSignal => s !== undefined);
      const aborted = active.find((s) => s.aborted);
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- an abort reason is whatever the caller chose
      if (aborted) return reject(aborted.reason);
      if (interest.epoch !== this.#marked) return resolve();
      const done = (error?: unknown) => {
        clock.clearTimeout(timer);
        for (const s of active) s.removeEventListener('abort', onAbort);
        if (interest.sleepers.get(this) === wake) interest.sleepers.delete(this);
        if (error === undefined) resolve();
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- as above
        else reject(error);
      };
      const wake = () => done();
      const onAbort = (event: Event) => done((event.target as AbortSignal | null)?.reason);
      const timer = clock.setTimeout(wake, Math.min(Math.max(0, delay), MAX_TIMER));
      interest.sleepers.set(this, wake);
      for (const s of active) s.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * From now on, a grant addressed to `leaseId` is kept for this wait (see {@link granted}); only
   * the latest id counts.
   */
  expect(leaseId: string): void {
    const key = grantKey(leaseId);
    if (key === this.#key) return;
    this.#forget();
    this.#key = key;
    this.interest.expecting.set(key, this);
  }

  /** The grant addressed to this wait since the last call, if any (taken: the next call has none). */
  granted(): GrantSignal | undefined {
    const grant = this.#grant;
    this.#grant = undefined;
    return grant;
  }

  /** @internal */
  receive(grant: GrantSignal): void {
    this.#grant = grant;
  }

  #forget(): void {
    if (this.#key !== undefined && this.interest.expecting.get(this.#key) === this)
      this.interest.expecting.delete(this.#key);
    this.#key = undefined;
    this.#grant = undefined;
  }

  /** Ends the wait's interest; call exactly once, when the wait ends however it ends. */
  done(): void {
    this.#forget();
    this.release();
  }
}

/**
 * Where waiting acquirers of one manager sleep between attempts, and what wakes them: a release
 * of the name by a lease of the same manager, or a release signal from another process.
 */
export class Wakeups {
  readonly #interests = new Map<string, Interest>();
  readonly #onDemand: (watching: boolean) => void;
  readonly #clock: Clock;
  #watchers = 0;

  /**
   * `onDemand(true)` when the first wait goes to sleep, `onDemand(false)` when the last wait that
   * slept ends. An acquisition that succeeds at its first attempt never sleeps, and never starts
   * the listener for other processes' releases (and its wake-ups, on the server and here). A
   * release sent between a wait's first attempt and the listener's start is not missed: the
   * listener's first batch holds the signals still in the capped collection. The waits sleep on
   * `clock`'s timers.
   */
  constructor(onDemand: (watching: boolean) => void = () => {}, clock: Clock = realClock) {
    this.#onDemand = onDemand;
    this.#clock = clock;
  }

  /** Waits in progress that have slept (see the constructor). */
  get watching(): number {
    return this.#watchers;
  }

  /** Registers a wait for `name`; the returned Watch's `done()` must be called when it ends. */
  watch(name: string): Watch {
    let interest = this.#interests.get(name);
    if (!interest)
      this.#interests.set(name, (interest = { epoch: 0, watchers: 0, sleepers: new Map(), expecting: new Map() }));
    interest.watchers++;
    let released = false;
    let slept = false;
    return new Watch(
      interest,
      () => {
        if (released) return;
        released = true;
        if (--interest.watchers === 0) this.#interests.delete(name);
        if (slept && --this.#watchers === 0) this.#onDemand(false);
      },
      this.#clock,
      () => {
        if (slept || released) return;
        slept = true;
        if (++this.#watchers === 1) this.#onDemand(true);
      },
    );
  }

  /**
   * The name was released: every wait for it tries again now. With `grant` (a fair hand-over), the
   * lock is not free but held by the waiter the grant is addressed to: only that wait, if it is
   * here, wakes (and may resolve without another attempt); the others sleep on, as an attempt
   * would only find the lock held. Waits with an attempt in flight still try once more (the
   * grant may be addressed to one whose first answer is on its way).
   */
  wake(name: string, grant?: GrantSignal): void {
    const interest = this.#interests.get(name);
    if (!interest) return;
    interest.epoch++;
    if (grant) {
      const addressed = interest.expecting.get(grant.to);
      addressed?.receive(grant);
      if (addressed) interest.sleepers.get(addressed)?.();
      return;
    }
    for (const wake of [...interest.sleepers.values()]) wake();
  }
}
