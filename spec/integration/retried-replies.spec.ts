// Replies as a retried findAndModify gets them on a replica set: the stored document, without the
// command's projection (SERVER-31242). Here the projection is stripped from every findAndModify on
// its way to the standalone engine, which then answers exactly as such a retry would.
import { mongo } from 'mongoose';
import { LockStore } from '../../lib/store';
import { lockFixture } from '../helpers/locks';
import { withoutProjections } from '../helpers/retries';
import { waitFor } from '../helpers/wait';

const locks = lockFixture({ ttl: '10s', history: true });

test('an acquisition answered with the stored document is held, with the stored token', async () => {
  const manager = await locks.manager();
  const lease = await withoutProjections(() => manager.acquire('retried-acquire'));
  const doc = await (await locks.documents()).findOne({ _id: 'retried-acquire' });
  expect(lease.held).toBe(true);
  expect(doc).toMatchObject({ token: lease.token, owner: manager.owner });
  // Its deadline rests on a whole ttl from the grant: it is still held well after a heartbeat.
  expect(lease.expiresAt.getTime()).toBe(doc!.expiresAt.getTime());
  await lease.release();
});

test('a busy answer without its projection is busy, not ours', async () => {
  const holder = await (await locks.manager()).acquire('retried-busy');
  const manager = await locks.manager();
  await expect(withoutProjections(() => manager.tryAcquire('retried-busy'))).resolves.toBeNull();
  await holder.release();
});

test('a release answered with the stored document is a release (no spurious loss), and history has its end', async () => {
  const manager = await locks.manager();
  const lease = await manager.acquire('retried-release');
  const events: string[] = [];
  lease.on('released', () => events.push('released'));
  lease.on('lost', (error) => events.push(`lost:${error.reason}`));
  await expect(withoutProjections(() => lease.release())).resolves.toBe(true);
  expect(events).toEqual(['released']);
  const records = await waitFor(async () => {
    const found = await manager.history('retried-release');
    return found.length > 0 ? found : undefined;
  });
  expect(records[0]).toMatchObject({ token: lease.token, outcome: 'released', endedAt: expect.any(Date) });
});

test('every lock command carries a server-side bound tied to commandTimeout', async () => {
  const connection = await locks.db.connect({ monitorCommands: true });
  const bounds: { command: string; maxTimeMS?: number; wtimeout?: number }[] = [];
  connection.getClient().on('commandStarted', (event) => {
    if (['findAndModify', 'find', 'update'].includes(event.commandName) && event.command[event.commandName] === 'locks')
      bounds.push({
        command: event.commandName,
        maxTimeMS: event.command.maxTimeMS as number | undefined,
        wtimeout: (event.command.writeConcern as { wtimeout?: number } | undefined)?.wtimeout,
      });
  });
  const manager = await locks.manager({ connection, commandTimeout: 4000, heartbeat: 300, ttl: 3000 });
  const lease = await manager.acquire('bounded');
  await waitFor(() => bounds.some((b) => b.command === 'update'), { what: 'a renewal' });
  await lease.release();
  const acquire = bounds.find((b) => b.command === 'findAndModify')!;
  expect(acquire).toEqual({ command: 'findAndModify', maxTimeMS: 4000, wtimeout: 4000 });
  for (const b of bounds) expect(b.maxTimeMS).toEqual(expect.any(Number));
});

test('a deployment that refuses majority reads is read locally from then on, said once, and deadlines rest on renewals', async () => {
  const errors: unknown[] = [];
  const connection = await locks.db.connect();
  const store = new LockStore(connection, 'locks', 5000, { report: (error) => errors.push(error) });
  await store.acquire({ name: 'local-reads', leaseId: 'l1', owner: 'me', ttl: 5000 });
  // The first majority read is refused as a MongoDB 4.4 PSA set with majority reads off refuses it.
  // eslint-disable-next-line @typescript-eslint/unbound-method -- called with the collection as `this`
  const original = mongo.Collection.prototype.find;
  let refused = 0;
  const spy = jest.spyOn(mongo.Collection.prototype, 'find').mockImplementation(function (
    this: mongo.Collection,
    filter: unknown,
    options?: { readConcern?: unknown },
  ) {
    if (this.collectionName === 'locks' && options?.readConcern === undefined && refused++ === 0) {
      const error = Object.assign(new Error('Majority read concern requested, but it is not supported'), {
        name: 'MongoServerError',
        code: 148,
      });
      return { toArray: () => Promise.reject(error) } as never;
    }
    return (original as (...args: unknown[]) => unknown).call(this, filter, options) as never;
  });
  try {
    const first = await store.read(['local-reads'], 5000);
    const second = await store.read(['local-reads'], 5000);
    expect(first.get('local-reads')).toMatchObject({ leaseId: 'l1', confirmed: false });
    expect(second.get('local-reads')).toMatchObject({ leaseId: 'l1', confirmed: false });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({
      code: 'database',
      message: expect.stringMatching(/majority reads are turned off/),
    });
  } finally {
    spy.mockRestore();
  }
  await store.release('local-reads', 'l1');
});
