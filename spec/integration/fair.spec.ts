// Fair (FIFO) waiting, `fair: true` (issue 13): grants in the order waits began across managers,
// the hand-over inside the release command, waiters that give up or die leaving the queue, and
// the watchdog renewing queue entries. Checked against the stored documents.
import { LockTimeoutError, type HeldLease, type Lease, type LockManager } from '../../lib/index';
import type { LockDocument, QueueEntry } from '../../lib/commands';
import type { SemaphoreDocument } from '../../lib/semaphore-commands';
import { commandsByTarget, elapse, lockFixture } from '../helpers/locks';
import { nextEvent, waitFor } from '../helpers/wait';

const locks = lockFixture({ ttl: '30s', poll: 50 });

type Stored = LockDocument & { queue?: QueueEntry[] };

async function stored(name: string): Promise<Stored | null> {
  return (await locks.documents()).findOne({ _id: name });
}

/** The lease ids queued for `name` whose entries are live by the server's clock, in order. */
async function liveQueue(name: string, collection = 'locks'): Promise<QueueEntry[]> {
  const docs = await (
    await locks.documents(collection)
  )
    .aggregate<{ queue: QueueEntry[] }>([
      { $match: { _id: name } },
      {
        $project: {
          queue: {
            $filter: { input: { $ifNull: ['$queue', []] }, as: 'e', cond: { $gt: ['$$e.expiresAt', '$$NOW'] } },
          },
        },
      },
    ])
    .toArray();
  return docs[0]?.queue ?? [];
}

/** Starts a wait, and resolves once its entry is in the queue (so the next one is queued after it). */
async function queueUp(name: string, lease: Lease, wait: string | number = '30s', signal?: AbortSignal) {
  const before = (await liveQueue(name)).length;
  const acquiring = lease.acquire({ wait, ...(signal && { signal }) });
  acquiring.catch(() => {}); // observed by the test
  await waitFor(async () => (await liveQueue(name)).length === before + 1, { what: `${name} queue +1` });
  return { acquiring }; // wrapped: awaiting queueUp must not await the acquisition
}

test('fair waiters across two managers are granted in the order their waits began; tokens grow', async () => {
  const a = await locks.manager({ owner: 'A' });
  const b = await locks.manager({ owner: 'B' });
  const holder = a.lease('deploy', { fair: true });
  await holder.acquire();
  const order: string[] = [];
  const waiters = [b, a, b, a, b].map((m, i) => {
    const lease = m.lease('deploy', { fair: true });
    lease.on('acquired', () => order.push(`w${i}`));
    return lease;
  });
  const pending: Promise<boolean>[] = [];
  for (const w of waiters) pending.push((await queueUp('deploy', w)).acquiring);
  expect((await liveQueue('deploy')).map((e) => e.owner)).toEqual(['B', 'A', 'B', 'A', 'B']);
  const tokens = [holder.token!];
  await holder.release();
  for (const [i, w] of waiters.entries()) {
    await expect(pending[i]).resolves.toBe(true);
    tokens.push(w.token!);
    await w.release();
  }
  expect(order).toEqual(['w0', 'w1', 'w2', 'w3', 'w4']);
  for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1]!);
  const doc = await stored('deploy');
  expect(doc?.leaseId).toBeNull();
  expect(await liveQueue('deploy')).toEqual([]);
});

test('the release command hands the lock over: the db shows the next waiter as holder before it sends anything', async () => {
  const a = await locks.manager({ owner: 'A', fair: true });
  // No wake-up signal, a long poll: the waiter learns only at its next poll.
  const b = await locks.manager({ owner: 'B', fair: true, wakeups: false, poll: '3s' });
  const holder = await a.acquire('handover');
  const waiter = b.lease('handover');
  const { acquiring } = await queueUp('handover', waiter);
  const released = nextEvent(holder, 'released');
  await expect(holder.release()).resolves.toBe(true);
  await released;
  const doc = await stored('handover');
  expect(doc).toMatchObject({ owner: 'B' });
  expect(doc!.token).toBeGreaterThan(holder.token);
  expect(doc!.queue).toEqual([]);
  expect(waiter.held).toBe(false); // not told yet
  await expect(acquiring).resolves.toBe(true);
  expect(waiter.token).toBe(Number(doc!.token));
  await waiter.release();
});

test('a waiter in another manager is told by the release signal, not its poll', async () => {
  const a = await locks.manager({ fair: true });
  const b = await locks.manager({ fair: true, poll: '20s' });
  const holder = await a.acquire('signalled');
  const waiter = b.lease('signalled');
  const { acquiring } = await queueUp('signalled', waiter);
  const started = performance.now();
  await holder.release();
  await expect(acquiring).resolves.toBe(true);
  expect(performance.now() - started).toBeLessThan(5000);
  await waiter.release();
});

test('a waiter that times out leaves the queue; the next one is not held back', async () => {
  const a = await locks.manager({ owner: 'A' });
  const b = await locks.manager({ owner: 'B' });
  const holder = await a.acquire('give-up', { fair: true });
  const quitter = b.lease('give-up', { fair: true });
  const { acquiring: quitting } = await queueUp('give-up', quitter, '1s');
  const patient = a.lease('give-up', { fair: true });
  const { acquiring: waiting } = await queueUp('give-up', patient);
  await expect(quitting).rejects.toBeInstanceOf(LockTimeoutError);
  await waitFor(async () => (await liveQueue('give-up')).length === 1);
  expect((await liveQueue('give-up')).map((e) => e.owner)).toEqual(['A']);
  await holder.release();
  await expect(waiting).resolves.toBe(true);
  expect(quitter.held).toBe(false);
  await patient.release();
});

test('a waiter handed the lock that gives up before it knows gives it on to the next: no stranded lock', async () => {
  const a = await locks.manager({ owner: 'A', fair: true });
  const b = await locks.manager({ owner: 'B', fair: true, wakeups: false, poll: '20s' });
  const c = await locks.manager({ owner: 'C', fair: true });
  const holder = await a.acquire('stranded');
  const abort = new AbortController();
  const quitter = b.lease('stranded');
  const events: string[] = [];
  quitter.on('acquired', () => events.push('acquired'));
  quitter.on('lost', () => events.push('lost'));
  const { acquiring: quitting } = await queueUp('stranded', quitter, '1m', abort.signal);
  const next = c.lease('stranded');
  const { acquiring: waiting } = await queueUp('stranded', next);
  await holder.release();
  expect(await stored('stranded')).toMatchObject({ owner: 'B' }); // handed to the quitter
  abort.abort(new Error('gave up'));
  await expect(quitting).rejects.toThrow('gave up');
  await expect(waiting).resolves.toBe(true); // its give-back handed it on
  expect(await stored('stranded')).toMatchObject({ owner: 'C', leaseId: expect.any(String) });
  expect(events).toEqual([]);
  expect(quitter.held).toBe(false);
  await next.release();
});

test('a waiter that died (its entry no longer renewed) stops blocking the queue after its ttl', async () => {
  const a = await locks.manager({ owner: 'A', fair: true });
  const holder = await a.acquire('ghost');
  // A dead process's entry: queued first, with a ttl of 1.5 s, and nobody to renew it.
  await (
    await locks.documents()
  ).updateOne({ _id: 'ghost' }, [
    {
      $set: {
        queue: [{ leaseId: 'dead', owner: 'dead', ttl: 1500, expiresAt: { $add: ['$$NOW', 1500] } }],
        contended: true,
      },
    },
  ]);
  const waiter = a.lease('ghost');
  const { acquiring } = await queueUp('ghost', waiter);
  expect((await liveQueue('ghost')).map((e) => e.owner)).toEqual(['dead', 'A']);
  await elapse(2000); // the subject: the dead entry's ttl running out
  await holder.release();
  await expect(acquiring).resolves.toBe(true);
  expect(await stored('ghost')).toMatchObject({ leaseId: expect.any(String), owner: 'A', queue: [] });
  await waiter.release();
});

test('the watchdog renews a sleeping waiter entry, and never revives an expired one', async () => {
  const a = await locks.manager({ owner: 'A' });
  const b = await locks.manager({ owner: 'B', wakeups: false, poll: '20s' });
  const holder = await a.acquire('renewed', { fair: true });
  const abort = new AbortController();
  const waiter = b.lease('renewed', { fair: true, ttl: 1500 });
  const { acquiring: waiting } = await queueUp('renewed', waiter, '1m', abort.signal);
  await elapse(3500); // two ttls of the entry: only the watchdog's renewals keep it
  expect((await liveQueue('renewed')).map((e) => e.owner)).toEqual(['B']);
  abort.abort(new Error('stop'));
  await expect(waiting).rejects.toThrow('stop');
  expect(await liveQueue('renewed')).toEqual([]);
  // An expired entry stays expired: the renewal command filters on $$NOW.
  const { renewQueueCommand } = await import('../../lib/commands');
  const docs = await locks.documents();
  await docs.updateOne({ _id: 'renewed' }, [
    { $set: { queue: [{ leaseId: 'old', owner: 'old', ttl: 60_000, expiresAt: { $subtract: ['$$NOW', 1] } }] } },
  ]);
  const { filter, update } = renewQueueCommand([{ name: 'renewed', leaseId: 'old' }]);
  await docs.updateMany(filter, update);
  expect(await liveQueue('renewed')).toEqual([]);
  await holder.release();
});

test('fair semaphore, limit 2, four waiters in two managers: permits follow wait order; waiting counts every process', async () => {
  const a = await locks.manager({ owner: 'A' });
  const b = await locks.manager({ owner: 'B' });
  const semA = a.semaphore('ocr-api', { limit: 2, fair: true });
  const semB = b.semaphore('ocr-api', { limit: 2, fair: true });
  const holders = [await semA.acquire(), await semB.acquire()];
  const order: number[] = [];
  const sems = [semB, semA, semB, semA];
  const pending: Promise<HeldLease>[] = [];
  for (const [i, sem] of sems.entries()) {
    const before = (await liveQueue('ocr-api', 'locks.semaphores')).length;
    const p = sem.acquire({ wait: '30s' }).then((permit) => {
      order.push(i);
      return permit;
    });
    pending.push(p);
    await waitFor(async () => (await liveQueue('ocr-api', 'locks.semaphores')).length === before + 1);
  }
  expect((await semA.inspect()).waiting).toBe(4);
  expect((await semB.inspect()).waiting).toBe(4);
  const tokens = holders.map((h) => h.token);
  await holders[0]!.release();
  const first = await pending[0]!;
  await holders[1]!.release();
  const second = await pending[1]!;
  expect(order).toEqual([0, 1]);
  // The two hand-overs happened in the release commands: the document lists the next ones.
  const doc = (await (
    await locks.documents('locks.semaphores')
  ).findOne({
    _id: 'ocr-api',
  })) as unknown as SemaphoreDocument;
  expect(doc.holders.map((h) => Number(h.token)).sort()).toEqual([first.token, second.token].sort());
  await first.release();
  await second.release();
  const rest = await Promise.all(pending.slice(2));
  expect(order).toEqual([0, 1, 2, 3]);
  const all = [...tokens, first.token, second.token, ...rest.map((p) => p.token)];
  expect(new Set(all).size).toBe(all.length);
  expect(first.token).toBeGreaterThan(Math.max(...tokens));
  expect(rest[1]!.token).toBeGreaterThan(rest[0]!.token);
  expect((await semA.inspect()).waiting).toBe(0);
  await Promise.all(rest.map((p) => p.release()));
});

test('fair must be a boolean; undefined is absent', async () => {
  const a: LockManager = await locks.manager();
  expect(() => a.lease('x', { fair: 'yes' as unknown as boolean })).toThrow(/lease options\.fair/);
  expect(() => a.semaphore('x', { limit: 1, fair: 1 as unknown as boolean })).toThrow(/semaphore options\.fair/);
  await expect(locks.manager({ fair: null as unknown as boolean })).rejects.toThrow(/options\.fair/);
  expect(a.lease('x', { fair: undefined }).held).toBe(false);
  expect(() => a.lease('x', { fair: 'yes' as unknown as boolean })).toThrow(TypeError);
});

test('unfair contenders: held back by a hand-over (the lock is never free), not by the queue; an unfair release wakes fair waiters', async () => {
  const a = await locks.manager({ owner: 'A' });
  const b = await locks.manager({ owner: 'B' });
  const holder = await a.acquire('mixed', { fair: true });
  const waiter = b.lease('mixed', { fair: true });
  const { acquiring } = await queueUp('mixed', waiter);
  await expect(a.tryAcquire('mixed')).resolves.toBeNull(); // held
  await holder.release();
  await expect(a.tryAcquire('mixed')).resolves.toBeNull(); // handed over: held by B at once
  await expect(acquiring).resolves.toBe(true);
  // An unfair holder's release does not hand over; the fair waiter takes the lock when woken.
  await waiter.release();
  const unfair = await a.acquire('mixed');
  const second = b.lease('mixed', { fair: true });
  const { acquiring: waiting } = await queueUp('mixed', second);
  await unfair.release();
  await expect(waiting).resolves.toBe(true);
  expect(await stored('mixed')).toMatchObject({ owner: 'B', queue: [] });
  await second.release();
});

test('history: a fair release is recorded as released; a waiter leaving the queue records nothing', async () => {
  const a = await locks.manager({ owner: 'A', fair: true, history: true, collection: 'fair_history' });
  const holder = await a.acquire('recorded');
  const quitter = a.lease('recorded');
  await expect(quitter.acquire({ wait: 300 })).rejects.toBeInstanceOf(LockTimeoutError);
  await holder.release();
  const records = await a.history('recorded');
  expect(records.map((r) => [r.token, r.outcome])).toEqual([[holder.token, 'released']]);
});

test('heartbeat: a constant number of commands per tick with holds and fair waits of both kinds mixed', async () => {
  const other = await locks.manager({ owner: 'O' });
  const blockers = [await other.acquire('mix-1'), await other.acquire('mix-2'), await other.acquire('mix-3')];
  const full = await other.semaphore('mix-sem', { limit: 1 }).acquire();
  const connection = await locks.db.connect({ monitorCommands: true });
  const { mark, delta } = commandsByTarget(connection);
  // One attempt per wait (a poll of a minute, no wake-ups): only the watchdog keeps the entries.
  const w = await locks.manager({ connection, owner: 'W', ttl: 3000, heartbeat: 250, poll: '1m', wakeups: false });
  const held = [await w.acquire('mix-held'), await w.semaphore('mix-held-sem', { limit: 2 }).acquire()];
  const abort = new AbortController();
  const waits = [
    ...['mix-1', 'mix-2', 'mix-3'].map((name) => w.acquire(name, { fair: true, signal: abort.signal })),
    ...[1, 2].map(() => w.semaphore('mix-sem', { limit: 1, fair: true }).acquire({ signal: abort.signal })),
  ];
  for (const p of waits) p.catch(() => {}); // aborted at the end
  await waitFor(async () => (await liveQueue('mix-sem', 'locks.semaphores')).length === 2);
  await waitFor(async () => (await liveQueue('mix-3')).length === 1);
  mark();
  await elapse(4000); // longer than the entries' ttl: only the watchdog's renewals keep them
  for (const name of ['mix-1', 'mix-2', 'mix-3']) expect((await liveQueue(name)).map((e) => e.owner)).toEqual(['W']);
  expect(await liveQueue('mix-sem', 'locks.semaphores')).toHaveLength(2);
  const ticks = delta('find locks');
  expect(ticks).toBeGreaterThanOrEqual(5);
  // Per tick: locks renewed + lock queue entries renewed; permits likewise; one read of each kind.
  expect(Math.abs(delta('update locks') - 2 * ticks)).toBeLessThanOrEqual(2);
  expect(Math.abs(delta('update locks.semaphores') - 2 * ticks)).toBeLessThanOrEqual(2);
  expect(Math.abs(delta('find locks.semaphores') - ticks)).toBeLessThanOrEqual(2);
  expect(delta('findAndModify locks')).toBe(0); // the waits sent no attempt meanwhile
  abort.abort(new Error('done'));
  await Promise.allSettled(waits);
  expect(await liveQueue('mix-sem', 'locks.semaphores')).toEqual([]);
  await Promise.all([...held, ...blockers, full].map((l) => l.release()));
});

test('caller values enter the fair commands as literals: an owner like $token is queued and handed over as written', async () => {
  const a = await locks.manager({ owner: 'A', fair: true });
  const b = await locks.manager({ owner: '$token', fair: true });
  const holder = await a.acquire('literal');
  const waiter = b.lease('literal', { ttl: 7000 });
  const { acquiring } = await queueUp('literal', waiter);
  expect(await liveQueue('literal')).toEqual([expect.objectContaining({ owner: '$token', ttl: 7000 })]);
  await holder.release();
  expect(await stored('literal')).toMatchObject({ owner: '$token', ttl: 7000 });
  await expect(acquiring).resolves.toBe(true);
  await waiter.release();
});
