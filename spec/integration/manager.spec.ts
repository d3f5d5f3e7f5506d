// The manager's API: withLock, acquire/tryAcquire, events, listeners that throw, close().
import { LeaseLostError, LockStateError } from '../../lib/index';
import { lockFixture } from '../helpers/locks';
import { nextEvent } from '../helpers/wait';

const locks = lockFixture({ ttl: '30s', poll: 100 });

test('withLock runs the function holding the lock, returns its result, and releases', async () => {
  const manager = await locks.manager();
  let during: boolean | undefined;
  const result = await manager.withLock('job', async (lease) => {
    during = (await manager.inspect('job'))!.held && lease.held;
    return { done: lease.token };
  });
  expect(during).toBe(true);
  expect(result.done).toEqual(expect.any(Number));
  expect((await manager.inspect('job'))!.held).toBe(false);
});

test('withLock releases when the function throws, and rethrows its error', async () => {
  const manager = await locks.manager();
  const failure = new Error('migration failed');
  let signal: AbortSignal | undefined;
  await expect(
    manager.withLock('failing', (lease) => {
      signal = lease.signal;
      throw failure;
    }),
  ).rejects.toBe(failure);
  expect(signal!.aborted).toBe(true);
  expect((await manager.inspect('failing'))!.held).toBe(false);
});

test('withLock rejects with LeaseLostError when the lock is lost before the function settles', async () => {
  const manager = await locks.manager({ ttl: 3000, heartbeat: 200 });
  const docs = await locks.documents();
  const outcome = manager.withLock('lost-midway', async (lease) => {
    await docs.updateOne({ _id: 'lost-midway' }, { $set: { leaseId: 'someone-else' } });
    await new Promise((resolve) => lease.signal.addEventListener('abort', resolve));
    return 'finished anyway';
  });
  await expect(outcome).rejects.toBeInstanceOf(LeaseLostError);
  await expect(outcome).rejects.toMatchObject({ reason: 'taken' });
});

test('tryAcquire resolves null when busy; acquire with wait rejects on timeout', async () => {
  const [a, b] = [await locks.manager(), await locks.manager()];
  const held = await a.acquire('busy');
  await expect(b.tryAcquire('busy')).resolves.toBeNull();
  await expect(b.acquire('busy', { wait: 200 })).rejects.toMatchObject({ code: 'timeout' });
  await held.release();
  const lease = await b.tryAcquire('busy', { ttl: '5s' });
  expect(lease!.ttl).toBe(5000);
  expect(lease!.heartbeat).toBeCloseTo(5000 / 3);
  await lease!.release();
});

test('a listener that throws does not break the lease or the manager: the error goes to the error event', async () => {
  const manager = await locks.manager();
  const errors: unknown[] = [];
  manager.on('error', (error, lease) => errors.push([error.message, lease?.name]));
  manager.on('acquired', () => {
    throw new Error('listener bug');
  });
  const lease = await manager.acquire('robust');
  expect(lease.held).toBe(true);
  expect(errors).toEqual([['listener bug', 'robust']]);
  await expect(lease.release()).resolves.toBe(true);
});

test('without an error listener, background errors become one process warning per kind', async () => {
  const manager = await locks.manager();
  const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
  try {
    manager.on('acquired', () => {
      throw new Error('listener bug');
    });
    await (await manager.acquire('warned-1')).release();
    await (await manager.acquire('warned-2')).release();
    expect(warn.mock.calls).toEqual([
      [expect.stringMatching(/^listener bug \(further "Error" errors are not shown/), 'LockManagerWarning'],
    ]);
  } finally {
    warn.mockRestore();
  }
});

test('close() releases held leases, rejects waits, and refuses later calls', async () => {
  const [manager, other] = [await locks.manager(), await locks.manager()];
  const held = await manager.acquire('closing-held');
  const blocker = await other.acquire('closing-wait');
  const released = nextEvent(manager, 'released');
  const waiting = manager.acquire('closing-wait');
  const signal = held.signal;
  await manager.close();
  await expect(waiting).rejects.toBeInstanceOf(LockStateError);
  await expect(waiting).rejects.toMatchObject({ code: 'closed' });
  expect((await released)[0]).toBe(held);
  expect(signal.aborted).toBe(true);
  expect(held.held).toBe(false);
  expect((await other.inspect('closing-held'))!.held).toBe(false);
  expect((await other.inspect('closing-wait'))!.owner).toBe(other.owner); // the waiter never got it

  for (const call of <(() => Promise<unknown>)[]>[
    () => manager.acquire('x'),
    () => manager.tryAcquire('x'),
    () => manager.withLock('x', () => 1),
    () => manager.inspect('x'),
    () => manager.list(),
    () => held.acquire(),
    () => held.release(),
  ]) {
    await expect(Promise.resolve().then(call)).rejects.toMatchObject({ code: 'closed' });
  }
  expect(() => manager.lease('x')).toThrow(LockStateError);
  await expect(manager.close()).resolves.toBeUndefined(); // twice is fine
  await blocker.release();
});
