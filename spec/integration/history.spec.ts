// The history option against the real engine: one record per ended hold, whoever ends it, with
// how it ended; read newest first; removed after `retain` by the TTL monitor.
import type { HistoryRecord, LockManager } from '../../lib/index';
import { lockFixture } from '../helpers/locks';
import { TTL_PASS, TTL_TEST_TIMEOUT } from '../helpers/ttl';
import { nextEvent, waitFor } from '../helpers/wait';

const locks = lockFixture({ ttl: '30s' });

/**
 * Makes `name` the lock of a holder that crashed: its hold expired `expiredAgo` ms ago, unreleased.
 * Resolves the history record that hold should get.
 */
async function crashedHolder(collection: string, name: string, expiredAgo = 0): Promise<HistoryRecord> {
  const docs = await locks.documents(collection);
  const expiresAt = new Date(Date.now() - expiredAgo);
  const acquiredAt = new Date(expiresAt.getTime() - 10);
  const hold = { token: acquiredAt.getTime(), owner: 'crashed:1', acquiredAt };
  await docs.updateOne(
    { _id: name },
    { $set: { ...hold, expiresAt, leaseId: 'crashed-holder', ttl: 10 } },
    { upsert: true },
  );
  return { name, ...hold, endedAt: expiresAt, outcome: 'expired' };
}

function recordsOf(manager: LockManager, name: string, count: number): Promise<HistoryRecord[]> {
  return waitFor(
    async () => {
      const records = await manager.history(name);
      return records.length >= count ? records : undefined;
    },
    { what: `${count} history records of "${name}"` },
  );
}

test('every way a hold ends is recorded once, by whoever ends it, and read newest first', async () => {
  const options = { collection: 'outcomes', history: true, owner: 'a' };
  const [a, b] = [await locks.manager(options), await locks.manager({ ...options, owner: 'b' })];
  const tokens: number[] = [];

  const released = await a.acquire('job'); // 1. released by its holder
  tokens.push(released.token);
  await released.release();

  const lapsed = await a.acquire('job', { ttl: 400, heartbeat: false }); // 2. ran out, given up by its holder
  tokens.push(lapsed.token);
  await nextEvent(lapsed, 'timeout');
  await recordsOf(a, 'job', 2);

  const crashed = await crashedHolder('outcomes', 'job'); // 3. expired, taken over by the next holder
  tokens.push(crashed.token);
  const taker = await b.acquire('job', { ttl: 3000, heartbeat: 200 }); // its watchdog soon sees it taken

  tokens.push(taker.token); // 4. taken by force
  const forced = b.lease('job');
  const lost = nextEvent(taker, 'lost');
  await forced.forceAcquire();
  await lost;
  await expect(taker.release()).resolves.toBe(false); // its holder's late release records nothing more

  tokens.push(forced.token!); // 5. freed by an operator
  await expect(a.forceRelease('job')).resolves.toBe(true);

  const records = await recordsOf(a, 'job', 5);
  expect(records).toHaveLength(5);
  expect(records.map((r) => [r.token, r.owner, r.outcome])).toEqual([
    [tokens[4], 'b', 'taken'],
    [tokens[3], 'b', 'taken'],
    [tokens[2], 'crashed:1', 'expired'],
    [tokens[1], 'a', 'expired'],
    [tokens[0], 'a', 'released'],
  ]);
  expect(records[2]).toEqual(crashed);
  for (const record of records) {
    expect(Object.keys(record).sort()).toEqual(['acquiredAt', 'endedAt', 'name', 'outcome', 'owner', 'token']);
    expect(record.endedAt.getTime()).toBeGreaterThanOrEqual(record.acquiredAt.getTime());
  }
  expect((await b.history('job', { limit: 2 })).map((r) => r.token)).toEqual([tokens[4], tokens[3]]);
});

test('a release that finds the hold already expired records it as expired, ended at its expiry', async () => {
  const manager = await locks.manager({ collection: 'late-release', history: true });
  const docs = await locks.documents('late-release');
  const lease = await manager.acquire('late');
  const { token } = lease;
  const expiresAt = new Date(Date.now() - 500);
  await docs.updateOne({ _id: 'late' }, { $set: { expiresAt } }); // as if the holder had slept past its ttl
  await expect(lease.release()).resolves.toBe(false);
  expect(await manager.history('late')).toEqual([
    expect.objectContaining({ token, outcome: 'expired', endedAt: expiresAt }),
  ]);
});

test('of many contenders taking over one expired hold at once, only the winner records it', async () => {
  const managers = await Promise.all(
    Array.from({ length: 6 }, (_, i) => locks.manager({ collection: 'takeover', history: true, owner: `m${i}` })),
  );
  const crashed = await crashedHolder('takeover', 'contended');
  const winners = (await Promise.all(managers.map((m) => m.tryAcquire('contended')))).filter((l) => l !== null);
  expect(winners).toHaveLength(1);
  await winners[0]!.release(); // its own record is written before release() resolves
  // The takeover is recorded off the acquisition's path: wait for both, then there are exactly two.
  const records = await recordsOf(managers[0]!, 'contended', 2);
  expect(records.filter((r) => r.outcome === 'expired')).toEqual([crashed]);
  expect(records.map((r) => r.outcome)).toEqual(['released', 'expired']);
});

test("the set-up's sweep records the crashed holds it frees, once however many managers sweep", async () => {
  const crashed = await crashedHolder('swept', 'abandoned', 10 * 60_000);
  const connections = await Promise.all(Array.from({ length: 5 }, () => locks.db.connect()));
  const managers = await Promise.all(
    connections.map((connection) =>
      locks.manager({ connection, collection: 'swept', history: true, cleanupAfter: '1m' }),
    ),
  );
  await Promise.all(managers.map((m) => m.ready));
  const records: HistoryRecord[] = await managers[0]!.history('abandoned');
  expect(records).toEqual([crashed]);
});

test('without the option nothing is recorded, though history() still reads what others record', async () => {
  const quiet = await locks.manager({ collection: 'shared-history' });
  const recording = await locks.manager({ collection: 'shared-history', history: true });
  await (await quiet.acquire('quiet')).release();
  expect(await quiet.history('quiet')).toEqual([]);
  expect(await (await locks.documents('shared-history.history')).countDocuments()).toBe(0);
  await (await recording.acquire('loud')).release();
  expect((await quiet.history('loud')).map((r) => r.outcome)).toEqual(['released']);
});

test(
  'records are removed by the TTL monitor once older than retain',
  async () => {
    const manager = await locks.manager({ collection: 'brief', history: { collection: 'brief-log', retain: '1s' } });
    await manager.ready;
    await (await manager.acquire('brief')).release();
    expect(await manager.history('brief')).toHaveLength(1);
    await waitFor(async () => (await manager.history('brief')).length === 0, TTL_PASS);
  },
  TTL_TEST_TIMEOUT,
);

test('history() checks its arguments before anything is sent', async () => {
  const manager = await locks.manager();
  expect(() => manager.history('')).toThrow(TypeError);
  expect(() => manager.history('x', { limit: 0 })).toThrow(/limit must be a whole number of at least 1, received 0/);
  expect(() => manager.history('x', { limit: '5' as never })).toThrow(TypeError);
  expect(() => manager.history('x', 5 as never)).toThrow(/history options must be an options object/);
});
