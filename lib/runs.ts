// Runs of scheduled ticks: their records (`<collection>.runs`) and `runOnce`, which runs one tick
// at most once across every process, under the tick's own lease.
import { parseDuration, type Duration } from './duration.js';
import { LeaseLostError, LockError, LockErrorCode, LockTimeoutError, invalidType, outOfRange } from './errors.js';
import type { HeldLease } from './lease.js';
import type { LockManager } from './manager.js';
import { isClosedConnection, isConnectionError } from './mongo-errors.js';
import { checkObject } from './options.js';
import type { RunStore } from './run-store.js';
import { publishRun, type RunEndOutcome } from './telemetry.js';

/** How a tick's run stands or ended. */
export type RunOutcome = 'running' | 'done' | 'failed' | 'lost' | 'missed';

/** A tick's record, as {@link LockManager.runs} returns it (newest first). */
export interface RunRecord {
  /** The schedule's name. */
  readonly name: string;
  /** The tick: the time the pattern gave, not when a process got to it. */
  readonly scheduledAt: Date;
  /** 1 for the first run of the tick, 2 for its first retry, ...; 0 for a tick recorded `missed`. */
  readonly attempt: number;
  /** The fencing token of the lease the run held (0 for `missed`). */
  readonly token: number;
  /** The manager's owner string of the process that ran it (or recorded it missed). */
  readonly owner: string;
  /** When the attempt began (the server's clock). */
  readonly startedAt: Date;
  /** When it ended (the server's clock); absent while `running`, or when its runner died. */
  readonly finishedAt?: Date;
  readonly outcome: RunOutcome;
  /** The message of the error a `failed` run threw. */
  readonly error?: string;
}

/** What the function of a tick gets. */
export interface Run {
  readonly name: string;
  readonly scheduledAt: Date;
  /** 1, then 2, 3, ... for retries. */
  readonly attempt: number;
  /** The fencing token of this attempt: larger than every earlier attempt's of the tick. */
  readonly token: number;
  /** Aborts when the run's lease ends (lost, or the manager closed): stop the work then. */
  readonly signal: AbortSignal;
  /** The tick's held lease (its lock is `${name}@${scheduledAt.toISOString()}`). */
  readonly lease: HeldLease;
}

/** What {@link LockManager.runOnce} resolves: the result, or why this call did not run the tick. */
export type RunOnceResult<T = unknown> =
  { readonly ran: true; readonly result: T } | { readonly ran: false; readonly outcome: RunOutcome };

/** Options of {@link LockManager.runOnce}. */
export interface RunOnceOptions {
  /** The run's lease, renewed while the function runs. @defaultValue the manager's `ttl` */
  readonly ttl?: Duration;
  /** How many times a run that threw, or whose runner died, is tried again. @defaultValue `0` */
  readonly retries?: number;
  /**
   * How long to wait for the tick's lease while another process runs the tick (to retry it if that
   * runner dies, or to see it done). `0`: one try. @defaultValue the ttl and a quarter, plus 1 s
   */
  readonly wait?: Duration;
  /** How long the tick's record is kept (a TTL index on `expireAt`). @defaultValue `'7d'` */
  readonly retain?: Duration;
}

/** Options of {@link LockManager.runs}. */
export interface RunsQuery {
  /** How many records at most. @defaultValue `100` */
  readonly limit?: number;
}

/** A run's options, parsed. @internal */
export interface RunPolicy {
  readonly ttl: number;
  readonly retries: number;
  readonly wait: number;
  /** Milliseconds. */
  readonly retain: number;
}

/** Events a run reports to its schedule. @internal */
export interface RunHooks {
  run?(run: Run): void;
  done?(run: Run, result: unknown): void;
  failed?(run: Run, error: Error): void;
}

/** The stored document. @internal */
export interface RunDocument extends RunRecord {
  _id: string;
  /**
   * When the clean-up (a TTL index) may remove the record: set once the run is settled, never while
   * it is `running` (a record removed under a run would let the tick run again).
   */
  expireAt?: Date | null;
  /** While `running`: the `expireAt` its settlement will set (`scheduledAt` + `retain`). */
  retainUntil?: Date;
}

/** The longest TTL MongoDB's TTL monitor accepts, and so the longest retention. */
const MAX_RETAIN = (2 ** 31 - 1) * 1000;
/** A schedule's name leaves room for `@` and the 24 characters of an ISO date in the lock's name. */
const MAX_NAME_BYTES = 512 - 25;
const MAX_RETRIES = 1000;

/** The tick's id: its lock's name and its record's `_id`. */
export function tickId(name: string, scheduledAt: Date): string {
  const iso = scheduledAt.toISOString();
  // Past year 9999 the ISO form is 27 characters: the time in ms keeps the lock name within 512 bytes.
  return `${name}@${iso.length === 24 ? iso : scheduledAt.getTime()}`;
}

/** A schedule name: a lock name with room for the tick's suffix. */
export function checkScheduleName(name: string, what: string): string {
  const bytes = Buffer.byteLength(name);
  if (bytes > MAX_NAME_BYTES) throw outOfRange(what, `at most ${MAX_NAME_BYTES} bytes long (it was ${bytes})`, name);
  return name;
}

export function checkRetries(value: unknown, what: string): number {
  if (value === undefined) return 0;
  if (typeof value !== 'number') throw invalidType(what, 'a whole number', value);
  if (!Number.isInteger(value) || value < 0 || value > MAX_RETRIES)
    throw outOfRange(what, `a whole number from 0 to ${MAX_RETRIES}`, value);
  return value;
}

export function checkRetain(value: unknown, what: string): number {
  return parseDuration(value === undefined ? '7d' : value, what, { max: MAX_RETAIN });
}

/** The default wait for a tick's lease: long enough for a dead runner's lease to run out. */
export function defaultWait(ttl: number): number {
  return Math.round(ttl * 1.25) + 1000;
}

/** runOnce's options, parsed. */
export function runPolicy(input: RunOnceOptions | undefined, managerTtl: number, what: string): RunPolicy {
  const options = checkObject(input, what);
  const ttl = options.ttl === undefined ? managerTtl : parseDuration(options.ttl, `${what}.ttl`);
  return {
    ttl,
    retries: checkRetries(options.retries, `${what}.retries`),
    wait:
      options.wait === undefined ? defaultWait(ttl) : parseDuration(options.wait, `${what}.wait`, { allowZero: true }),
    retain: checkRetain(options.retain, `${what}.retain`),
  };
}

type Decision =
  | { readonly kind: 'claim'; readonly attempt: number }
  | { readonly kind: 'settled'; readonly outcome: RunOutcome }
  /** Its runner died (its lease ended) and no retry is left: record it `lost`. */
  | { readonly kind: 'lost' };

export function decide(record: RunRecord | null, token: number, retries: number): Decision {
  if (!record) return { kind: 'claim', attempt: 1 };
  switch (record.outcome) {
    case 'failed':
      return record.attempt <= retries
        ? { kind: 'claim', attempt: record.attempt + 1 }
        : { kind: 'settled', outcome: 'failed' };
    case 'running':
      // Its runner held an earlier lease of this tick, which has ended since: the runner died.
      if (record.token >= token) return { kind: 'settled', outcome: 'running' };
      return record.attempt <= retries ? { kind: 'claim', attempt: record.attempt + 1 } : { kind: 'lost' };
    default:
      return { kind: 'settled', outcome: record.outcome };
  }
}

/** What runOnce needs from its manager. @internal */
export interface RunContext {
  readonly manager: LockManager;
  readonly store: RunStore;
  readonly report: (error: unknown) => void;
}

/**
 * Runs the tick `scheduledAt` of `name` unless it is done (or settled otherwise), at most once
 * across every process: see {@link LockManager.runOnce}. `signal` ends waits (never a run in
 * progress). Rejects with the function's error when its last attempt here threw.
 */
export async function runTick<T>(
  context: RunContext,
  name: string,
  scheduledAt: Date,
  fn: (run: Run) => T | Promise<T>,
  policy: RunPolicy,
  hooks: RunHooks = {},
  signal?: AbortSignal,
): Promise<RunOnceResult<T>> {
  const { manager, store } = context;
  const id = tickId(name, scheduledAt);
  const tick = { name, scheduledAt, id };
  /** The function's error at this call's last attempt: rethrown if the tick ends up failed. */
  let lastError: Error | undefined;
  for (;;) {
    let lease: HeldLease | null;
    try {
      lease =
        policy.wait > 0
          ? await manager.acquire(id, { ttl: policy.ttl, wait: policy.wait, signal })
          : await manager.tryAcquire(id, { ttl: policy.ttl, signal });
    } catch (error) {
      if (!(error instanceof LockTimeoutError)) throw error;
      lease = null;
    }
    if (!lease) {
      // Someone else holds the tick: it is running there (or was settled just now).
      const record = await store.read(id);
      const outcome = record && record.outcome !== 'running' ? record.outcome : 'running';
      if (lastError !== undefined && outcome === 'failed') throw lastError;
      return { ran: false, outcome };
    }
    const token = lease.token;
    let release = true;
    try {
      const record = await store.read(id);
      const decision = decide(record, token, policy.retries);
      if (decision.kind === 'lost') {
        await store.finish(id, record!.token, 'lost');
        return { ran: false, outcome: 'lost' };
      }
      if (decision.kind === 'settled') {
        if (lastError !== undefined && decision.outcome === 'failed') throw lastError;
        return { ran: false, outcome: decision.outcome };
      }
      if (!(await store.claim(tick, record, { ...decision, token, owner: manager.owner, retain: policy.retain })))
        continue; // the record changed under us (a late runner finishing): read it again
      if (!lease.held) {
        // The lease ended while the claim was on its way (a stalled server): never start a run
        // without it. The record says `running` with our token: the tick's next holder settles it.
        release = false;
        continue;
      }
      const run: Run = { name, scheduledAt, attempt: decision.attempt, token, signal: lease.signal, lease };
      hooks.run?.(run);
      const ended = traceRun(run, manager.owner);
      let result: T;
      try {
        result = await fn(run);
      } catch (error) {
        const err = error instanceof Error ? error : new Error(String(error));
        if (!lease.held) {
          ended('lost', lostReason(lease, err));
          hooks.failed?.(run, lostReason(lease, err));
          release = false;
          lastError = undefined;
          continue; // the next holder of the tick (maybe this loop) settles it
        }
        await finishWhileHeld(lease, () => store.finish(id, token, 'failed', err));
        ended('failed', err);
        hooks.failed?.(run, err);
        lastError = err;
        if (decision.attempt > policy.retries) throw err;
        continue; // released below; the retry takes a new lease (a larger token)
      }
      if (!lease.held || !(await finishWhileHeld(lease, () => store.finish(id, token, 'done')))) {
        // The lease ended before the run was recorded done: its work was not exclusive to the end.
        ended('lost', lostReason(lease, undefined));
        hooks.failed?.(run, lostReason(lease, undefined));
        release = lease.held;
        lastError = undefined;
        continue;
      }
      ended('done');
      hooks.done?.(run, result);
      return { ran: true, result };
    } finally {
      if (release && lease.held) await lease.release().catch((error: unknown) => context.report(error));
    }
  }
}

/** Publishes a run's start on `mongoose-distributed-lock:run`; returns what publishes its end. */
function traceRun(run: Run, owner: string): (outcome: RunEndOutcome, error?: Error) => void {
  const { name, scheduledAt, attempt, token } = run;
  const started = performance.now();
  publishRun(() => ({ phase: 'start', name, scheduledAt, attempt, token, owner }));
  return (outcome, error) =>
    publishRun(() => ({
      phase: 'end',
      name,
      scheduledAt,
      attempt,
      token,
      owner,
      outcome,
      durationMs: performance.now() - started,
      ...(error && { error }),
    }));
}

/** The error a run whose lease ended gets: the LeaseLostError (or why the hold ended). */
function lostReason(lease: HeldLease, fallback: Error | undefined): Error {
  const reason: unknown = lease.signal.reason;
  if (reason instanceof LeaseLostError || reason instanceof LockError) return reason;
  return (
    fallback ?? new LockError(LockErrorCode.Lost, `the lease of "${lease.name}" ended before the run was recorded`)
  );
}

/**
 * Records how a run ended, trying again while the server is unreachable for as long as the run's
 * lease is held (it is renewed meanwhile, and the record is conditional on the run's token, so a
 * repeat is harmless): a tick must not stay `running` because one write met a restart. Resolves
 * false if the lease ended first; rethrows what is not an outage.
 */
async function finishWhileHeld(lease: HeldLease, finish: () => Promise<boolean>): Promise<boolean> {
  for (;;) {
    try {
      return await finish();
    } catch (error) {
      if (!isConnectionError(error) || isClosedConnection(error) || !lease.held) throw error;
      await new Promise((resolve) => setTimeout(resolve, FINISH_RETRY_MS));
      if (!lease.held) return false;
    }
  }
}

/** Between two tries to record a run's end while the server is unreachable. */
const FINISH_RETRY_MS = 250;
