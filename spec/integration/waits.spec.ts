// Waiting for a lock: bounded, infinite, aborted, custom strategies, and the same-manager wake-up.
import { LockTimeoutError, strategies, type PollStrategy } from '../../lib/index';
import { lockFixture } from '../helpers/locks';

const locks = lockFixture({ ttl: '30s', poll: 100 });

test('a bounded wait that runs out rejects with LockTimeoutError and emits timeout (phase acquire)', async () => {
  const [holder, waiter] = [await locks.manager(), await locks.manager()];
  const held = await holder.acquire('bounded');
  const lease = waiter.lease('bounded');
  const timeouts: unknown[] = [];
  lease.on('timeout', (e) => timeouts.push(e));
  const started = performance.now();
  const error = await lease.acquire({ wait: 600 }).catch((e: unknown) => e);
  expect(performance.now() - started).toBeGreaterThanOrEqual(590);
  expect(error).toBeInstanceOf(LockTimeoutError);
  expect(error).toMatchObject({
    code: 'timeout',
    lock: 'bounded',
    phase: 'acquire',
    message: expect.stringMatching(/could not acquire lock "bounded" within \d+ ms \(\d+ attempts\)/),
  });
  expect(timeouts).toEqual([{ name: 'bounded', phase: 'acquire' }]);
  expect(lease.held).toBe(false);
  expect((await holder.inspect('bounded'))!.token).toBe(held.token); // the holder was not disturbed
  await held.release();
});

test('a bounded wait succeeds when the lock is freed in time; manager.acquire waits forever by default', async () => {
  const [holder, waiter] = [await locks.manager(), await locks.manager()];
  let held = await holder.acquire('freed-in-time');
  const bounded = waiter.lease('freed-in-time');
  const waiting = bounded.acquire({ wait: '20s' });
  await held.release();
  await expect(waiting).resolves.toBe(true);
  await bounded.release();

  held = await holder.acquire('freed-in-time');
  const forever = waiter.acquire('freed-in-time');
  await held.release();
  const lease = await forever;
  expect(lease.held).toBe(true);
  await lease.release();
});

test('an infinite wait takes over a lock whose holder stopped renewing, once it expires', async () => {
  const [crashed, waiter] = [await locks.manager({ heartbeat: false, ttl: 1500 }), await locks.manager({ poll: '1h' })];
  const { token } = await crashed.acquire('orphan');
  // With a one-hour poll, only the expiry the waiter observed on the server can wake it.
  const lease = await waiter.acquire('orphan', { wait: Infinity });
  expect(lease.token).toBeGreaterThan(token);
  expect((await waiter.inspect('orphan'))!.owner).toBe(waiter.owner);
  await lease.release();
});

test('an aborted wait rejects with signal.reason and leaves the lease idle', async () => {
  const [holder, waiter] = [await locks.manager(), await locks.manager()];
  const held = await holder.acquire('aborted');
  const lease = waiter.lease('aborted');
  const controller = new AbortController();
  const reason = new Error('shutting down');
  let sleeping!: () => void;
  const firstSleep = new Promise<void>((resolve) => (sleeping = resolve));
  const strategy: PollStrategy = {
    next: () => {
      sleeping();
      return 60_000;
    },
  };
  const waiting = lease.acquire({ strategy, signal: controller.signal });
  await firstSleep; // the first attempt found it busy; the wait is asleep now
  controller.abort(reason);
  await expect(waiting).rejects.toBe(reason);
  expect(lease.held).toBe(false);
  const already = AbortSignal.abort(new Error('never started'));
  await expect(lease.acquire({ signal: already })).rejects.toThrow('never started');
  await held.release();
  await expect(lease.acquire()).resolves.toBe(true); // idle again, usable
  await lease.release();
});

test('a waiter of the same manager wakes as soon as a lease of that manager releases the name', async () => {
  const manager = await locks.manager({ poll: '1h' });
  const held = await manager.acquire('same-manager');
  const { token } = held;
  const waiting = manager.acquire('same-manager'); // polls hourly: only the wake-up can end this soon
  await held.release();
  const lease = await waiting;
  expect(lease.token).toBeGreaterThan(token);
  await lease.release();
});

test('a custom strategy is asked after each failed attempt and wins over wait', async () => {
  const [holder, waiter] = [await locks.manager(), await locks.manager()];
  const held = await holder.acquire('custom');
  const calls: [number, number][] = [];
  const strategy: PollStrategy = {
    next(attempt, elapsed) {
      calls.push([attempt, elapsed]);
      return attempt < 3 ? 10 : null;
    },
  };
  await expect(waiter.lease('custom').acquire({ strategy, wait: '1h' })).rejects.toBeInstanceOf(LockTimeoutError);
  expect(calls.map(([attempt]) => attempt)).toEqual([1, 2, 3]);
  expect(calls[2]![1]).toBeGreaterThanOrEqual(calls[1]![1]);

  const backoff = waiter
    .lease('custom')
    .acquire({ strategy: strategies.backoff({ initial: 20, max: 100, within: 300 }) });
  await expect(backoff).rejects.toMatchObject({ code: 'timeout' });

  const broken = { next: () => -5 };
  await expect(waiter.lease('custom').acquire({ strategy: broken })).rejects.toThrow(
    /strategy.next\(\) result must be a delay of 0 ms or more, or null, received -5/,
  );
  await held.release();
});

test('wait options are checked before anything is sent', async () => {
  const manager = await locks.manager();
  const lease = manager.lease('checked');
  expect(() => lease.acquire({ wait: 'a while' })).toThrow(TypeError);
  expect(() => lease.acquire({ wait: -1 })).toThrow(RangeError);
  expect(() => lease.acquire({ strategy: {} as PollStrategy })).toThrow(/strategy must be a strategy/);
  expect(() => lease.acquire({ signal: 'stop' as never })).toThrow(/signal must be an AbortSignal/);
  expect(lease.held).toBe(false);
  expect(await manager.inspect('checked')).toBeNull();
});
