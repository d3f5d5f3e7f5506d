// Set-up and clean-up against the real engine (its TTL monitor runs every second in tests): the
// indexes a manager makes, free lock documents removed after cleanupAfter, crashed holders' locks.
import mongoose from 'mongoose';
import { LockError, type LockManager } from '../../lib/index';
import { lockFixture } from '../helpers/locks';
import { TTL_PASS, TTL_TEST_TIMEOUT } from '../helpers/ttl';
import { waitFor } from '../helpers/wait';

const locks = lockFixture({ ttl: '30s' });

/** Collects a manager's background errors. */
function errorsOf(...managers: LockManager[]): Error[] {
  const errors: Error[] = [];
  for (const manager of managers) manager.on('error', (error) => errors.push(error));
  return errors;
}

async function indexesOf(collection: string) {
  const docs = await locks.documents(collection);
  const indexes = await docs.listIndexes().toArray();
  return indexes.map(({ key, expireAfterSeconds }) => ({
    key,
    ...(expireAfterSeconds !== undefined && { expireAfterSeconds }),
  }));
}

test('many managers starting at once make each index exactly once, and a later one creates nothing', async () => {
  const options = { collection: 'setup-race', history: true };
  const connections = await Promise.all(Array.from({ length: 12 }, () => locks.db.connect()));
  // Created in one go, so that their set-ups (which begin in the constructor) really run at once.
  const managers = await Promise.all(connections.map((connection) => locks.manager({ ...options, connection })));
  const errors = errorsOf(...managers);
  await Promise.all(managers.map((m) => m.ready));
  expect(errors).toEqual([]);
  expect(await indexesOf('setup-race')).toEqual([
    { key: { _id: 1 } },
    { key: { freedAt: 1 }, expireAfterSeconds: 86_400 },
  ]);
  expect(await indexesOf('setup-race.history')).toEqual([
    { key: { _id: 1 } },
    { key: { name: 1, endedAt: -1 } },
    { key: { endedAt: 1 }, expireAfterSeconds: 30 * 86_400 },
  ]);

  const connection = await locks.db.connect({ monitorCommands: true });
  const commands: string[] = [];
  connection.getClient().on('commandStarted', (event) => commands.push(event.commandName));
  const late = await locks.manager({ ...options, connection });
  await late.ready;
  expect(commands.filter((name) => name === 'listIndexes')).toHaveLength(2);
  expect(commands.filter((name) => /index/i.test(name) && name !== 'listIndexes')).toEqual([]);
});

test('a changed retention replaces the clean-up index; cleanupAfter: false makes none', async () => {
  const first = await locks.manager({ collection: 'retention', cleanupAfter: '1d' });
  await first.ready;
  const second = await locks.manager({ collection: 'retention', cleanupAfter: '90m' });
  const errors = errorsOf(second);
  await second.ready;
  expect(errors).toEqual([]);
  expect(await indexesOf('retention')).toEqual([
    { key: { _id: 1 } },
    { key: { freedAt: 1 }, expireAfterSeconds: 5400 },
  ]);

  const none = await locks.manager({ collection: 'no-cleanup', cleanupAfter: false });
  await none.ready;
  await (await none.acquire('kept-forever')).release();
  expect(await indexesOf('no-cleanup')).toEqual([{ key: { _id: 1 } }]);
});

test('without the privilege to create indexes, the failure goes to the error event and locks keep working', async () => {
  const refusal = new mongoose.mongo.MongoServerError({
    message: 'not authorized on mdl to execute command { createIndexes: "unprivileged" }',
    code: 13,
    codeName: 'Unauthorized',
  });
  const createIndex = jest.spyOn(mongoose.mongo.Collection.prototype, 'createIndex').mockRejectedValue(refusal);
  try {
    const manager = await locks.manager({ collection: 'unprivileged' });
    const errors = errorsOf(manager);
    await manager.ready;
    expect(createIndex).toHaveBeenCalled();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(LockError);
    expect(errors[0]).toMatchObject({
      code: 'database',
      message: expect.stringMatching(
        /^index set-up on "unprivileged" failed, so free lock documents are not removed \(locks work without it\): .*not authorized/,
      ),
      cause: refusal,
    });
    const lease = await manager.acquire('still-works');
    expect(lease.held).toBe(true);
    await expect(lease.release()).resolves.toBe(true);
  } finally {
    createIndex.mockRestore();
  }
});

test(
  'a free lock document is removed by the TTL monitor after cleanupAfter; a held one never is',
  async () => {
    const manager = await locks.manager({ collection: 'ttl', cleanupAfter: '1s' });
    const docs = await locks.documents('ttl');
    await manager.ready;
    const held = await manager.acquire('held', { ttl: '30s', heartbeat: '5s' });
    const freed = await manager.acquire('freed');
    const { token } = freed;
    await freed.release();
    const { freedAt } = (await docs.findOne({ _id: 'freed' }))!;
    expect(freedAt).toBeInstanceOf(Date);

    await waitFor(async () => (await docs.countDocuments({ _id: 'freed' })) === 0, TTL_PASS);
    expect(await docs.findOne({ _id: 'held' })).toMatchObject({ leaseId: expect.any(String) });
    expect(held.held).toBe(true);
    const again = await manager.acquire('freed');
    expect(again.token).toBeGreaterThan(token); // the token grows across the removal
    await Promise.all([again.release(), held.release()]);
  },
  TTL_TEST_TIMEOUT,
);

test(
  "a hold whose holder crashed long ago is freed by the set-up's sweep, then removed; a recent one is left",
  async () => {
    const docs = await locks.documents('crashed');
    const ago = (ms: number) => new Date(Date.now() - ms);
    const crashed = (name: string, expiredAgo: number) => ({
      _id: name,
      token: ago(expiredAgo + 10_000).getTime(),
      leaseId: 'holder-that-crashed',
      owner: 'gone:1',
      acquiredAt: ago(expiredAgo + 10_000),
      expiresAt: ago(expiredAgo),
      ttl: 10_000,
    });
    const [longAgo, recently] = [crashed('long-ago', 10 * 60_000), crashed('recently', 5000)];
    await docs.insertMany([longAgo, recently]);

    const manager = await locks.manager({ collection: 'crashed', cleanupAfter: '1m' });
    const errors = errorsOf(manager);
    await manager.ready;
    expect(errors).toEqual([]);
    const swept = await docs.findOne({ _id: 'long-ago' });
    // Either already removed by the TTL monitor, or freed as of its expiry, ready for removal.
    if (swept) expect(swept).toMatchObject({ leaseId: null, freedAt: longAgo.expiresAt });
    await waitFor(async () => (await docs.countDocuments({ _id: 'long-ago' })) === 0, TTL_PASS);
    expect(await docs.findOne({ _id: 'recently' })).toMatchObject({ leaseId: 'holder-that-crashed' });
    expect((await docs.findOne({ _id: 'recently' }))!.freedAt).toBeUndefined();

    const lease = await manager.acquire('long-ago');
    expect(lease.token).toBeGreaterThan(longAgo.token);
    await lease.release();
  },
  TTL_TEST_TIMEOUT,
);

test("a freed document's clean-up clock starts no earlier than its token, read as a time", async () => {
  const manager = await locks.manager({ collection: 'token-clock', cleanupAfter: 0 });
  const docs = await locks.documents('token-clock');
  const lease = await manager.acquire('ahead');
  const ahead = Date.now() + 3_600_000; // as if a burst of holds had run the token an hour ahead of the clock
  await docs.updateOne({ _id: 'ahead' }, { $set: { token: ahead } });
  await lease.release();
  const freed = await docs.findOne({ _id: 'ahead' });
  expect(freed!.freedAt!.getTime()).toBe(ahead);
  const next = await manager.acquire('ahead');
  expect(next.token).toBeGreaterThan(ahead);
  await next.release();
});
