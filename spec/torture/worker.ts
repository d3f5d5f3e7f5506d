// One torture worker: its own process, connection and LockManager. It contends for the run's
// lock names with every way of acquiring the library offers, works under each hold (fenced
// writes and unprotected increments on a shared resource, stopping when `lease.signal` aborts),
// then releases or lets the lease run out, and records everything in its history file.
//
// The resource lives on a server of its own, as a protected resource would (a storage service,
// another database): faults injected into the lock server do not touch it.
//
// Started by ./run.ts with one JSON argument (WorkerConfig). Over IPC it takes:
// - 'stop': finish the current operation, close the manager, exit;
// - 'freeze': at its next step under a hold, the process freezes (no timers, no I/O: a stand-in
//   for a long GC pause) for longer than the lease, then writes to the fenced resource with its
//   now stale token, as a paused process would, without looking at `lease.signal` first;
// - 'block': at its next step under a hold, the worker blocks its own event loop (a synchronous
//   busy-wait, as a long computation would) for longer than the lease, then, as careful code
//   does, looks at `lease.held` and `lease.signal.aborted` and writes only if they say it holds;
// - 'close': close the manager now, whatever is in flight (run.ts sends it while the lock server
//   is stalled), report how long close() took, then exit.
import {
  LockError,
  LockErrorCode,
  LockManager,
  strategies,
  type Lease,
  type PollStrategy,
} from 'mongoose-distributed-lock';
import { connect } from './connect';
import { HistoryWriter, type AcquireMode, type HoldKind, type OpOutcome, type StopWhy } from './history';
import { seeded } from './random';

export interface WorkerConfig {
  readonly id: string;
  readonly uri: string;
  /** The server holding the resource. */
  readonly resourceUri: string;
  readonly db: string;
  /** The plain locks contended for (none if the run has no lock workload). */
  readonly names: readonly string[];
  /** The semaphore workload's semaphore, if the run has it. */
  readonly semaphore?: { readonly name: string; readonly limit: number };
  /** The read-write lock workload's lock, if the run has it. */
  readonly rwlock?: string;
  /** The fair workload's lock (taken with `fair: true`), if the run has it. */
  readonly fair?: string;
  readonly seed: number;
  readonly history: string;
  /** The manager's `commandTimeout`, in ms. */
  readonly commandTimeout: number;
}

/** A resource document: `token`/`count` written with a fence, `plain` without one. */
export interface ResourceDocument {
  _id: string;
  token: number;
  count: number;
  plain: number;
}

const MODES: readonly AcquireMode[] = ['tryAcquire', 'acquire-wait', 'acquire-abort', 'withLock', 'lease-backoff'];
/** Leases with a heartbeat: ttl in ms (the margin is the default 10 %). */
const RENEWED_TTLS = [2000, 3000, 5000];
/** Leases without a heartbeat, which end at their ttl unless released. */
const SHORT_TTLS = [1500, 2000, 3000];
/** Resource writes are bounded, and journaled so that an engine crash does not undo an acknowledged one. */
const WRITE = { timeoutMS: 5000, writeConcern: { w: 1, j: true } } as const;

const config = JSON.parse(process.argv[2] ?? '{}') as WorkerConfig;
const history = new HistoryWriter(config.history, config.id);
const random = seeded(config.seed);
const stopping = new AbortController();
const errors: Record<string, number> = {};
/** A semaphore's shared counter, in the resource database. */
export interface CounterDocument {
  _id: string;
  value: number;
}

/** Held leases and the last server expiry recorded for each. */
const held = new Map<Lease, { token: number; expiresAt: number }>();

function crash(error: unknown): void {
  history.record({ type: 'crash', message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  process.exit(1);
}
process.on('uncaughtException', crash);
process.on('unhandledRejection', crash);
/** What the acquisition in flight takes (one at a time per worker), for the `acquired` event. */
let acquiring: HoldKind = 'lock';
let freezeNext = false;
let blockNext = false;
/** Set in main(): closes the manager (once), resolving when it is closed. */
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

/** Records a later server expiry of a held lease (its watchdog read one back after a renewal). */
function sampleExpiry(lease: Lease): void {
  const known = held.get(lease);
  const expiresAt = lease.expiresAt?.getTime();
  if (!known || !lease.held || lease.token !== known.token || expiresAt === undefined) return;
  if (expiresAt > known.expiresAt) {
    known.expiresAt = expiresAt;
    history.record({ type: 'expiry', name: lease.name, token: known.token, expiresAt });
  }
}

function stop(lease: Lease, why: StopWhy): void {
  sampleExpiry(lease);
  history.record({ type: 'stop', name: lease.name, token: lease.token!, why });
}

function ended(lease: Lease, token: number): void {
  if (held.get(lease)?.token === token) held.delete(lease);
  process.send?.({ holding: held.size });
}

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

function outcomeOf(error: unknown): { outcome: OpOutcome; code?: string } {
  if (error instanceof LockError) {
    if (error.code === LockErrorCode.Timeout) return { outcome: 'timeout' };
    return { outcome: 'error', code: error.code };
  }
  const name = (error as Error | undefined)?.name;
  if (name === 'AbortError' || name === 'TimeoutError') return { outcome: 'aborted' };
  throw error; // anything else is a bug: the worker crashes, and the checker reports it
}

async function main(): Promise<void> {
  history.record({ type: 'start', pid: process.pid });
  const connection = await connect(config.uri, config.db);
  const resourceConnection = await connect(config.resourceUri, config.db);
  const resources = resourceConnection.db!.collection<ResourceDocument>('resources');
  const counters = resourceConnection.db!.collection<CounterDocument>('counters');
  const manager = new LockManager({
    connection,
    owner: config.id,
    poll: 100,
    commandTimeout: config.commandTimeout,
  });

  manager.on('error', (error) => {
    const kind = error instanceof LockError ? error.code : error.name;
    errors[kind] = (errors[kind] ?? 0) + 1;
  });
  manager.on('acquired', (lease, { name, token, expiresAt }) => {
    history.record({
      type: 'acquired',
      name,
      token,
      expiresAt: expiresAt.getTime(),
      ttl: lease.ttl,
      heartbeat: lease.heartbeat,
      ...(acquiring !== 'lock' && { kind: acquiring }),
    });
    held.set(lease, { token, expiresAt: expiresAt.getTime() });
    process.send?.({ holding: held.size });
  });
  manager.on('released', (lease, { name, token }) => {
    history.record({ type: 'released', name, token });
    ended(lease, token);
  });
  manager.on('lost', (lease, error) => {
    history.record({ type: 'lost', name: error.lock, token: error.token, reason: error.reason });
    ended(lease, error.token);
  });
  manager.on('timeout', (lease, { name, phase, token }) => {
    if (phase !== 'hold' || token === undefined) return;
    history.record({ type: 'hold-timeout', name, token });
    ended(lease, token);
  });
  // A lease whose release() failed (no event follows) is dropped here once it no longer holds.
  const sampler = setInterval(
    () => held.forEach((_, lease) => (lease.held ? sampleExpiry(lease) : held.delete(lease))),
    20,
  );

  /** A write to the fenced resource: accepted only if no larger token has been written. */
  async function fencedWrite(lease: Lease, token: number, { stale = false } = {}): Promise<void> {
    if ((lease.signal.aborted || stopping.signal.aborted) && !stale) return;
    history.record({ type: 'fence', name: lease.name, token, phase: 'begin' });
    try {
      const { matchedCount } = await resources.updateOne(
        { _id: lease.name, token: { $lte: token } },
        { $set: { token }, $inc: { count: 1 } },
        WRITE,
      );
      history.record({ type: 'fence', name: lease.name, token, phase: matchedCount === 1 ? 'ok' : 'rejected' });
    } catch {
      history.record({ type: 'fence', name: lease.name, token, phase: 'error' });
    }
  }

  /** Read, then write back plus one, with no fence: exact only if nobody else wrote in between. */
  async function unprotectedIncrement(lease: Lease, token: number): Promise<void> {
    if (lease.signal.aborted || stopping.signal.aborted) return;
    history.record({ type: 'inc', name: lease.name, token, phase: 'begin' });
    try {
      const doc = await resources.findOne({ _id: lease.name }, { timeoutMS: WRITE.timeoutMS });
      if (lease.signal.aborted || stopping.signal.aborted)
        return void history.record({ type: 'inc', name: lease.name, token, phase: 'skipped' });
      await resources.updateOne({ _id: lease.name }, { $set: { plain: doc!.plain + 1 } }, WRITE);
      history.record({ type: 'inc', name: lease.name, token, phase: 'done' });
    } catch {
      history.record({ type: 'inc', name: lease.name, token, phase: 'error' });
    }
  }

  /** The writes in flight under a hold, if any: closing waits for them before it records the holds' end. */
  let writing: Promise<void> = Promise.resolve();
  async function writeBoth(lease: Lease, token: number): Promise<void> {
    await (writing = (async () => {
      await fencedWrite(lease, token);
      await unprotectedIncrement(lease, token);
    })());
  }

  /**
   * A semaphore holder's entry or exit on the shared counter (a plain `$inc`: permits of one
   * semaphore have no common order a fence could enforce; the checker bounds the count instead).
   */
  async function countOn(lease: Lease, token: number, delta: 1 | -1): Promise<boolean> {
    const name = lease.name;
    history.record({ type: 'count', name, token, delta, phase: 'begin' });
    try {
      const doc = await counters.findOneAndUpdate(
        { _id: name },
        { $inc: { value: delta } },
        { ...WRITE, returnDocument: 'after' },
      );
      history.record({ type: 'count', name, token, delta, phase: 'ok', value: doc!.value });
      return true;
    } catch {
      history.record({ type: 'count', name, token, delta, phase: 'error' });
      return false;
    }
  }

  /** Works under the hold until `ms` have passed, the hold ends, or the worker stops; `writes`: with fenced and plain writes. */
  async function work(lease: Lease, ms: number, writes = true): Promise<void> {
    const token = lease.token!;
    const until = performance.now() + ms;
    while (!lease.signal.aborted && !stopping.signal.aborted && performance.now() < until) {
      if (blockNext) {
        blockNext = false;
        sampleExpiry(lease);
        const ms = lease.ttl + 1000;
        history.record({ type: 'block', name: lease.name, token, ms, expiresAt: lease.expiresAt!.getTime() });
        const end = performance.now() + ms;
        while (performance.now() < end); // the event loop is stuck here: no timer, no I/O callback runs
        // Careful code looks before it writes; the library must not say "held" past the lease's expiry.
        const stillHeld = lease.held;
        const aborted = lease.signal.aborted;
        history.record({ type: 'block-end', name: lease.name, token, held: stillHeld, aborted });
        if (!stillHeld || aborted) return;
        if (writes) await writeBoth(lease, token);
        continue;
      }
      if (freezeNext) {
        freezeNext = false;
        const ms = lease.ttl + 1000;
        history.record({ type: 'freeze', name: lease.name, token, ms });
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms); // the whole process stops
        if (writes) await fencedWrite(lease, token, { stale: true }); // resumes where it was: about to write
        return; // and then finds its lease lost
      }
      sampleExpiry(lease);
      if (writes) await writeBoth(lease, token);
      await sleep(random.int(5, 80), lease.signal);
    }
  }

  /** How long to work: mostly briefly; else renewed leases often outlast their ttl, and others sometimes run out. */
  const holdTime = (lease: Lease) =>
    random() < 0.6 ? random.int(0, 300) : random.int(0, Math.round(lease.ttl * (lease.heartbeat === false ? 1.3 : 2)));

  /** After working: release (and record it), or let a lease without heartbeat run out first. */
  async function finish(lease: Lease, token: number): Promise<void> {
    if (lease.held && lease.heartbeat === false && random() < 0.3) {
      await new Promise((resolve) => {
        lease.signal.addEventListener('abort', resolve, { once: true });
        stopping.signal.addEventListener('abort', resolve, { once: true });
      });
    }
    if (lease.held) stop(lease, 'release');
    else if (random() < 0.5) return; // ended by itself (lost or ran out): release() is optional
    try {
      const result = await lease.release();
      history.record({ type: 'release-end', name: lease.name, token, result });
    } catch (error) {
      const code = error instanceof LockError ? error.code : String(error);
      history.record({ type: 'release-end', name: lease.name, token, result: 'error', code });
    }
  }

  /** A lease's timing: mostly renewed by the heartbeat, else ending at its ttl unless released. */
  function timing(): { ttl: number; heartbeat: number | false } {
    const renewed = random() < 0.7;
    const ttl = random.pick(renewed ? RENEWED_TTLS : SHORT_TTLS);
    return { ttl, heartbeat: renewed ? Math.round(ttl / random.pick([3, 4])) : false };
  }

  /**
   * Runs `fn` under a hold taken by a `with…` helper (withLock, withPermit, withRead, withWrite):
   * once `fn` ran, a rejection that says the hold ended early (lost, or ran out) is recorded already.
   */
  async function within(
    op: number,
    run: (fn: (holding: Lease) => Promise<void>) => Promise<void>,
    body: (holding: Lease) => Promise<void>,
  ): Promise<void> {
    let ran = false;
    try {
      await run(async (holding) => {
        ran = true;
        history.record({ type: 'op-end', op, outcome: 'held', token: holding.token! });
        await body(holding);
        if (holding.held) stop(holding, 'fn-end');
      });
    } catch (error) {
      const code = error instanceof LockError ? error.code : undefined;
      if (ran && (code === LockErrorCode.Lost || code === LockErrorCode.Timeout)) return;
      history.record({ type: 'op-end', op, ...outcomeOf(error) });
    }
  }

  /** The end of an acquisition by a call that returns the hold (or null): records it, then works and finishes. */
  async function acquired(
    op: number,
    take: () => Promise<Lease | null>,
    body: (lease: Lease) => Promise<void>,
  ): Promise<void> {
    let lease: Lease | null;
    try {
      lease = await take();
    } catch (error) {
      history.record({ type: 'op-end', op, ...outcomeOf(error) });
      return;
    }
    history.record({ type: 'op-end', op, outcome: lease ? 'held' : 'busy', ...(lease && { token: lease.token! }) });
    if (!lease) return void (await sleep(random.int(0, 50), stopping.signal));
    const token = lease.token!;
    await body(lease);
    await finish(lease, token);
  }

  /**
   * Under a permit: enter the shared counter, work (no writes: permits of one semaphore are not
   * exclusive), exit. The exit comes before the hold's `stop`, so that, for a holder that stops
   * by itself, its count lies within its hold; one that lost its permit first exits after.
   */
  async function underPermit(permit: Lease): Promise<void> {
    const token = permit.token!;
    const entry = countOn(permit, token, 1);
    writing = entry.then(() => {});
    // An entry whose outcome is unknown is not undone: the checker counts it as possibly applied.
    const entered = await entry;
    await work(permit, holdTime(permit), false);
    if (entered) await (writing = countOn(permit, token, -1).then(() => {}));
  }

  async function semaphoreOperation(op: number, { name, limit }: { name: string; limit: number }): Promise<void> {
    const options = timing();
    const mode = random.pick<AcquireMode>(['sem-acquire', 'sem-try', 'withPermit']);
    const wait = random.int(0, 3000);
    // Fair and unfair contenders mixed: the semaphore's checks hold whatever the mix.
    const fair = random() < 0.5;
    history.record({ type: 'op', op, name, mode, ...options, ...(mode !== 'sem-try' && { wait }), fair });
    const semaphore = manager.semaphore(name, { limit, ...options, fair });
    const signal = stopping.signal;
    acquiring = 'permit';
    if (mode === 'withPermit') {
      return within(op, (fn) => semaphore.withPermit(fn, { wait, signal }), underPermit);
    }
    await acquired(
      op,
      () => (mode === 'sem-try' ? semaphore.tryAcquire({ signal }) : semaphore.acquire({ wait, signal })),
      underPermit,
    );
  }

  async function rwOperation(op: number, name: string): Promise<void> {
    const options = timing();
    const mode = random.pick<AcquireMode>(['read', 'write', 'withRead', 'withWrite']);
    const wait = random.int(0, 3000);
    // Fair and unfair contenders mixed: exclusion and fencing hold whatever the mix.
    const fair = random() < 0.5;
    history.record({ type: 'op', op, name, mode, ...options, wait, fair });
    const rw = manager.readWriteLock(name, { ...options, fair });
    const signal = stopping.signal;
    const writer = mode === 'write' || mode === 'withWrite';
    acquiring = writer ? 'write' : 'read';
    // A writer writes to the fenced resource and the plain counter, as a lock holder does; a reader does not write.
    const body = (lease: Lease) => work(lease, holdTime(lease), writer);
    if (mode === 'withRead') return within(op, (fn) => rw.withRead(fn, { wait, signal }), body);
    if (mode === 'withWrite') return within(op, (fn) => rw.withWrite(fn, { wait, signal }), body);
    await acquired(op, () => (writer ? rw.write({ wait, signal }) : rw.read({ wait, signal })), body);
  }

  /**
   * A fair lock: waits either with a bounded `wait`, or polling through a strategy whose first
   * call (the first attempt answered "wait") is recorded as `queued`, for the checker to know the
   * latest time the waiter joined the queue.
   */
  async function fairOperation(op: number, name: string): Promise<void> {
    const options = timing();
    const mode = random.pick<AcquireMode>(['fair-wait', 'fair-poll']);
    const wait = random.int(500, 4000);
    history.record({ type: 'op', op, name, mode, ...options, wait });
    const contender = manager.lease(name, { ...options, fair: true });
    const signal = stopping.signal;
    acquiring = 'lock';
    let queued = false;
    const strategy: PollStrategy = {
      next(_attempt, elapsed) {
        if (!queued) history.record({ type: 'queued', op, name });
        queued = true;
        return elapsed < wait ? 50 : null;
      },
    };
    const options2 = mode === 'fair-wait' ? { wait, signal } : { strategy, signal };
    await acquired(
      op,
      async () => ((await contender.acquire(options2)) ? contender : null),
      (lease) => work(lease, holdTime(lease)),
    );
  }

  const targets = [
    ...(config.names.length > 0 ? ['lock' as const] : []),
    ...(config.semaphore ? ['semaphore' as const] : []),
    ...(config.rwlock ? ['rwlock' as const] : []),
    ...(config.fair ? ['fair' as const] : []),
  ];

  async function operation(op: number): Promise<void> {
    const target = random.pick(targets);
    if (target === 'semaphore') return semaphoreOperation(op, config.semaphore!);
    if (target === 'rwlock') return rwOperation(op, config.rwlock!);
    if (target === 'fair') return fairOperation(op, config.fair!);
    acquiring = 'lock';
    return lockOperation(op);
  }

  async function lockOperation(op: number): Promise<void> {
    const name = random.pick(config.names);
    const options = timing();
    const mode = random.pick(MODES);
    const wait = random.int(0, 3000);
    history.record({ type: 'op', op, name, mode, ...options });
    const signal = stopping.signal;
    const body = (lease: Lease) => work(lease, holdTime(lease));
    if (mode === 'withLock') {
      return within(op, (fn) => manager.withLock(name, fn, { ...options, wait, signal }), body);
    }
    await acquired(
      op,
      async () => {
        switch (mode) {
          case 'tryAcquire':
            return manager.tryAcquire(name, { ...options, signal });
          case 'acquire-wait':
            return manager.acquire(name, { ...options, wait, signal });
          case 'acquire-abort':
            return manager.acquire(name, { ...options, signal: AbortSignal.any([signal, AbortSignal.timeout(wait)]) });
          default: {
            const contender = manager.lease(name, options);
            const strategy = strategies.backoff({ initial: 20, max: 400, within: wait });
            return (await contender.acquire({ strategy, signal })) ? contender : null;
          }
        }
      },
      body,
    );
  }

  let closing: Promise<void> | undefined;
  /** Stops working (no new write starts; the one in flight ends), then closes the manager and times it. */
  closeManager = () =>
    (closing ??= (async () => {
      stopping.abort();
      await writing;
      for (const lease of held.keys()) if (lease.held) stop(lease, 'close');
      history.record({ type: 'close', commandTimeout: config.commandTimeout });
      const before = performance.now();
      await manager.close();
      const ms = performance.now() - before;
      history.record({ type: 'closed', ms });
      process.send?.({ closed: ms });
    })());

  if (closeRequested) void closeManager().catch(crash);
  process.send?.({ ready: true });
  for (let op = 1; !stopping.signal.aborted; op++) await operation(op);

  await closeManager();
  clearInterval(sampler);
  await connection.close();
  await resourceConnection.close();
  history.record({ type: 'exit', errors });
  history.close();
  process.disconnect?.();
}

main().catch(crash);
