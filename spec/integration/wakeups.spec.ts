// Cross-process wake-ups: a release that someone waited for wakes waiters in other managers
// (other processes) within a round trip, instead of at their next poll.
import { commandsByTarget, lockFixture } from '../helpers/locks';
import { nextEvent, waitFor } from '../helpers/wait';

const locks = lockFixture({ ttl: '60s' });

async function signals(collection = 'locks') {
  const db = (await locks.documents(collection)).db;
  return db.collection<{ name: string | null }>(`${collection}.signals`);
}

test('a waiter in another manager wakes on release, not at its next poll', async () => {
  const [holder, waiter] = [await locks.manager(), await locks.manager({ poll: '1h' })];
  const held = await holder.acquire('baton');
  const { token } = held;
  // Polling hourly and the holder's ttl a minute away: only the release signal can end this wait.
  const waiting = waiter.acquire('baton', { wait: '30s' });
  const docs = await locks.documents();
  await waitFor(async () => (await docs.findOne({ _id: 'baton' }))?.contended, { what: "the waiter's first attempt" });
  await held.release();
  // release() of a contended lock resolves once the signal is stored: a process may exit right after.
  expect(await (await signals()).countDocuments({ name: 'baton' })).toBe(1);
  const lease = await waiting;
  expect(lease.token).toBeGreaterThan(token);
  await lease.release();
});

test('an uncontended release sends no signal', async () => {
  const manager = await locks.manager({ collection: 'quiet' });
  for (let i = 0; i < 5; i++) await (await manager.acquire('alone')).release();
  const collections = await (await locks.documents('quiet')).db.listCollections({ name: 'quiet.signals' }).toArray();
  const sent = collections.length ? await (await signals('quiet')).countDocuments({ name: 'alone' }) : 0;
  expect(sent).toBe(0);
});

test('with wakeups: false a waiter in another manager only polls', async () => {
  const [holder, waiter] = [
    await locks.manager({ collection: 'polled' }),
    await locks.manager({ collection: 'polled', poll: '1h', wakeups: false }),
  ];
  const held = await holder.acquire('baton');
  const waiting = waiter.acquire('baton', { wait: Infinity, signal: AbortSignal.timeout(1500) });
  const docs = await locks.documents('polled');
  await waitFor(async () => (await docs.findOne({ _id: 'baton' }))?.contended, { what: "the waiter's first attempt" });
  await held.release(); // nobody tells the waiter; its next poll is an hour away
  await expect(waiting).rejects.toMatchObject({ name: 'TimeoutError' });
  expect((await docs.findOne({ _id: 'baton' }))!.leaseId).toBeNull(); // free all along, and never taken
  // The holder (wake-ups on) did signal the release; the waiter (wake-ups off) was not listening.
  expect(await (await signals('polled')).countDocuments({ name: 'baton' })).toBe(1);
});

test('without a capped collection for signals, the manager reports it once and waits rely on polling', async () => {
  const docs = await locks.documents('degraded');
  await docs.db.createCollection('degraded.signals'); // exists, and is not capped
  const [holder, waiter] = [
    await locks.manager({ collection: 'degraded' }),
    await locks.manager({ collection: 'degraded', poll: 100 }),
  ];
  const errors: Error[] = [];
  waiter.on('error', (error) => errors.push(error));
  const held = await holder.acquire('baton');
  const waiting = waiter.acquire('baton', { wait: '30s' });
  const [error] = await nextEvent<[Error]>(waiter, 'error');
  expect(error.message).toMatch(
    /cross-process wake-ups are off, waits rely on polling: degraded.signals exists and is not a capped collection/,
  );
  await held.release();
  const lease = await waiting;
  expect(lease.held).toBe(true);
  await lease.release();
  expect(errors).toHaveLength(1);
});

test('only a wait that sleeps listens for releases; its listener first hears the signals sent before it started', async () => {
  const collection = 'lazy';
  const connection = await locks.db.connect({ monitorCommands: true });
  const { mark, delta } = commandsByTarget(connection);
  const [holder, other, waiter] = [
    await locks.manager({ collection }),
    await locks.manager({ collection, poll: '1h' }),
    await locks.manager({ collection, poll: '1h', connection }),
  ];
  mark();
  // Acquired at the first attempt: no wait slept, so no cursor on the signals was opened.
  for (let i = 0; i < 3; i++) await (await waiter.acquire('free', { wait: '30s' })).release();
  expect(delta('find lazy.signals')).toBe(0);
  expect(delta('findAndModify lazy')).toBe(6);

  // A release signal stored while the waiter's manager was not listening.
  const held = await holder.acquire('baton');
  const first = other.acquire('baton', { wait: '30s' });
  const docs = await locks.documents(collection);
  await waitFor(async () => (await docs.findOne({ _id: 'baton' }))?.contended, { what: "the other's first attempt" });
  await held.release();
  await (await first).release();
  const stored = await (await signals(collection)).countDocuments({ name: 'baton' });
  expect(stored).toBeGreaterThanOrEqual(1);

  // The waiter finds the lock held, goes to sleep (its poll an hour away) and starts listening;
  // the listener's first batch holds that stored signal, which ends the sleep: a second attempt.
  const again = await holder.acquire('baton');
  mark();
  const waiting = waiter.acquire('baton', { wait: '30s' });
  await waitFor(() => delta('findAndModify lazy') >= 2, { what: "the waiter's second attempt" });
  expect(delta('find lazy.signals')).toBe(1);
  await again.release();
  const lease = await waiting;
  expect(lease.token).toBeGreaterThan(again.token);
  await lease.release();
});
