// One hold of a lease: what the watchdog watches, and the AbortSignal of that hold.
import type { Clock } from './clock.js';
import type { LostReason } from './errors.js';
import type { LeaseTiming } from './options.js';
import type { WatchedHold } from './watchdog.js';

/** What a {@link Hold} is made of. */
export interface HoldInit {
  readonly name: string;
  readonly leaseId: string;
  readonly timing: LeaseTiming;
  readonly token: number;
  readonly owner: string;
  readonly expiresAt: Date;
  /** Local deadline, by `clock`. */
  readonly deadline: number;
  /** A semaphore's permit (the watchdog renews and reads it in the semaphore's document). */
  readonly permit?: boolean;
  /** The clock the deadline is measured by (the lease's). */
  readonly clock: Pick<Clock, 'now'>;
  readonly onLost: (hold: Hold, reason: LostReason) => void;
  readonly onDeadline: (hold: Hold) => void;
}

// eslint-disable-next-line @typescript-eslint/unbound-method -- called with the signal as `this`
const abortedGetter = Object.getOwnPropertyDescriptor(AbortSignal.prototype, 'aborted')!.get!;

/**
 * One hold of a lease: what the watchdog watches, and the AbortSignal of that hold. Its signal
 * looks at the local deadline whenever it is read: after the event loop was blocked past the
 * deadline (a long synchronous task, a GC pause), `signal.aborted` is true at the first look,
 * before any timer has had a chance to run.
 *
 * The signal is made on first use: most holds (an acquire() then a release()) never have theirs
 * read, and an AbortSignal costs more to make than the rest of the hold. Read during the hold, it
 * aborts when the hold ends; read after, it is already aborted, with the same reason.
 */
export class Hold implements WatchedHold {
  readonly name: string;
  readonly leaseId: string;
  readonly timing: LeaseTiming;
  readonly token: number;
  readonly owner: string;
  readonly permit: boolean;
  expiresAt: Date;
  deadline: number;
  readonly #clock: Pick<Clock, 'now'>;
  readonly #onLost: (hold: Hold, reason: LostReason) => void;
  readonly #onDeadline: (hold: Hold) => void;
  /** The controller of the signal, once it has been read during the hold. */
  #controller: AbortController | undefined;
  #signal: AbortSignal | undefined;
  #ended = false;
  #reason: unknown;

  constructor(init: HoldInit) {
    ({
      name: this.name,
      leaseId: this.leaseId,
      timing: this.timing,
      token: this.token,
      owner: this.owner,
      expiresAt: this.expiresAt,
      deadline: this.deadline,
    } = init);
    this.permit = init.permit === true;
    this.#clock = init.clock;
    this.#onLost = init.onLost;
    this.#onDeadline = init.onDeadline;
  }

  /** Aborts when the hold ends, with the reason it ended; the same signal at every read. */
  get signal(): AbortSignal {
    if (this.#signal) return this.#signal;
    if (this.#ended) return (this.#signal = AbortSignal.abort(this.#reason));
    const controller = new AbortController();
    const signal = controller.signal;
    Object.defineProperties(signal, {
      aborted: {
        configurable: true,
        get: () => {
          this.check();
          return abortedGetter.call(signal) as boolean;
        },
      },
      throwIfAborted: {
        configurable: true,
        value: () => {
          this.check();
          AbortSignal.prototype.throwIfAborted.call(signal);
        },
      },
    });
    this.#controller = controller;
    return (this.#signal = signal);
  }

  /** True once {@link end} was called. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Ends the hold locally: its signal aborts with `reason` (the first end's). */
  end(reason: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
  }

  /** Ends the hold now if its local deadline has passed (whether or not a timer has fired yet). */
  check(): void {
    if (!this.#ended && this.#clock.now() >= this.deadline) this.#onDeadline(this);
  }

  lost(reason: LostReason): void {
    this.#onLost(this, reason);
  }

  deadlinePassed(): void {
    this.#onDeadline(this);
  }
}
