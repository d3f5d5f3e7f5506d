// The watchdog against the real engine: renewal past the ttl, loss detection, no heartbeat.
import { LeaseLostError, LockTimeoutError } from '../../lib/index';
import { elapse, lockFixture } from '../helpers/locks';
import { nextEvent } from '../helpers/wait';

const locks = lockFixture();

test('the heartbeat keeps a lease alive well past its ttl, and contenders stay out', async () => {
  const [holder, contender] = [await locks.manager({ ttl: 1500, heartbeat: 250 }), await locks.manager()];
  const lease = await holder.acquire('kept');
  const lost: unknown[] = [];
  lease.on('lost', (e) => lost.push(e));
  const firstExpiry = lease.expiresAt.getTime();
  await elapse(4500); // three ttls
  expect(lost).toEqual([]);
  expect(lease.held).toBe(true);
  expect(lease.signal.aborted).toBe(false);
  expect(await contender.tryAcquire('kept')).toBeNull();
  const doc = await (await locks.documents()).findOne({ _id: 'kept' });
  expect(doc!.expiresAt.getTime()).toBeGreaterThan(firstExpiry + 2500);
  expect(lease.expiresAt.getTime()).toBeGreaterThan(firstExpiry + 2500);
  await lease.release();
});

test.each([
  ['taken', { $set: { leaseId: 'intruder', owner: 'intruder' } }],
  ['deleted', null],
] as const)(
  'a lock %s behind the holder is detected: lost, signal aborted, release() resolves false',
  async (reason, update) => {
    const manager = await locks.manager({ ttl: 3000, heartbeat: 200 });
    const docs = await locks.documents();
    const name = `behind-${reason}`;
    const lease = await manager.acquire(name);
    const token = lease.token;
    const signal = lease.signal;
    const managerLost = nextEvent(manager, 'lost');
    const lost = nextEvent<[LeaseLostError]>(lease, 'lost');
    if (update) await docs.updateOne({ _id: name }, update);
    else await docs.deleteOne({ _id: name });

    const [error] = await lost;
    expect(error).toBeInstanceOf(LeaseLostError);
    expect(error).toMatchObject({ name: 'LeaseLostError', lock: name, token, reason, code: 'lost' });
    expect((await managerLost)[0]).toBe(lease);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe(error);
    expect(lease.held).toBe(false);
    expect(lease.token).toBe(token); // the token of the hold that ended stays readable
    await expect(lease.release()).resolves.toBe(false);
    await expect(lease.release()).rejects.toMatchObject({ code: 'not_acquired' });
    if (update) expect((await docs.findOne({ _id: name }))!.leaseId).toBe('intruder'); // the intruder keeps it
  },
);

test('a renewal never revives a lease that expired on the server clock', async () => {
  const manager = await locks.manager({ ttl: 3000, heartbeat: 200 });
  const docs = await locks.documents();
  const lease = await manager.acquire('no-revival');
  const lost = nextEvent<[LeaseLostError]>(lease, 'lost');
  const past = new Date(Date.now() - 60_000);
  await docs.updateOne({ _id: 'no-revival' }, { $set: { expiresAt: past } }); // as if a pause outlasted the ttl
  const [error] = await lost;
  expect(error.reason).toBe('expired');
  const doc = await docs.findOne({ _id: 'no-revival' });
  expect(doc!.expiresAt.getTime()).toBeLessThanOrEqual(Date.now()); // still expired: not extended
});

test('without heartbeat a lease lasts its ttl, then emits timeout (phase hold) and release() resolves false', async () => {
  const [manager, other] = [await locks.manager({ heartbeat: false, ttl: 1200 }), await locks.manager()];
  const lease = await manager.acquire('fixed');
  const token = lease.token;
  const events: string[] = [];
  lease.on('lost', () => events.push('lost'));
  lease.on('released', () => events.push('released'));
  const [timeout] = await nextEvent(lease, 'timeout', 10_000);
  expect(timeout).toEqual({ name: 'fixed', phase: 'hold', token });
  expect(lease.held).toBe(false);
  expect(lease.signal.reason).toBeInstanceOf(LockTimeoutError);
  expect(lease.signal.reason).toMatchObject({ phase: 'hold', code: 'timeout' });
  await expect(lease.release()).resolves.toBe(false);
  expect(events).toEqual([]);
  const next = await other.acquire('fixed', { wait: '10s' });
  expect(next.token).toBeGreaterThan(token);
  await next.release();
});

test('one watchdog loop renews and re-reads many leases with one command each per tick', async () => {
  const connection = await locks.db.connect({ monitorCommands: true });
  // A ttl far longer than the heartbeat: the subject is how renewals are batched, and a loaded
  // machine (CI beside a fuzz run) must not make a lease lapse meanwhile.
  const manager = await locks.manager({ connection, ttl: 8000, heartbeat: 300 });
  const leases = await Promise.all(Array.from({ length: 200 }, (_, i) => manager.acquire(`many-${i}`)));
  const commands: { name: string; size: number }[] = [];
  connection.getClient().on('commandStarted', (event) => {
    const { command } = event as unknown as { command: Record<string, unknown> };
    // The watchdog's commands only: on the lock collection, by a list of names (not the wake-up
    // signals' cursor, or a set-up sweep).
    type ByNames = { _id?: { $in?: string[] } } | undefined;
    if (command[event.commandName] !== 'locks') return;
    if (event.commandName === 'update') {
      const updates = command.updates as { q: ByNames }[];
      const names = updates[0]?.q?._id?.$in;
      if (names) commands.push({ name: 'update', size: updates.length === 1 ? names.length : -updates.length });
    } else if (event.commandName === 'find') {
      const names = (command.filter as ByNames)?._id?.$in;
      if (names) commands.push({ name: 'find', size: names.length });
    }
  });
  await elapse(6500); // about 20 ticks
  expect(leases.every((l) => l.held)).toBe(true);
  // A tick that began while acquisitions were still landing may send its commands after the
  // listener came, its renewal included: count from the second renewal seen, whose tick began
  // after the first was sent, and so with all 200 held.
  const renewalsSeen = commands.flatMap((c, i) => (c.name === 'update' ? [i] : []));
  const ticks = commands.slice(renewalsSeen[1]);
  const renewals = ticks.filter((c) => c.name === 'update');
  const reads = ticks.filter((c) => c.name === 'find');
  expect(renewals.length).toBeGreaterThanOrEqual(10); // about one tick per 300 ms
  expect(renewals.every((c) => c.size === 200)).toBe(true); // every lease renewed by one command
  expect(reads.every((c) => c.size === 200)).toBe(true); // and read back by one command
  expect(Math.abs(reads.length - renewals.length)).toBeLessThanOrEqual(1);
  const docs = await locks.documents();
  expect(await docs.countDocuments({ _id: { $regex: /^many-/ }, expiresAt: { $gt: new Date() } })).toBe(200);
  await Promise.all(leases.map((l) => l.release()));
});
