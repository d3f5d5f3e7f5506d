// runOnce() against the real engine: a tick runs at most once across managers, a done tick is
// never run again, a run that threw is recorded failed and retried within `retries` (attempt 2, a
// larger token), a run whose lease is lost is settled by the next holder (retried, or lost).
import type { LockManager, Run } from '../../lib/index';
import { lockFixture } from '../helpers/locks';
import { TTL_PASS, TTL_TEST_TIMEOUT } from '../helpers/ttl';
import { waitFor } from '../helpers/wait';

const locks = lockFixture({ ttl: '3s' });

const tick = (second: number) => new Date(Date.UTC(2030, 0, 1, 3, 0, second));

/** A promise with its resolve, for fns that wait on the test. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

test('one tick, four managers calling at once: exactly one runs it; its record says done, attempt 1, its token', async () => {
  const managers = await Promise.all([1, 2, 3, 4].map((n) => locks.manager({ owner: `m${n}` })));
  const runs: Run[] = [];
  const hold = gate();
  const started = gate();
  const results = Promise.all(
    managers.map((manager) =>
      manager.runOnce('report', tick(0), async (run) => {
        runs.push(run);
        started.open();
        await hold.opened;
        return manager.owner;
      }),
    ),
  );
  // Every caller is in: one runs, the others wait on the tick's lease.
  await started.opened;
  hold.open();
  const settled = await results;
  expect(runs).toHaveLength(1);
  const [run] = runs;
  expect(run).toMatchObject({ name: 'report', scheduledAt: tick(0), attempt: 1 });
  expect(run!.lease.name).toBe(`report@${tick(0).toISOString()}`);
  const ran = settled.filter((result) => result.ran);
  expect(ran).toEqual([{ ran: true, result: expect.stringMatching(/^m[1-4]$/) }]);
  expect(settled.filter((result) => !result.ran)).toEqual([
    { ran: false, outcome: 'done' },
    { ran: false, outcome: 'done' },
    { ran: false, outcome: 'done' },
  ]);
  const records = await managers[0]!.runs('report');
  expect(records).toEqual([
    {
      name: 'report',
      scheduledAt: tick(0),
      attempt: 1,
      token: run!.token,
      owner: (ran[0] as { result: string }).result,
      startedAt: expect.any(Date),
      finishedAt: expect.any(Date),
      outcome: 'done',
    },
  ]);
  expect(records[0]!.finishedAt!.getTime()).toBeGreaterThanOrEqual(records[0]!.startedAt.getTime());
});

test('a done tick is never run again, by any manager, whatever its retries', async () => {
  const [a, b] = [await locks.manager(), await locks.manager()];
  let calls = 0;
  const fn = () => ++calls;
  expect(await a.runOnce('done-once', tick(1), fn)).toEqual({ ran: true, result: 1 });
  expect(await a.runOnce('done-once', tick(1), fn)).toEqual({ ran: false, outcome: 'done' });
  expect(await b.runOnce('done-once', tick(1), fn, { retries: 5, wait: 0 })).toEqual({ ran: false, outcome: 'done' });
  expect(calls).toBe(1);
  // Another tick of the same schedule is another run.
  expect(await b.runOnce('done-once', tick(2), fn)).toEqual({ ran: true, result: 2 });
  expect((await a.runs('done-once')).map((r) => [r.scheduledAt, r.outcome])).toEqual([
    [tick(2), 'done'],
    [tick(1), 'done'],
  ]);
});

test('a run that throws is recorded failed; with retries: 1 it is tried again: attempt 2, a larger token', async () => {
  const manager = await locks.manager();
  const attempts: Array<[number, number]> = [];
  const result = await manager.runOnce(
    'flaky',
    tick(3),
    (run) => {
      attempts.push([run.attempt, run.token]);
      if (run.attempt === 1) throw new Error('first attempt fails');
      return 'second attempt';
    },
    { retries: 1 },
  );
  expect(result).toEqual({ ran: true, result: 'second attempt' });
  expect(attempts.map(([attempt]) => attempt)).toEqual([1, 2]);
  expect(attempts[1]![1]).toBeGreaterThan(attempts[0]![1]);
  const [record] = await manager.runs('flaky');
  expect(record).toMatchObject({ attempt: 2, token: attempts[1]![1], outcome: 'done' });
  expect(record!.error).toBeUndefined();
});

test('with no retries left, the error comes back and the tick stays failed; a caller allowing a retry runs attempt 2', async () => {
  const [a, b] = [await locks.manager(), await locks.manager()];
  const boom = new Error('boom');
  await expect(
    a.runOnce('fails', tick(4), () => {
      throw boom;
    }),
  ).rejects.toBe(boom);
  expect(await a.runs('fails')).toEqual([expect.objectContaining({ attempt: 1, outcome: 'failed', error: 'boom' })]);
  let called = false;
  expect(await b.runOnce('fails', tick(4), () => (called = true))).toEqual({ ran: false, outcome: 'failed' });
  expect(called).toBe(false);
  const retried = await b.runOnce('fails', tick(4), (run) => run.attempt, { retries: 1 });
  expect(retried).toEqual({ ran: true, result: 2 });
  const [record] = await a.runs('fails');
  expect(record).toMatchObject({ attempt: 2, outcome: 'done' });
});

/** Ends the hold of the tick's runner from outside (as its expiry would): its signal aborts. */
async function loseLease(manager: LockManager, run: Run): Promise<unknown> {
  await manager.forceRelease(run.lease.name);
  return new Promise((resolve) => run.signal.addEventListener('abort', () => resolve(run.signal.reason)));
}

test('a run whose lease is lost is settled by the next holder: retried with attempt 2 when retries allow', async () => {
  const [runner, operator] = [await locks.manager({ owner: 'runner' }), await locks.manager({ owner: 'operator' })];
  const seen: Array<[number, number, string]> = [];
  const result = await runner.runOnce(
    'frozen',
    tick(5),
    async (run) => {
      if (run.attempt === 1) {
        const reason = await loseLease(operator, run);
        seen.push([run.attempt, run.token, (reason as Error).name]);
        throw reason;
      }
      seen.push([run.attempt, run.token, 'ran']);
      return 'retried';
    },
    { retries: 1 },
  );
  expect(result).toEqual({ ran: true, result: 'retried' });
  expect(seen.map(([attempt, , what]) => [attempt, what])).toEqual([
    [1, 'LeaseLostError'],
    [2, 'ran'],
  ]);
  expect(seen[1]![1]).toBeGreaterThan(seen[0]![1]);
  expect(await runner.runs('frozen')).toEqual([expect.objectContaining({ attempt: 2, outcome: 'done' })]);
});

test('with retries 0, a run whose lease is lost is recorded lost, and nobody runs the tick again', async () => {
  const [runner, operator] = [await locks.manager(), await locks.manager()];
  let calls = 0;
  const result = await runner.runOnce('frozen-once', tick(6), async (run) => {
    calls++;
    throw await loseLease(operator, run);
  });
  expect(result).toEqual({ ran: false, outcome: 'lost' });
  expect(calls).toBe(1);
  const [record] = await operator.runs('frozen-once');
  expect(record).toMatchObject({ attempt: 1, outcome: 'lost', finishedAt: expect.any(Date) });
  expect(await operator.runOnce('frozen-once', tick(6), () => calls++, { retries: 0 })).toEqual({
    ran: false,
    outcome: 'lost',
  });
  expect(calls).toBe(1);
});

test('runs(): newest first, limited; another schedule is not listed', async () => {
  const manager = await locks.manager();
  for (const second of [10, 12, 11]) await manager.runOnce('listed', tick(second), () => second);
  await manager.runOnce('other', tick(13), () => 0);
  expect((await manager.runs('listed')).map((r) => r.scheduledAt)).toEqual([tick(12), tick(11), tick(10)]);
  expect((await manager.runs('listed', { limit: 2 })).map((r) => r.scheduledAt)).toEqual([tick(12), tick(11)]);
  expect(await manager.runs('listed', { limit: undefined })).toHaveLength(3);
  expect(await manager.runs('never-ran')).toEqual([]);
});

test('records live in <collection>.runs, with the indexes of runs() and of the clean-up', async () => {
  const manager = await locks.manager({ collection: 'jobs' });
  await manager.runOnce('indexed', tick(20), () => 1, { retain: '1h' });
  const runs = await locks.documents('jobs.runs');
  const doc = await runs.findOne({});
  expect(doc).toMatchObject({
    _id: `indexed@${tick(20).toISOString()}`,
    expireAt: new Date(tick(20).getTime() + 3_600_000),
  });
  const indexes = await runs.indexes();
  expect(indexes).toEqual(
    expect.arrayContaining([
      expect.objectContaining({ key: { name: 1, scheduledAt: -1 } }),
      expect.objectContaining({ key: { expireAt: 1 }, expireAfterSeconds: 0 }),
    ]),
  );
});

test(
  'a running record is never removed by the clean-up, even past its retention: the tick runs once, and is recorded done',
  async () => {
    const manager = await locks.manager({ collection: 'expiring' });
    const runs = await locks.documents('expiring.runs');
    const ancient = new Date(0); // a tick of 1970: its record is past its retention (7 days) from the start
    let calls = 0;
    const result = await manager.runOnce('ancient', ancient, async () => {
      if (++calls > 1) return calls; // run again: the failure below says so
      // A canary due for removal: once the TTL monitor has removed it, it has passed over the record too.
      await runs.insertOne({ _id: `canary-${calls}`, expireAt: new Date(0) } as never);
      await waitFor(async () => (await runs.countDocuments({ _id: `canary-${calls}` })) === 0, TTL_PASS);
      return calls;
    });
    expect(result).toEqual({ ran: true, result: 1 });
    expect(calls).toBe(1);
    // Settled, it is past its retention: the clean-up may remove it now (documented).
    const doc = await runs.findOne({ _id: `ancient@${ancient.toISOString()}` } as never);
    if (doc) expect(doc).toMatchObject({ outcome: 'done', expireAt: new Date(7 * 86_400_000) });
  },
  TTL_TEST_TIMEOUT,
);

test('runCoordinator(): a manager closing while shouldRun() is in flight answers false, quietly; the tick stays free for the fleet', async () => {
  const closing = await locks.manager({ owner: 'closing' });
  const coordinator = closing.runCoordinator();
  const key = `coordinated:${tick(30).toISOString()}`;
  // node-cron calls shouldRun() at a tick as the process shuts down (SIGTERM): no error, no run.
  const answer = coordinator.shouldRun(key, 2000);
  await closing.close();
  await expect(answer).resolves.toBe(false);
  await expect(coordinator.shouldRun(key, 2000)).resolves.toBe(false);
  await expect(coordinator.onComplete(key)).resolves.toBeUndefined();
  const other = await locks.manager({ owner: 'other' });
  expect(await other.runs('coordinated')).toEqual([]);
  // Another process claims and runs the tick.
  const peer = other.runCoordinator();
  expect(await peer.shouldRun(key, 2000)).toBe(true);
  await peer.onComplete(key);
  expect(await other.runs('coordinated')).toEqual([
    expect.objectContaining({ scheduledAt: tick(30), owner: 'other', outcome: 'done', attempt: 1 }),
  ]);
});
