// Scheduled jobs: every process declares the same schedule, and each tick runs once across all
// of them (see docs/scheduling.md). Ticks come from croner (an optional peer dependency, loaded
// only here); each tick runs through runTick() in lib/runs.ts.
import { EventEmitter } from 'eventemitter3';
import type { Connection } from 'mongoose';
import type { Duration } from './duration.js';
import { LockErrorCode, LockStateError, invalidType, outOfRange } from './errors.js';
import type { HeldLease } from './lease.js';
import type { LockManager } from './manager.js';
import { isConnectionError } from './mongo-errors.js';
import { RunStore } from './run-store.js';
import {
  MAX_CATCH_UP_TICKS,
  RETAIN,
  jobSettings,
  loadCroner,
  makeCron,
  parseKey,
  type CronLike,
  type JobSettings,
} from './cron.js';
import { checkName, checkObject } from './options.js';
import {
  checkScheduleName,
  decide,
  runPolicy,
  runTick,
  tickId,
  type Run,
  type RunContext,
  type RunOnceOptions,
  type RunOnceResult,
  type RunOutcome,
  type RunRecord,
  type RunsQuery,
} from './runs.js';
import { MAX_TIMER } from './timeout.js';

/** What to do with ticks no process was up for. */
export type MisfirePolicy = 'skip' | 'once' | 'all';

/** Options of {@link LockManager.schedule}. */
export interface ScheduleOptions {
  /** The IANA time zone the pattern is read in. @defaultValue the process's */
  readonly timezone?: string;
  /** The run's lease, renewed while the function runs. @defaultValue the manager's `ttl` */
  readonly ttl?: Duration;
  /** How many times a run that threw, or whose runner died, is tried again. @defaultValue `0` */
  readonly retries?: number;
  /**
   * Ticks no process was up for: `'skip'` records them `missed`; `'once'` runs the latest of them
   * (the others are recorded `missed`); `'all'` runs each, oldest first. @defaultValue `'skip'`
   */
  readonly misfire?: MisfirePolicy;
  /** How old a missed tick may be and still be run (or recorded `missed`). @defaultValue `'1h'` */
  readonly catchUp?: Duration;
  /** How long the runs' records are kept (a TTL index on `expireAt`). @defaultValue `'7d'` */
  readonly retain?: Duration;
  /**
   * How late a tick may be and still run as an ordinary tick rather than a missed one: covers the
   * clock skew between processes and timers firing late. @defaultValue `'5s'`
   */
  readonly tolerance?: Duration;
}

/** Payload of a job's `skipped` event: a tick this process did not run, and why. */
export interface SkippedTick {
  readonly name: string;
  readonly scheduledAt: Date;
  /** `done`, `failed`, `lost`, `missed`: the tick's record says so; `running`: another process runs it. */
  readonly reason: RunOutcome;
}

/** Events of a {@link ScheduledJob}. */
export interface ScheduledJobEvents {
  /** This process starts a run (an attempt) of a tick. */
  run: (run: Run) => void;
  /** A run of this process ended well, recorded `done`. */
  done: (run: Run, result: unknown) => void;
  /** A run of this process threw (recorded `failed`), or its lease was lost (the LeaseLostError). */
  failed: (run: Run, error: Error) => void;
  /** A tick this process did not run. */
  skipped: (tick: SkippedTick) => void;
  /** A background failure (MongoDB unreachable at a tick, say). Without a listener: the manager's `error` event. */
  error: (error: Error) => void;
}

/** The function of a scheduled job. */
export type ScheduledFunction = (run: Run) => unknown;

/** node-cron's run coordinator (node-cron 4.6+: `cron.setRunCoordinator(locks.runCoordinator())`). */
export interface RunCoordinator {
  /** Claims the tick `key` (`${taskName}:${slot.toISOString()}`) under a lease of `ttlMs`: true to run it here. */
  shouldRun(key: string, ttlMs: number): Promise<boolean>;
  /** Records the tick `key` done and releases its lease. */
  onComplete(key: string): Promise<void>;
}

/** What the scheduling of one manager needs from it. @internal */
export interface SchedulingContext {
  readonly manager: LockManager;
  readonly connection: Connection;
  /** The run records' collection: `<collection>.runs`. */
  readonly collection: string;
  readonly commandTimeout: number;
  readonly ttl: number;
  readonly report: (error: unknown) => void;
}

/** The scheduled jobs, runOnce, runs() and the run coordinator of one manager. @internal */
export class Scheduling {
  readonly #context: SchedulingContext;
  readonly #run: RunContext;
  readonly #jobs = new Map<string, ScheduledJob>();
  readonly #claimed = new Map<string, { lease: HeldLease; id: string }>();
  #closing = false;

  constructor(context: SchedulingContext) {
    this.#context = context;
    const store = new RunStore(context.connection, context.collection, context.commandTimeout, context.report);
    this.#run = { manager: context.manager, store, report: context.report };
  }

  schedule(name: string, pattern: string, fn: ScheduledFunction, options?: ScheduleOptions): ScheduledJob {
    const checked = checkScheduleName(checkName(name, 'schedule name'), 'schedule name');
    const what = 'schedule(name, pattern, fn): pattern';
    if (typeof pattern !== 'string' || pattern.trim() === '')
      throw invalidType(what, 'a cron pattern (a string such as "0 3 * * *")', pattern);
    if (typeof fn !== 'function') throw invalidType('schedule(name, pattern, fn): fn', 'a function', fn);
    const settings = jobSettings(options, this.#context.ttl);
    if (this.#jobs.has(checked))
      throw outOfRange('schedule name', 'a name this manager does not schedule already', checked);
    const module = loadCroner();
    const job = new ScheduledJob(checked, this.#run, settings, fn, () => this.#jobs.delete(checked));
    this.#jobs.set(checked, job);
    if (module instanceof Promise) {
      module.then(
        (loaded) => job.start(makeCron(loaded, pattern, settings.timezone, what)),
        (error: unknown) => job.fail(error),
      );
    } else {
      try {
        job.start(makeCron(module, pattern, settings.timezone, what));
      } catch (error) {
        this.#jobs.delete(checked);
        throw error;
      }
    }
    return job;
  }

  runOnce<T>(
    name: string,
    scheduledAt: Date,
    fn: (run: Run) => T | Promise<T>,
    options?: RunOnceOptions,
  ): Promise<RunOnceResult<T>> {
    const checked = checkScheduleName(checkName(name, 'schedule name'), 'schedule name');
    if (!(scheduledAt instanceof Date) || Number.isNaN(scheduledAt.getTime()))
      throw invalidType('runOnce(name, scheduledAt, fn): scheduledAt', 'a valid Date', scheduledAt);
    if (typeof fn !== 'function') throw invalidType('runOnce(name, scheduledAt, fn): fn', 'a function', fn);
    const policy = runPolicy(options, this.#context.ttl, 'runOnce options');
    return runTick(this.#run, checked, new Date(scheduledAt.getTime()), fn, policy);
  }

  /** Checks the arguments of runs() at once; the query runs when called. */
  runsQuery(name: string, options?: RunsQuery): () => Promise<RunRecord[]> {
    const checked = checkScheduleName(checkName(name, 'schedule name'), 'schedule name');
    const { limit = 100 } = checkObject(options, 'runs options');
    if (typeof limit !== 'number') throw invalidType('runs options.limit', 'a whole number', limit);
    if (!Number.isInteger(limit) || limit < 1)
      throw outOfRange('runs options.limit', 'a whole number of at least 1', limit);
    return () => this.#run.store.list(checked, limit);
  }

  runCoordinator(): RunCoordinator {
    return {
      shouldRun: (key, ttlMs) => this.#shouldRun(key, ttlMs),
      onComplete: (key) => this.#onComplete(key),
    };
  }

  async #shouldRun(key: string, ttlMs: number): Promise<boolean> {
    const { name, scheduledAt } = parseKey(key);
    if (this.#claimed.has(key) || this.#closing) return false;
    const id = tickId(name, scheduledAt);
    const lease = await this.#context.manager.tryAcquire(id, { ttl: ttlMs }).catch((error: unknown) => {
      // A manager closing (node-cron's tick as the process shuts down) runs no more ticks: no error.
      if (error instanceof LockStateError && error.code === LockErrorCode.Closed) return null;
      throw error;
    });
    if (!lease) return false;
    const { store } = this.#run;
    let claimed = false;
    try {
      const record = await store.read(id);
      const decision = decide(record, lease.token, 0);
      if (decision.kind === 'lost') await store.finish(id, record!.token, 'lost');
      if (decision.kind !== 'claim') return false;
      const claim = {
        attempt: decision.attempt,
        token: lease.token,
        owner: this.#context.manager.owner,
        retain: RETAIN,
      };
      claimed = await store.claim({ name, scheduledAt, id }, record, claim);
      if (claimed) this.#claimed.set(key, { lease, id });
      return claimed;
    } finally {
      if (!claimed && lease.held) await lease.release().catch((error: unknown) => this.#context.report(error));
    }
  }

  async #onComplete(key: string): Promise<void> {
    const claim = this.#claimed.get(key);
    if (!claim) return;
    this.#claimed.delete(key);
    const { lease, id } = claim;
    try {
      if (lease.held) await this.#run.store.finish(id, lease.token, 'done');
    } finally {
      if (lease.held) await lease.release().catch((error: unknown) => this.#context.report(error));
    }
  }

  /** Stops every job: their timers and waits at once; resolves once their runs in progress have ended. */
  async close(): Promise<void> {
    this.#closing = true;
    await Promise.all([...this.#jobs.values()].map((job) => job.stop()));
  }
}

/**
 * A schedule of this process, created by {@link LockManager.schedule}: fires at each tick of its
 * pattern and runs the tick unless another process runs (or ran) it. See docs/scheduling.md.
 */
export class ScheduledJob extends EventEmitter<ScheduledJobEvents> {
  /** The schedule's name. */
  readonly name: string;
  readonly #context: RunContext;
  readonly #settings: JobSettings;
  readonly #fn: ScheduledFunction;
  readonly #forget: () => void;
  readonly #stopping = new AbortController();
  readonly #inflight = new Set<Promise<void>>();
  #cron: CronLike | undefined;
  #loop: Promise<void> | undefined;
  #stopped: Promise<void> | undefined;
  /** The sleeps in progress (the loop's, the come-backs'): a stop ends them all. */
  readonly #sleeps = new Set<() => void>();
  /** Ticks (ms) that could not be claimed because MongoDB was unreachable: taken up again once it answers. */
  readonly #unreached = new Set<number>();
  #retrying = false;

  /** @internal Use {@link LockManager.schedule}. */
  constructor(name: string, context: RunContext, settings: JobSettings, fn: ScheduledFunction, forget: () => void) {
    super();
    this.name = name;
    this.#context = context;
    this.#settings = settings;
    this.#fn = fn;
    this.#forget = forget;
  }

  /** True once `stop()` has been called. */
  get stopped(): boolean {
    return this.#stopping.signal.aborted;
  }

  /** The next tick after now (by this process's clock), or `null` if the pattern has none (or the job is stopped). */
  nextRun(): Date | null {
    if (this.stopped || !this.#cron) return null;
    return this.#cron.nextRun(new Date());
  }

  /** No more ticks in this process: ends its timer and its waits, and resolves once its runs in progress have ended. */
  stop(): Promise<void> {
    return (this.#stopped ??= this.#stop());
  }

  async #stop(): Promise<void> {
    this.#stopping.abort(new LockStateError(LockErrorCode.Closed, `the schedule "${this.name}" was stopped`));
    for (const wake of [...this.#sleeps]) wake();
    this.#forget();
    await this.#loop;
    while (this.#inflight.size > 0) await Promise.all([...this.#inflight]);
  }

  /** @internal */
  start(cron: CronLike): void {
    if (this.stopped) return;
    this.#cron = cron;
    this.#loop = this.#ticks(cron).catch((error: unknown) => this.#error(error));
  }

  /** @internal croner could not be loaded (ESM), or the pattern is bad: reported, and the job stops. */
  fail(error: unknown): void {
    this.#error(error);
    void this.stop();
  }

  async #ticks(cron: CronLike): Promise<void> {
    const { tolerance, catchUp } = this.#settings;
    let last = await this.#startingPoint();
    while (!this.stopped) {
      const next = cron.nextRun(last);
      if (!next) return; // the pattern has no more ticks
      await this.#sleepUntil(next.getTime());
      if (this.stopped) return;
      const now = Date.now();
      const due = ticksBetween(cron, last, now, now - catchUp);
      if (due.length === 0) continue; // woke early: sleep again
      last = due.at(-1)!;
      const recent = due.filter((tick) => tick.getTime() > now - tolerance);
      const old = due.filter((tick) => tick.getTime() <= now - tolerance);
      if (old.length > 0) this.#track(this.#misfire(old));
      for (const tick of recent) this.#track(this.#tick(tick));
    }
  }

  /**
   * Where this process takes the schedule up. Without records (a new schedule): now. Else from its
   * newest record on: the ticks since then that nobody claimed were missed (the misfire policy applies
   * to those older than the tolerance), and the newest record itself too if it is unsettled (its
   * runner died, or it failed with retries left). Never later than the tolerance ago: the recent
   * ticks are run (or found done) as ordinary ticks, since peers whose clocks lag may not have
   * reached them yet.
   */
  async #startingPoint(): Promise<Date> {
    const { tolerance, catchUp } = this.#settings;
    const started = Date.now(); // ticks after schedule() was called are this job's, however long the read takes
    let newest: RunRecord | null;
    let older: RunRecord[];
    for (;;) {
      try {
        newest = await this.#context.store.newest(this.name);
        // Older ticks left unsettled: every process that knew of them may be gone (a runner killed,
        // then the peer that waited for its lease), so nobody else would come back to them.
        older = newest
          ? await this.#context.store.unsettled(this.name, new Date(started - catchUp), MAX_CATCH_UP_TICKS)
          : [];
        break;
      } catch (error) {
        this.#error(error);
        await this.#sleepUntil(Date.now() + 1000);
        if (this.stopped) return new Date();
      }
    }
    if (!newest) return new Date(started);
    const unsettled = newest.outcome === 'running' || newest.outcome === 'failed';
    const from = newest.scheduledAt.getTime() - (unsettled ? 1 : 0);
    const start = Math.min(from, started - tolerance);
    const behind = older.filter((record) => record.scheduledAt.getTime() <= start);
    if (behind.length > 0) this.#track(this.#settle(behind.map((record) => record.scheduledAt)));
    return new Date(start);
  }

  /** Ticks claimed but left unsettled, oldest first: runOnce retries each or records it lost. */
  async #settle(ticks: Date[]): Promise<void> {
    for (const tick of ticks) if (!this.stopped) await this.#tick(tick);
  }

  async #misfire(ticks: Date[], quiet = false): Promise<void> {
    const { misfire } = this.#settings;
    if (misfire === 'all') {
      for (const tick of ticks) if (!this.stopped) await this.#tick(tick, RECHECKS, quiet);
      return;
    }
    const run = misfire === 'once' ? ticks.at(-1) : undefined;
    for (const tick of ticks) {
      if (this.stopped) return;
      if (tick === run) continue;
      try {
        await this.#skip(tick, quiet);
      } catch (error) {
        if (!isConnectionError(error)) throw error;
        if (!quiet) this.#error(error);
        quiet = true;
        this.#unreachable(tick);
      }
    }
    if (run && !this.stopped) await this.#tick(run, RECHECKS, quiet);
  }

  /** A missed tick of the policies `skip` and `once`: recorded `missed` unless a record settles it otherwise. */
  async #skip(tick: Date, quiet: boolean): Promise<void> {
    const record = await this.#context.store.read(tickId(this.name, tick));
    if (record && record.outcome !== 'running' && record.outcome !== 'failed') return;
    if (record) {
      await this.#tick(tick, RECHECKS, quiet); // an unsettled record (runner died, or failed): settled by runOnce
      return;
    }
    const recorded = await this.#context.store.missed(
      { name: this.name, scheduledAt: tick, id: tickId(this.name, tick) },
      this.#context.manager.owner,
      this.#settings.retain,
    );
    if (recorded) this.#emit('skipped', { name: this.name, scheduledAt: tick, reason: 'missed' });
  }

  /**
   * A tick that could not be claimed (or recorded missed) because MongoDB did not answer: kept, and
   * taken up again every second until MongoDB answers. Then the ticks still within `tolerance` run
   * as ordinary ticks and the older ones, within `catchUp`, are missed ticks under the `misfire`
   * policy (together, so that `once` runs one of them): an outage leaves no tick without a record.
   */
  #unreachable(tick: Date): void {
    this.#unreached.add(tick.getTime());
    if (this.#retrying || this.stopped) return;
    this.#retrying = true;
    this.#track(
      this.#retryUnreached().finally(() => {
        this.#retrying = false;
        if (this.#unreached.size > 0 && !this.stopped) this.#unreachable(new Date([...this.#unreached][0]!));
      }),
    );
  }

  async #retryUnreached(): Promise<void> {
    while (this.#unreached.size > 0) {
      await this.#sleepUntil(Date.now() + UNREACHED_RETRY);
      if (this.stopped) return;
      const { tolerance, catchUp } = this.#settings;
      const now = Date.now();
      const ticks = [...this.#unreached]
        .sort((a, b) => a - b)
        .filter((tick) => tick >= now - catchUp)
        .map((tick) => new Date(tick));
      this.#unreached.clear();
      const old = ticks.filter((tick) => tick.getTime() <= now - tolerance);
      if (old.length > 0) await this.#misfire(old, true);
      for (const tick of ticks.filter((t) => t.getTime() > now - tolerance)) await this.#tick(tick, RECHECKS, true);
    }
  }

  /** `quiet`: an outage already reported (a tick taken up again): its connection errors are not reported again. */
  async #tick(scheduledAt: Date, rechecks = RECHECKS, quiet = false): Promise<void> {
    let result: RunOnceResult<unknown>;
    try {
      result = await runTick(
        this.#context,
        this.name,
        scheduledAt,
        this.#fn,
        this.#settings,
        {
          run: (run) => this.#emit('run', run),
          done: (run, value) => this.#emit('done', run, value),
          failed: (run, error) => this.#emit('failed', run, error),
        },
        this.#stopping.signal,
      );
    } catch (error) {
      // The function's own error was emitted as `failed`; a stop or a close ends waits quietly.
      if (this.#ran(error) || this.stopped || this.#context.manager.closed) return;
      // The server could not be reached: take this tick up again once it answers, so that an outage
      // does not leave it without a record (it runs then, or is found done, or recorded missed or lost).
      if (!isConnectionError(error)) this.#error(error);
      else {
        if (!quiet) this.#error(error);
        this.#unreachable(scheduledAt);
      }
      return;
    }
    if (!result.ran) this.#emit('skipped', { name: this.name, scheduledAt, reason: result.outcome });
    // Still running when this process's wait ran out: its runner may yet die, or fail to record the
    // end (a stalled server). Come back to it later, so that no tick stays `running` for good.
    if (!result.ran && result.outcome === 'running' && rechecks > 0) this.#comeBack(scheduledAt, rechecks);
  }

  /** Runs `#tick(scheduledAt)` again a ttl from now (with one recheck fewer), unless stopped meanwhile. */
  #comeBack(scheduledAt: Date, rechecks: number): void {
    if (this.stopped) return;
    this.#track(
      this.#sleepUntil(Date.now() + this.#settings.ttl).then(() =>
        this.stopped ? undefined : this.#tick(scheduledAt, rechecks - 1),
      ),
    );
  }

  readonly #thrown = new WeakSet<object>();

  #ran(error: unknown): boolean {
    return typeof error === 'object' && error !== null && this.#thrown.has(error);
  }

  #track(work: Promise<void>): void {
    const tracked = work.catch((error: unknown) => {
      if (!this.stopped && !this.#context.manager.closed) this.#error(error);
    });
    this.#inflight.add(tracked);
    void tracked.finally(() => this.#inflight.delete(tracked));
  }

  #sleepUntil(at: number): Promise<void> {
    return new Promise((resolve) => {
      const delay = Math.min(Math.max(0, at - Date.now()), MAX_TIMER);
      const done = () => {
        clearTimeout(timer);
        this.#sleeps.delete(done);
        resolve();
      };
      const timer = setTimeout(done, delay);
      this.#sleeps.add(done);
    });
  }

  #emit<E extends keyof ScheduledJobEvents>(event: E, ...args: Parameters<ScheduledJobEvents[E]>): void {
    if (event === 'failed') this.#thrown.add(args[1] as object);
    try {
      (this.emit as (event: string, ...args: unknown[]) => boolean)(event, ...args);
    } catch (error) {
      this.#error(error);
    }
  }

  #error(error: unknown): void {
    const err = error instanceof Error ? error : new Error(String(error));
    if (this.listenerCount('error') === 0) {
      this.#context.report(err);
      return;
    }
    try {
      this.emit('error', err);
    } catch (listenerError) {
      this.#context.report(listenerError);
    }
  }
}

/** The ticks in (after, now], at most the newest MAX_CATCH_UP_TICKS, none before `floor`. */
function ticksBetween(cron: CronLike, after: Date, now: number, floor: number): Date[] {
  const reference = new Date(now + 1); // previousRuns() gives ticks before its reference
  const ticks = cron
    .previousRuns(MAX_CATCH_UP_TICKS, reference)
    .filter((tick) => tick.getTime() > after.getTime() && tick.getTime() >= floor && tick.getTime() <= now);
  return ticks.sort((a, b) => a.getTime() - b.getTime());
}

/** How many times a process comes back to a tick it found still running when its wait ran out. */
const RECHECKS = 3;
/** How often ticks that met an outage are tried again, in ms. */
const UNREACHED_RETRY = 1000;
