// Fair read-write locks, `readWriteLock(name, { fair: true })` (issue 13): readers and writers
// served strictly in the order their waits began, across managers; a release hands the lock to
// the head of the queue in its own command (a writer alone, or every reader up to the next
// writer); a waiter that gives up passes on what it was handed; the watchdog keeps a sleeping
// waiter's entry. Checked against the stored document.
import { LockTimeoutError, type HeldLease, type LockManager } from '../../lib/index';
import type { RwLockDocument } from '../../lib/rwlock-commands';
import { commandsByTarget, elapse, lockFixture } from '../helpers/locks';
import { waitFor } from '../helpers/wait';

const locks = lockFixture({ ttl: '30s', poll: 50 });

async function rwlocks() {
  return (await locks.documents()).db.collection<RwLockDocument>('locks.rwlocks');
}

/** The live holds (mode, owner, token) and the live queue (mode, owner) of `name`, by the server's clock. */
async function state(name: string) {
  const [doc] = await (
    await rwlocks()
  )
    .aggregate<Pick<RwLockDocument, 'holders' | 'queue'>>([
      { $match: { _id: name } },
      {
        $project: {
          holders: { $filter: { input: '$holders', cond: { $gt: ['$$this.expiresAt', '$$NOW'] } } },
          queue: { $filter: { input: { $ifNull: ['$queue', []] }, cond: { $gt: ['$$this.expiresAt', '$$NOW'] } } },
        },
      },
    ])
    .toArray();
  return {
    holders: (doc?.holders ?? []).map((h) => `${h.mode} ${h.owner}`),
    tokens: (doc?.holders ?? []).map((h) => Number(h.token)),
    queue: (doc?.queue ?? []).map((e) => `${e.mode} ${e.owner}`),
  };
}

/** Starts `acquire`, and resolves once its entry is queued (so that the next one queues after it). */
async function queueUp(name: string, acquire: () => Promise<HeldLease>) {
  const before = (await state(name)).queue.length;
  const acquiring = acquire();
  acquiring.catch(() => {}); // observed by the test
  await waitFor(async () => (await state(name)).queue.length === before + 1, { what: `${name} queue +1` });
  return { acquiring }; // wrapped: awaiting queueUp must not await the acquisition
}

test('fair: readers and writers in the order their waits began; a release hands over a writer alone or the readers at the head', async () => {
  const managers: Record<string, LockManager> = {};
  for (const owner of ['r0', 'w1', 'r2', 'r3', 'w4', 'r5']) managers[owner] = await locks.manager({ owner });
  const rw = (owner: string) => managers[owner]!.readWriteLock('catalog', { fair: true });
  const first = await rw('r0').read();
  const order: string[] = [];
  const pending: Record<string, Promise<HeldLease>> = {};
  for (const owner of ['w1', 'r2', 'r3', 'w4', 'r5']) {
    const take = () => (owner.startsWith('w') ? rw(owner).write() : rw(owner).read());
    const { acquiring } = await queueUp('catalog', () =>
      take().then((lease) => {
        order.push(owner);
        return lease;
      }),
    );
    pending[owner] = acquiring;
  }
  // r2 queued although only a reader holds the lock: a writer waits ahead of it.
  expect(await state('catalog')).toMatchObject({
    holders: ['read r0'],
    queue: ['write w1', 'read r2', 'read r3', 'write w4', 'read r5'],
  });
  expect((await rw('r0').inspect()).waiting).toBe(5);

  await first.release();
  expect(await state('catalog')).toMatchObject({ holders: ['write w1'] }); // handed over by the release
  const w1 = await pending.w1!;
  await w1.release();
  // Both readers at the head, in one command; not r5, behind the writer w4.
  expect(await state('catalog')).toMatchObject({ holders: ['read r2', 'read r3'], queue: ['write w4', 'read r5'] });
  const [r2, r3] = await Promise.all([pending.r2!, pending.r3!]);
  await r2.release();
  expect(await state('catalog')).toMatchObject({ holders: ['read r3'], queue: ['write w4', 'read r5'] });
  await r3.release();
  const w4 = await pending.w4!;
  await w4.release();
  const r5 = await pending.r5!;
  expect(order.slice(0, 1)).toEqual(['w1']);
  expect(order.slice(1, 3).sort()).toEqual(['r2', 'r3']);
  expect(order.slice(3)).toEqual(['w4', 'r5']);
  const tokens = [first, w1, r2, w4, r5].map((l) => l.token);
  for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1]!);
  expect(r3.token).toBeGreaterThan(w1.token);
  expect(r3.token).toBeLessThan(w4.token);
  await r5.release();
  expect(await state('catalog')).toEqual({ holders: [], tokens: [], queue: [] });
  expect((await rw('r0').inspect()).writerWaiting).toBeNull();
});

test('fair: a reader does not pass a queued writer, and one attempt (wait 0) fails while anyone is queued', async () => {
  const [a, b] = [await locks.manager({ owner: 'A' }), await locks.manager({ owner: 'B' })];
  const reading = await a.readWriteLock('shelf', { fair: true }).read();
  const { acquiring: writing } = await queueUp('shelf', () => b.readWriteLock('shelf', { fair: true }).write());
  await expect(a.readWriteLock('shelf', { fair: true }).read({ wait: 0 })).rejects.toBeInstanceOf(LockTimeoutError);
  await expect(b.readWriteLock('shelf', { fair: true }).read({ wait: 300 })).rejects.toBeInstanceOf(LockTimeoutError);
  // The reader that gave up left the queue: only the writer waits.
  await waitFor(async () => (await state('shelf')).queue.length === 1);
  expect(await state('shelf')).toMatchObject({ holders: ['read A'], queue: ['write B'] });
  await reading.release();
  const writer = await writing;
  expect(await state('shelf')).toMatchObject({ holders: ['write B'], tokens: [writer.token], queue: [] });
  await writer.release();
});

test('fair: a waiter handed the lock that gives up before it knows passes it on to the next', async () => {
  const a = await locks.manager({ owner: 'A' });
  // No wake-up signal and a long poll: the quitter does not learn of the hand-over.
  const b = await locks.manager({ owner: 'B', wakeups: false, poll: '20s' });
  const c = await locks.manager({ owner: 'C' });
  const holding = await a.readWriteLock('desk', { fair: true }).write();
  const abort = new AbortController();
  const { acquiring: quitting } = await queueUp('desk', () =>
    b.readWriteLock('desk', { fair: true }).write({ signal: abort.signal }),
  );
  const { acquiring: reading } = await queueUp('desk', () => c.readWriteLock('desk', { fair: true }).read());
  await holding.release();
  expect(await state('desk')).toMatchObject({ holders: ['write B'], queue: ['read C'] });
  abort.abort(new Error('gave up'));
  await expect(quitting).rejects.toThrow('gave up');
  const reader = await reading;
  expect(await state('desk')).toMatchObject({ holders: ['read C'], tokens: [reader.token], queue: [] });
  await reader.release();
});

test('fair: the watchdog keeps a sleeping waiter queued (one renewal command per tick), in the read-write locks collection', async () => {
  const a = await locks.manager({ owner: 'A' });
  const connection = await locks.db.connect({ monitorCommands: true });
  const { mark, delta } = commandsByTarget(connection);
  const w = await locks.manager({ connection, owner: 'W', ttl: 1500, heartbeat: 250, poll: '1m', wakeups: false });
  const holding = await a.readWriteLock('ledger', { fair: true }).write();
  const abort = new AbortController();
  const { acquiring } = await queueUp('ledger', () =>
    w.readWriteLock('ledger', { fair: true }).read({ signal: abort.signal }),
  );
  mark();
  await elapse(3500); // more than two ttls of the entry: only the watchdog's renewals keep it
  expect((await state('ledger')).queue).toEqual(['read W']);
  expect(delta('update locks.rwlocks')).toBeGreaterThanOrEqual(5);
  expect(delta('update locks.semaphores')).toBe(0); // nothing sent to the semaphores for it
  expect(delta('findAndModify locks.rwlocks')).toBe(0); // the wait sent no attempt meanwhile
  abort.abort(new Error('stop'));
  await expect(acquiring).rejects.toThrow('stop');
  expect((await state('ledger')).queue).toEqual([]);
  await holding.release();
});

test("fair must be a boolean; the manager's fair applies to read-write locks too", async () => {
  const a = await locks.manager();
  expect(() => a.readWriteLock('x', { fair: 'yes' as unknown as boolean })).toThrow(/read-write lock options\.fair/);
  expect(a.readWriteLock('x', { fair: undefined }).name).toBe('x');
  const fairByDefault = await locks.manager({ owner: 'F', fair: true });
  const other = await locks.manager({ owner: 'O' });
  const reading = await other.readWriteLock('inherits').read();
  const { acquiring } = await queueUp('inherits', () => fairByDefault.readWriteLock('inherits').write());
  expect((await state('inherits')).queue).toEqual(['write F']);
  await reading.release();
  const writer = await acquiring;
  expect(await state('inherits')).toMatchObject({ holders: ['write F'], queue: [] });
  await writer.release();
});
