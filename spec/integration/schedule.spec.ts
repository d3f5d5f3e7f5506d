// manager.schedule() in one process against the real engine: two managers share the ticks (each
// once, with run/done/skipped events), misfire policies skip/once/all within catchUp, close()
// stops schedules after aborting their runs, and bad input is refused naming what was wrong.
import type { LockManager, Run, RunRecord, ScheduledJob, SkippedTick } from '../../lib/index';
import { elapse, lockFixture } from '../helpers/locks';
import { nextEvent } from '../helpers/wait';

const locks = lockFixture({ ttl: '3s' });
const EVERY_SECOND = '*/1 * * * * *';

/** Resolves once `job` has settled (run or skipped) the tick `at`. */
function settled(job: ScheduledJob, at: number, timeout = 20_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tick ${new Date(at).toISOString()} not settled`)), timeout);
    const check = (tick: { scheduledAt: Date }) => {
      if (tick.scheduledAt.getTime() !== at) return;
      clearTimeout(timer);
      job.off('done', onDone).off('skipped', check);
      resolve();
    };
    const onDone = (run: Run) => check(run);
    job.on('done', onDone).on('skipped', check);
  });
}

test('two managers on one schedule: each tick runs once, by one of them; the other skips it as done', async () => {
  const [a, b] = [await locks.manager({ owner: 'a' }), await locks.manager({ owner: 'b' })];
  const events: string[] = [];
  const ran: Run[] = [];
  const jobs = [a, b].map((manager) => {
    const job = manager.schedule('shared', EVERY_SECOND, (run) => void ran.push(run));
    job.on('run', (run) => events.push(`${manager.owner} run ${run.scheduledAt.getTime()}`));
    job.on('done', (run) => events.push(`${manager.owner} done ${run.scheduledAt.getTime()}`));
    job.on('skipped', (tick) => events.push(`${manager.owner} skipped ${tick.scheduledAt.getTime()} ${tick.reason}`));
    return job;
  });
  const next = jobs[0]!.nextRun()!;
  expect(next.getTime() % 1000).toBe(0);
  expect(next.getTime()).toBeGreaterThan(Date.now() - 1000);
  const last = next.getTime() + 2000;
  await Promise.all(jobs.map((job) => settled(job, last)));
  await Promise.all(jobs.map((job) => job.stop()));
  const ticks = [next.getTime(), next.getTime() + 1000, last];
  for (const tick of ticks) {
    const of = events.filter((event) => event.split(' ')[2] === String(tick)).map((e) => e.replace(` ${tick}`, ''));
    // One runs it and says done; the other finds it done.
    expect([
      ['a run', 'a done', 'b skipped done'],
      ['b run', 'b done', 'a skipped done'],
    ]).toContainEqual(sortByRunner(of));
  }
  const records = await a.runs('shared');
  for (const tick of ticks) {
    expect(records.find((r) => r.scheduledAt.getTime() === tick)).toMatchObject({ outcome: 'done', attempt: 1 });
    expect(ran.filter((run) => run.scheduledAt.getTime() === tick)).toHaveLength(1);
  }
  expect(jobs.map((job) => [job.stopped, job.nextRun()])).toEqual([
    [true, null],
    [true, null],
  ]);
});

/** The events of one tick, the runner's first (run, done), then the other's. */
function sortByRunner(events: string[]): string[] {
  const runner = events.find((event) => event.endsWith(' run'))?.[0];
  return [...events].sort((x, y) => Number(x[0] !== runner) - Number(y[0] !== runner));
}

/**
 * Waits until just after a whole second X, so that with tolerance 1.5 s the ticks up to X-2 are
 * missed and X-1, X are due, as long as the job starts within 0.4 s.
 */
async function atWholeSecond(): Promise<number> {
  await elapse(1000 - (Date.now() % 1000) + 20);
  return Math.floor(Date.now() / 1000) * 1000;
}

async function misfireRun(manager: LockManager, name: string, misfire: 'skip' | 'once' | 'all', catchUp = '1m') {
  const x = await atWholeSecond();
  // The fleet ran X-8 last, then was down.
  await manager.runOnce(name, new Date(x - 8000), () => 'before the outage');
  const skipped: SkippedTick[] = [];
  const runs: number[] = [];
  const job = manager.schedule(name, EVERY_SECOND, (run) => void runs.push(run.scheduledAt.getTime()), {
    misfire,
    catchUp,
    tolerance: '1500ms',
  });
  job.on('skipped', (tick) => skipped.push(tick));
  // The catch-up goes oldest first: once X-2 is settled, so are the ticks before it.
  await Promise.all([settled(job, x - 2000), settled(job, x)]);
  await job.stop();
  const records = await manager.runs(name);
  const outcome = (record: RunRecord) => `${(x - record.scheduledAt.getTime()) / 1000}:${record.outcome}`;
  const upToX = records.filter((record) => record.scheduledAt.getTime() <= x).reverse();
  return { x, records: upToX.map(outcome), runs, skipped };
}

test("misfire 'skip': the ticks nobody was up for are recorded missed; the due ones run", async () => {
  const { x, records, runs, skipped } = await misfireRun(await locks.manager(), 'skip', 'skip');
  expect(records).toEqual([
    '8:done',
    '7:missed',
    '6:missed',
    '5:missed',
    '4:missed',
    '3:missed',
    '2:missed',
    '1:done',
    '0:done',
  ]);
  // The due ticks may start in either order (each runs in its own call).
  expect(runs.filter((t) => t <= x).sort((a, b) => a - b)).toEqual([x - 1000, x]);
  expect(skipped.map((tick) => [(x - tick.scheduledAt.getTime()) / 1000, tick.reason])).toEqual(
    [7, 6, 5, 4, 3, 2].map((s) => [s, 'missed']),
  );
});

test("misfire 'once': only the latest missed tick runs; the older ones are recorded missed", async () => {
  const { x, records, runs } = await misfireRun(await locks.manager(), 'once', 'once');
  expect(records).toEqual([
    '8:done',
    '7:missed',
    '6:missed',
    '5:missed',
    '4:missed',
    '3:missed',
    '2:done',
    '1:done',
    '0:done',
  ]);
  expect(runs.filter((t) => t <= x).sort()).toEqual([x - 2000, x - 1000, x]);
});

test("misfire 'all': every missed tick within catchUp runs, oldest first; older ones are left alone", async () => {
  const manager = await locks.manager();
  const { x, records, runs } = await misfireRun(manager, 'all', 'all', '4s');
  // catchUp 4 s: X-7..X-4 are too old to run or record.
  expect(records).toEqual(['8:done', '3:done', '2:done', '1:done', '0:done']);
  const missedRuns = runs.filter((t) => t <= x - 2000);
  expect(missedRuns).toEqual([x - 3000, x - 2000]);
});

test('close() aborts the run in progress, waits for it, and stops the schedule', async () => {
  const manager = await locks.manager();
  const order: string[] = [];
  const job = manager.schedule('closing', EVERY_SECOND, async (run) => {
    order.push('run');
    await new Promise((resolve) => run.signal.addEventListener('abort', resolve));
    order.push(`aborted ${(run.signal.reason as Error).name}`);
    await elapse(50); // the run winds down after its signal
    order.push('ended');
  });
  job.on('failed', (_run, error) => order.push(`failed ${error.name}`));
  await nextEvent(job, 'run');
  await manager.close();
  order.push('closed');
  expect(order).toEqual(['run', 'aborted LockStateError', 'ended', 'failed LockStateError', 'closed']);
  expect(job.stopped).toBe(true);
  expect(job.nextRun()).toBeNull();
  const ticks = order.length;
  await elapse(1500); // a tick would have come by now
  expect(order).toHaveLength(ticks);
  expect(() => manager.schedule('after-close', EVERY_SECOND, () => {})).toThrow(/closed/);
});

test('bad input: a TypeError or RangeError naming the argument or option', async () => {
  const manager = await locks.manager();
  const fn = () => {};
  const cases: Array<[() => unknown, RegExp, string]> = [
    [() => manager.schedule('', EVERY_SECOND, fn), /schedule name/, 'TypeError'],
    [() => manager.schedule('x'.repeat(500), EVERY_SECOND, fn), /schedule name/, 'RangeError'],
    [() => manager.schedule('n', 'not a pattern', fn), /pattern.*"not a pattern"/, 'TypeError'],
    [() => manager.schedule('n', '61 * * * *', fn), /pattern/, 'TypeError'],
    // croner reads what is not a cron pattern as a date: one already past (or a date that never
    // comes, such as 30 February) would make a schedule that never fires, silently.
    [() => manager.schedule('n', ' :0', fn), /pattern.*no tick to come/, 'RangeError'],
    [() => manager.schedule('n', '0 0 30 2 *', fn), /pattern.*no tick to come/, 'RangeError'],
    [() => manager.schedule('n', '2001-01-01T00:00:00Z', fn), /pattern.*no tick to come/, 'RangeError'],
    [() => manager.schedule('n', 42 as never, fn), /pattern/, 'TypeError'],
    [() => manager.schedule('n', EVERY_SECOND, 'fn' as never), /fn must be a function/, 'TypeError'],
    [() => manager.schedule('n', EVERY_SECOND, fn, { timezone: 'Nowhere/Else' }), /options\.timezone/, 'RangeError'],
    [() => manager.schedule('n', EVERY_SECOND, fn, { ttl: -1 }), /options\.ttl/, 'RangeError'],
    [() => manager.schedule('n', EVERY_SECOND, fn, { retries: 1.5 }), /options\.retries/, 'RangeError'],
    [() => manager.schedule('n', EVERY_SECOND, fn, { retries: '1' as never }), /options\.retries/, 'TypeError'],
    [() => manager.schedule('n', EVERY_SECOND, fn, { misfire: 'never' as never }), /options\.misfire/, 'TypeError'],
    [() => manager.schedule('n', EVERY_SECOND, fn, { catchUp: 'soon' }), /options\.catchUp/, 'TypeError'],
    [() => manager.schedule('n', EVERY_SECOND, fn, { retain: 0 }), /options\.retain/, 'RangeError'],
    [() => manager.schedule('n', EVERY_SECOND, fn, 'options' as never), /schedule options/, 'TypeError'],
    [() => manager.runOnce('n', new Date('nope'), fn), /scheduledAt must be a valid Date/, 'TypeError'],
    [() => manager.runOnce('n', Date.now() as never, fn), /scheduledAt/, 'TypeError'],
    [() => manager.runOnce('n', new Date(), fn, { wait: -5 }), /runOnce options\.wait/, 'RangeError'],
    [() => manager.runOnce('n', new Date(), fn, { retries: -1 }), /runOnce options\.retries/, 'RangeError'],
    [() => manager.runs('n', { limit: 0 }), /runs options\.limit/, 'RangeError'],
  ];
  for (const [call, message, name] of cases) {
    let thrown: unknown;
    try {
      void call();
    } catch (error) {
      thrown = error;
    }
    expect({ message: (thrown as Error)?.message, name: (thrown as Error)?.name }).toEqual({
      message: expect.stringMatching(message),
      name,
    });
    expect(thrown).toMatchObject({ code: 'invalid_argument' });
  }
  // undefined options are absent.
  const job = manager.schedule('fine', EVERY_SECOND, fn, {
    ttl: undefined,
    retries: undefined,
    misfire: undefined,
    timezone: undefined,
  });
  expect(job.nextRun()).toBeInstanceOf(Date);
  expect(() => manager.schedule('fine', EVERY_SECOND, fn)).toThrow(/already/);
  await job.stop();
});

test('a schedule in a time zone: 03:00 in Europe/Berlin is 02:00 UTC in winter', async () => {
  const manager = await locks.manager();
  const job = manager.schedule('berlin', '0 3 * * *', () => {}, { timezone: 'Europe/Berlin' });
  const next = job.nextRun()!;
  expect([1, 2]).toContain(next.getUTCHours()); // 01:00 UTC in summer, 02:00 in winter
  expect(next.getUTCMinutes()).toBe(0);
  await job.stop();
});
