// The API of mongoose-distributed-lock 0.0.1, as its README documents it, against the real engine:
// Lock(name, options), each callback signature and error message, probeMaxAttempts, properties
// changed at run time, promises, events, forceAcquire, and the default mongoose connection.
import mongoose, { type Connection } from 'mongoose';
import Lock, {
  CompatLock,
  LockError,
  LockManager,
  LockStateError,
  LockTimeoutError,
  type AcquiredEvent,
  type LockCallback,
  type CompatLockOptions,
} from 'mongoose-distributed-lock';
import { elapse, lockFixture } from '../helpers/locks';
import { testUri } from '../helpers/mongo';
import { nextEvent, waitFor } from '../helpers/wait';

const locks = lockFixture();
let connection: Connection;
/** findAndModify commands sent on `connection`, by lock name: one per acquisition attempt. */
const attempts = new Map<string, number>();

beforeAll(async () => {
  connection = await locks.db.connect({ monitorCommands: true });
  connection.getClient().on('commandStarted', (event) => {
    const { command } = event as unknown as { command: { query?: { _id?: unknown } } };
    const name = command.query?._id;
    if (event.commandName === 'findAndModify' && typeof name === 'string' && !('leaseId' in command.query!)) {
      attempts.set(name, (attempts.get(name) ?? 0) + 1);
    }
  });
});

const managers = new Set<LockManager>();
locks.db.beforeClose(() => Promise.all([...managers].map((m) => m.close())));

/** A Lock on this file's monitored connection (unless options say otherwise), closed after the tests. */
function lock(name: string, options: CompatLockOptions = {}): CompatLock {
  const made = Lock(name, { connection, ...options });
  managers.add(made.manager);
  return made;
}

/** Calls `method` with a callback and resolves every argument the callback got. */
function called<T>(method: (callback: LockCallback<T>) => void): Promise<unknown[]> {
  return new Promise((resolve) => method((...args: unknown[]) => resolve(args)));
}

test('Lock(name, options) has the properties and defaults of 0.0.1', () => {
  const defaults = lock('testLock');
  expect(defaults).toBeInstanceOf(CompatLock);
  expect(defaults).toMatchObject({ name: 'testLock', lockId: null, timeAquired: null, timeout: 60_000 });
  expect(defaults.pollInterval).toBe(500);
  expect(defaults.probeMaxAttempts).toBe(60_000 / 500 + 2);
  const configured = lock('testLock', { timeout: 500, pollInterval: 100 });
  expect([configured.timeout, configured.pollInterval, configured.probeMaxAttempts]).toEqual([500, 100, 7]);
  expect(lock('x', { timeout: 1000, pollInterval: 300 }).probeMaxAttempts).toBeCloseTo(1000 / 300 + 2);
  expect(lock('x', { timeout: '2s', pollInterval: '250ms' }).probeMaxAttempts).toBe(10);
  expect(lock('x', { probeMaxAttempts: Infinity }).probeMaxAttempts).toBe(Infinity);
  // 0.0.1 exported a factory; calling it with `new` also gave a lock.
  const LockClass = Lock as unknown as new (name: string, options: CompatLockOptions) => CompatLock;
  expect(new LockClass('x', { connection })).toBeInstanceOf(CompatLock);
});

test('bad arguments are TypeErrors and RangeErrors that say what was wrong', () => {
  expect(() => Lock(undefined as never)).toThrow(/Lock\(name, options\): name must be a non-empty string/);
  expect(() => Lock('')).toThrow(TypeError);
  expect(() => Lock('x', { connection, timeout: 0 })).toThrow(/options.timeout must be a finite duration above 0/);
  expect(() => Lock('x', { connection, pollInterval: 'often' })).toThrow(TypeError);
  expect(() => Lock('x', { connection, probeMaxAttempts: 0 })).toThrow(/options.probeMaxAttempts must be above 0/);
  expect(() => Lock('x', { connection, collection: 'system.x' })).toThrow(RangeError);
  expect(() => Lock('x', 'fast' as never)).toThrow(/options must be an options object/);
  const instance = lock('checked');
  expect(() => (instance.timeout = -1)).toThrow(/lock.timeout must be a finite duration above 0, received -1/);
  expect(() => (instance.pollInterval = 'never')).toThrow(TypeError);
  expect(() => (instance.probeMaxAttempts = NaN)).toThrow(RangeError);
  expect(() => (instance.name = '')).toThrow(/lock.name must be a non-empty string/);
  expect(() => (instance.lockId = 42 as never)).toThrow(/lock.lockId must be a string or null/);
  expect(() => instance.acquire('cb' as never)).toThrow(/acquire\(callback\): callback must be a function/);
  expect(() => instance.release(1 as never)).toThrow(TypeError);
  expect(instance.timeout).toBe(60_000); // a refused change changes nothing
});

test('acquire and release call back (err, result) exactly as documented, errors included', async () => {
  const [first, second] = [lock('callbacks', { timeout: 30_000 }), lock('callbacks', { timeout: 30_000 })];
  const docs = await locks.documents();

  const order: string[] = [];
  const acquiring = called<boolean>((cb) =>
    first.acquire((error, result) => {
      order.push('callback');
      cb(error, result);
    }),
  );
  order.push('returned');
  expect(await acquiring).toEqual([null, true]);
  expect(order).toEqual(['returned', 'callback']); // never called back before acquire() returns
  const held = await docs.findOne({ _id: 'callbacks' });
  expect(first.lockId).toBe(String(held!.token));
  expect(first.timeAquired).toEqual(expect.any(Number));

  const [again] = await called<boolean>((cb) => first.acquire(cb));
  expect(again).toBeInstanceOf(LockStateError);
  expect(again).toMatchObject({ message: 'lock_already_aquired', code: 'already_acquired' });
  expect(await called<boolean>((cb) => second.acquire(cb))).toEqual([null, false]);
  expect(second.lockId).toBeNull();

  const notAcquired = await called<boolean>((cb) => second.release(cb));
  expect(notAcquired).toHaveLength(1);
  expect(notAcquired[0]).toBeInstanceOf(LockStateError);
  expect(notAcquired[0]).toMatchObject({ message: 'releasing_not_aquired_lock', code: 'not_acquired' });

  expect(await called<boolean>((cb) => first.release(cb))).toEqual([null, false]); // not timed out
  expect(first).toMatchObject({ lockId: null, timeAquired: null });
  expect(await docs.findOne({ _id: 'callbacks' })).toMatchObject({ leaseId: null, token: held!.token });
  expect((await called<boolean>((cb) => first.release(cb)))[0]).toMatchObject({
    message: 'releasing_not_aquired_lock',
  });
  expect(await called<boolean>((cb) => second.acquire(cb))).toEqual([null, true]); // free again
  expect(Number(second.lockId)).toBeGreaterThan(held!.token);
  await second.release();
});

test('every method returns a promise when called without a callback', async () => {
  const [a, b] = [lock('promises', { timeout: 30_000 }), lock('promises', { timeout: 30_000 })];
  await expect(a.acquire()).resolves.toBe(true);
  await expect(a.acquire()).rejects.toThrow(new LockStateError('already_acquired', 'lock_already_aquired'));
  await expect(b.acquire()).resolves.toBe(false);
  await expect(a.release()).resolves.toBe(false);
  await expect(a.release()).rejects.toMatchObject({ message: 'releasing_not_aquired_lock' });
  await expect(b.pollAcquire()).resolves.toBe(true);
  await expect(a.forceAcquire()).resolves.toBe(true);
  await expect(b.release()).resolves.toBe(true); // it had been taken meanwhile
  await expect(a.release()).resolves.toBe(false);
});

test('pollAcquire and pollAquire try probeMaxAttempts times, pollInterval apart, then fail as 0.0.1 did', async () => {
  const holder = lock('polled', { timeout: 30_000 });
  await holder.acquire();
  const waiter = lock('polled', { timeout: 600, pollInterval: 150 });
  expect(waiter.probeMaxAttempts).toBe(6);
  const timeouts: unknown[] = [];
  waiter.on('timeout', (event) => timeouts.push(event));

  attempts.delete('polled');
  const started = performance.now();
  const [error, result, ...rest] = await called<boolean>((cb) => waiter.pollAcquire(cb));
  expect(performance.now() - started).toBeGreaterThanOrEqual(5 * 150 - 5);
  expect(error).toBeInstanceOf(LockTimeoutError);
  expect(error).toMatchObject({
    message: 'timeout in pollAquire for lock name polled',
    code: 'timeout',
    lock: 'polled',
    phase: 'acquire',
  });
  expect([result, rest]).toEqual([false, []]);
  expect(attempts.get('polled')).toBe(6);
  expect(timeouts).toEqual([{ name: 'polled', phase: 'acquire' }]);

  waiter.probeMaxAttempts = 2.5; // a fraction is rounded up, as 0.0.1's `attempts >= probeMaxAttempts` did
  attempts.delete('polled');
  await expect(waiter.pollAquire()).rejects.toThrow('timeout in pollAquire for lock name polled');
  expect(attempts.get('polled')).toBe(3);
  expect(waiter.lockId).toBeNull();
  await holder.release();
});

test('pollAcquire makes probeMaxAttempts tries at most, also while a holder with heartbeat wakes it at each expiry', async () => {
  // A lease of the new API with a short ttl, renewed every 100 ms: each try of the poller sees
  // an expiry at most 600 ms away and wakes for it, long before its next pollInterval (2 s).
  const holder = (await locks.manager()).lease('renewed', { ttl: 600, heartbeat: 100 });
  await holder.acquire();
  const poller = lock('renewed', { timeout: 30_000, pollInterval: 2000, probeMaxAttempts: 2 });
  attempts.delete('renewed');
  const started = performance.now();
  const outcome = await Promise.race([
    called<boolean>((cb) => poller.pollAcquire(cb)),
    elapse(4000).then(() => 'still polling after 4 s' as const),
  ]);
  expect(performance.now() - started).toBeLessThan(4000);
  expect(outcome).toEqual([expect.any(LockTimeoutError), false]);
  expect((outcome as unknown[])[0]).toMatchObject({ message: 'timeout in pollAquire for lock name renewed' });
  expect(attempts.get('renewed')).toBe(2);
  expect(holder.held).toBe(true); // renewed all along: the tries ended by their count
  await holder.release();
});

test('pollAcquire gets the lock once its holder releases it, or once the hold times out', async () => {
  const holder = lock('handover', { timeout: 30_000 });
  const waiter = lock('handover', { timeout: 2000, pollInterval: 100 });
  await holder.acquire();
  const polling = called<boolean>((cb) => waiter.pollAquire(cb));
  await waitFor(() => (attempts.get('handover') ?? 0) >= 2, { what: 'a second try' });
  await holder.release();
  expect(await polling).toEqual([null, true]);

  // As 0.0.1's own test had it: a hold that is never released times out, and a poller gets it.
  const next = lock('handover', { timeout: 500, pollInterval: 100 });
  const [polled] = await Promise.all([called<boolean>((cb) => next.pollAcquire(cb)), waiter.release()]);
  expect(polled).toEqual([null, true]);
  const late = lock('handover', { timeout: 500, pollInterval: 100 });
  expect(await called<boolean>((cb) => late.pollAcquire(cb))).toEqual([null, true]);
  await expect(next.release()).resolves.toBe(true); // lockTimeouted
  await late.release();
});

test('probeMaxAttempts: Infinity polls until the lock is free', async () => {
  const holder = lock('forever', { timeout: 30_000 });
  await holder.acquire();
  const waiter = lock('forever', { timeout: 200, pollInterval: 50, probeMaxAttempts: Infinity });
  attempts.delete('forever');
  const polling = waiter.pollAcquire();
  await waitFor(() => (attempts.get('forever') ?? 0) >= 3 * (200 / 50 + 2), { what: 'three times the usual tries' });
  await holder.release();
  await expect(polling).resolves.toBe(true);
  await waiter.release();
});

test('name, timeout, pollInterval, probeMaxAttempts and lockId can be changed between calls', async () => {
  const docs = await locks.documents();
  const changing = lock('before', { timeout: 30_000 });
  changing.timeout = 12_345;
  await changing.acquire();
  const before = await docs.findOne({ _id: 'before' });
  expect(before!.ttl).toBe(12_345);
  expect(before!.expiresAt.getTime() - before!.acquiredAt.getTime()).toBe(12_345);

  changing.name = 'after'; // the held lock is released under its old name; the next one is taken under the new
  await expect(changing.acquire()).rejects.toThrow('lock_already_aquired');
  await changing.release();
  expect((await docs.findOne({ _id: 'before' }))!.leaseId).toBeNull();
  await changing.acquire();
  expect((await docs.findOne({ _id: 'after' }))!.leaseId).toEqual(expect.any(String));

  const other = lock('after');
  other.pollInterval = 40;
  other.probeMaxAttempts = 3;
  attempts.delete('after');
  await expect(other.pollAcquire()).rejects.toBeInstanceOf(LockTimeoutError);
  expect(attempts.get('after')).toBe(3);

  changing.lockId = null; // forget the hold, as 0.0.1 allowed: it stays until its timeout
  await expect(changing.release()).rejects.toThrow('releasing_not_aquired_lock');
  await expect(changing.acquire()).resolves.toBe(false);
  await changing.manager.forceRelease('after');
});

test('a hold lasts timeout ms without renewal, then emits timeout, and release reports it timed out', async () => {
  const docs = await locks.documents();
  const [holder, contender] = [lock('lasting', { timeout: 1500 }), lock('lasting', { timeout: 1500 })];
  const started = performance.now();
  await holder.acquire();
  const first = await docs.findOne({ _id: 'lasting' });
  const timedOut = nextEvent(holder, 'timeout');
  await elapse(750); // half its time
  expect(await contender.acquire()).toBe(false);
  expect((await docs.findOne({ _id: 'lasting' }))!.expiresAt).toEqual(first!.expiresAt); // never renewed

  const [event] = await timedOut;
  // All but the margin (a tenth), less what the watchdog's re-reads may take off: a re-read that
  // waited longer on its way than the acquisition did makes the hold's end look nearer.
  expect(performance.now() - started).toBeGreaterThanOrEqual(1500 - 150 - 100);
  expect(event).toEqual({ name: 'lasting', phase: 'hold', token: first!.token });
  expect(holder.lockId).toBe(String(first!.token)); // still set until release(), as in 0.0.1
  await expect(holder.acquire()).rejects.toThrow('lock_already_aquired');
  // The hold ends locally a tenth of timeout before the server lets it go, and the holder then
  // frees it: a contender racing that free on a busy machine could find it held still.
  await waitFor(async () => !(await holder.manager.inspect('lasting'))!.held, { what: 'the lock free on the server' });
  expect(await called<boolean>((cb) => contender.acquire(cb))).toEqual([null, true]);
  expect(await called<boolean>((cb) => holder.release(cb))).toEqual([null, true]); // lockTimeouted
  expect(holder.lockId).toBeNull();
  await contender.release();
});

test('a hold emits timeout while the server still holds the lock for it, even when the timer fires late', async () => {
  const docs = await locks.documents();
  const holders = Array.from({ length: 4 }, (_, i) => lock(`late-timer-${i}`, { timeout: 2000 }));
  // A busy process: the event loop is held up 25 ms in every 50, so timers fire up to 25 ms late.
  const stall = setInterval(() => {
    const until = performance.now() + 25;
    while (performance.now() < until);
  }, 50);
  try {
    const left = await Promise.all(
      holders.map(async (holder) => {
        const acquired = nextEvent<[AcquiredEvent]>(holder, 'acquired');
        // The server's clock when a command sent by a `timeout` listener lands there.
        const serverNowAtTimeout = new Promise<Date>((resolve, reject) =>
          holder.once('timeout', () => {
            docs
              .findOne({ _id: holder.name }, { projection: { now: '$$NOW' } })
              .then((doc) => resolve((doc as unknown as { now: Date }).now), reject);
          }),
        );
        expect(await holder.acquire()).toBe(true);
        const [{ expiresAt }] = await acquired;
        return expiresAt.getTime() - (await serverNowAtTimeout).getTime();
      }),
    );
    // Still held on the server when the holder heard its hold was over: its view never outlasted it.
    for (const ms of left) expect(ms).toBeGreaterThan(0);
  } finally {
    clearInterval(stall);
  }
  for (const holder of holders) await expect(holder.release()).resolves.toBe(true); // lockTimeouted
});

test('forceAcquire(cb) calls back an error, never (null, false), when its answer comes after the hold ended', async () => {
  const taker = lock('late-answer', { timeout: 200 });
  const acquiredEvents: unknown[] = [];
  taker.on('acquired', (event) => acquiredEvents.push(event));
  const answered = called<true>((cb) => taker.forceAcquire(cb));
  // The process is held up past the hold's end (200 ms): the server's answer is read after it.
  const until = performance.now() + 400;
  while (performance.now() < until);
  const args = await answered;
  expect(args).toHaveLength(1);
  expect(args[0]).toBeInstanceOf(LockError);
  expect(args[0]).toMatchObject({ code: 'connection', message: expect.stringMatching(/deadline/) });
  expect([taker.lockId, acquiredEvents]).toEqual([null, []]);
  // Nothing held: another lock gets it at once, and this one can try again.
  const other = lock('late-answer', { timeout: 30_000 });
  await waitFor(async () => !(await other.manager.inspect('late-answer'))?.held, { what: 'the lock free' });
  await expect(other.acquire()).resolves.toBe(true);
  await expect(taker.acquire()).resolves.toBe(false);
  await other.release();
});

test('a Lock emits acquired and released, and lost (taken) when another takes it with forceAcquire(cb)', async () => {
  const [victim, taker] = [lock('seized', { timeout: 1500 }), lock('seized', { timeout: 30_000 })];
  const seen: string[] = [];
  victim.on('acquired', ({ token }) => seen.push(`acquired ${token}`));
  victim.on('released', ({ token }) => seen.push(`released ${token}`));
  victim.on('lost', (error) => seen.push(`lost ${error.token} ${error.reason}`));
  victim.on('timeout', () => seen.push('timeout'));

  await victim.acquire();
  const first = victim.lockId;
  await victim.release();
  await victim.acquire();
  const second = victim.lockId;
  const lost = nextEvent(victim, 'lost');
  expect(await called<true>((cb) => taker.forceAcquire(cb))).toEqual([null, true]);
  await lost; // the watchdog re-reads a lock without heartbeat too, every timeout / 3
  expect(seen).toEqual([`acquired ${first}`, `released ${first}`, `acquired ${second}`, `lost ${second} taken`]);
  expect(Number(taker.lockId)).toBeGreaterThan(Number(second));
  expect((await called<true>((cb) => taker.forceAcquire(cb)))[0]).toMatchObject({ message: 'lock_already_aquired' });
  expect(await called<boolean>((cb) => victim.release(cb))).toEqual([null, true]);
  await taker.release();
});

test('Locks use the default mongoose connection unless given one, and share a manager per connection and options', async () => {
  await mongoose.connect(testUri(), { dbName: locks.db.name });
  const made: CompatLock[] = [];
  const onDefault = (name: string, options?: CompatLockOptions) => made[made.push(Lock(name, options)) - 1]!;
  try {
    const plain = onDefault('default-connection');
    expect(plain.manager).toBe(onDefault('another-name', { timeout: 5 }).manager);
    expect(plain.manager).not.toBe(onDefault('x', { collection: 'elsewhere' }).manager);
    expect(plain.manager).not.toBe(lock('x').manager);
    expect(plain.manager.collectionName).toBe('locks');
    await expect(plain.acquire()).resolves.toBe(true);
    const doc = await (await locks.documents()).findOne({ _id: 'default-connection' });
    expect(String(doc!.token)).toBe(plain.lockId);
    await expect(plain.release()).resolves.toBe(false);
    await plain.manager.close();
    expect(onDefault('default-connection').manager).not.toBe(plain.manager); // a closed manager is replaced
  } finally {
    await Promise.all(made.map((m) => m.manager.close()));
    await mongoose.connection.close(); // not mongoose.disconnect(): it would close every connection
  }
});

test('collection, cleanupAfter and history reach the manager from the Lock options', async () => {
  const legacy = lock('job', { collection: 'legacy_locks', history: true, cleanupAfter: '1h' });
  await legacy.manager.ready;
  await legacy.acquire();
  await legacy.release();
  expect(await (await locks.documents('legacy_locks')).findOne({ _id: 'job' })).toMatchObject({ leaseId: null });
  const indexes = await (await locks.documents('legacy_locks')).listIndexes().toArray();
  expect(indexes).toContainEqual(expect.objectContaining({ key: { freedAt: 1 }, expireAfterSeconds: 3600 }));
  expect((await legacy.manager.history('job')).map((r) => r.outcome)).toEqual(['released']);
});
