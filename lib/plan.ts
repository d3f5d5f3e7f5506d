// What a caller asks of an acquisition (wait, strategy, signal), parsed once into a plan.
import { parseDuration, type Duration } from './duration.js';
import { invalidType } from './errors.js';
import { checkObject } from './options.js';
import { checkStrategy, strategies, type PollStrategy } from './strategies.js';

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

/** A wait's plan, checked before any await. @internal */
export interface WaitPlan {
  readonly strategy: PollStrategy | undefined;
  readonly signal: AbortSignal | undefined;
  readonly force: boolean;
  /** The contender will sleep and try again if the lock is busy (not `wait: 0`, not one attempt). */
  readonly waits: boolean;
  /** The `wait` asked for in ms (`Infinity`: no limit), if no strategy was given: for telemetry. */
  readonly wait?: number;
}

function checkSignal(signal: unknown, what: string): AbortSignal | undefined {
  if (signal === undefined) return undefined;
  if (!(signal instanceof AbortSignal)) throw invalidType(what, 'an AbortSignal', signal);
  return signal;
}

/** The plan of `acquire()` without options: one attempt. */
const ONE_ATTEMPT: WaitPlan = Object.freeze({ strategy: undefined, signal: undefined, force: false, waits: false });

/** Parses acquire() options into a plan; throws synchronously on bad input. */
export function waitPlan(input: AcquireOptions | undefined, poll: number, what = 'acquire options'): WaitPlan {
  if (input === undefined) return ONE_ATTEMPT;
  const options = checkObject(input, what);
  const signal = checkSignal(options.signal, `${what}.signal`);
  const plan = { signal, force: false };
  // Checked even when a strategy wins over it: a bad value is a mistake worth reporting.
  const within =
    options.wait === undefined || options.wait === Infinity
      ? options.wait
      : parseDuration(options.wait, `${what}.wait`, { allowZero: true, max: Number.MAX_SAFE_INTEGER });
  if (options.strategy !== undefined)
    return { ...plan, strategy: checkStrategy(options.strategy, `${what}.strategy`), waits: true };
  if (within === undefined) return { ...plan, strategy: undefined, waits: false };
  if (within === Infinity)
    return { ...plan, strategy: strategies.infinite({ interval: poll }), waits: true, wait: within };
  return { ...plan, strategy: strategies.bounded({ interval: poll, within }), waits: within > 0, wait: within };
}
