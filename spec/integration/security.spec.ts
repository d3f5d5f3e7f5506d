// Who can do what to a lock. A lease id is unguessable, private, and the only key that renews or
// releases a hold; the owner string decides nothing. Someone who can write to the lock collection
// can break any lock (the README says so), but a tampered document ends a hold or leaves it: it
// never crashes or stalls the holder.
import type { LeaseLostError } from '../../lib/index';
import { lockFixture } from '../helpers/locks';
import { nextEvent, waitFor } from '../helpers/wait';

const locks = lockFixture({ collection: 'secure' });

test('a lease id is 144 random bits, new for every hold, and never leaves the library', async () => {
  const [a, b] = [await locks.manager({ owner: 'a' }), await locks.manager({ owner: 'b' })];
  const docs = await locks.documents('secure');
  const ids = new Set<string>();
  const seen: unknown[] = []; // everything the library hands out
  for (const m of [a, b]) for (const event of ['acquired', 'released'] as const) m.on(event, (_, p) => seen.push(p));
  for (let i = 0; i < 100; i++) {
    const lease = await (i % 2 ? a : b).acquire(`id-${i % 5}`);
    const { leaseId } = (await docs.findOne({ _id: `id-${i % 5}` }))!;
    expect(leaseId).toMatch(/^[A-Za-z0-9_-]{24}$/); // base64url of 18 random bytes
    ids.add(leaseId!);
    seen.push(lease, lease.token, lease.expiresAt, await a.inspect(`id-${i % 5}`), await b.list());
    await lease.release();
  }
  expect(ids.size).toBe(100);
  const exposed = JSON.stringify(seen);
  for (const id of ids) expect(exposed).not.toContain(id);
});

test('only the lease id renews or releases a hold: the owner string decides nothing', async () => {
  // Two managers that claim the same owner, as two processes with the same host:pid could.
  const [holder, twin] = [await locks.manager({ owner: 'same' }), await locks.manager({ owner: 'same' })];
  const lease = await holder.acquire('owned', { ttl: 1500, heartbeat: 200 });
  expect(await twin.tryAcquire('owned')).toBeNull();
  await expect(twin.lease('owned').release()).rejects.toMatchObject({ code: 'not_acquired' });

  // Changing the owner in the document changes nothing for the holder: renewals go on.
  const docs = await locks.documents('secure');
  await docs.updateOne({ _id: 'owned' }, { $set: { owner: 'mallory' } });
  const expiry = lease.expiresAt.getTime();
  await waitFor(() => lease.expiresAt.getTime() > expiry + 500, { what: 'renewals after the owner changed' });
  expect(lease.held).toBe(true);
  expect(await twin.tryAcquire('owned')).toBeNull();
  await expect(lease.release()).resolves.toBe(true);
});

test.each([
  ['its expiry removed', { $unset: { expiresAt: 1 as const } }],
  ['its expiry replaced by a string', { $set: { expiresAt: 'never' as unknown as Date } }],
])(
  'a held lock whose document was tampered with (%s): the holder loses it, reports errors, never crashes or stalls',
  async (_, update) => {
    // Each tick's commands are bounded by the heartbeat: long enough for a busy machine, so that
    // the only errors are the server's refusals.
    const manager = await locks.manager({ ttl: 4000, heartbeat: 1000 });
    const errors: string[] = [];
    manager.on('error', (error) => errors.push((error as { code?: string }).code ?? error.name));
    const name = `tampered-${Object.keys(update)[0]}`;
    const lease = await manager.acquire(name);
    const lost = nextEvent<[LeaseLostError]>(lease, 'lost', 20_000);
    await (await locks.documents('secure')).updateOne({ _id: name }, update);
    const [error] = await lost;
    // Its watchdog finds it expired, or a manager's set-up sweep (which takes a hold with no expiry
    // for one long expired) has freed it first: lost either way, never held on.
    expect(error).toMatchObject({ code: 'lost' });
    expect(['expired', 'freed']).toContain(error.reason);
    expect(lease.signal.aborted).toBe(true);
    expect(errors.every((code) => code === 'database')).toBe(true); // reads the server refused, if any
    const next = await manager.acquire(name, { wait: '5s' });
    expect(next.token).toBeGreaterThan(error.token);
    await next.release();
  },
  30_000,
);
