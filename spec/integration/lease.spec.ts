// Acquire and release against the real engine: what the lock document holds, tokens, events, state errors.
import { LockManager, LockStateError } from '../../lib/index';
import { lockFixture } from '../helpers/locks';
import { testUri } from '../helpers/mongo';
import { waitFor } from '../helpers/wait';

const locks = lockFixture({ ttl: '30s' });

test('acquire takes a free lock in one document; release frees it and keeps the document', async () => {
  const manager = await locks.manager({ owner: 'worker-1' });
  const docs = await locks.documents();
  const lease = manager.lease('report');
  expect(lease.held).toBe(false);
  expect(lease.token).toBeUndefined();

  await expect(lease.acquire()).resolves.toBe(true);
  expect(lease.held).toBe(true);
  const held = await docs.findOne({ _id: 'report' });
  expect(held).toMatchObject({ _id: 'report', owner: 'worker-1', token: lease.token, ttl: 30_000 });
  expect(typeof held!.leaseId).toBe('string');
  expect(held!.leaseId!.length).toBeGreaterThanOrEqual(24);
  expect(held!.freedAt).toBeUndefined();
  expect(held!.expiresAt.getTime() - held!.acquiredAt.getTime()).toBe(30_000);
  expect(lease.expiresAt).toEqual(held!.expiresAt);

  const token = lease.token;
  await expect(lease.release()).resolves.toBe(true);
  expect(lease.held).toBe(false);
  expect(lease.token).toBe(token); // the ended hold's token stays readable
  const freed = await docs.findOne({ _id: 'report' });
  expect(freed).toMatchObject({ _id: 'report', leaseId: null, token, owner: 'worker-1' });
  expect(freed!.freedAt).toBeInstanceOf(Date);
  expect(freed!.expiresAt.getTime()).toBeLessThanOrEqual(freed!.freedAt!.getTime());
});

test('a contender on another connection is refused while the lock is held, and gets it after release', async () => {
  const [a, b] = [await locks.manager({ owner: 'a' }), await locks.manager({ owner: 'b' })];
  const first = a.lease('shared');
  const second = b.lease('shared');
  expect(await first.acquire()).toBe(true);
  expect(await second.acquire()).toBe(false);
  expect(second.held).toBe(false);
  expect((await (await locks.documents()).findOne({ _id: 'shared' }))!.owner).toBe('a');
  await first.release();
  expect(await second.acquire()).toBe(true);
  expect(second.token!).toBeGreaterThan(0);
  expect((await (await locks.documents()).findOne({ _id: 'shared' }))!.owner).toBe('b');
  await second.release();
});

test('fencing tokens strictly increase across holds, managers, and removal of the document', async () => {
  const [a, b] = [await locks.manager(), await locks.manager()];
  const tokens: number[] = [];
  for (let i = 0; i < 6; i++) {
    const lease = await (i % 2 ? a : b).acquire('fenced');
    tokens.push(lease.token);
    await lease.release();
  }
  await (await locks.documents()).deleteOne({ _id: 'fenced' }); // as the clean-up TTL index would
  const after = await a.acquire('fenced');
  tokens.push(after.token);
  await after.release();
  for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1]!);
});

test('concurrent first acquisitions of a new name: exactly one wins, the others are told busy, nobody errors', async () => {
  const managers = await Promise.all(Array.from({ length: 8 }, (_, i) => locks.manager({ owner: `m${i}` })));
  const errors: Error[] = [];
  for (const m of managers) m.on('error', (e) => errors.push(e));
  const results = await Promise.all(managers.map((m) => m.tryAcquire('race')));
  const winners = results.filter((l) => l !== null);
  expect(winners).toHaveLength(1);
  expect(errors).toEqual([]);
  const doc = await (await locks.documents()).findOne({ _id: 'race' });
  expect(doc!.owner).toBe(managers[results.indexOf(winners[0]!)]!.owner);
  await winners[0]!.release();
});

test('events: acquired then released, with the token, on the lease and on the manager', async () => {
  const manager = await locks.manager({ owner: 'evented' });
  const seen: unknown[] = [];
  manager.on('acquired', (lease, payload) => seen.push(['manager:acquired', lease.name, payload]));
  manager.on('released', (lease, payload) => seen.push(['manager:released', lease.name, payload]));
  const lease = manager.lease('evented');
  lease.on('acquired', (payload) => seen.push(['lease:acquired', payload]));
  lease.on('released', (payload) => seen.push(['lease:released', payload]));
  await lease.acquire();
  const { token, expiresAt } = lease;
  await lease.release();
  expect(seen).toEqual([
    ['lease:acquired', { name: 'evented', token, owner: 'evented', expiresAt }],
    ['manager:acquired', 'evented', { name: 'evented', token, owner: 'evented', expiresAt }],
    ['lease:released', { name: 'evented', token }],
    ['manager:released', 'evented', { name: 'evented', token }],
  ]);
});

test('state errors: acquire while held or acquiring, release while not held', async () => {
  const [manager, other] = [await locks.manager(), await locks.manager()];
  const lease = manager.lease('states');
  await expect(lease.release()).rejects.toMatchObject({ name: 'LockStateError', code: 'not_acquired' });
  await lease.acquire();
  await expect(lease.acquire()).rejects.toThrow(LockStateError);
  await expect(lease.acquire()).rejects.toMatchObject({ code: 'already_acquired' });
  expect(lease.held).toBe(true); // the refused call changed nothing
  await lease.release();
  await expect(lease.release()).rejects.toMatchObject({ code: 'not_acquired' });

  const blocker = await other.acquire('states');
  const waiting = lease.acquire({ wait: '30s' });
  await expect(lease.acquire()).rejects.toMatchObject({ code: 'already_acquired' });
  await expect(lease.release()).rejects.toMatchObject({ code: 'not_acquired' });
  await blocker.release();
  await expect(waiting).resolves.toBe(true);
  await lease.release();
});

test('a lease can be acquired again after a release, each hold with its own signal', async () => {
  const manager = await locks.manager();
  const lease = manager.lease('again');
  expect(lease.signal.aborted).toBe(true); // not held yet: work must not start
  await lease.acquire();
  const first = lease.signal;
  const firstToken = lease.token!;
  expect(first.aborted).toBe(false);
  await lease.release();
  expect(first.aborted).toBe(true);
  expect(first.reason).toMatchObject({ code: 'released' });
  await lease.acquire();
  expect(lease.signal).not.toBe(first);
  expect(lease.signal.aborted).toBe(false);
  expect(lease.token!).toBeGreaterThan(firstToken);
  await lease.release();
});

test('await using releases at the end of the scope', async () => {
  const manager = await locks.manager();
  let signal: AbortSignal;
  {
    await using lease = await manager.acquire('scoped');
    signal = lease.signal;
    expect((await manager.inspect('scoped'))!.held).toBe(true);
  }
  expect(signal.aborted).toBe(true);
  expect((await manager.inspect('scoped'))!.held).toBe(false);
});

test('inspect and list describe locks as stored, judging `held` by the server clock', async () => {
  const manager = await locks.manager({ owner: 'inspector', collection: 'inspected' });
  expect(await manager.inspect('nothing')).toBeNull();
  const lease = await manager.acquire('one');
  const info = await manager.inspect('one');
  expect(info).toEqual({
    name: 'one',
    owner: 'inspector',
    token: lease.token,
    acquiredAt: expect.any(Date),
    expiresAt: lease.expiresAt,
    held: true,
  });
  const short = await manager.acquire('two', { ttl: 300, heartbeat: false });
  await new Promise((resolve) => short.once('timeout', resolve));
  await lease.release();
  // The lapsed hold is given back in the background (or ends on the server a margin later).
  await waitFor(async () => (await manager.inspect('two'))?.held === false, { what: '"two" free on the server' });
  const listed = await manager.list();
  expect(listed.map((l) => [l.name, l.held])).toEqual([
    ['one', false],
    ['two', false],
  ]);
  expect(Object.keys(listed[0]!).sort()).toEqual(['acquiredAt', 'expiresAt', 'held', 'name', 'owner', 'token']);
});

test('a manager created before its connection opens waits for it; a never-opened connection is a connection error', async () => {
  const mongoose = (await import('mongoose')).default;
  const opening = mongoose.createConnection(testUri(), { dbName: locks.db.name });
  const early = new LockManager({ connection: opening });
  expect(opening.readyState).toBe(mongoose.ConnectionStates.connecting);
  const lease = await early.tryAcquire('early');
  expect(lease?.held).toBe(true);
  await early.close();
  await opening.close();

  const never = new LockManager({ connection: mongoose.createConnection() });
  await expect(never.tryAcquire('early')).rejects.toMatchObject({
    name: 'LockError',
    code: 'connection',
    message: expect.stringContaining('not open'),
  });
  await never.close();
});

test('acquisitions ask for journaled majority writes, releases for w: 1, whatever the connection says', async () => {
  const connection = await locks.db.connect({ monitorCommands: true, writeConcern: { w: 1 } });
  const concerns: unknown[] = [];
  connection.getClient().on('commandStarted', (event) => {
    if (['findAndModify', 'update'].includes(event.commandName))
      concerns.push((event.command as { writeConcern?: unknown }).writeConcern);
  });
  const manager = await locks.manager({ connection });
  await (await manager.acquire('majority')).release();
  // A lost release only keeps the lock to its ttl (docs/guarantees.md, "Acknowledged means durable").
  // wtimeout: the server gives up on the majority acknowledgement when the client would (commandTimeout).
  expect(concerns).toEqual([{ w: 'majority', j: true, wtimeout: 10_000 }, { w: 1 }]);
});
