// One scheduler worker of the torture test's scheduling workload: its own process, connection and
// LockManager, with a skewed clock (its `Date` reads `offset` ms off the real one, as on a machine
// whose clock is off). It declares the run's schedule (every second), and each run of a tick works
// for a while, may fail on purpose, and increments the tick's counter in the resource database,
// fenced by the run's token. Everything is recorded in its history (real clocks: ./history.ts
// takes the real `Date.now` before the shift).
//
// Started by ./run.ts with one JSON argument (SchedulerConfig). Over IPC it takes the lock
// workers' messages: 'stop' (stop the job, which waits for its runs, close the manager, exit),
// 'freeze' and 'block' (at the next step of a run, for longer than its lease; see ./worker.ts),
// 'close' (close the manager now, report how long it took, exit).
import { LockError, LockManager, type Run } from 'mongoose-distributed-lock';
import { connect, watchForWedge } from './connect';
import { HistoryWriter } from './history';
import { seeded } from './random';

export interface SchedulerConfig {
  readonly id: string;
  readonly uri: string;
  readonly resourceUri: string;
  readonly db: string;
  readonly seed: number;
  readonly history: string;
  readonly commandTimeout: number;
  /** This process's clock skew, in ms. */
  readonly offset: number;
  readonly schedule: {
    readonly name: string;
    readonly pattern: string;
    readonly ttl: number;
    readonly retries: number;
  };
}

/** A tick's counter in the resource database. */
export interface TickDocument {
  /** The tick's scheduledAt, in ms. */
  _id: number;
  token: number;
  count: number;
}

/** How often a first attempt throws on purpose (before its write), so that retries happen. */
const FAILURE_RATE = 0.15;
const WRITE = { timeoutMS: 5000, writeConcern: { w: 1, j: true } } as const;
const DUPLICATE_KEY = 11000;

const config = JSON.parse(process.argv[2] ?? '{}') as SchedulerConfig;
const history = new HistoryWriter(config.history, config.id);
const random = seeded(config.seed);

if (config.offset !== 0) {
  const RealDate = Date;
  const offset = config.offset;
  class ShiftedDate extends RealDate {
    constructor(...values: unknown[]) {
      if (values.length === 0) super(RealDate.now() + offset);
      else super(...(values as [string]));
    }
    static override now(): number {
      return RealDate.now() + offset;
    }
  }
  globalThis.Date = ShiftedDate as DateConstructor;
}

function crash(error: unknown): void {
  history.record({ type: 'crash', message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  process.exit(1);
}
process.on('uncaughtException', crash);
process.on('unhandledRejection', crash);

let freezeNext = false;
let blockNext = false;
const stopping = new AbortController();
let closeManager: () => Promise<void> = () => Promise.resolve();
let closeRequested = false;
process.on('message', (message) => {
  if (message === 'stop') stopping.abort();
  if (message === 'freeze') freezeNext = true;
  if (message === 'block') blockNext = true;
  if (message === 'close') {
    closeRequested = true; // before main() set closeManager up: it closes once it has
    void closeManager().catch(crash);
  }
});

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** The tick (ms) of a tick's lock name `<schedule>@<ISO date>`, or undefined for another lock. */
function tickOf(lock: string): number | undefined {
  const at = lock.lastIndexOf('@');
  return at < 0 ? undefined : new Date(lock.slice(at + 1)).getTime();
}

async function main(): Promise<void> {
  history.record({ type: 'start', pid: process.pid });
  history.record({ type: 'clock-offset', offset: config.offset });
  const connection = await connect(config.uri, config.db);
  const resourceConnection = await connect(config.resourceUri, config.db);
  const ticks = resourceConnection.db!.collection<TickDocument>('ticks');
  const unwatch = watchForWedge(connection, (ms) => {
    history.record({
      type: 'wedged',
      detail: `server monitor in a check on a closed connection for ${Math.round(ms)} ms`,
    });
    process.send?.({ wedged: true });
  });
  // Without cross-process wake-ups: with their tailable cursor open, the driver's server monitor
  // gets stuck for good far more often after an engine restart through the proxy
  // (./monitor-wedge.ts). It can still happen without them; watchForWedge above then has this
  // process replaced, since this workload checks that every tick is accounted for.
  const manager = new LockManager({
    connection,
    owner: config.id,
    poll: 100,
    commandTimeout: config.commandTimeout,
    wakeups: false,
  });
  const errors: Record<string, number> = {};
  manager.on('error', (error) => {
    const kind = error instanceof LockError ? error.code : error.name;
    errors[kind] = (errors[kind] ?? 0) + 1;
  });
  manager.on('lost', (_lease, error) => {
    const tick = tickOf(error.lock);
    if (tick !== undefined) history.record({ type: 'tick-lost', tick, token: error.token, reason: error.reason });
  });

  const running = new Set<Run>();
  const report = () => process.send?.({ holding: running.size });

  /** The run's side effect, fenced: the counter of its tick, accepted only if no larger token wrote it. */
  async function fencedWrite(tick: number, token: number): Promise<boolean> {
    history.record({ type: 'tick-write', tick, token, phase: 'begin' });
    try {
      // An upsert: the tick's first write inserts; a write with a token not larger than the stored one
      // matches nothing and then fails to insert a second document with the same _id.
      await ticks.updateOne(
        { _id: tick, token: { $lt: token } },
        { $set: { token }, $inc: { count: 1 } },
        { ...WRITE, upsert: true },
      );
      history.record({ type: 'tick-write', tick, token, phase: 'ok' });
      return true;
    } catch (error) {
      const rejected = (error as { code?: unknown }).code === DUPLICATE_KEY;
      history.record({ type: 'tick-write', tick, token, phase: rejected ? 'rejected' : 'error' });
      return false;
    }
  }

  /** A run: works a while (frozen or blocked if told so), fails now and then, writes, works a little more. */
  async function work(run: Run): Promise<'returned' | 'threw' | 'aborted'> {
    const tick = run.scheduledAt.getTime();
    const { token, signal, lease } = run;
    await sleep(random.int(0, 1200), signal);
    if (freezeNext) {
      freezeNext = false;
      const ms = lease.ttl + 1000;
      history.record({ type: 'tick-freeze', tick, token, ms });
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms); // the whole process stops
      await fencedWrite(tick, token); // resumes where it was: about to write, without looking
      return 'aborted';
    }
    if (blockNext) {
      blockNext = false;
      const ms = lease.ttl + 1000;
      history.record({ type: 'tick-block', tick, token, ms, expiresAt: lease.expiresAt?.getTime() ?? 0 });
      const end = performance.now() + ms;
      while (performance.now() < end); // the event loop is stuck here
      const held = lease.held;
      const aborted = signal.aborted;
      history.record({ type: 'tick-block-end', tick, token, held, aborted });
      if (!held || aborted) return 'aborted';
    }
    if (signal.aborted) return 'aborted';
    if (run.attempt === 1 && random() < FAILURE_RATE) return 'threw';
    if (!(await fencedWrite(tick, token))) return 'threw';
    await sleep(random.int(0, 200), signal);
    return signal.aborted ? 'aborted' : 'returned';
  }

  const { name, pattern, ttl, retries } = config.schedule;
  const job = manager.schedule(
    name,
    pattern,
    async (run) => {
      const tick = run.scheduledAt.getTime();
      const { attempt, token } = run;
      history.record({
        type: 'tick-run',
        tick,
        attempt,
        token,
        expiresAt: run.lease.expiresAt?.getTime() ?? 0,
        ttl: run.lease.ttl,
      });
      running.add(run);
      report();
      try {
        const how = await work(run);
        history.record({ type: 'tick-end', tick, attempt, token, how });
        if (how === 'threw') throw new Error('injected failure (or a rejected write)');
        if (how === 'aborted') throw new Error('the run saw its lease end');
      } finally {
        running.delete(run);
        report();
      }
    },
    { ttl, retries },
  );
  job.on('done', (run) => {
    history.record({ type: 'tick-done', tick: run.scheduledAt.getTime(), attempt: run.attempt, token: run.token });
  });
  job.on('failed', (run, error) => {
    const tick = run.scheduledAt.getTime();
    history.record({ type: 'tick-failed', tick, attempt: run.attempt, token: run.token, reason: error.message });
  });
  job.on('skipped', (skipped) => {
    history.record({ type: 'tick-skipped', tick: skipped.scheduledAt.getTime(), reason: skipped.reason });
  });
  job.on('error', (error) => history.record({ type: 'sched-error', message: error.message }));

  let closing: Promise<void> | undefined;
  closeManager = () =>
    (closing ??= (async () => {
      stopping.abort();
      history.record({ type: 'close', commandTimeout: config.commandTimeout });
      const before = performance.now();
      await manager.close();
      const ms = performance.now() - before;
      history.record({ type: 'closed', ms });
      process.send?.({ closed: ms });
    })());

  if (closeRequested) void closeManager().catch(crash);
  process.send?.({ ready: true });
  // A 'stop' (or 'close') may have come while this process was still setting up.
  if (!stopping.signal.aborted) {
    await new Promise((resolve) => stopping.signal.addEventListener('abort', resolve, { once: true }));
  }
  if (!closing) await job.stop(); // a stop lets the runs in progress finish; a 'close' aborts them
  await closeManager();
  unwatch();
  await connection.close();
  await resourceConnection.close();
  history.record({ type: 'exit', errors });
  history.close();
  process.disconnect?.();
}

main().catch(crash);
