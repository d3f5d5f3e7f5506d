// Diagnostics channels (node:diagnostics_channel) and debug logs (NODE_DEBUG=mongoose-distributed-lock)
// for what leases, the watchdog, elections and scheduled runs do: two tracing channels (each
// acquisition, each withLock-like call) and plain channels for lease events, heartbeat ticks,
// leadership and runs. Published only when someone subscribes, printed only when the debug log is
// on: otherwise each costs one check. The channel names and their messages' fields are a public
// contract, kept stable like the error codes: docs/telemetry.md.
import diagnosticsChannel from 'node:diagnostics_channel';
import { debuglog, inspect } from 'node:util';
import { LeaseLostError, LockErrorCode, LockStateError, LockTimeoutError, type LostReason } from './errors.js';
import type { AcquiredEvent, LeaseEventArgs, ReleasedEvent, TimeoutEvent } from './lease-types.js';

/**
 * What a lease holds: a lock, a semaphore's permit, a read-write lock's read or write hold, or an
 * election's leadership.
 */
export type HoldKind = 'lock' | 'permit' | 'read' | 'write' | 'election';

/**
 * How an acquisition ended: held (`acquired`), one attempt that found the lock taken (`busy`), a
 * bounded wait that gave up (`timeout`), its signal aborted (`aborted`), the manager closed
 * (`closed`), or another error (`error`).
 */
export type AcquireOutcome = 'acquired' | 'busy' | 'timeout' | 'aborted' | 'closed' | 'error';

/**
 * The context of the tracing channel `mongoose-distributed-lock:acquire`, one per acquisition
 * (its waits included). `outcome` and `token` are set before `asyncStart`/`error` are published.
 */
export interface AcquireContext {
  readonly name: string;
  readonly kind: HoldKind;
  readonly owner: string;
  /** The wait asked for, in ms: 0 for one attempt, `Infinity` for no limit, `undefined` when a strategy decides. */
  readonly wait: number | undefined;
  outcome?: AcquireOutcome;
  /** The fencing token of the hold, when acquired. */
  token?: number;
}

/**
 * How a `withLock`-like call ended: `fn`'s result was kept (`done`), `fn` threw (`failed`), the hold
 * ended before the end (`lost`), or the acquisition did not get the lock (its outcome).
 */
export type WithOutcome = 'done' | 'failed' | 'lost' | Exclude<AcquireOutcome, 'acquired' | 'busy'>;

/**
 * The context of the tracing channel `mongoose-distributed-lock:with`: one per `withLock`,
 * `withPermit`, `withRead` and `withWrite` call, from its acquisition to its release.
 */
export interface WithContext {
  readonly name: string;
  readonly kind: HoldKind;
  readonly owner: string;
  outcome?: WithOutcome;
  /** The fencing token of the hold, once acquired. */
  token?: number;
}

/** Message of `mongoose-distributed-lock:heartbeat`: one per watchdog tick of a manager. */
export interface HeartbeatMessage {
  /** Holds the tick renewed or read back. */
  readonly leases: number;
  /** Holds it renewed (0 if the renewal failed). */
  readonly renewed: number;
  /** Holds it found lost. */
  readonly lost: number;
  /** The tick failed (its error went to the manager's `error` event). */
  readonly failed: boolean;
  readonly durationMs: number;
}

/** Message of `mongoose-distributed-lock:elected`. */
export interface ElectedMessage {
  readonly name: string;
  readonly owner: string;
  /** The term: the leadership lease's fencing token. */
  readonly token: number;
}

/** Message of `mongoose-distributed-lock:revoked`. */
export interface RevokedMessage extends ElectedMessage {
  readonly reason: 'lost' | 'resigned' | 'closed';
}

/** How a scheduled run ended, in `mongoose-distributed-lock:run`'s `end` message. */
export type RunEndOutcome = 'done' | 'failed' | 'lost';

/** Message of `mongoose-distributed-lock:run`: a scheduled run (a tick's attempt) starts, then ends. */
export interface RunMessage {
  readonly phase: 'start' | 'end';
  /** The schedule's name (or runOnce's). */
  readonly name: string;
  /** The tick. */
  readonly scheduledAt: Date;
  readonly attempt: number;
  readonly token: number;
  readonly owner: string;
  /** Phase `end` only. */
  readonly outcome?: RunEndOutcome;
  /** Phase `end` only: from the run's start. */
  readonly durationMs?: number;
  /** Phase `end` of a `failed` or `lost` run: why. */
  readonly error?: Error;
}

/** Message of `mongoose-distributed-lock:acquired`. */
export interface AcquiredMessage {
  readonly name: string;
  readonly kind: HoldKind;
  readonly owner: string;
  readonly token: number;
  readonly expiresAt: Date;
}

/** Message of `mongoose-distributed-lock:released`. */
export interface ReleasedMessage {
  readonly name: string;
  readonly kind: HoldKind;
  readonly token: number;
}

/** Message of `mongoose-distributed-lock:lost`. */
export interface LostMessage {
  readonly name: string;
  readonly kind: HoldKind;
  readonly token: number;
  readonly reason: LostReason;
  readonly error: LeaseLostError;
}

/** Message of `mongoose-distributed-lock:timeout`. */
export interface TimeoutMessage {
  readonly name: string;
  readonly kind: HoldKind;
  readonly phase: 'acquire' | 'hold';
  /** The token of the hold that ran out (phase `hold` only). */
  readonly token?: number;
}

/**
 * The plain channels' names: subscribe with `diagnostics_channel.subscribe(CHANNELS.acquired, fn)`.
 * The tracing channels are {@link TRACING_CHANNELS}.
 */
export const CHANNELS = Object.freeze({
  acquired: 'mongoose-distributed-lock:acquired',
  released: 'mongoose-distributed-lock:released',
  lost: 'mongoose-distributed-lock:lost',
  timeout: 'mongoose-distributed-lock:timeout',
  heartbeat: 'mongoose-distributed-lock:heartbeat',
  elected: 'mongoose-distributed-lock:elected',
  revoked: 'mongoose-distributed-lock:revoked',
  run: 'mongoose-distributed-lock:run',
});

/**
 * The tracing channels' names: `diagnostics_channel.tracingChannel(TRACING_CHANNELS.acquire)`.
 * `acquire` wraps each acquisition, `with` each withLock-like call.
 */
export const TRACING_CHANNELS = Object.freeze({
  acquire: 'mongoose-distributed-lock:acquire',
  with: 'mongoose-distributed-lock:with',
});

type LeaseEvent = keyof LeaseEventArgs;

const channels = {
  acquired: diagnosticsChannel.channel(CHANNELS.acquired),
  released: diagnosticsChannel.channel(CHANNELS.released),
  lost: diagnosticsChannel.channel(CHANNELS.lost),
  timeout: diagnosticsChannel.channel(CHANNELS.timeout),
  heartbeat: diagnosticsChannel.channel(CHANNELS.heartbeat),
  elected: diagnosticsChannel.channel(CHANNELS.elected),
  revoked: diagnosticsChannel.channel(CHANNELS.revoked),
  run: diagnosticsChannel.channel(CHANNELS.run),
};

const acquireChannel = diagnosticsChannel.tracingChannel<unknown, AcquireContext>(TRACING_CHANNELS.acquire);
const withChannel = diagnosticsChannel.tracingChannel<unknown, WithContext>(TRACING_CHANNELS.with);

const debug = debuglog('mongoose-distributed-lock');

/** Prints a debug line of `event` with `fields` (callers check `debug.enabled` first). */
function log(event: string, fields: object): void {
  debug('%s %s', event, inspect(fields, { breakLength: Infinity }));
}

/** The message of one lease event. */
function message<E extends LeaseEvent>(event: E, kind: HoldKind, args: LeaseEventArgs[E]): object {
  switch (event) {
    case 'acquired': {
      const { name, owner, token, expiresAt } = args[0] as AcquiredEvent;
      return { name, kind, owner, token, expiresAt } satisfies AcquiredMessage;
    }
    case 'released': {
      const { name, token } = args[0] as ReleasedEvent;
      return { name, kind, token } satisfies ReleasedMessage;
    }
    case 'lost': {
      const error = args[0] as LeaseLostError;
      return { name: error.lock, kind, token: error.token, reason: error.reason, error } satisfies LostMessage;
    }
    default: {
      const { name, phase, token } = args[0] as TimeoutEvent;
      return { name, kind, phase, ...(token !== undefined && { token }) } satisfies TimeoutMessage;
    }
  }
}

/** Publishes a lease event on its channel and to the debug log, if anyone listens: nothing is built otherwise. @internal */
export function publish<E extends LeaseEvent>(event: E, kind: HoldKind, args: LeaseEventArgs[E]): void {
  const channel = channels[event];
  const logging = debug.enabled;
  if (!channel.hasSubscribers && !logging) return;
  const payload = message(event, kind, args);
  if (channel.hasSubscribers) channel.publish(payload);
  if (logging) {
    const { error: _error, ...fields } = payload as { error?: unknown }; // the reason says it; no stack trace
    debug('%s %s %s', event, kind, inspect(fields, { breakLength: Infinity }));
  }
}

/** The wait a plan asks for, as {@link AcquireContext.wait} says it. */
function planWait(plan: { strategy: unknown; wait?: number }): number | undefined {
  return plan.strategy === undefined ? 0 : plan.wait;
}

/** The outcome of an acquisition (or a withLock-like call) that rejected with `error`. */
function failure(error: unknown, signal: AbortSignal | undefined): Exclude<AcquireOutcome, 'acquired' | 'busy'> {
  if (error instanceof LockTimeoutError && error.phase === 'acquire') return 'timeout';
  if (signal?.aborted && error === signal.reason) return 'aborted';
  if (error instanceof LockStateError && error.code === LockErrorCode.Closed) return 'closed';
  return 'error';
}

/** A lease's acquisition, as telemetry sees it. @internal */
export interface TracedAcquisition {
  readonly name: string;
  readonly kind: HoldKind;
  readonly owner: string;
  readonly plan: { readonly strategy: unknown; readonly signal: AbortSignal | undefined; readonly wait?: number };
  /** The acquisition's attempts. */
  readonly run: () => Promise<boolean>;
  /** The token once held. */
  readonly token: () => number | undefined;
}

/**
 * Runs an acquisition, traced on `mongoose-distributed-lock:acquire` and logged if anyone listens;
 * just runs it otherwise (a caller checks {@link traceAcquisitions} first, so as to build nothing). @internal
 */
export function traceAcquire(acquisition: TracedAcquisition): Promise<boolean> {
  const { name, kind, owner, plan, run, token } = acquisition;
  const context: AcquireContext = { name, kind, owner, wait: planWait(plan) };
  const logging = debug.enabled;
  const started = performance.now();
  if (logging) log('acquire', context);
  const traced = async () => {
    try {
      const held = await run();
      context.outcome = held ? 'acquired' : 'busy';
      if (held) context.token = token();
      return held;
    } catch (error) {
      context.outcome = failure(error, plan.signal);
      throw error;
    } finally {
      if (logging) log('acquire-end', { ...context, waitedMs: performance.now() - started });
    }
  };
  return acquireChannel.hasSubscribers ? acquireChannel.tracePromise(traced, context) : traced();
}

/** Whether an acquisition is worth tracing: someone subscribes to the acquire channel, or the debug log is on. @internal */
export function traceAcquisitions(): boolean {
  return acquireChannel.hasSubscribers || debug.enabled;
}

/** A debug line per acquisition attempt (nothing if the debug log is off). @internal */
export function logAttempt(name: string, attempt: number, acquired: boolean, durationMs: number): void {
  if (debug.enabled) log('attempt', { name, attempt, acquired, durationMs });
}

/**
 * Runs a withLock-like call, traced on `mongoose-distributed-lock:with` if anyone subscribes; just
 * runs it otherwise. @internal
 */
export function traceWith<T>(
  hold: { readonly name: string; readonly kind: HoldKind; readonly owner: string; readonly token: number | undefined },
  signal: AbortSignal | undefined,
  call: () => Promise<T>,
): Promise<T> {
  if (!withChannel.hasSubscribers) return call();
  const context: WithContext = { name: hold.name, kind: hold.kind, owner: hold.owner };
  const before = hold.token;
  return withChannel.tracePromise(async () => {
    try {
      const result = await call();
      context.outcome = 'done';
      return result;
    } catch (error) {
      const held = hold.token !== before;
      context.outcome = !held
        ? failure(error, signal)
        : error instanceof LeaseLostError || (error instanceof LockTimeoutError && error.phase === 'hold')
          ? 'lost'
          : error instanceof LockStateError && error.code === LockErrorCode.Closed
            ? 'closed'
            : 'failed';
      throw error;
    } finally {
      if (hold.token !== before) context.token = hold.token;
    }
  }, context);
}

/** Publishes a watchdog tick on `mongoose-distributed-lock:heartbeat`, and logs it. @internal */
export function publishHeartbeat(leases: number, renewed: number, lost: number, failed: boolean, durationMs: number) {
  const logging = debug.enabled;
  if (!channels.heartbeat.hasSubscribers && !logging) return;
  const message: HeartbeatMessage = { leases, renewed, lost, failed, durationMs };
  channels.heartbeat.publish(message);
  if (logging) log('heartbeat', message);
}

/** Publishes an election's `elected` or `revoked`, and logs it. @internal */
export function publishLeadership(
  event: 'elected' | 'revoked',
  name: string,
  owner: string,
  token: number,
  reason?: RevokedMessage['reason'],
): void {
  const channel = channels[event];
  const logging = debug.enabled;
  if (!channel.hasSubscribers && !logging) return;
  const message: ElectedMessage | RevokedMessage = reason ? { name, owner, token, reason } : { name, owner, token };
  channel.publish(message);
  if (logging) log(event, message);
}

/** Publishes a scheduled run's start or end on `mongoose-distributed-lock:run`, and logs it. @internal */
export function publishRun(message: () => RunMessage): void {
  const logging = debug.enabled;
  if (!channels.run.hasSubscribers && !logging) return;
  const built = message();
  channels.run.publish(built);
  if (logging) {
    const { error, ...fields } = built;
    log(`run-${built.phase}`, error ? { ...fields, error: error.message } : fields);
  }
}
