// The promises of the API at its edges, as a careless or adversarial caller meets them: explicit
// `undefined` options, work that outlives its hold, a blocked event loop, a close in the middle of
// things, owners that look like MongoDB expressions, and the error contract.
import { setMaxListeners } from 'node:events';
import { LeaseLostError, LockError, type Lease } from '../../lib/index';
import { mongo } from 'mongoose';
import { LockStore } from '../../lib/store';
import { lockFixture, recorder } from '../helpers/locks';
import { nextEvent, waitFor } from '../helpers/wait';

const locks = lockFixture({ ttl: '20s' });

/** Resolves once a waiter has marked `name` contended: it found the lock busy and is waiting. */
async function waiting(name: string): Promise<void> {
  const docs = await locks.documents();
  await waitFor(async () => (await docs.findOne({ _id: name }))?.contended === true, { what: `a waiter on ${name}` });
}

/** Blocks the event loop for `ms`, as a long synchronous task or a GC pause would. */
function blockEventLoop(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy: no timer, no I/O callback runs meanwhile
  }
}

describe('an option whose value is undefined is the same as an absent one', () => {
  test('withLock({ wait: undefined }) waits for a busy lock and never runs fn without it', async () => {
    const holder = await (await locks.manager()).acquire('undef-with');
    const manager = await locks.manager();
    const config: { wait?: number } = {};
    const seen: boolean[] = [];
    const done = manager.withLock('undef-with', (lease) => seen.push(lease.held), { wait: config.wait });
    // It waits (the default is to wait forever) instead of running fn at once without the lock.
    await waiting('undef-with');
    expect(seen).toEqual([]);
    await holder.release();
    await expect(done).resolves.toBe(1);
    expect(seen).toEqual([true]);
  });

  test('acquire({ wait: undefined, ttl: undefined }) resolves only with a held lease', async () => {
    const holder = await (await locks.manager()).acquire('undef-acquire');
    const manager = await locks.manager();
    const pending = manager.acquire('undef-acquire', { wait: undefined, ttl: undefined, heartbeat: undefined });
    let settled = false;
    void pending.then(() => (settled = true));
    await waiting('undef-acquire');
    expect(settled).toBe(false);
    await holder.release();
    const lease = await pending;
    expect(lease.held).toBe(true);
    expect(lease.ttl).toBe(20_000);
    await lease.release();
  });
});

describe('withLock resolves only if the work was exclusive to the end', () => {
  test('a close while fn runs: the signal aborts with code closed and withLock rejects with it', async () => {
    const manager = await locks.manager();
    let signal: AbortSignal | undefined;
    let running!: () => void;
    const started = new Promise<void>((resolve) => (running = resolve));
    const done = manager.withLock('close-during', async (lease) => {
      signal = lease.signal;
      running();
      await new Promise((resolve) => lease.signal.addEventListener('abort', resolve, { once: true }));
      return 'finished anyway';
    });
    await started;
    await manager.close();
    await expect(done).rejects.toMatchObject({ name: 'LockStateError', code: 'closed' });
    expect(signal!.reason).toMatchObject({ code: 'closed' });
    const doc = await (await locks.documents()).findOne({ _id: 'close-during' });
    expect(doc!.leaseId).toBeNull();
  });

  test('the final release finds the lock taken by another holder: withLock rejects with a LeaseLostError', async () => {
    const manager = await locks.manager();
    const intruder = await locks.manager();
    const events = recorder();
    const done = manager.withLock('taken-behind', async (lease) => {
      lease.on('lost', (error) => events.push(`lost:${error.reason}`));
      // Another process forces the lock free and takes it, between two watchdog ticks.
      await intruder.forceRelease('taken-behind');
      await intruder.acquire('taken-behind');
      return 'done';
    });
    const error = await done.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LeaseLostError);
    expect(error).toMatchObject({ name: 'LeaseLostError', code: 'lost', lock: 'taken-behind', reason: 'taken' });
    expect(events.seen).toEqual(['lost:taken']);
  });
});

describe('after the event loop was blocked past the deadline, the first look says the hold is over', () => {
  test('held, signal.aborted and throwIfAborted() end the hold synchronously (lost, reason expired)', async () => {
    const manager = await locks.manager();
    const lease = await manager.acquire('blocked', { ttl: 1000, heartbeat: 300 });
    const { signal } = lease;
    const lost: string[] = [];
    lease.on('lost', (error) => lost.push(error.reason));
    blockEventLoop(1200);
    // No timer has run since: the answer comes from the local deadline alone.
    expect(signal.aborted).toBe(true);
    expect(lost).toEqual(['expired']);
    expect(lease.held).toBe(false);
    expect(() => signal.throwIfAborted()).toThrow(LeaseLostError);
    expect(signal.reason).toMatchObject({ reason: 'expired', token: lease.token });
  });

  test('held is false at the first look, before signal is read', async () => {
    const manager = await locks.manager();
    const lease = await manager.acquire('blocked-held', { ttl: 1000, heartbeat: 300 });
    blockEventLoop(1200);
    expect(lease.held).toBe(false);
    expect(lease.signal.reason).toMatchObject({ name: 'LeaseLostError', reason: 'expired' });
    await expect(lease.release()).resolves.toBe(false);
  });

  test('election.isLeader and leader turn false at the first look, with revoked (lost)', async () => {
    const manager = await locks.manager();
    const election = manager.elect('blocked-election', { ttl: 1000, heartbeat: 300 });
    const revoked: string[] = [];
    election.on('revoked', (reason) => revoked.push(reason));
    await nextEvent(election, 'elected');
    expect(election.isLeader).toBe(true);
    blockEventLoop(1200);
    expect(election.isLeader).toBe(false);
    expect(election.leader).toBeUndefined();
    expect(revoked).toEqual(['lost']);
    await election.close();
  });
});

describe('close() and aborts give back what acquisitions in flight got', () => {
  test('a close while an acquisition is in flight leaves the lock free, not held by nobody', async () => {
    for (let i = 0; i < 5; i++) {
      const manager = await locks.manager();
      const attempt = manager.acquire(`in-flight-${i}`).catch((error: unknown) => error);
      await manager.close(); // the attempt is on the wire now: it lands after close() began
      expect(await attempt).toMatchObject({ code: 'closed' });
      const doc = await (await locks.documents()).findOne({ _id: `in-flight-${i}` });
      if (doc) expect(doc.leaseId).toBeNull();
    }
  });

  test('an acquire whose signal aborts mid-attempt gives back what it got before it rejects', async () => {
    const manager = await locks.manager();
    for (let i = 0; i < 5; i++) {
      const controller = new AbortController();
      const attempt = manager.acquire(`aborted-${i}`, { signal: controller.signal });
      controller.abort(new Error('gave up'));
      await expect(attempt).rejects.toThrow('gave up');
      const doc = await (await locks.documents()).findOne({ _id: `aborted-${i}` });
      if (doc) expect(doc.leaseId).toBeNull();
    }
  });

  test('many concurrent waits in one manager print no MaxListenersExceededWarning', async () => {
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.name);
    process.on('warning', onWarning);
    try {
      const holder = await (await locks.manager()).acquire('crowded');
      const manager = await locks.manager();
      const shared = new AbortController();
      setMaxListeners(0, shared.signal); // the caller's own signal is the caller's business
      const waits = Array.from({ length: 15 }, () => manager.acquire('crowded', { signal: shared.signal }));
      await waiting('crowded');
      shared.abort(new Error('enough'));
      await Promise.allSettled(waits);
      await holder.release();
      expect(warnings).not.toContain('MaxListenersExceededWarning');
    } finally {
      process.off('warning', onWarning);
    }
  });
});

describe('caller values enter MongoDB as literals', () => {
  test.each(['$$NOW', '$token', '$$USER@build-1', '$leaseId', '$$REMOVE'])(
    'the owner %j is stored and reported as written',
    async (owner) => {
      const name = `owner-${owner.replace(/\W/g, '')}`;
      const first = await locks.manager({ owner: 'first' });
      await (await first.acquire(name)).release();
      const manager = await locks.manager({ owner });
      const lease = await manager.acquire(name);
      expect(await manager.inspect(name)).toMatchObject({ owner, held: true, token: lease.token });
      const doc = await (await locks.documents()).findOne({ _id: name });
      expect(doc!.owner).toBe(owner);
      expect(typeof doc!.leaseId).toBe('string');
      await lease.release();
    },
  );
});

describe('contracts', () => {
  test('tryAcquire is one attempt: wait and strategy are refused with a TypeError naming them', async () => {
    const manager = await locks.manager();
    expect(() => manager.tryAcquire('x', { wait: Infinity } as never)).toThrow(/tryAcquire\(\) options.wait/);
    expect(() => manager.tryAcquire('x', { strategy: {} } as never)).toThrow(TypeError);
    expect(() => manager.tryAcquire('x', { wait: undefined } as never)).not.toThrow();
  });

  test('a lock name with a lone surrogate is refused before anything is sent', async () => {
    const manager = await locks.manager();
    expect(() => manager.lease('report-\uD83D')).toThrow(TypeError);
    expect(() => manager.acquire('\uDC00')).toThrow(/well-formed/);
  });

  test('forceAcquire rejects (code connection) when its answer comes after the deadline, and gives the hold back', async () => {
    const manager = await locks.manager();
    // A ttl shorter than any round trip: the grant is always too late to use.
    const error = await manager
      .lease('too-late', { ttl: 1, heartbeat: false })
      .forceAcquire()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LockError);
    expect(error).toMatchObject({ code: 'connection', message: expect.stringMatching(/too short/) });
  });

  test('a wait whose grants always come too late keeps to its poll instead of spinning', async () => {
    const connectionEvents: string[] = [];
    const connection = await locks.db.connect({ monitorCommands: true });
    connection.getClient().on('commandStarted', (event) => {
      if (event.commandName === 'findAndModify' && event.command.upsert === true)
        connectionEvents.push(event.commandName);
    });
    const manager = await locks.manager({ connection, poll: 250 });
    const attempt = manager.acquire('spin', { ttl: 1, heartbeat: false, wait: 1000 });
    await expect(attempt).rejects.toMatchObject({ code: 'timeout' });
    // One attempt, then one per poll (250 ms) for 1 s: about 5, never hundreds.
    expect(connectionEvents.length).toBeLessThanOrEqual(8);
  });

  test('leading(fn) registered inside an elected listener runs once in that term', async () => {
    const manager = await locks.manager();
    const election = manager.elect('leading-once', { ttl: 3000, heartbeat: 500 });
    let runs = 0;
    election.once('elected', () => {
      election.leading(() => void runs++);
    });
    await nextEvent(election, 'elected');
    await election.close(); // resolves once every run of a leading() function has settled
    expect(runs).toBe(1);
  });

  test('a lock freed by forceRelease is reported to its holder as lost with reason freed', async () => {
    const manager = await locks.manager();
    const operator = await locks.manager();
    const lease = await manager.acquire('freed-behind', { ttl: 3000, heartbeat: 300 });
    const lost = nextEvent<[LeaseLostError]>(lease, 'lost', 5000);
    await expect(operator.forceRelease('freed-behind')).resolves.toBe(true);
    const [error] = await lost;
    expect(error).toMatchObject({ reason: 'freed', lock: 'freed-behind', message: expect.stringMatching(/freed/) });
  });

  test('a release that finds the lock freed by someone else says freed, not taken', async () => {
    const manager = await locks.manager({ heartbeat: false });
    const operator = await locks.manager();
    const lease = await manager.acquire('freed-release');
    const reasons: string[] = [];
    lease.on('lost', (error) => reasons.push(error.reason));
    await operator.forceRelease('freed-release');
    await expect(lease.release()).resolves.toBe(false);
    expect(reasons).toEqual(['freed']);
  });

  test('LeaseLostError is named LeaseLostError, carries the lock as error.lock, and accepts a cause', () => {
    const cause = new Error('root');
    const error = new LeaseLostError('job:22', 7, 'taken', 'lost it', { cause });
    expect(error.name).toBe('LeaseLostError');
    expect(String(error)).toMatch(/^LeaseLostError: lost it/);
    expect(error).toMatchObject({ lock: 'job:22', token: 7, reason: 'taken', code: 'lost', cause });
  });

  test('acquire({ wait: 0 }) on a busy lock does not mark it contended', async () => {
    const holder = await (await locks.manager()).acquire('try-once');
    const manager = await locks.manager();
    await expect(manager.acquire('try-once', { wait: 0 })).rejects.toMatchObject({ code: 'timeout' });
    expect((await (await locks.documents()).findOne({ _id: 'try-once' }))!.contended).toBeUndefined();
    const waiting = manager.acquire('try-once', { wait: 5000 });
    await waitFor(async () => (await (await locks.documents()).findOne({ _id: 'try-once' }))!.contended === true);
    await holder.release();
    await (await waiting).release();
  });

  test('a wake-up set-up failure is a LockError with a code on the error event', async () => {
    const manager = await locks.manager({ collection: 'plainsig' });
    const connection = await locks.db.connect();
    await connection.db!.createCollection('plainsig.signals'); // not capped: wake-ups cannot work
    const errors: Error[] = [];
    manager.on('error', (error) => errors.push(error));
    const holder = await (await locks.manager({ collection: 'plainsig' })).acquire('sig');
    const waiting = manager.acquire('sig', { wait: 3000 }).catch(() => undefined);
    await waitFor(() => errors.length > 0);
    expect(errors[0]).toBeInstanceOf(LockError);
    expect(errors[0]).toMatchObject({ code: 'database', message: expect.stringMatching(/not a capped collection/) });
    await holder.release();
    await (await waiting)?.release();
  });
});

describe('replica-set safety, on the code path a standalone server can show', () => {
  test('lock commands read from the primary whatever the connection prefers', async () => {
    const connection = await locks.db.connect({ readPreference: 'secondaryPreferred' });
    const store = new LockStore(connection, 'locks', 5000);
    const collection = await store.collection('test');
    expect(collection.readPreference?.mode).toBe('primary');
    const manager = await locks.manager({ connection });
    const lease = await manager.acquire('rp');
    expect((await manager.inspect('rp'))!.held).toBe(true);
    await lease.release();
  });

  test('an attempt retried with the same lease id finds its own hold: same token, not busy', async () => {
    const connection = await locks.db.connect();
    const store = new LockStore(connection, 'locks', 5000);
    const request = { name: 'retried', leaseId: 'lease-a', owner: 'me', ttl: 5000 };
    const first = await store.acquire(request);
    const retry = await store.acquire(request); // as if the first answer had been lost
    expect(first.acquired).toBe(true);
    expect(retry).toMatchObject({ acquired: true, token: first.token });
    const other = await store.acquire({ ...request, leaseId: 'lease-b' });
    expect(other.acquired).toBe(false);
    await store.release('retried', 'lease-a');
  });

  test('history is recorded off the acquisition path: a slow history write does not delay a takeover', async () => {
    const connection = await locks.db.connect();
    const store = new LockStore(connection, 'locks', 8000, { history: 'slow.history' });
    await store.acquire({ name: 'takeover', leaseId: 'old', owner: 'crashed', ttl: 1 });
    await waitFor(async () => !(await store.inspect('takeover'))!.held);
    // The history collection stops answering: its inserts hang (until the command timeout).
    const insertMany = jest
      .spyOn(mongo.Collection.prototype, 'insertMany')
      .mockImplementation(() => new Promise<never>(() => {}));
    try {
      const started = performance.now();
      const result = await store.acquire({ name: 'takeover', leaseId: 'new', owner: 'me', ttl: 5000 });
      expect(result).toMatchObject({ acquired: true, took: { owner: 'crashed', outcome: 'expired' } });
      expect(performance.now() - started).toBeLessThan(4000); // not held up until the 8 s timeout
      await waitFor(() => insertMany.mock.calls.length > 0); // the takeover is recorded, in the background
    } finally {
      insertMany.mockRestore();
    }
    await store.release('takeover', 'new');
  });
});

// A stand-in use of the type: withLock's fn sees a token and an expiry that are always defined.
export function fencedWrite(lease: Lease & { readonly token: number }): number {
  return lease.token + 1;
}
