// Replica-set behaviour, run by `npm run test:replset` against the set MONGODB_URI names (never by
// `npm test`: its engine is standalone). The fail-point test needs the members started with
// `--setParameter enableTestCommands=1`; it fails, saying so, where that is off.
import type { Connection } from 'mongoose';
import { LockManager } from '../../lib/index';
import { lockFixture } from '../helpers/locks';
import { waitFor } from '../helpers/wait';

const locks = lockFixture({ ttl: '6s', heartbeat: '1s' });

async function admin(connection: Connection, command: Record<string, unknown>) {
  return connection.getClient().db('admin').command(command);
}

test('a step-down while a lease is held and a wait is pending: never two holders, the loss comes first', async () => {
  const holder = await locks.manager({ owner: 'holder' });
  const waiter = await locks.manager({ owner: 'waiter' });
  for (const m of [holder, waiter]) m.on('error', () => {}); // the election's errors are expected
  const events: { what: string; at: number }[] = [];
  const lease = await holder.acquire('failover');
  lease.on('lost', () => events.push({ what: 'lost', at: Date.now() }));
  const waiting = waiter.acquire('failover', { wait: '2m' }).then((l) => {
    events.push({ what: 'waiter acquired', at: Date.now() });
    return l;
  });
  const connection = await locks.db.connect();
  // The step-down closes connections: its own reply may be lost.
  await admin(connection, { replSetStepDown: 10, secondaryCatchUpPeriodSecs: 5 }).catch(() => {});
  // Whoever holds the lock after the election, never both at once: the holder keeps it (its
  // renewals resume on the new primary) or loses it before the waiter gets it.
  await waitFor(() => events.length > 0 || !lease.held, { timeout: 60_000, what: 'the election to settle' });
  if (lease.held) {
    await lease.release();
  }
  const acquired = await waiting;
  const lost = events.find((e) => e.what === 'lost');
  const granted = events.find((e) => e.what === 'waiter acquired')!;
  if (lost) expect(lost.at).toBeLessThanOrEqual(granted.at);
  expect((await waiter.inspect('failover'))!.token).toBe(acquired.token);
  await acquired.release();
});

test('an acquisition whose reply is lost after it was applied is held once, by the same lease id', async () => {
  const connection = await locks.db.connect();
  const manager = await locks.manager({ connection });
  // The server applies findAndModify, then answers with a retryable write-concern error: the
  // driver retries, and the retry is answered from the stored document (SERVER-31242).
  const failPoint = {
    configureFailPoint: 'failCommand',
    mode: { times: 1 },
    data: { failCommands: ['findAndModify'], writeConcernError: { code: 91, errmsg: 'shutting down' } },
  };
  await admin(connection, failPoint).catch((error: Error) => {
    throw new Error(`the fail point needs enableTestCommands=1 on the members: ${error.message}`);
  });
  try {
    const lease = await manager.acquire('retried', { wait: '30s' });
    const doc = await (await locks.documents()).findOne({ _id: 'retried' });
    expect(doc).toMatchObject({ token: lease.token });
    expect(lease.held).toBe(true);
    await expect(lease.release()).resolves.toBe(true);
  } finally {
    await admin(connection, { configureFailPoint: 'failCommand', mode: 'off' }).catch(() => {});
  }
});

test('a connection that prefers secondaries still renews and reads its leases on the primary', async () => {
  const connection = await locks.db.connect({ readPreference: 'secondaryPreferred', monitorCommands: true });
  const hello = await admin(connection, { hello: 1 });
  const addresses: string[] = [];
  connection.getClient().on('commandStarted', (event) => {
    if (event.commandName === 'find' && event.command.find === 'locks') addresses.push(event.address);
  });
  const manager = new LockManager({ connection, ttl: '3s', heartbeat: '500ms' });
  const lost: string[] = [];
  const lease = await manager.acquire('reads');
  lease.on('lost', (error) => lost.push(error.reason));
  await waitFor(() => addresses.length >= 4, { what: 'four watchdog reads' });
  expect(lost).toEqual([]);
  expect(new Set(addresses)).toEqual(new Set([hello.primary as string]));
  await lease.release();
  await manager.close();
});

test('a set with an arbiter is reported at start-up; one without is not', async () => {
  const connection = await locks.db.connect();
  const hello = await admin(connection, { hello: 1 });
  const manager = new LockManager({ connection });
  const errors: Error[] = [];
  manager.on('error', (error) => errors.push(error));
  await manager.ready;
  const arbiterWarnings = errors.filter((e) => /arbiter/.test(e.message));
  expect(arbiterWarnings).toHaveLength(Array.isArray(hello.arbiters) && hello.arbiters.length > 0 ? 1 : 0);
  await manager.close();
});
