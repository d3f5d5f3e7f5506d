// forceAcquire against the real engine: it takes a lock whatever its state, and the previous
// holder's watchdog finds out and emits lost (reason taken).
import { LeaseLostError, LockStateError } from '../../lib/index';
import { lockFixture } from '../helpers/locks';
import { nextEvent } from '../helpers/wait';

const locks = lockFixture({ ttl: 3000, heartbeat: 200 });

test("forceAcquire takes a held lock; the old holder's watchdog emits lost (taken) and aborts its signal", async () => {
  const [a, b] = [await locks.manager({ owner: 'a' }), await locks.manager({ owner: 'b' })];
  const old = await a.acquire('seized');
  const { token, signal } = old;
  const lost = nextEvent<[LeaseLostError]>(old, 'lost');
  const managerLost = nextEvent(a, 'lost');

  const lease = b.lease('seized');
  await expect(lease.forceAcquire()).resolves.toBe(true);
  expect(lease.held).toBe(true);
  expect(lease.token!).toBeGreaterThan(token);
  expect(await b.inspect('seized')).toMatchObject({ owner: 'b', token: lease.token, held: true });

  const [error] = await lost;
  expect(error).toBeInstanceOf(LeaseLostError);
  expect(error).toMatchObject({ code: 'lost', name: 'LeaseLostError', lock: 'seized', token, reason: 'taken' });
  expect((await managerLost)[0]).toBe(old);
  expect(signal.aborted).toBe(true);
  expect(signal.reason).toBe(error);
  expect(old.held).toBe(false);
  await expect(old.release()).resolves.toBe(false); // it has nothing left to release
  expect(await b.inspect('seized')).toMatchObject({ owner: 'b', held: true }); // and did not free the new hold
  // Without history nothing of the hold taken over is kept (with it, the record says 'taken').
  const doc = await (await locks.documents()).findOne({ _id: 'seized' });
  expect(doc!.previous).toBeUndefined();
  await lease.release();
});

test('forceAcquire takes a free or never-used lock like acquire, and is refused while the lease holds or acquires', async () => {
  const manager = await locks.manager();
  const fresh = manager.lease('never-used');
  await expect(fresh.forceAcquire()).resolves.toBe(true);
  await expect(fresh.forceAcquire()).rejects.toBeInstanceOf(LockStateError);
  await expect(fresh.forceAcquire()).rejects.toMatchObject({ code: 'already_acquired' });
  const token = fresh.token!;
  await fresh.release();
  await expect(fresh.forceAcquire()).resolves.toBe(true); // free now
  expect(fresh.token!).toBeGreaterThan(token);
  const doc = await (await locks.documents()).findOne({ _id: 'never-used' });
  expect(doc!.previous).toBeUndefined(); // a free lock is not "taken over"
  await fresh.release();
});
