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

/** Reads both clocks; retries if the process was preempted between the two readings. */
export function stamp(): Stamp {
  for (;;) {
    const mono = hrMillis();
    const wall = Date.now();
    if (hrMillis() - mono < 1) return { mono, wall };
  }
}

/** How a worker tried to take a lock. */
export type AcquireMode = 'tryAcquire' | 'acquire-wait' | 'acquire-abort' | 'withLock' | 'lease-backoff';

/** How an acquisition attempt ended. */
export type OpOutcome = 'held' | 'busy' | 'timeout' | 'aborted' | 'error';

/** Why a holder stopped using a hold: it called release(), its withLock function returned, or it closed its manager. */
export type StopWhy = 'release' | 'fn-end' | 'close';

/** Everything a process records. Workers record the first group, the orchestrator the second. */
export type EventBody =
  | { type: 'start'; pid: number }
  | { type: 'op'; op: number; name: string; mode: AcquireMode; ttl: number; heartbeat: number | false }
  | { type: 'op-end'; op: number; outcome: OpOutcome; code?: string }
  /** From the manager's `acquired` event; `expiresAt` is the server's `$$NOW` + ttl, in ms. */
  | { type: 'acquired'; name: string; token: number; expiresAt: number; ttl: number; heartbeat: number | false }
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
  // The orchestrator:
  | { type: 'run'; names: string[]; workers: number; faults: string[]; seed: number; duration: number }
  | { type: 'spawn'; worker: string; pid: number }
  | { type: 'kill'; worker: string; pid: number }
  | { type: 'fault'; kind: string; detail: string }
  | { type: 'fault-end'; kind: string; detail: string }
  | { type: 'stopping' }
  | { type: 'worker-exit'; worker: string; code: number | null; signal: string | null; byItself: boolean }
  /**
   * A lock still held, on the server, by a worker that closed its manager and exited (the
   * `close-stall` fault), read once it had exited; `since` is when the lock server's stall ended.
   */
  | { type: 'leftover'; worker: string; name: string; token: number; expiresAt: number; ttl: number; since: number }
  | { type: 'resource'; name: string; token: number; count: number; plain: number };

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
