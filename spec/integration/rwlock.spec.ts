// Read-write locks (issue 13): many readers or one writer across managers, writer preference,
// each hold a lease (events, signal, fencing token, renewal, loss), checked against the database.
import { LeaseLostError, LockStateError, LockTimeoutError, type LockManager } from '../../lib/index';
import type { RwLockDocument } from '../../lib/rwlock-commands';
import { commandsByTarget, elapse, lockFixture } from '../helpers/locks';
import { nextEvent, waitFor } from '../helpers/wait';

const locks = lockFixture({ ttl: '30s', poll: 100 });

/** The read-write locks' collection as stored, read through a connection of its own. */
async function rwlocks() {
  const db = (await locks.documents()).db;
  return db.collection<RwLockDocument>('locks.rwlocks');
}

/** The stored holders of `name` that are live by the server's clock, as mode and token. */
async function live(name: string) {
  const docs = await (
    await rwlocks()
  )
    .aggregate<{ holders: RwLockDocument['holders'] }>([
      { $match: { _id: name } },
      { $project: { holders: { $filter: { input: '$holders', cond: { $gt: ['$$this.expiresAt', '$$NOW'] } } } } },
    ])
    .toArray();
  return (docs[0]?.holders ?? []).map((h) => ({ mode: h.mode, token: Number(h.token) }));
}

test('several readers at once across managers; a writer excludes readers and other writers; tokens grow', async () => {
  const managers = [await locks.manager(), await locks.manager(), await locks.manager()];
  const rws = managers.map((m) => m.readWriteLock('catalog'));
  const readers = await Promise.all(rws.map((rw) => rw.read({ wait: '5s' })));
  expect(readers.every((r) => r.held)).toBe(true);
  const readTokens = readers.map((r) => r.token).sort((x, y) => x - y);
  expect(await live('catalog')).toEqual(readTokens.map((token) => ({ mode: 'read', token })));
  // A writer cannot get in while readers hold it.
  await expect(rws[0]!.write({ wait: 300 })).rejects.toBeInstanceOf(LockTimeoutError);
  // The writer that gave up took its marker away: a new reader gets in at once.
  await waitFor(async () => (await (await rwlocks()).findOne({ _id: 'catalog' }))?.writerWaiting === null);
  readers.push(await rws[0]!.read({ wait: 300 }));
  await Promise.all(readers.map((r) => r.release()));
  const writer = await rws[1]!.write({ wait: '5s' });
  expect(await live('catalog')).toEqual([{ mode: 'write', token: writer.token }]);
  // Neither a reader nor another writer gets in while it writes.
  await expect(rws[2]!.read({ wait: 300 })).rejects.toBeInstanceOf(LockTimeoutError);
  await expect(rws[0]!.write({ wait: 300 })).rejects.toBeInstanceOf(LockTimeoutError);
  await writer.release();
  const after = await rws[2]!.read({ wait: '5s' });
  const tokens = [...readTokens, writer.token, after.token];
  for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1]!);
  await after.release();
  expect(await live('catalog')).toEqual([]);
});

test('a waiting writer blocks new readers and gets the lock when the current readers release', async () => {
  const [a, b, c] = [await locks.manager(), await locks.manager(), await locks.manager()];
  const first = await a.readWriteLock('pref').read();
  const writing = b.readWriteLock('pref').write({ wait: '20s' });
  await waitFor(async () => (await (await rwlocks()).findOne({ _id: 'pref' }))?.writerWaiting);
  // A new reader is refused although only readers hold the lock.
  await expect(c.readWriteLock('pref').read({ wait: 400 })).rejects.toBeInstanceOf(LockTimeoutError);
  const late = c.readWriteLock('pref').read({ wait: '20s' });
  await first.release();
  const writer = await writing;
  expect(writer.token).toBeGreaterThan(first.token);
  expect(await live('pref')).toEqual([{ mode: 'write', token: writer.token }]);
  expect((await (await rwlocks()).findOne({ _id: 'pref' }))?.writerWaiting).toBeNull();
  await writer.release();
  const reader = await late; // the reader that waited behind the writer gets in after it
  expect(reader.token).toBeGreaterThan(writer.token);
  await reader.release();
});

test('a waiting writer that dies leaves a marker that stops blocking readers once it expires', async () => {
  const connection = await locks.db.connect();
  const a = await locks.manager({ ttl: 1500 });
  const dying = await locks.manager({ connection, ttl: 1500 });
  dying.on('error', () => {});
  const reader = await a.readWriteLock('orphan').read();
  void dying
    .readWriteLock('orphan')
    .write({ wait: '1m' })
    .catch(() => {});
  await waitFor(async () => (await (await rwlocks()).findOne({ _id: 'orphan' }))?.writerWaiting);
  await connection.close(); // the writer can no longer renew its marker, nor take it away
  await expect(a.readWriteLock('orphan').read({ wait: 200 })).rejects.toBeInstanceOf(LockTimeoutError);
  const started = performance.now();
  const next = await a.readWriteLock('orphan').read({ wait: '10s' });
  expect(performance.now() - started).toBeLessThan(3000);
  expect(await live('orphan')).toEqual([
    { mode: 'read', token: reader.token },
    { mode: 'read', token: next.token },
  ]);
  await Promise.all([reader.release(), next.release()]);
});

test('a reader that stops renewing frees the lock on expiry; a writer then gets it', async () => {
  const connection = await locks.db.connect();
  const a = await locks.manager({ connection, ttl: 2000 });
  a.on('error', () => {});
  const reader = await a.readWriteLock('dead').read();
  const lost = nextEvent<[LeaseLostError]>(reader, 'lost', 10_000);
  await connection.close(); // it can no longer renew
  const b = await locks.manager();
  const started = performance.now();
  const writer = await b.readWriteLock('dead').write({ wait: '20s' });
  expect(performance.now() - started).toBeGreaterThan(500);
  expect((await lost)[0].reason).toBe('expired');
  expect(writer.token).toBeGreaterThan(reader.token);
  expect(await live('dead')).toEqual([{ mode: 'write', token: writer.token }]);
  await writer.release();
});

test('the watchdog renews read and write holds; a hold taken away in the document emits lost', async () => {
  const manager = await locks.manager({ ttl: 1500, heartbeat: 200 });
  const sem = await manager.semaphore('shared-name', { limit: 1 }).acquire(); // same name, no clash
  const reader = await manager.readWriteLock('shared-name').read();
  const writer = await manager.readWriteLock('tampered').write();
  await elapse(2500); // longer than the ttl: only renewals keep them
  expect([sem.held, reader.held, writer.held]).toEqual([true, true, true]);
  expect(await live('shared-name')).toEqual([{ mode: 'read', token: reader.token }]);
  const lost = nextEvent<[LeaseLostError]>(writer, 'lost');
  await (await rwlocks()).updateOne({ _id: 'tampered' }, { $set: { holders: [] } });
  const [error] = await lost;
  expect(error).toBeInstanceOf(LeaseLostError);
  expect(writer.held).toBe(false);
  expect(writer.signal.aborted).toBe(true);
  expect([sem.held, reader.held]).toEqual([true, true]);
  await Promise.all([sem.release(), reader.release()]);
});

test('renewal: one batched update and find per tick for every read-write hold, beside the permits and locks', async () => {
  const connection = await locks.db.connect({ monitorCommands: true });
  const { mark, delta } = commandsByTarget(connection);
  const manager = await locks.manager({ connection, ttl: 3000, heartbeat: 250 });
  const holds = [
    ...(await Promise.all([1, 2, 3].map(() => manager.readWriteLock('renew-r').read()))),
    await manager.readWriteLock('renew-w').write(),
    await manager.semaphore('renew-s', { limit: 1 }).acquire(),
    await manager.acquire('renew-lock'),
  ];
  mark();
  await elapse(3500); // longer than the ttl: only renewals keep them
  expect(holds.every((l) => l.held)).toBe(true);
  expect((await live('renew-r')).map((h) => h.mode)).toEqual(['read', 'read', 'read']);
  const ticks = delta('update locks');
  expect(ticks).toBeGreaterThanOrEqual(5);
  for (const kind of ['update locks.rwlocks', 'update locks.semaphores'])
    expect(Math.abs(delta(kind) - ticks)).toBeLessThanOrEqual(2);
  expect(Math.abs(delta('find locks.rwlocks') - delta('find locks'))).toBeLessThanOrEqual(2);
  await Promise.all(holds.map((l) => l.release()));
});

test('close() releases the holds, with their events', async () => {
  const manager = await locks.manager();
  const seen: string[] = [];
  manager.on('released', (lease) => seen.push(`released ${lease.name}`));
  const readers = [await manager.readWriteLock('closing').read(), await manager.readWriteLock('closing').read()];
  const writer = await manager.readWriteLock('closing-w').write();
  expect(manager.heldLeases).toEqual(expect.arrayContaining([...readers, writer]));
  await manager.close();
  expect([...readers, writer].map((l) => l.held)).toEqual([false, false, false]);
  expect(await live('closing')).toEqual([]);
  expect(await live('closing-w')).toEqual([]);
  expect(seen.sort()).toEqual(['released closing', 'released closing', 'released closing-w']);
  expect(() => manager.readWriteLock('closing')).toThrow(LockStateError);
});

test('withRead/withWrite run fn holding the lease and release after; they reject with the loss', async () => {
  const manager = await locks.manager({ ttl: 3000, heartbeat: 200 });
  const rw = manager.readWriteLock('with');
  const inRead = await rw.withRead(async (lease) => ({ held: lease.held, listed: await live('with') }));
  expect(inRead.held).toBe(true);
  expect(inRead.listed.map((h) => h.mode)).toEqual(['read']);
  const token = await rw.withWrite(async (lease) => {
    expect(await live('with')).toEqual([{ mode: 'write', token: lease.token }]);
    return lease.token;
  });
  expect(token).toBeGreaterThan(inRead.listed[0]!.token);
  expect(await live('with')).toEqual([]);
  const lostWrite = rw.withWrite(async (lease) => {
    await (await rwlocks()).updateOne({ _id: 'with' }, { $set: { holders: [] } });
    await nextEvent(lease, 'lost');
    return 'done';
  });
  await expect(lostWrite).rejects.toBeInstanceOf(LeaseLostError);
  const lostRead = rw.withRead(async (lease) => {
    await (await rwlocks()).updateOne({ _id: 'with' }, { $set: { holders: [] } });
    await nextEvent(lease, 'lost');
  });
  await expect(lostRead).rejects.toBeInstanceOf(LeaseLostError);
});

test('bad input throws a TypeError or RangeError naming the option, before anything is sent', async () => {
  const manager: LockManager = await locks.manager();
  const bad: [unknown, unknown, RegExp][] = [
    ['', undefined, /read-write lock name/],
    [42, undefined, /read-write lock name/],
    ['r', 'fast', /read-write lock options/],
    ['r', { ttl: 'soon' }, /ttl/],
    ['r', { ttl: -1 }, /ttl/],
    ['r', { ttl: '1s', heartbeat: '2s' }, /heartbeat/],
  ];
  for (const [name, options, named] of bad) {
    let thrown: unknown;
    try {
      manager.readWriteLock(name as string, options as never);
    } catch (error) {
      thrown = error;
    }
    expect(thrown instanceof TypeError || thrown instanceof RangeError).toBe(true);
    expect((thrown as Error).message).toMatch(named);
  }
  const rw = manager.readWriteLock('r', { ttl: undefined, heartbeat: undefined });
  expect(rw.ttl).toBe(30_000);
  expect(() => rw.read({ wait: 'later' })).toThrow(/read\(\) options.wait/);
  expect(() => rw.write('soon' as never)).toThrow(/write\(\) options/);
  expect(() => rw.withRead('nope' as never)).toThrow(/fn/);
  expect(() => rw.withWrite(async () => {}, { signal: 'x' as never })).toThrow(/signal/);
  expect(await (await rwlocks()).countDocuments({ _id: 'r' })).toBe(0); // nothing was sent
  // `undefined` options are absent: this waits (and gets it at once).
  const held = await rw.write({ wait: undefined, strategy: undefined, signal: undefined });
  expect(held.held).toBe(true);
  await held.release();
});
