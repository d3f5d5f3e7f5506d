// What the benchmark scenarios share: statistics, child processes, connections, the clock.
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import mongoose, { type Connection } from 'mongoose';
import { acquireCommand, COLLECTION, releaseCommand, type LockDocument } from '../lib/commands';

type WriteConcern = { w: 1 | 'majority'; j?: boolean };

/** One row of the results table. */
export interface Row {
  scenario: string;
  /** Median of the measured values, in `unit`. */
  median: number;
  p99: number;
  unit: string;
  /** The same measured for the baseline, in the same run. */
  baseline?: { label: string; median: number; p99: number };
  /** Anything else worth reporting (counts, fairness, commands per second). */
  notes?: Record<string, number | string>;
  /** A property the run must have (not a timing): if it does not hold, the benchmark exits non-zero. */
  failure?: string;
}

export interface Context {
  uri: string;
  quick: boolean;
  /** The engine's process id, when the benchmark started its own (for the pause scenario). */
  enginePid: number | undefined;
  pause?: () => void;
  resume?: () => void;
}

/** A clock shared by every process on the machine (CLOCK_MONOTONIC), in milliseconds. */
export function now(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export const median = (values: readonly number[]) => quantile(values, 0.5);
export const p99 = (values: readonly number[]) => quantile(values, 0.99);

/**
 * Times each variant once per round, `rounds` rounds after `warmUp` untimed ones, interleaved and
 * starting each round with a different one, so that noise on this shared machine (and any
 * advantage of going first) falls on all alike. `around(name)`, if given, runs before a variant's
 * turn and returns what runs after it, both untimed. Resolves each variant's times in ms.
 */
export async function interleaved(
  variants: Record<string, (round: number) => Promise<unknown>>,
  rounds: number,
  { warmUp = 50, around }: { warmUp?: number; around?: (name: string) => () => void } = {},
): Promise<Record<string, number[]>> {
  const names = Object.keys(variants);
  const times: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let round = 0; round < warmUp + rounds; round++) {
    for (let k = 0; k < names.length; k++) {
      const name = names[(round + k) % names.length]!;
      const after = around?.(name);
      const started = now();
      await variants[name]!(round);
      if (round >= warmUp) times[name]!.push(now() - started);
      after?.();
    }
  }
  return times;
}

/** A row of times in ms, against the times of a baseline measured in the same run. */
export function timedRow(
  scenario: string,
  times: readonly number[],
  baseline: { label: string; times: readonly number[] },
  notes?: Row['notes'],
): Row {
  return {
    scenario,
    median: median(times),
    p99: p99(times),
    unit: 'ms',
    baseline: { label: baseline.label, median: median(baseline.times), p99: p99(baseline.times) },
    notes,
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A connection of its own to the benchmark database, optionally counting the commands it sends. */
export async function connect(uri: string, options: { monitorCommands?: boolean } = {}): Promise<Connection> {
  return mongoose.createConnection(uri, { dbName: 'mdlock_bench', ...options }).asPromise();
}

/**
 * The library's acquire and release commands (history off, one attempt) sent by the raw driver,
 * with the library's collection options (durable acquisitions, `w: 1` releases, majority reads):
 * the baselines, byte for byte.
 */
export function rawLockCommands(connection: Connection, collection: string, owner = 'bench') {
  const locks = connection.db!.collection<LockDocument>(collection, COLLECTION);
  return {
    acquire(name: string, leaseId: string) {
      // maxTimeMS: the manager's default commandTimeout, which bounds each command on the server too.
      const { filter, update, options } = acquireCommand({ name, leaseId, owner, ttl: 60_000, maxTimeMS: 10_000 });
      return locks.findOneAndUpdate(filter, update, options);
    },
    release(name: string, leaseId: string) {
      const { filter, update, options } = releaseCommand(name, leaseId, false, 10_000);
      return locks.findOneAndUpdate(filter, update, options);
    },
  };
}

/** The durability of lock writes that must survive a crash and a failover. */
export const DURABLE: WriteConcern = { w: 'majority', j: true };
/** Acknowledged by the primary alone, not waiting for its journal. */
export const W1: WriteConcern = { w: 1 };

/**
 * The least a correct lock pair can send, hand-written: an acquisition that takes the lock only if
 * it is free or expired on the server's clock, with a growing fencing token (a findOneAndUpdate
 * upsert with a two-stage `$$NOW` pipeline), and a release conditional on the holder's id (an
 * updateOne). No contention marking, no retry recognition, no history, no literals, no timeouts:
 * what the library adds to this is its price.
 */
export function minimalLockCommands(
  connection: Connection,
  collection: string,
  concerns: { acquire: WriteConcern; release: WriteConcern },
  ttl = 60_000,
) {
  const locks = connection.db!.collection<LockDocument>(collection);
  const free = { $or: [{ $eq: [{ $ifNull: ['$leaseId', null] }, null] }, { $lte: ['$expiresAt', '$$NOW'] }] };
  const token = { $max: [{ $add: [{ $ifNull: ['$token', 0] }, 1] }, { $toLong: '$$NOW' }] };
  return {
    acquire(name: string, leaseId: string) {
      const update = [
        { $set: { _free: free } },
        {
          $set: {
            leaseId: { $cond: ['$_free', leaseId, '$leaseId'] },
            token: { $cond: ['$_free', token, '$token'] },
            expiresAt: { $cond: ['$_free', { $add: ['$$NOW', ttl] }, '$expiresAt'] },
            _free: '$$REMOVE',
          },
        },
      ];
      return locks.findOneAndUpdate({ _id: name }, update, {
        upsert: true,
        returnDocument: 'after',
        projection: { leaseId: 1, token: 1, expiresAt: 1 },
        writeConcern: concerns.acquire,
      });
    },
    release(name: string, leaseId: string) {
      return locks.updateOne({ _id: name, leaseId }, { $set: { leaseId: null } }, { writeConcern: concerns.release });
    },
  };
}

/** Counts the commands a connection sends, by name. */
export function commandCounter(connection: Connection) {
  const counts = new Map<string, number>();
  connection
    .getClient()
    .on('commandStarted', (event) => counts.set(event.commandName, (counts.get(event.commandName) ?? 0) + 1));
  return {
    total: () => [...counts.values()].reduce((a, b) => a + b, 0),
    of: (name: string) => counts.get(name) ?? 0,
    reset: () => counts.clear(),
  };
}

/** A benchmark worker in a process of its own, talking over IPC. */
export class Worker {
  readonly child: ChildProcess;
  readonly #messages: unknown[] = [];
  readonly #waiters: ((message: unknown) => void)[] = [];

  constructor(script: string, args: string[], env: Record<string, string> = {}) {
    this.child = fork(path.join(__dirname, script), args, {
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, ...env },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child.on('message', (message) => {
      const waiter = this.#waiters.shift();
      if (waiter) waiter(message);
      else this.#messages.push(message);
    });
  }

  send(message: unknown): void {
    this.child.send(message as never);
  }

  /** The next message from the worker. */
  next<T>(): Promise<T> {
    const queued = this.#messages.shift();
    if (queued !== undefined) return Promise.resolve(queued as T);
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null) =>
        reject(new Error(`benchmark worker ${this.child.pid} exited (${code}) before answering`));
      this.child.once('exit', onExit);
      this.#waiters.push((message) => {
        this.child.off('exit', onExit);
        resolve(message as T);
      });
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    await exited;
  }
}
