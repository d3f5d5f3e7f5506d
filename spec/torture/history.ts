// The torture test's history: what every process saw, one JSON line per event, with two clocks.
//
// Which times can be compared, and why (the workers, the orchestrator and the engine run on one
// machine):
// - `mono` is CLOCK_MONOTONIC (`process.hrtime`), which Linux keeps for the whole system, not
//   per process: the `mono` of events from different processes are on one timeline. It never
//   jumps. Local hold intervals (acquired → stopped) are compared on it.
// - `wall` is CLOCK_REALTIME (`Date.now()`), the clock the engine reads for `$$NOW`. A lease's
//   server-side expiry and grant time are `$$NOW`-based, so they are compared with `wall` only.
//   The realtime clock can be stepped (NTP, an operator); the checker verifies that it was not:
//   `wall - mono` must stay constant, within a few ms, over the run.
import fs from 'node:fs';
import path from 'node:path';

/** One reading of both clocks, taken together (no preemption in between). */
export interface Stamp {
  /** CLOCK_MONOTONIC in ms, shared by every process on this machine. */
  readonly mono: number;
  /** CLOCK_REALTIME in ms (`Date.now()`), the clock behind the engine's `$$NOW`. */
  readonly wall: number;
}

const hrMillis = () => Number(process.hrtime.bigint()) / 1e6;
/**
 * The real `Date.now`, taken when this module loads: a scheduler worker then shifts its process's
 * `Date` (a skewed clock), and its history must still read the machine's realtime clock.
 */
const realNow = Date.now;

/** Reads both clocks; retries if the process was preempted between the two readings. */
export function stamp(): Stamp {
  for (;;) {
    const mono = hrMillis();
    const wall = realNow();
    if (hrMillis() - mono < 1) return { mono, wall };
  }
}

/** How a worker tried to take a lock, a semaphore's permit, a read-write lock's hold, or a fair lock. */
export type AcquireMode =
  | 'tryAcquire'
  | 'acquire-wait'
  | 'acquire-abort'
  | 'withLock'
  | 'lease-backoff'
  | 'sem-acquire'
  | 'sem-try'
  | 'withPermit'
  | 'read'
  | 'write'
  | 'withRead'
  | 'withWrite'
  | 'fair-wait'
  | 'fair-poll';

/** What a hold is: a lock (also a fair one), a semaphore's permit, or a read-write lock's read or write hold. */
export type HoldKind = 'lock' | 'permit' | 'read' | 'write';

/** How an acquisition attempt ended. */
export type OpOutcome = 'held' | 'busy' | 'timeout' | 'aborted' | 'error';

/** Why a holder stopped using a hold: it called release(), its withLock function returned, or it closed its manager. */
export type StopWhy = 'release' | 'fn-end' | 'close';

/** Everything a process records. Workers record the first group, the orchestrator the second. */
export type EventBody =
  | { type: 'start'; pid: number }
  /** An acquisition begins; `wait` is its budget in ms, if bounded. */
  | {
      type: 'op';
      op: number;
      name: string;
      mode: AcquireMode;
      ttl: number;
      heartbeat: number | false;
      wait?: number;
      /** A semaphore's or read-write lock's contender declared it fair (mixed with unfair ones). */
      fair?: boolean;
    }
  /** It ended; `token` is the hold's when it is `held`. */
  | { type: 'op-end'; op: number; outcome: OpOutcome; code?: string; token?: number }
  /**
   * A fair acquisition's first attempt answered "wait" (its poll strategy was asked for a delay):
   * by now the waiter is in the queue.
   */
  | { type: 'queued'; op: number; name: string }
  /**
   * From the manager's `acquired` event; `expiresAt` is the server's `$$NOW` + ttl, in ms; `kind`
   * absent for a lock.
   */
  | {
      type: 'acquired';
      name: string;
      token: number;
      expiresAt: number;
      ttl: number;
      heartbeat: number | false;
      kind?: Exclude<HoldKind, 'lock'>;
    }
  /** A later server-side expiry of a held lease, as its watchdog read it back after a renewal. */
  | { type: 'expiry'; name: string; token: number; expiresAt: number }
  /** The holder stops working under this hold (recorded before release() or close() is called). */
  | { type: 'stop'; name: string; token: number; why: StopWhy }
  | { type: 'released'; name: string; token: number }
  | { type: 'lost'; name: string; token: number; reason: string }
  | { type: 'hold-timeout'; name: string; token: number }
  | { type: 'release-end'; name: string; token: number; result: boolean | 'error'; code?: string }
  /** A write to the fenced resource, guarded by `token >= last token written`. */
  | { type: 'fence'; name: string; token: number; phase: 'begin' | 'ok' | 'rejected' | 'error' }
  /** An unprotected read-modify-write increment of a counter, done while holding. */
  | { type: 'inc'; name: string; token: number; phase: 'begin' | 'done' | 'skipped' | 'error' }
  /**
   * A semaphore holder's entry (`delta` 1, after the permit was granted) or exit (-1, before it
   * stops using the permit) on the shared counter, a plain `$inc`; `value` is the count after it.
   */
  | { type: 'count'; name: string; token: number; delta: 1 | -1; phase: 'begin' | 'ok' | 'error'; value?: number }
  /** The worker's process was frozen (a stand-in for a long GC pause) while holding, for `ms`. */
  | { type: 'freeze'; name: string; token: number; ms: number }
  /**
   * The worker blocks its event loop (a synchronous busy-wait: no timer, no I/O callback runs) for
   * `ms` while holding; `expiresAt` is the server-side expiry the lease knew when the block began.
   */
  | { type: 'block'; name: string; token: number; ms: number; expiresAt: number }
  /** Its first look right after the block, before any write: what `lease.held` and `lease.signal.aborted` said. */
  | { type: 'block-end'; name: string; token: number; held: boolean; aborted: boolean }
  /** The worker calls `manager.close()`, whose `commandTimeout` is this. */
  | { type: 'close'; commandTimeout: number }
  /** `manager.close()` resolved, `ms` after it was called. */
  | { type: 'closed'; ms: number }
  | { type: 'exit'; errors: Record<string, number> }
  | { type: 'crash'; message: string }
  /** Its MongoDB client is wedged (the driver defect of ./monitor-wedge.ts): it asks to be replaced. */
  | { type: 'wedged'; detail: string }
  // The orchestrator:
  | { type: 'run'; names: string[]; workers: number; faults: string[]; seed: number; duration: number }
  | { type: 'spawn'; worker: string; pid: number }
  /** `why: 'wedged'`: not a fault but the cure of ./connect.ts's wedged client: the worker is replaced. */
  | { type: 'kill'; worker: string; pid: number; why?: 'wedged' }
  | { type: 'fault'; kind: string; detail: string }
  | { type: 'fault-end'; kind: string; detail: string }
  | { type: 'stopping' }
  | { type: 'worker-exit'; worker: string; code: number | null; signal: string | null; byItself: boolean }
  /**
   * A lock still held, on the server, by a worker that closed its manager and exited (the
   * `close-stall` fault), read once it had exited; `since` is when the lock server's stall ended.
   */
  | { type: 'leftover'; worker: string; name: string; token: number; expiresAt: number; ttl: number; since: number }
  | { type: 'resource'; name: string; token: number; count: number; plain: number }
  /** A semaphore's `limit`, a read-write lock, or a fair lock, as the run declares them. */
  | { type: 'declare'; name: string; kind: 'semaphore' | 'rwlock' | 'fair'; limit?: number }
  /** A semaphore's shared counter, read at the end. */
  | { type: 'counter'; name: string; value: number }
  // The scheduling workload (./scheduler.ts). `tick` is a tick's scheduledAt in ms (the pattern's
  // time, the same in every process whatever its clock); `token` and `attempt` are its run's.
  /** The scheduler's `Date` reads `offset` ms off the real clock. */
  | { type: 'clock-offset'; offset: number }
  /** The run's function starts; `expiresAt` is its lease's server-side expiry then. */
  | { type: 'tick-run'; tick: number; attempt: number; token: number; expiresAt: number; ttl: number }
  /** The run's side effect: a per-tick counter, guarded by `token > last token written`. */
  | { type: 'tick-write'; tick: number; token: number; phase: 'begin' | 'ok' | 'rejected' | 'error' }
  /** The run's function returned, threw (an injected failure, a rejected write) or saw its signal abort. */
  | { type: 'tick-end'; tick: number; attempt: number; token: number; how: 'returned' | 'threw' | 'aborted' }
  | { type: 'tick-freeze'; tick: number; token: number; ms: number }
  | { type: 'tick-block'; tick: number; token: number; ms: number; expiresAt: number }
  | { type: 'tick-block-end'; tick: number; token: number; held: boolean; aborted: boolean }
  /** The job's `done`, `failed` and `skipped` events, and the manager's `lost` for a tick's lease. */
  | { type: 'tick-done'; tick: number; attempt: number; token: number }
  | { type: 'tick-failed'; tick: number; attempt: number; token: number; reason: string }
  | { type: 'tick-skipped'; tick: number; reason: string }
  | { type: 'tick-lost'; tick: number; token: number; reason: string }
  /** The job's `error` event (MongoDB unreachable at a tick, say). */
  | { type: 'sched-error'; message: string }
  // The orchestrator, for the scheduling workload:
  | { type: 'schedule'; name: string; pattern: string; retries: number; ttl: number; skew: number; schedulers: number }
  /** The ticks (scheduledAt, ms) the checker must find accounted for: every one in [from, to]. */
  | { type: 'tick-window'; from: number; to: number; every: number }
  /** A run record read at the end (`<collection>.runs`). */
  | { type: 'tick-record'; tick: number; attempt: number; token: number; outcome: string; owner: string }
  /** A tick's counter in the resource database, read at the end. */
  | { type: 'tick-resource'; tick: number; token: number; count: number };

/** One recorded event: its source process, its rank in that process, when, and what. */
export type TortureEvent = EventBody & Stamp & { readonly src: string; readonly seq: number };

/** Appends events to a JSON-lines file, synchronously, so a process killed with SIGKILL loses nothing it recorded. */
export class HistoryWriter {
  readonly #fd: number;
  readonly #src: string;
  #seq = 0;

  constructor(file: string, src: string) {
    this.#fd = fs.openSync(file, 'a');
    this.#src = src;
  }

  record(body: EventBody): TortureEvent {
    const event = { src: this.#src, seq: this.#seq++, ...stamp(), ...body } as TortureEvent;
    fs.writeSync(this.#fd, `${JSON.stringify(event)}\n`);
    return event;
  }

  close(): void {
    fs.closeSync(this.#fd);
  }
}

/** Reads every `*.jsonl` history in `dir` (a line cut short by SIGKILL is dropped). */
export function readHistories(dir: string): TortureEvent[] {
  const events: TortureEvent[] = [];
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.jsonl'))) {
    for (const line of fs.readFileSync(path.join(dir, file), 'utf8').split('\n')) {
      if (!line.trim()) continue;
      try {
        events.push(JSON.parse(line) as TortureEvent);
      } catch {
        // The last line of a killed process may be incomplete.
      }
    }
  }
  return events;
}
