// The torture test: worker processes contend for a few lock names on a real MongoDB engine
// while faults are injected into it, into the network and into the workers; every process
// records what it saw, and the checker then verifies the whole history. Exits 1 on any violation.
//
// Two engines run: the lock server, which takes the faults, and the protected resource's
// server, which does not (it stands for another system that trusts fencing tokens).
//
//   npm run torture                                   # 30 s, no faults
//   npm run torture -- --duration 10m --faults all    # the long run
//   npm run torture -- --faults kill,pause --workers 6 --names 2 --seed 42 --out ./torture-history
//   npm run torture -- --workload schedule --duration 2m --faults all   # scheduled jobs instead
//
// The scheduling workload (`--workload schedule`, or `both` alongside the locks): scheduler
// processes (./scheduler.ts) with clocks up to `--skew` off declare one schedule, every second,
// with retries 1 and a 3 s ttl; the same faults hit them (kill and freeze a runner, block its
// event loop, close its manager during a stall). At the end the run records and the per-tick
// counters are read into the history for the checker.
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import ms from 'ms';
import mongoose from 'mongoose';
import { LockManager, type LeaseOptions } from 'mongoose-distributed-lock';
import { startEngine } from '../../scripts/engine.cjs';
import { CHECKS, CLOSE_SLACK, checkHistory, type CheckReport } from './checker';
import { HistoryWriter, readHistories } from './history';
import { FaultProxy, type Direction } from './proxy';
import { seeded, type Random } from './random';
import type { SchedulerConfig, TickDocument } from './scheduler';
import type { CounterDocument, ResourceDocument, WorkerConfig } from './worker';

/** The fields of a lock document (the library's `LockDocument`, which it does not export) read here. */
interface LockDocument {
  _id: string;
  token: number;
  leaseId: string | null;
  owner: string;
  expiresAt: Date;
  ttl: number;
}

/** The faults `--faults` can name. */
export const FAULTS = ['kill', 'pause', 'proxy', 'restart', 'freeze', 'block', 'close-stall'] as const;
export type Fault = (typeof FAULTS)[number];

/**
 * What the workers do: contend for locks, a semaphore's permits, a read-write lock, a fair lock
 * (./worker.ts: each lock worker picks one of those its run has, operation by operation), or run a
 * schedule (./scheduler.ts). `--workload` takes a list of them, or `both` (locks and schedule) or `all`.
 */
export const WORKLOADS = ['locks', 'schedule', 'semaphore', 'rwlock', 'fair'] as const;
export type Workload = (typeof WORKLOADS)[number];

/** The semaphore workload's semaphore: fewer permits than workers, so that they contend. */
export const SEMAPHORE = { name: 'sem-0', limit: 2 } as const;
/** The read-write lock workload's lock, and the fair workload's. */
export const RWLOCK = 'rw-0';
export const FAIR = 'fair-0';

/**
 * Whether the library takes `fair: true`: it rejects a `fair` that is not a boolean, naming the
 * option, once it has the option (before, an unknown option is ignored). Nothing is sent.
 */
export async function fairSupported(): Promise<boolean> {
  const manager = new LockManager({ connection: mongoose.createConnection() });
  try {
    manager.lease('probe', { fair: 'probe' } as unknown as LeaseOptions); // a wrong type on purpose
    return false;
  } catch (error) {
    return /fair/.test((error as Error).message);
  } finally {
    await manager.close();
  }
}

/** The scheduling workload's schedule: every second, one retry, a lease of 3 s. */
export const SCHEDULE = { name: 'tick', pattern: '*/1 * * * * *', every: 1000, ttl: 3000, retries: 1 } as const;
/**
 * With the scheduling workload, the workers run this much longer than `--duration`, without faults,
 * and the ticks of that tail are not checked for being accounted for: a tick fired during the last
 * fault gets this long to be settled (skew, then a dead runner's ttl, a waiter's retry and its run;
 * a waiter whose wait, ttl × 1.25 + 1 s, ran out first comes back a ttl later and waits again).
 */
const SCHEDULE_SETTLE = 15_000;

export interface TortureOptions {
  readonly duration: number;
  readonly workers: number;
  readonly names: number;
  readonly faults: readonly Fault[];
  /** Mean time between two faults, in ms; also bounds how long a pause (2x) or a stall (3x) lasts. */
  readonly faultEvery: number;
  readonly seed: number;
  /** Keep the histories and the summary here (else a temporary directory, removed after a clean run). */
  readonly out: string | undefined;
  readonly json: boolean;
  readonly workload: readonly Workload[];
  /** Scheduler processes at a time (the scheduling workload). */
  readonly schedulers: number;
  /** The largest clock skew of a scheduler, either way, in ms. */
  readonly skew: number;
}

const USAGE = `usage: npm run torture -- [--duration 30s] [--workers 4] [--names 3]
         [--faults none|all|kill,pause,proxy,restart,freeze,block,close-stall] [--fault-every 4s]
         [--seed N] [--out DIR] [--json] [--workload locks,semaphore,rwlock,fair,schedule|both|all]
         [--schedulers 3] [--skew 2s]

workload: a list of (each lock worker picks one of the first four the run has, at each operation):
          locks     --workers processes contend for --names locks (the default)
          semaphore the semaphore "${SEMAPHORE.name}" (limit ${SEMAPHORE.limit}): acquire, tryAcquire, withPermit; each
                    holder increments a shared counter on entry and decrements it on exit; half the
                    contenders fair, half not
          rwlock    the read-write lock "${RWLOCK}": read, write, withRead, withWrite; writers write fenced;
                    half the contenders fair, half not
          fair      the lock "${FAIR}" with fair: true (only if the library takes that option)
          schedule  --schedulers processes, clocks up to --skew apart, run "${SCHEDULE.pattern}"
                    (retries ${SCHEDULE.retries}, ttl ${SCHEDULE.ttl} ms); each tick's run bumps a fenced counter
          both      locks and schedule; all: every one of them (fair only if the library takes it)
          with a schedule, the workers run ${SCHEDULE_SETTLE / 1000} s more after --duration, without faults, for
          the last ticks to settle

faults: kill     SIGKILL a worker that holds a lock (a replacement starts)
        pause    SIGSTOP the lock server for 0.5-6 s, then SIGCONT
        proxy    cut, or stall (then deliver late, or cut) connections between workers and the lock server
        restart  SIGKILL the lock server and start it again on the same data directory
        freeze   freeze a holder's process past its lease; it then writes with its stale token
        block    block a holder's event loop past its lease; it then looks at lease.held and writes only if held
        close-stall  SIGSTOP the lock server, have a worker close its manager meanwhile; close() must
                 return within commandTimeout + ${CLOSE_SLACK / 1000} s, the worker exit by itself`;

class UsageError extends Error {}

function positiveInteger(value: string, what: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`${what} must be a whole number of at least 1, got "${value}"`);
  return n;
}

function duration(value: string, what: string): number {
  const n = /^\d+$/.test(value) ? Number(value) : ms(value as ms.StringValue);
  if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0) {
    throw new UsageError(`${what} must be a duration such as 30s or 10m, got "${value}"`);
  }
  return n;
}

/** Parses the command line (`util.parseArgs`, strict). */
export function parseOptions(argv: readonly string[], { fair = false } = {}): TortureOptions & { help: boolean } {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        duration: { type: 'string', default: '30s' },
        workers: { type: 'string', default: '4' },
        names: { type: 'string', default: '3' },
        faults: { type: 'string', default: 'none' },
        'fault-every': { type: 'string', default: '4s' },
        seed: { type: 'string' },
        out: { type: 'string' },
        json: { type: 'boolean', default: false },
        workload: { type: 'string', default: 'locks' },
        schedulers: { type: 'string', default: '3' },
        skew: { type: 'string', default: '2s' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new UsageError(`${(error as Error).message.split('\n')[0]}\n${USAGE}`);
  }
  const listed = values.faults === 'all' ? [...FAULTS] : values.faults === 'none' ? [] : values.faults.split(',');
  for (const fault of listed) {
    if (!(FAULTS as readonly string[]).includes(fault)) {
      throw new UsageError(`--faults: unknown fault "${fault}" (known: ${FAULTS.join(', ')}, or all, or none)`);
    }
  }
  const workload = new Set<Workload>();
  for (const item of values.workload.split(',')) {
    if (item === 'both') ['locks', 'schedule'].forEach((w) => workload.add(w as Workload));
    else if (item === 'all') WORKLOADS.filter((w) => w !== 'fair' || fair).forEach((w) => workload.add(w));
    else if ((WORKLOADS as readonly string[]).includes(item)) workload.add(item as Workload);
    else {
      throw new UsageError(
        `--workload takes a list of ${WORKLOADS.join(', ')} (or both, or all), got "${values.workload}"`,
      );
    }
  }
  if (workload.has('fair') && !fair) {
    throw new UsageError('--workload fair: this version of the library does not take the `fair` option');
  }
  const skew = /^0+$/.test(values.skew) ? 0 : duration(values.skew, '--skew');
  const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
  if (!Number.isInteger(seed)) throw new UsageError(`--seed must be an integer, got "${values.seed}"`);
  return {
    duration: duration(values.duration, '--duration'),
    workers: positiveInteger(values.workers, '--workers'),
    names: positiveInteger(values.names, '--names'),
    faults: [...new Set(listed)] as Fault[],
    faultEvery: duration(values['fault-every'], '--fault-every'),
    seed,
    out: values.out === undefined ? undefined : path.resolve(values.out),
    json: values.json,
    workload: WORKLOADS.filter((w) => workload.has(w)),
    schedulers: positiveInteger(values.schedulers, '--schedulers'),
    skew,
    help: values.help,
  };
}

const WORKER = path.join(__dirname, 'worker.ts');
const SCHEDULER = path.join(__dirname, 'scheduler.ts');
const ROOT = path.join(__dirname, '..', '..');
/** How long a worker may take to stop and exit by itself before it counts as hung. */
const EXIT_GRACE = 60_000;
/**
 * The workers' `commandTimeout` (the library's default is 10 s): short, so that the lock server
 * can stay stalled for longer than a close() may take (the `close-stall` fault) within a short run.
 */
const COMMAND_TIMEOUT = 3000;

const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis));

interface Worker {
  readonly id: string;
  readonly kind: 'locks' | 'schedule';
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with how long its close() took (ms), once it reports it. */
  readonly closed: Promise<number>;
  holding: number;
  /** It has said it is ready (connected, its manager set up): a fault told to it is acted on. */
  ready: boolean;
  killed: boolean;
  /** Told to close its manager and exit before the run's end (the `close-stall` fault). */
  retired: boolean;
  /** Until when (performance.now()) it may be frozen or blocked, after a `freeze` or `block` fault. */
  stuckUntil: number;
  stderr: string;
}

/** Runs the torture test; resolves with the checker's report and where the histories are. */
export async function runTorture(
  options: TortureOptions,
  log: (line: string) => void = () => {},
): Promise<{ report: CheckReport; dir: string; elapsed: number }> {
  const started = performance.now();
  const random: Random = seeded(options.seed);
  const dir = options.out ?? fs.mkdtempSync(path.join(os.tmpdir(), 'mdlock-torture-'));
  fs.mkdirSync(dir, { recursive: true });
  for (const file of fs.readdirSync(dir)) if (file.endsWith('.jsonl')) fs.rmSync(path.join(dir, file));
  const dbpath = fs.mkdtempSync(path.join(os.tmpdir(), 'mdlock-torture-db-'));
  const history = new HistoryWriter(path.join(dir, 'orchestrator.jsonl'), 'orchestrator');
  const on = (workload: Workload) => options.workload.includes(workload);
  const names = on('locks') ? Array.from({ length: options.names }, (_, i) => `lock-${i}`) : [];
  const has = (fault: Fault) => options.faults.includes(fault);
  const scheduleOn = on('schedule');
  // The lock workers, who take the locks, the semaphore, the read-write lock and the fair lock the run has.
  const locksOn = on('locks') || on('semaphore') || on('rwlock') || on('fair');

  let engine = await startEngine({ dbpath });
  const resourceEngine = await startEngine();
  const proxy = has('proxy') ? new FaultProxy(engine.port) : undefined;
  const port = proxy ? await proxy.listen() : engine.port;
  const uri = `mongodb://127.0.0.1:${port}/?directConnection=true`;
  const db = 'torture';

  const admin = await mongoose.createConnection(resourceEngine.uri, { dbName: db }).asPromise();
  const resources = admin.db!.collection<ResourceDocument>('resources');
  // The lock server itself, not through the proxy (the lock documents' port survives a restart).
  const lockAdmin = await mongoose
    .createConnection(`mongodb://127.0.0.1:${engine.port}/?directConnection=true`, { dbName: db })
    .asPromise();
  const locks = lockAdmin.db!.collection<LockDocument>('locks');
  // Semaphores and read-write locks: one document per name, its live holds in `holders`.
  type Holders = { _id: string; holders: Omit<LockDocument, '_id'>[] };
  const semaphoreDocs = lockAdmin.db!.collection<Holders>('locks.semaphores');
  const rwlockDocs = lockAdmin.db!.collection<Holders>('locks.rwlocks');
  // The fenced resources: one per lock, and those of the read-write lock's writers and the fair lock's holders.
  const written = [...names, ...(on('rwlock') ? [RWLOCK] : []), ...(on('fair') ? [FAIR] : [])];
  if (written.length > 0)
    await resources.insertMany(written.map((name) => ({ _id: name, token: 0, count: 0, plain: 0 })));
  const counters = admin.db!.collection<CounterDocument>('counters');
  if (on('semaphore')) await counters.insertOne({ _id: SEMAPHORE.name, value: 0 });
  const primitives = {
    ...(on('semaphore') && { semaphore: { ...SEMAPHORE } }),
    ...(on('rwlock') && { rwlock: RWLOCK }),
    ...(on('fair') && { fair: FAIR }),
  };
  const tickCounters = admin.db!.collection<TickDocument>('ticks');
  const runRecords = lockAdmin.db!.collection<{
    scheduledAt: Date;
    attempt: number;
    token: number;
    outcome: string;
    owner: string;
    name: string;
  }>('locks.runs');

  const workers = new Map<string, Worker>();
  const starting = new Set<Promise<Worker>>();
  let spawned = 0;
  let stopRequested = false;

  let schedulersSpawned = 0;
  function spawnWorker(kind: Worker['kind'] = 'locks'): Promise<Worker> {
    const id = kind === 'locks' ? `w${++spawned}` : `s${++schedulersSpawned}`;
    const seed = options.seed + (kind === 'locks' ? spawned * 7919 : schedulersSpawned * 104729);
    const common = {
      id,
      uri,
      resourceUri: resourceEngine.uri,
      db,
      seed,
      history: path.join(dir, `${id}.jsonl`),
      commandTimeout: COMMAND_TIMEOUT,
    };
    let config: WorkerConfig | SchedulerConfig;
    if (kind === 'locks') config = { ...common, names, ...primitives };
    else {
      // The first three: the most behind, on time, the most ahead; then anywhere in between.
      const spread = [-options.skew, 0, options.skew];
      const offset = schedulersSpawned <= 3 ? spread[schedulersSpawned - 1]! : random.int(-options.skew, options.skew);
      config = { ...common, offset, schedule: { ...SCHEDULE } };
    }
    const child = fork(kind === 'locks' ? WORKER : SCHEDULER, [JSON.stringify(config)], {
      cwd: ROOT,
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    let closed: (ms: number) => void = () => {};
    const worker: Worker = {
      id,
      kind,
      child,
      holding: 0,
      ready: false,
      killed: false,
      retired: false,
      stuckUntil: 0,
      stderr: '',
      exited: new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal }))),
      closed: new Promise((resolve) => (closed = resolve)),
    };
    workers.set(id, worker);
    history.record({ type: 'spawn', worker: id, pid: child.pid ?? -1 });
    child
      .stderr!.setEncoding('utf8')
      .on('data', (text: string) => (worker.stderr = (worker.stderr + text).slice(-4000)));
    child.on('message', (message: { holding?: number; closed?: number; wedged?: boolean }) => {
      if (typeof message.holding === 'number') worker.holding = message.holding;
      if (typeof message.closed === 'number') closed(message.closed);
      if (message.wedged) void replaceWedged(worker);
    });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${id} did not start within 60 s:\n${worker.stderr}`)), 60_000);
      child.once('message', () => {
        worker.ready = true;
        clearTimeout(timer);
        resolve(worker);
      });
      void worker.exited.then(({ code, signal }) => {
        clearTimeout(timer);
        if (!stopRequested && !worker.killed)
          reject(new Error(`${id} exited early (${signal ?? code}):\n${worker.stderr}`));
      });
    });
  }

  /** A worker that holds a lock now, if any does, else any live worker; `responsive`: preferably not frozen or blocked. */
  function pickHolder({ responsive = false } = {}): Worker {
    let alive = [...workers.values()].filter((w) => !w.killed && !w.retired && w.child.exitCode === null);
    // One still starting up would not act on a freeze, a block or a close yet.
    if (alive.some((w) => w.ready)) alive = alive.filter((w) => w.ready);
    const now = performance.now();
    if (responsive && alive.some((w) => w.stuckUntil < now)) alive = alive.filter((w) => w.stuckUntil < now);
    const holders = alive.filter((w) => w.holding > 0);
    return random.pick(holders.length > 0 ? holders : alive);
  }
  /** A worker told to freeze or block does so at its next step under a lock, for up to the longest ttl + 1 s: most likely over by then. */
  const mayBeStuck = (worker: Worker) => (worker.stuckUntil = performance.now() + options.faultEvery * 2 + 6000);

  /** Starts a worker in place of one that is gone; keeps the contention up, without holding up the faults. */
  function replace(kind: Worker['kind']): void {
    const replacement = spawnWorker(kind);
    starting.add(replacement);
    void replacement.finally(() => starting.delete(replacement)).catch(() => {});
  }

  /**
   * A worker whose MongoDB client wedged (./connect.ts, watchForWedge) is killed and replaced, as
   * the health check docs/deployments.md recommends would do. Not counted as a fault.
   */
  async function replaceWedged(worker: Worker): Promise<void> {
    if (worker.killed || worker.retired || stopRequested) return;
    worker.killed = true;
    worker.child.kill('SIGKILL');
    history.record({ type: 'kill', worker: worker.id, pid: worker.child.pid ?? -1, why: 'wedged' });
    log(`${worker.id}: its MongoDB client is wedged (the driver defect of spec/torture/monitor-wedge.ts): replaced`);
    await worker.exited;
    replace(worker.kind);
  }

  /** Waits for a worker that should exit by itself (SIGKILL after EXIT_GRACE), and records how it went. */
  async function exitOf(worker: Worker): Promise<void> {
    const timer = setTimeout(() => worker.child.kill('SIGKILL'), EXIT_GRACE);
    const { code, signal } = await worker.exited;
    const byItself = signal === null;
    clearTimeout(timer);
    history.record({ type: 'worker-exit', worker: worker.id, code, signal, byItself });
    if (!byItself || code !== 0) log(`${worker.id} exited with ${signal ?? code}:\n${worker.stderr}`);
  }

  const injectors: Record<Fault, () => Promise<void>> = {
    async kill() {
      const victim = pickHolder();
      victim.killed = true;
      victim.child.kill('SIGKILL');
      history.record({ type: 'kill', worker: victim.id, pid: victim.child.pid ?? -1 });
      log(`fault: kill -9 ${victim.id} (holding ${victim.holding})`);
      await victim.exited;
      replace(victim.kind);
    },
    async pause() {
      const length = random.int(500, Math.min(6000, 2 * options.faultEvery));
      history.record({ type: 'fault', kind: 'pause', detail: `${length} ms` });
      log(`fault: engine paused for ${length} ms`);
      engine.pause();
      await sleep(length);
      engine.resume();
      history.record({ type: 'fault-end', kind: 'pause', detail: 'SIGCONT' });
    },
    async proxy() {
      if (random() < 0.4) {
        const cut = proxy!.cut(random.pick([0.3, 0.6, 1]), random);
        history.record({ type: 'fault', kind: 'proxy-cut', detail: `${cut} connections` });
        log(`fault: ${cut} connections cut`);
        return;
      }
      const direction = random.pick<Direction>(['up', 'down', 'both']);
      const length = random.int(300, Math.min(12_000, 3 * options.faultEvery));
      const how = random() < 0.5 ? 'deliver' : 'cut';
      const stalled = proxy!.stall(random.pick([0.3, 0.6, 1]), direction, random);
      history.record({
        type: 'fault',
        kind: 'proxy-stall',
        detail: `${stalled.length} ${direction} ${length} ms ${how}`,
      });
      log(`fault: ${stalled.length} connections stalled (${direction}) for ${length} ms, then ${how}`);
      await sleep(length);
      proxy!.heal(stalled, how);
      history.record({ type: 'fault-end', kind: 'proxy-stall', detail: how });
    },
    async restart() {
      history.record({ type: 'fault', kind: 'restart', detail: 'SIGKILL, then start on the same dbpath' });
      const before = performance.now();
      engine = await engine.restart();
      const took = `${Math.round(performance.now() - before)} ms`;
      history.record({ type: 'fault-end', kind: 'restart', detail: took });
      log(`fault: engine crashed and restarted in ${took}`);
    },
    freeze() {
      const victim = pickHolder();
      history.record({ type: 'fault', kind: 'freeze', detail: victim.id });
      log(`fault: ${victim.id} freezes at its next step under a lock`);
      mayBeStuck(victim);
      victim.child.send('freeze');
      return Promise.resolve();
    },
    block() {
      const victim = pickHolder();
      history.record({ type: 'fault', kind: 'block', detail: victim.id });
      log(`fault: ${victim.id} blocks its event loop at its next step under a lock`);
      mayBeStuck(victim);
      victim.child.send('block');
      return Promise.resolve();
    },
    async 'close-stall'() {
      const victim = pickHolder({ responsive: true }); // a frozen one would close only once unfrozen
      victim.retired = true;
      // Long enough that a close() waiting for the server, rather than for commandTimeout, shows.
      const longest = COMMAND_TIMEOUT + CLOSE_SLACK + 1000;
      history.record({ type: 'fault', kind: 'close-stall', detail: `${victim.id}, at most ${longest} ms` });
      engine.pause();
      victim.child.send('close');
      const took = await Promise.race([victim.closed, sleep(longest).then(() => undefined)]);
      engine.resume();
      const detail = took === undefined ? 'close() still pending' : `close() took ${Math.round(took)} ms`;
      const end = history.record({ type: 'fault-end', kind: 'close-stall', detail });
      log(`fault: engine stalled while ${victim.id} closed its manager: ${detail}`);
      await exitOf(victim);
      // What it left held on the server (locks, permits, read-write holds): the checker bounds how long that outlives the stall.
      const left = await locks.find({ owner: victim.id, leaseId: { $ne: null } }).toArray();
      for (const shared of [semaphoreDocs, rwlockDocs]) {
        for (const doc of await shared.find({ 'holders.owner': victim.id }).toArray()) {
          left.push(...doc.holders.filter((h) => h.owner === victim.id).map((h) => ({ ...h, _id: doc._id })));
        }
      }
      for (const lock of left) {
        history.record({
          type: 'leftover',
          worker: victim.id,
          name: lock._id,
          token: lock.token,
          expiresAt: lock.expiresAt.getTime(),
          ttl: lock.ttl,
          since: end.wall,
        });
      }
      replace(victim.kind);
    },
  };

  try {
    await Promise.all([
      ...Array.from({ length: locksOn ? options.workers : 0 }, () => spawnWorker('locks')),
      ...Array.from({ length: scheduleOn ? options.schedulers : 0 }, () => spawnWorker('schedule')),
    ]);
    history.record({
      type: 'run',
      names,
      workers: options.workers,
      faults: [...options.faults],
      seed: options.seed,
      duration: options.duration,
    });
    if (primitives.semaphore) history.record({ type: 'declare', kind: 'semaphore', ...primitives.semaphore });
    if (primitives.rwlock) history.record({ type: 'declare', kind: 'rwlock', name: primitives.rwlock });
    if (primitives.fair) history.record({ type: 'declare', kind: 'fair', name: primitives.fair });
    const runStarted = history.record({
      type: 'schedule',
      name: SCHEDULE.name,
      pattern: SCHEDULE.pattern,
      retries: SCHEDULE.retries,
      ttl: SCHEDULE.ttl,
      skew: options.skew,
      schedulers: scheduleOn ? options.schedulers : 0,
    });
    log(
      [
        locksOn
          ? `${options.workers} lock workers (${options.workload.filter((w) => w !== 'schedule').join(', ')})`
          : '',
        scheduleOn ? `${options.schedulers} schedulers (clocks up to ${options.skew} ms off)` : '',
      ]
        .filter(Boolean)
        .join(' and ') + ` running for ${ms(options.duration)}`,
    );
    const settle = scheduleOn ? SCHEDULE_SETTLE : 0;
    const end = performance.now() + options.duration;
    // Faults come round-robin in a shuffled order, so a short run still gets each kind.
    const order = random.shuffle(options.faults);
    for (let n = 0; ; n++) {
      const left = end - performance.now();
      const next = options.faults.length > 0 ? options.faultEvery * (0.5 + random()) : Infinity;
      if (next >= left) {
        await sleep(Math.max(0, left));
        break;
      }
      await sleep(next);
      await injectors[order[n % order.length]!]();
    }
    if (settle > 0) {
      log(`no more faults: ${settle} ms for the last ticks to settle`);
      await sleep(settle);
    }

    await Promise.all(starting); // a replacement that failed to start fails the run here
    stopRequested = true;
    const stopping = history.record({ type: 'stopping' });
    log('stopping the workers');
    const running = [...workers.values()].filter((w) => !w.killed && !w.retired);
    for (const worker of running) if (worker.child.connected) worker.child.send('stop');
    await Promise.all(running.map(exitOf));

    for (const doc of await resources.find().toArray()) {
      history.record({ type: 'resource', name: doc._id, token: doc.token, count: doc.count, plain: doc.plain });
    }
    for (const doc of await counters.find().toArray())
      history.record({ type: 'counter', name: doc._id, value: doc.value });
    if (scheduleOn) {
      // Every tick the first scheduler's clock could not have passed before the run began, plus the
      // largest skew, up to the settling tail: fired, run and settled with every scheduler up.
      const every = SCHEDULE.every;
      const from = Math.ceil((runStarted.wall + options.skew + every) / every) * every;
      const to = Math.floor((stopping.wall - settle) / every) * every;
      history.record({ type: 'tick-window', from, to, every });
      for (const doc of await runRecords.find({ name: SCHEDULE.name }).toArray()) {
        const { attempt, token, outcome, owner } = doc;
        history.record({ type: 'tick-record', tick: doc.scheduledAt.getTime(), attempt, token, outcome, owner });
      }
      for (const doc of await tickCounters.find().toArray()) {
        history.record({ type: 'tick-resource', tick: doc._id, token: doc.token, count: doc.count });
      }
    }
  } finally {
    for (const worker of workers.values()) if (worker.child.exitCode === null) worker.child.kill('SIGKILL');
    history.close();
    await admin.close();
    await lockAdmin.close();
    await proxy?.close();
    await Promise.all([engine.stop(), resourceEngine.stop()]);
    fs.rmSync(dbpath, { recursive: true, force: true });
  }

  // The resource's server takes no faults, so a correct lock keeps even the unfenced counter exact.
  const report = checkHistory(readHistories(dir), { unfencedExact: true, retries: SCHEDULE.retries });
  const elapsed = performance.now() - started;
  fs.writeFileSync(path.join(dir, 'summary.json'), JSON.stringify({ options, elapsed, ...summaryOf(report) }, null, 2));
  if (!options.out && report.violations.length === 0) fs.rmSync(dir, { recursive: true, force: true });
  return { report, dir, elapsed };
}

/** The report without the holds: what the summary prints and `--json` writes. */
export function summaryOf(report: CheckReport) {
  return { violations: report.violations, stats: report.stats };
}

const pct = (part: number, whole: number) => (whole === 0 ? '0' : ((100 * part) / whole).toFixed(0));
const table = (counts: Record<string, number>) =>
  Object.entries(counts)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, value]) => `${key} ${value}`)
    .join(', ') || 'none';

/** A human-readable summary of a run. */
export function formatSummary(options: TortureOptions, report: CheckReport, elapsed: number): string {
  const { stats, violations } = report;
  const failed = new Set(violations.map((v) => v.check));
  const lines = [
    `torture: ${stats.workers} worker processes (${options.workload.join(',')}: ${options.workers} lock workers, ` +
      `${options.workload.includes('schedule') ? options.schedulers : 0} schedulers at a time), ` +
      `${options.workload.includes('locks') ? options.names : 0} lock names, ` +
      `${ms(options.duration)} of contention, faults: ${options.faults.join(',') || 'none'}, seed ${options.seed}`,
    `operations  ${stats.operations} (${table(stats.outcomes)}); by mode: ${table(stats.modes)}`,
    `acquired    ${stats.acquisitions} holds (${table(stats.acquisitionsByName)})`,
    `ended by    ${table(stats.ends)}; lost: ${table(stats.lost)}`,
    `release()   ${stats.releases.freed} freed, ${stats.releases.alreadyEnded} found the hold already ended, ${stats.releases.failed} failed`,
    `fenced      ${stats.fenced.accepted} writes accepted, ${stats.fenced.rejected} rejected as stale, ` +
      `${stats.fenced.unknown} unknown; final count ${stats.fenced.final}`,
    `unfenced    ${stats.unfenced.increments} increments, final ${stats.unfenced.final}, ` +
      `${stats.unfenced.lostUpdates} lost updates (${pct(stats.unfenced.lostUpdates, stats.unfenced.increments)} %)`,
    `faults      ${table(stats.faults)}; holds killed ${stats.killedHolds}, frozen ${stats.frozenHolds}, ` +
      `blocked past expiry ${stats.blockedHolds}` +
      (stats.takeover.count > 0
        ? `; killed holders' locks taken over ${stats.takeover.afterKill.join('-')} ms after the kill, ` +
          `${stats.takeover.afterExpiry.join('-')} ms after their expiry`
        : ''),
    `close()     ${stats.closes.count} returned, slowest ${Math.round(stats.closes.slowest)} ms; ` +
      `locks left held by closed workers ${stats.closes.leftovers}`,
    `margins     closest local end before server expiry ${Math.round(stats.closestEndBeforeExpiry)} ms; ` +
      `closest handover ${stats.closestHandover.toFixed(1)} ms`,
    ...(stats.semaphore.permits > 0
      ? [
          `semaphore   ${stats.semaphore.permits} permits (limit ${SEMAPHORE.limit}), at most ${stats.semaphore.maxLive} live at once; ` +
            `counter at most ${stats.semaphore.counterMax}, final ${stats.semaphore.counterFinal} ` +
            `(${stats.semaphore.leaked} entries of killed holders)`,
        ]
      : []),
    ...(stats.rwlock.reads + stats.rwlock.writes > 0
      ? [`rwlock      ${stats.rwlock.reads} read holds, ${stats.rwlock.writes} write holds`]
      : []),
    ...(stats.fair.ops > 0
      ? [
          `fair        ${stats.fair.ops} acquisitions, ${stats.fair.queued} known queued; ${stats.fair.compared} pairs of ` +
            `waiters compared, ${stats.fair.disrupted} not judged (a fault during the wait)`,
        ]
      : []),
    ...(stats.schedule.runs > 0 || stats.schedule.ticks > 0
      ? [
          `schedule    ${stats.schedule.ticks} ticks recorded (${table(stats.schedule.outcomes)}), ${stats.schedule.window} in the checked window; ` +
            `${stats.schedule.runs} runs, ${stats.schedule.retries} retries; runs ended: ${table(stats.schedule.runEnds)}`,
          `            skipped: ${table(stats.schedule.skipped)}; leases lost: ${table(stats.schedule.lost)}; ` +
            `counter writes ${stats.schedule.writes.accepted} accepted, ${stats.schedule.writes.rejected} rejected, ` +
            `${stats.schedule.writes.unknown} unknown; job errors ${stats.schedule.errors}`,
        ]
      : []),
    `checks      ${CHECKS.map((check) => `${check} ${failed.has(check) ? 'FAILED' : 'ok'}`).join(', ')}`,
    ...violations.slice(0, 20).map((v) => `  ${v.check}: ${v.message}`),
    ...(violations.length > 20 ? [`  ... and ${violations.length - 20} more`] : []),
    `violations  ${violations.length}   (${(elapsed / 1000).toFixed(1)} s in all)`,
  ];
  return lines.join('\n');
}

async function main(): Promise<void> {
  let options;
  try {
    options = parseOptions(process.argv.slice(2), { fair: await fairSupported() });
  } catch (error) {
    console.error(`torture: ${(error as Error).message}`);
    process.exitCode = 2;
    return;
  }
  if (options.help) return console.log(USAGE);
  const log = options.json ? () => {} : (line: string) => console.log(`  ${line}`);
  const { report, dir, elapsed } = await runTorture(options, log);
  if (options.json) console.log(JSON.stringify({ options, elapsed, ...summaryOf(report) }));
  else console.log(formatSummary(options, report, elapsed));
  if (report.violations.length > 0 || options.out) console.error(`histories: ${dir}`);
  process.exitCode = report.violations.length > 0 ? 1 : 0;
}

if (require.main === module) void main();
