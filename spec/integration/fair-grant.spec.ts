// A fair hand-over told by the release signal (issue 13's fast hand-over): the waiter handed the
// lock resolves on the signal's grant, without an attempt of its own; its token is the stored
// one and its local deadline no later than the server's expiry. Without the signal it still
// acquires by polling, and a manager closed right after a grant passes the lock on.
import type { LockDocument, QueueEntry } from '../../lib/commands';
import type { Hold } from '../../lib/hold';
import { Watchdog } from '../../lib/watchdog';
import { grantKey } from '../../lib/wakeups';
import { commandsByTarget, lockFixture } from '../helpers/locks';
import { nextEvent, waitFor } from '../helpers/wait';
import type { Lease, LockManager, LockManagerOptions } from '../../lib/index';

const locks = lockFixture({ ttl: '30s', poll: 50 });

type Stored = LockDocument & { queue?: QueueEntry[] };

async function stored(name: string): Promise<(Stored & { remaining: number }) | undefined> {
  const docs = await (
    await locks.documents()
  )
    .aggregate<Stored & { remaining: number }>([
      { $match: { _id: name } },
      { $set: { remaining: { $subtract: ['$expiresAt', '$$NOW'] } } },
    ])
    .toArray();
  return docs[0];
}

/** Starts a wait, and resolves once its entry is in the queue. */
async function queueUp(name: string, lease: Lease) {
  const before = (await stored(name))?.queue?.length ?? 0;
  const acquiring = lease.acquire({ wait: '1m' });
  acquiring.catch(() => {}); // observed by the test
  await waitFor(async () => ((await stored(name))?.queue?.length ?? 0) === before + 1, { what: `${name} queued` });
  return { acquiring };
}

afterEach(() => jest.restoreAllMocks());

test('a waiter granted by the signal holds without another attempt: the stored token, a deadline before the server expiry', async () => {
  const a = await locks.manager({ owner: 'A', fair: true });
  const connection = await locks.db.connect({ monitorCommands: true });
  const { mark, delta } = commandsByTarget(connection);
  // A long poll: only the signal can tell the waiter before 20 s.
  const b = await locks.manager({ connection, owner: 'B', fair: true, poll: '20s' });
  const holder = await a.acquire('granted');
  const waiter = b.lease('granted');
  const acquired: number[] = [];
  waiter.on('acquired', ({ token }) => acquired.push(token));
  // The holds the watchdog is given (a spy that calls through): the waiter's carries its local deadline.
  const add = jest.spyOn(Watchdog.prototype, 'add');
  const { acquiring } = await queueUp('granted', waiter);
  mark();
  await holder.release();
  await expect(acquiring).resolves.toBe(true);
  const checkedAt = performance.now();
  const doc = await stored('granted');
  expect(delta('findAndModify locks')).toBe(0); // resolved on the grant, no attempt sent
  expect(doc).toMatchObject({ owner: 'B', queue: [] });
  expect(waiter.token).toBe(Number(doc!.token));
  expect(doc!.token).toBeGreaterThan(holder.token);
  expect(acquired).toEqual([waiter.token]);
  const hold = add.mock.calls.map(([h]) => h as Hold).find((h) => h.token === waiter.token);
  expect(hold).toBeDefined();
  // The server's expiry, in local time, is no earlier than checkedAt + remaining (the read was
  // answered after checkedAt): the local deadline must come before it, and leave most of the ttl.
  expect(hold!.deadline).toBeLessThanOrEqual(checkedAt + doc!.remaining);
  expect(hold!.deadline - checkedAt).toBeGreaterThan(15_000);
  expect(waiter.expiresAt!.getTime()).toBe(doc!.expiresAt.getTime());
  await waiter.release();
  expect(await stored('granted')).toMatchObject({ leaseId: null });
});

/** A manager whose commands are counted by target. */
async function monitored(options: LockManagerOptions) {
  const connection = await locks.db.connect({ monitorCommands: true });
  const count = commandsByTarget(connection);
  return { manager: await locks.manager({ connection, ...options }), count };
}

/**
 * Hands `name` from a hold of `from` to a waiter of `to` (whose commands `count` counts): the
 * acquire and release commands `to` sent from the release on.
 */
async function handOver(
  name: string,
  from: LockManager,
  to: LockManager,
  count: { mark(): void; delta(key: string): number },
) {
  const holder = await from.acquire(name);
  const waiter = to.lease(name);
  const { acquiring } = await queueUp(name, waiter);
  count.mark();
  await holder.release();
  await expect(acquiring).resolves.toBe(true);
  expect(waiter.token).toBe(Number((await stored(name))!.token));
  return { waiter, sent: count.delta('findAndModify locks') };
}

test('a waiter handed the lock in the same manager resolves on the grant too, with the stored token', async () => {
  const { manager, count } = await monitored({ owner: 'M', fair: true, poll: '20s' });
  const { waiter, sent } = await handOver('local', manager, manager, count);
  expect(sent).toBe(1); // the release only
  await waiter.release();
});

test('with the signal lost (wake-ups off) the waiter still acquires, by its poll, with the stored token', async () => {
  const a = await locks.manager({ owner: 'A', fair: true });
  const { manager: b, count } = await monitored({ owner: 'B', fair: true, poll: 300, wakeups: false });
  const { waiter, sent } = await handOver('polled', a, b, count);
  expect(sent).toBeGreaterThanOrEqual(1); // its confirming attempt
  await waiter.release();
});

test('a manager closed right after its waiter was granted the lock gives it on to the next waiter', async () => {
  const a = await locks.manager({ owner: 'A', fair: true });
  const b = await locks.manager({ owner: 'B', fair: true, poll: '20s' });
  const c = await locks.manager({ owner: 'C', fair: true, poll: '20s' });
  const holder = await a.acquire('closed');
  const granted = b.lease('closed');
  const { acquiring } = await queueUp('closed', granted);
  const next = c.lease('closed');
  const { acquiring: waiting } = await queueUp('closed', next);
  await holder.release();
  await expect(acquiring).resolves.toBe(true);
  await b.close();
  await expect(waiting).resolves.toBe(true);
  const doc = await stored('closed');
  expect(doc).toMatchObject({ owner: 'C', queue: [] });
  expect(next.token).toBe(Number(doc!.token));
  expect(next.token).toBeGreaterThan(granted.token!);
  await next.release();
  expect(await stored('closed')).toMatchObject({ leaseId: null });
});

test('a manager closed while the grant is on its way frees the lock or gives it on: never stranded', async () => {
  const a = await locks.manager({ owner: 'A', fair: true });
  const b = await locks.manager({ owner: 'B', fair: true, poll: '20s' });
  const holder = await a.acquire('racing');
  const granted = b.lease('racing');
  const { acquiring } = await queueUp('racing', granted);
  const released = nextEvent(holder, 'released');
  await holder.release();
  await released;
  // Closed at once: the signal may or may not have arrived; either way the hold is given back.
  await b.close();
  await acquiring.catch(() => false);
  expect(granted.held).toBe(false);
  expect(await stored('racing')).toMatchObject({ leaseId: null, queue: [] });
  const again = await a.acquire('racing', { wait: '5s' });
  expect(again.token).toBeGreaterThan(holder.token);
  await again.release();
});

test('a grant no newer than what the waiter last saw is not believed: the waiter asks the server, and waits on', async () => {
  const a = await locks.manager({ owner: 'A', fair: true });
  const { manager: b, count } = await monitored({ owner: 'B', fair: true, poll: '20s' });
  const holder = await a.acquire('stale');
  const waiter = b.lease('stale');
  const { acquiring } = await queueUp('stale', waiter);
  const doc = (await stored('stale'))!;
  // A signal as a release would send it, addressed to the waiter, but with the holder's own token:
  // a grant made before the waiter's "queued" answer (this one was never made at all).
  const signals = (await locks.documents()).db.collection('locks.signals');
  count.mark();
  await signals.insertOne({
    name: 'stale',
    grant: { to: grantKey(doc.queue![0]!.leaseId), token: holder.token, expiresAt: doc.expiresAt },
  });
  await waitFor(() => count.delta('findAndModify locks') === 1, { what: "the waiter's attempt" });
  expect(waiter.held).toBe(false);
  expect(await stored('stale')).toMatchObject({ owner: 'A', token: holder.token });
  await holder.release();
  await expect(acquiring).resolves.toBe(true);
  expect(waiter.token).toBe(Number((await stored('stale'))!.token));
  await waiter.release();
});
