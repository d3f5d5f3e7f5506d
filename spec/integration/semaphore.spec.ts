// Counting semaphores (issue 13): at most `limit` live holders across managers, each permit a
// lease (events, signal, fencing token, renewal, loss), checked against the stored document.
import { mongo } from 'mongoose';
import type { Lease } from '../../lib/index';
import { LockError, LockStateError, type LockManager } from '../../lib/index';
import type { SemaphoreDocument } from '../../lib/semaphore-commands';
import { commandsByTarget, elapse, lockFixture } from '../helpers/locks';
import { withoutProjections } from '../helpers/retries';
import { nextEvent, waitFor } from '../helpers/wait';

const locks = lockFixture({ ttl: '30s', poll: 100 });

/** The semaphores' collection as stored, read through a connection of its own. */
async function semaphores() {
  const db = (await locks.documents()).db;
  return db.collection<SemaphoreDocument>('locks.semaphores');
}

/** The stored holders of `name` that are live by the server's clock. */
async function liveHolders(name: string) {
  const docs = await (
    await semaphores()
  )
    .aggregate<{
      holders: SemaphoreDocument['holders'];
    }>([
      { $match: { _id: name } },
      { $project: { holders: { $filter: { input: '$holders', cond: { $gt: ['$$this.expiresAt', '$$NOW'] } } } } },
    ])
    .toArray();
  return docs[0]?.holders ?? [];
}

test('at most limit holders across managers; tokens grow; tryAcquire resolves null when full', async () => {
  const managers = [await locks.manager(), await locks.manager(), await locks.manager()];
  const sems = managers.map((m) => m.semaphore('ocr-api', { limit: 3 }));
  const attempts = await Promise.all([...sems, ...sems].map((s) => s.tryAcquire()));
  const held = attempts.filter((p): p is NonNullable<typeof p> => p !== null);
  expect(held).toHaveLength(3);
  expect(held.every((p) => p.held)).toBe(true);
  const stored = await liveHolders('ocr-api');
  expect(stored).toHaveLength(3);
  expect(stored.map((h) => Number(h.token)).sort((x, y) => x - y)).toEqual(
    held.map((p) => p.token).sort((x, y) => x - y),
  );
  await expect(sems[1]!.tryAcquire()).resolves.toBeNull();
  // Tokens: strictly increasing across every hold of the semaphore, releases included.
  const tokens = stored.map((h) => Number(h.token));
  for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1]!);
  await held[0]!.release();
  const next = await sems[2]!.tryAcquire();
  expect(next!.token).toBeGreaterThan(Math.max(...tokens));
  expect(await liveHolders('ocr-api')).toHaveLength(3);
  await Promise.all([next!, ...held.slice(1)].map((p) => p.release()));
  expect(await liveHolders('ocr-api')).toHaveLength(0);
});

test('a release frees exactly its permit, and a waiter in another manager gets it promptly (signal, not poll)', async () => {
  const a = await locks.manager();
  const b = await locks.manager({ poll: '20s' }); // only the release signal can wake it in time
  const first = await a.semaphore('slots', { limit: 2 }).acquire();
  const second = await a.semaphore('slots', { limit: 2 }).acquire();
  const sem = b.semaphore('slots', { limit: 2 });
  const waiting = sem.acquire({ wait: '30s' });
  await waitFor(async () => (await sem.inspect()).waiting === 1 && (await semaphores()).findOne({ contended: true }));
  const started = performance.now();
  await expect(first.release()).resolves.toBe(true);
  const got = await waiting;
  expect(performance.now() - started).toBeLessThan(5000);
  expect(got.held).toBe(true);
  expect(second.held).toBe(true); // the other holder's permit is untouched
  const stored = await liveHolders('slots');
  expect(stored.map((h) => Number(h.token)).sort((x, y) => x - y)).toEqual(
    [second.token, got.token].sort((x, y) => x - y),
  );
  // Releasing again is refused and frees nothing.
  await expect(first.release()).rejects.toBeInstanceOf(LockStateError);
  // Nobody's permit is taken by force.
  await expect(first.forceAcquire()).rejects.toBeInstanceOf(LockStateError);
  expect(first.held).toBe(false);
  expect(await liveHolders('slots')).toHaveLength(2);
  await Promise.all([second.release(), got.release()]);
});

test('withPermit runs the function holding a permit, and releases after', async () => {
  const manager = await locks.manager();
  const sem = manager.semaphore('with', { limit: 1 });
  let inside: { held: boolean; listed: number; token: number } | undefined;
  const result = await sem.withPermit(
    async (permit) => {
      const listed = await liveHolders('with');
      inside = { held: permit.held && !permit.signal.aborted, listed: listed.length, token: Number(listed[0]!.token) };
      return permit.token;
    },
    { wait: '1m' },
  );
  expect(inside).toEqual({ held: true, listed: 1, token: result });
  expect(await liveHolders('with')).toHaveLength(0);
  await expect(sem.withPermit(() => 'again')).resolves.toBe('again');
});

test('the watchdog renews permits: one command each way per tick however many permits, beside the locks', async () => {
  const connection = await locks.db.connect({ monitorCommands: true });
  const { mark, delta } = commandsByTarget(connection);
  const manager = await locks.manager({ connection, ttl: 3000, heartbeat: 250 });
  const permits = [
    ...(await Promise.all([1, 2, 3].map(() => manager.semaphore('renewed', { limit: 3 }).acquire()))),
    await manager.semaphore('other', { limit: 2 }).acquire(),
  ];
  const leases = [await manager.acquire('lock-a'), await manager.acquire('lock-b')];
  mark();
  const expiry = (await liveHolders('renewed')).map((h) => h.expiresAt.getTime());
  await elapse(4000); // longer than the ttl: only renewals keep them
  expect([...permits, ...leases].every((l) => l.held)).toBe(true);
  const renewedNow = (await liveHolders('renewed')).map((h) => h.expiresAt.getTime());
  expect(renewedNow).toHaveLength(3);
  renewedNow.forEach((t, i) => expect(t).toBeGreaterThan(expiry[i]!));
  const lockTicks = delta('update locks');
  expect(lockTicks).toBeGreaterThanOrEqual(5);
  expect(Math.abs(delta('update locks.semaphores') - lockTicks)).toBeLessThanOrEqual(2);
  expect(Math.abs(delta('find locks.semaphores') - delta('find locks'))).toBeLessThanOrEqual(2);
  await Promise.all([...permits, ...leases].map((l) => l.release()));
});

test('a holder that stops renewing is told lost before its permit expires; then another gets it', async () => {
  const connection = await locks.db.connect();
  const a = await locks.manager({ connection, ttl: 3000 });
  a.on('error', () => {}); // its renewals fail from now on
  const permit = await a.semaphore('expiring', { limit: 1 }).acquire();
  const b = await locks.manager();
  const sem = b.semaphore('expiring', { limit: 1 });
  await expect(sem.tryAcquire()).resolves.toBeNull();
  const order: string[] = [];
  const lost = nextEvent<[Error & { reason: string }]>(permit, 'lost', 10_000);
  permit.on('lost', () => order.push('lost'));
  await connection.close(); // the holder can no longer renew (as if cut off)
  const started = performance.now();
  const got = await sem.acquire({ wait: '20s' });
  order.push('acquired elsewhere');
  expect(performance.now() - started).toBeGreaterThan(1000);
  expect((await lost)[0].reason).toBe('expired');
  expect(order).toEqual(['lost', 'acquired elsewhere']);
  expect(got.token).toBeGreaterThan(permit.token);
  const stored = await liveHolders('expiring');
  expect(stored.map((h) => Number(h.token))).toEqual([got.token]);
  await got.release();
});

test('a permit taken away in the document emits lost (freed, or taken when the semaphore is full)', async () => {
  const manager = await locks.manager({ ttl: 3000, heartbeat: 200 });
  const docs = await semaphores();
  const freed = await manager.semaphore('tampered', { limit: 2 }).acquire();
  const forwarded = nextEvent<[Lease, { reason: string }]>(manager, 'lost');
  await docs.updateOne({ _id: 'tampered' }, { $set: { holders: [] } });
  const [error] = await nextEvent<[{ reason: string }]>(freed, 'lost');
  expect(error.reason).toBe('freed');
  expect(freed.held).toBe(false);
  expect(freed.signal.aborted).toBe(true);
  expect((await forwarded)[0]).toBe(freed);

  const taken = await manager.semaphore('full', { limit: 1 }).acquire();
  const far = new Date(Date.now() + 60_000);
  const intruder = {
    leaseId: 'x',
    owner: 'intruder',
    token: taken.token + 1,
    acquiredAt: new Date(),
    expiresAt: far,
    ttl: 1,
  };
  await docs.updateOne({ _id: 'full' }, { $set: { holders: [intruder] } });
  const [other] = await nextEvent<[{ reason: string }]>(taken, 'lost');
  expect(other.reason).toBe('taken');
  await expect(taken.release()).resolves.toBe(false);
  expect((await liveHolders('full')).map((h) => h.owner)).toEqual(['intruder']); // not released by the loser
});

test('a document tampered out of shape ends the hold and fails acquisitions: it never stalls them', async () => {
  const manager = await locks.manager({ ttl: 1500, heartbeat: 200 });
  const errors: unknown[] = [];
  manager.on('error', (error) => errors.push(error));
  const permit = await manager.semaphore('mangled', { limit: 2 }).acquire();
  await (await semaphores()).updateOne({ _id: 'mangled' }, { $set: { holders: 'junk' as never } });
  const [lost] = await nextEvent<[{ reason: string }]>(permit, 'lost', 10_000);
  expect(lost.reason).toBe('expired'); // no renewal could land: it ran out before the server could give it away
  expect(errors.length).toBeGreaterThan(0);
  await expect(manager.semaphore('mangled', { limit: 2 }).tryAcquire()).rejects.toMatchObject({ code: 'database' });
});

test('a grant whose answer came too late is given back: the permit is free again', async () => {
  const manager = await locks.manager({ commandTimeout: 500 });
  manager.on('error', () => {});
  const sem = manager.semaphore('late', { limit: 1 });
  // eslint-disable-next-line @typescript-eslint/unbound-method -- called with the collection as `this`
  const send = mongo.Collection.prototype.findOneAndUpdate;
  const slow = jest.spyOn(mongo.Collection.prototype, 'findOneAndUpdate');
  let delayed = 0;
  slow.mockImplementation(async function (this: mongo.Collection, ...args: unknown[]) {
    // The first acquisition of 'late' is answered after the command timeout.
    if ((args[0] as { _id?: unknown })._id === 'late' && delayed++ === 0) await elapse(1000);
    return (send as (...a: unknown[]) => Promise<unknown>).apply(this, args);
  } as typeof send);
  try {
    await expect(sem.tryAcquire()).rejects.toMatchObject({ code: 'connection' });
  } finally {
    slow.mockRestore();
  }
  // The attempt landed after all (its token is stored), and its permit was given back.
  const granted = await waitFor(() => semaphores().then((c) => c.findOne({ _id: 'late', token: { $gt: 0 } })));
  await waitFor(async () => (await liveHolders('late')).length === 0);
  const next = await sem.tryAcquire();
  expect(next!.token).toBeGreaterThan(Number(granted.token));
  await next!.release();
});

test('two declarations with different limits: a LockError saying which limit is stored', async () => {
  const [a, b] = [await locks.manager(), await locks.manager()];
  const permit = await a.semaphore('declared', { limit: 2 }).acquire();
  const other = b.semaphore('declared', { limit: 3 });
  await expect(other.tryAcquire()).rejects.toThrow(/stored with a limit of 2, and declared here with a limit of 3/);
  await expect(other.acquire({ wait: '10s' })).rejects.toBeInstanceOf(LockError);
  expect((await liveHolders('declared')).length).toBe(1);
  expect(await a.semaphore('declared', { limit: 2 }).inspect()).toMatchObject({ limit: 2 });
  await permit.release();
});

test('close() releases the permits, and the manager relays their events', async () => {
  const manager = await locks.manager();
  const seen: string[] = [];
  manager.on('acquired', (lease) => seen.push(`acquired ${lease.name}`));
  manager.on('released', (lease) => seen.push(`released ${lease.name}`));
  const sem = manager.semaphore('closing', { limit: 3 });
  const permits = [await sem.acquire(), await sem.acquire()];
  expect(manager.heldLeases).toEqual(expect.arrayContaining(permits));
  await manager.close();
  expect(permits.map((p) => p.held)).toEqual([false, false]);
  expect(await liveHolders('closing')).toHaveLength(0);
  expect(seen).toEqual(['acquired closing', 'acquired closing', 'released closing', 'released closing']);
  expect(() => manager.semaphore('closing', { limit: 3 })).toThrow(LockStateError);
});

test('inspect() lists the live holders by token (owners stored as written), the stored limit and the waits here', async () => {
  const [a, b] = [await locks.manager({ owner: '$token' }), await locks.manager({ owner: 'worker-b' })];
  const sem = b.semaphore('inspected', { limit: 2 });
  expect(await sem.inspect()).toEqual({ name: 'inspected', limit: 2, holders: [], waiting: 0 });
  const first = await a.semaphore('inspected', { limit: 2, ttl: '20s' }).acquire();
  const second = await sem.acquire();
  const waiter = new AbortController();
  const waiting = sem.acquire({ signal: waiter.signal });
  await waitFor(async () => (await sem.inspect()).waiting === 1);
  const info = await b.semaphore('inspected', { limit: 2 }).inspect(); // another declaration, same manager
  expect(info).toEqual({
    name: 'inspected',
    limit: 2,
    holders: [
      { owner: '$token', token: first.token, acquiredAt: expect.any(Date), expiresAt: first.expiresAt },
      { owner: 'worker-b', token: second.token, acquiredAt: expect.any(Date), expiresAt: second.expiresAt },
    ],
    waiting: 1,
  });
  waiter.abort(new Error('stop waiting'));
  await expect(waiting).rejects.toThrow('stop waiting');
  expect((await sem.inspect()).waiting).toBe(0);
  await Promise.all([first.release(), second.release()]);
});

test('answers without their projection (a retried command on a replica set): a grant is held, busy is busy, a release is a release', async () => {
  const [a, b] = [await locks.manager(), await locks.manager()];
  const permit = await withoutProjections(() => a.semaphore('retried', { limit: 1 }).acquire());
  expect(permit.held).toBe(true);
  const [stored] = await liveHolders('retried');
  expect(stored).toMatchObject({ token: permit.token, owner: a.owner, expiresAt: permit.expiresAt });
  await expect(withoutProjections(() => b.semaphore('retried', { limit: 1 }).tryAcquire())).resolves.toBeNull();
  await expect(withoutProjections(() => b.semaphore('retried', { limit: 2 }).tryAcquire())).rejects.toThrow(
    /stored with a limit of 1/,
  );
  const events: string[] = [];
  permit.on('released', () => events.push('released'));
  permit.on('lost', (error) => events.push(`lost:${error.reason}`));
  await expect(withoutProjections(() => permit.release())).resolves.toBe(true);
  expect(events).toEqual(['released']);
  expect(await liveHolders('retried')).toHaveLength(0);
});

test('bad input throws a TypeError or RangeError naming the option, before anything is sent', async () => {
  const manager: LockManager = await locks.manager();
  const bad: [unknown, unknown, RegExp][] = [
    ['s', undefined, /limit/],
    ['s', {}, /limit/],
    ['s', { limit: undefined }, /limit/],
    ['s', { limit: '3' }, /limit/],
    ['s', { limit: 0 }, /limit/],
    ['s', { limit: 2.5 }, /limit/],
    ['s', { limit: NaN }, /limit/],
    ['s', { limit: 10_001 }, /limit/],
    ['s', { limit: 2, ttl: 'soon' }, /ttl/],
    ['s', { limit: 2, ttl: '1s', heartbeat: '2s' }, /heartbeat/],
    ['', { limit: 2 }, /semaphore name/],
    [42, { limit: 2 }, /semaphore name/],
    ['s', 'three', /semaphore options/],
  ];
  for (const [name, options, named] of bad) {
    let thrown: unknown;
    try {
      manager.semaphore(name as string, options as { limit: number });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toEqual(expect.objectContaining({ code: 'invalid_argument' }));
    expect(thrown instanceof TypeError || thrown instanceof RangeError).toBe(true);
    expect((thrown as Error).message).toMatch(named);
  }
  const sem = manager.semaphore('s', { limit: 2, ttl: undefined, heartbeat: undefined });
  expect(sem.ttl).toBe(30_000);
  expect(() => sem.tryAcquire({ wait: 100 } as never)).toThrow(/tryAcquire\(\) options.wait/);
  expect(() => sem.acquire({ wait: 'later' })).toThrow(/options.wait/);
  expect(() => sem.withPermit('nope' as never)).toThrow(/fn/);
  expect(await (await semaphores()).countDocuments({ _id: 's' })).toBe(0);
});
