// Issue 13's operator views: a read-write lock's inspect(), list({ all: true }) across locks,
// semaphores and read-write locks, and forceRelease() of permits and read-write holds, checked
// against what the database holds.
import { LeaseLostError, LockTimeoutError } from '../../lib/index';
import type { RwLockDocument } from '../../lib/rwlock-commands';
import { lockFixture } from '../helpers/locks';
import { nextEvent, waitFor } from '../helpers/wait';

const locks = lockFixture({ ttl: '30s', poll: 100 });

async function rwlocks() {
  return (await locks.documents()).db.collection<RwLockDocument>('locks.rwlocks');
}

const holder = (owner: string, token: number) => ({
  owner,
  token,
  acquiredAt: expect.any(Date),
  expiresAt: expect.any(Date),
});

test("rw.inspect(): the live readers by token, the writer, a waiting writer's marker and this manager's waits", async () => {
  const a = await locks.manager({ owner: 'a' });
  const b = await locks.manager({ owner: 'b' });
  const rw = a.readWriteLock('shelf');
  expect(await rw.inspect()).toEqual({ name: 'shelf', readers: [], writer: null, writerWaiting: null, waiting: 0 });

  const r1 = await rw.read();
  const r2 = await b.readWriteLock('shelf').read();
  expect(await rw.inspect()).toEqual({
    name: 'shelf',
    readers: [holder('a', r1.token), holder('b', r2.token)],
    writer: null,
    writerWaiting: null,
    waiting: 0,
  });
  // A writer of this manager waits: counted here, and its marker shows for every manager.
  const writing = a.readWriteLock('shelf').write({ wait: '20s' });
  await waitFor(async () => (await (await rwlocks()).findOne({ _id: 'shelf' }))?.writerWaiting, {
    what: "the writer's marker",
  });
  const waited = await rw.inspect();
  expect(waited).toMatchObject({ readers: [holder('a', r1.token), holder('b', r2.token)], writer: null, waiting: 1 });
  const stored = await (await rwlocks()).findOne({ _id: 'shelf' });
  expect(waited.writerWaiting).toEqual({ expiresAt: stored!.writerWaiting!.expiresAt });
  expect((await b.readWriteLock('shelf').inspect()).waiting).toBe(0); // other managers' waits are not recorded

  await r1.release();
  await r2.release();
  const w = await writing;
  expect(await b.readWriteLock('shelf').inspect()).toEqual({
    name: 'shelf',
    readers: [],
    writer: holder('a', w.token),
    writerWaiting: null,
    waiting: 0,
  });
  // An expired holder is not listed, though still stored until the next acquisition.
  await (await rwlocks()).updateOne({ _id: 'shelf' }, { $set: { 'holders.0.expiresAt': new Date(0) } });
  expect((await rw.inspect()).writer).toBeNull();
});

test('list({ all: true }): locks, then semaphores, then read-write locks, each by name with its kind; list() is unchanged', async () => {
  const m = await locks.manager({ owner: 'lister', collection: 'listed' });
  const lock = await m.acquire('job');
  const sem = m.semaphore('pool', { limit: 2 });
  const permit = await sem.acquire();
  const read = await m.readWriteLock('cat').read();
  const lockInfo = {
    name: 'job',
    owner: 'lister',
    token: lock.token,
    acquiredAt: expect.any(Date),
    expiresAt: expect.any(Date),
    held: true,
  };
  expect(await m.list()).toEqual([lockInfo]);
  expect(await m.list({ all: undefined })).toEqual([lockInfo]); // undefined is absent
  expect(await m.list({ all: true })).toEqual([
    { kind: 'lock', ...lockInfo, queued: 0 },
    { kind: 'semaphore', name: 'pool', limit: 2, holders: [holder('lister', permit.token)], waiting: 0, queued: 0 },
    {
      kind: 'rwlock',
      name: 'cat',
      readers: [holder('lister', read.token)],
      writer: null,
      writerWaiting: null,
      waiting: 0,
      queued: 0,
    },
  ]);
  expect(() => m.list({ all: 'yes' as unknown as boolean })).toThrow(/list\(\) options\.all/);
});

test('list({ all: true }): `queued` counts the live fair waiters of each kind, from every process', async () => {
  const m = await locks.manager({ owner: 'holder', collection: 'queued' });
  const w = await locks.manager({ owner: 'waiter', collection: 'queued', fair: true });
  const held = [
    await m.acquire('job'),
    await m.semaphore('pool', { limit: 1 }).acquire(),
    await m.readWriteLock('cat').read(),
  ];
  const abort = new AbortController();
  const waits = [
    w.acquire('job', { signal: abort.signal }),
    w.semaphore('pool', { limit: 1 }).acquire({ signal: abort.signal }),
    w.semaphore('pool', { limit: 1 }).acquire({ signal: abort.signal }),
    w.readWriteLock('cat').write({ signal: abort.signal }),
  ];
  for (const wait of waits) wait.catch(() => {}); // aborted below
  const counts = async () => (await m.list({ all: true })).map((info) => `${info.kind} ${info.queued}`).join();
  const queues = async (expected: string) => {
    let seen = '';
    await waitFor(async () => (seen = await counts()) === expected, { what: `the queues ${expected}` }).catch(
      (error: Error) => {
        throw new Error(`${error.message}; last seen: ${seen}`);
      },
    );
  };
  // The reader only once the writer is queued: sent together, the reader's attempt could reach the
  // server first and share the read lock with m's reader (nobody queued yet).
  await queues('lock 1,semaphore 2,rwlock 1');
  const reading = w.readWriteLock('cat').read({ signal: abort.signal });
  reading.catch(() => {}); // aborted below
  waits.push(reading);
  await queues('lock 1,semaphore 2,rwlock 2');
  // `waiting` stays this manager's own waits: m waits for nothing.
  expect((await m.list({ all: true })).map((info) => ('waiting' in info ? info.waiting : '-'))).toEqual(['-', 0, 0]);
  abort.abort(new Error('done'));
  await Promise.allSettled(waits);
  expect(await counts()).toBe('lock 0,semaphore 0,rwlock 0');
  await Promise.all(held.map((lease) => lease.release()));
});

test('forceRelease({ kind, token }): frees one permit or hold by token, or all of them; the holders see them lost; waiters get in', async () => {
  // A short ttl: the holders' watchdogs (a tick every ttl / 3) see their holds gone soon.
  const m = await locks.manager({ owner: 'op', collection: 'forced', ttl: '3s' });
  const other = await locks.manager({ owner: 'other', collection: 'forced', ttl: '3s' });
  const sem = m.semaphore('pool', { limit: 2 });
  const [p1, p2] = [await sem.acquire(), await sem.acquire()];
  const waiter = other.semaphore('pool', { limit: 2 }).acquire({ wait: '20s' });

  const lost = nextEvent<[LeaseLostError]>(p2, 'lost');
  expect(await m.forceRelease('pool', { kind: 'semaphore', token: p2.token })).toBe(true);
  expect((await lost)[0]).toBeInstanceOf(LeaseLostError);
  expect(p1.held).toBe(true);
  const p3 = await waiter; // woken by the freed permit
  expect(p3.token).toBeGreaterThan(p2.token);
  expect((await sem.inspect()).holders.map((h) => h.token)).toEqual([p1.token, p3.token]);
  expect(await m.forceRelease('pool', { kind: 'semaphore', token: p2.token })).toBe(false); // gone already

  const both = [nextEvent(p1, 'lost'), nextEvent(p3, 'lost')];
  expect(await m.forceRelease('pool', { kind: 'semaphore' })).toBe(true);
  await Promise.all(both);
  expect((await sem.inspect()).holders).toEqual([]);

  const rw = m.readWriteLock('cat');
  const w = await rw.write();
  await expect(other.readWriteLock('cat').read({ wait: 200 })).rejects.toBeInstanceOf(LockTimeoutError);
  const writerLost = nextEvent(w, 'lost');
  expect(await m.forceRelease('cat', { kind: 'rwlock' })).toBe(true);
  await writerLost;
  const r = await other.readWriteLock('cat').read({ wait: '10s' });
  expect((await rw.inspect()).readers).toEqual([holder('other', r.token)]);
  // The lock of that name is another thing: nothing to free there.
  expect(await m.forceRelease('cat')).toBe(false);
  expect(r.held).toBe(true);

  expect(() => m.forceRelease('pool', { kind: 'lock', token: 5 })).toThrow(/forceRelease\(\) options\.token/);
  expect(() => m.forceRelease('pool', { kind: 'semaphores' as 'semaphore' })).toThrow(/forceRelease\(\) options\.kind/);
  expect(() => m.forceRelease('pool', { kind: 'semaphore', token: 1.5 })).toThrow(/forceRelease\(\) options\.token/);
});
