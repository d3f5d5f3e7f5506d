// A server that crashes and restarts on the same data directory keeps every acquisition and
// renewal it acknowledged, and so never hands a lock out twice. Found by the torture test's restart
// fault: without a journaled write concern, a standalone server acknowledged an acquisition, lost it
// in the crash, and handed the lock to a contender while the first holder still believed it held it.
// Releases and wake-up signals are not durable (w: 1): a release lost in a crash leaves the lock
// held until its ttl, never less, and an acquisition that saw a release makes it durable with itself.
// These tests crash a private engine, so they start their own whatever MONGODB_URI says.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mongoose, { type Connection } from 'mongoose';
import { LockManager } from '../../lib/index';
import { waitFor } from '../helpers/wait';

import { startEngine } from '../../scripts/engine.cjs';

const dbpath = fs.mkdtempSync(path.join(os.tmpdir(), 'mdlock-durability-'));
let engine: Awaited<ReturnType<typeof startEngine>>;
const connections: Connection[] = [];
const managers: LockManager[] = [];

beforeAll(async () => {
  engine = await startEngine({ dbpath });
});

afterAll(async () => {
  await Promise.all(managers.map((m) => m.close()));
  await Promise.all(connections.map((c) => c.close()));
  await engine.stop();
  fs.rmSync(dbpath, { recursive: true, force: true });
});

async function manager(
  owner: string,
  options: ConstructorParameters<typeof LockManager>[0] = {},
  connectionOptions: mongoose.ConnectOptions = {},
) {
  const connection = await mongoose
    .createConnection(engine.uri, { dbName: 'durable', ...connectionOptions })
    .asPromise();
  connections.push(connection);
  const m = new LockManager({ connection, owner, ttl: '60s', ...options });
  m.on('error', () => {}); // the crash is expected here
  managers.push(m);
  return m;
}

test('acquisitions acknowledged just before a crash survive the restart', async () => {
  const holder = await manager('holder');
  const names = Array.from({ length: 6 }, (_, i) => `held-${i}`);
  const leases = [];
  for (const name of names) leases.push(await holder.acquire(name));

  engine = await engine.restart(); // SIGKILL: no clean shutdown, no chance to flush anything

  const contender = await manager('contender');
  for (const [i, name] of names.entries()) {
    expect(await contender.inspect(name)).toMatchObject({ owner: 'holder', token: leases[i]!.token, held: true });
    await expect(contender.tryAcquire(name)).resolves.toBeNull();
  }
}, 60_000);

test('a release lost in a crash keeps the lock no longer than its ttl, and the next token is still larger', async () => {
  const holder = await manager('releaser', { ttl: 2000 });
  const lease = await holder.acquire('released');
  const { token } = lease;
  const expiry = lease.expiresAt.getTime(); // the server's expiry of this hold, renewed by nobody
  await expect(lease.release()).resolves.toBe(true);

  engine = await engine.restart(); // the release (w: 1) may or may not have reached the journal

  const contender = await manager('after-crash');
  const found = await contender.inspect('released');
  // Either the release survived (free), or the hold is back as it was: same token, its own expiry.
  expect(found).toMatchObject({ owner: 'releaser', token });
  if (found!.held) expect(found!.expiresAt.getTime()).toBe(expiry);
  const next = await contender.acquire('released', { wait: '30s' });
  expect(next.token).toBeGreaterThan(token);
  // Never handed out while the lost release's hold was live on the server's clock.
  const now = await contender.inspect('released');
  if (found!.held) expect(now!.acquiredAt.getTime()).toBeGreaterThanOrEqual(expiry);
  await next.release();
}, 60_000);

test('an acquisition that found the lock released makes that release durable with it', async () => {
  const [first, second] = [await manager('first'), await manager('second')];
  const old = await first.acquire('handed');
  await old.release(); // w: 1
  const lease = await second.acquire('handed'); // journaled: and with it everything written before
  expect(lease.token).toBeGreaterThan(old.token);

  engine = await engine.restart();

  const reader = await manager('reader');
  expect(await reader.inspect('handed')).toMatchObject({ owner: 'second', token: lease.token, held: true });
  await expect(reader.tryAcquire('handed')).resolves.toBeNull();
}, 60_000);

test('acquisitions and renewals ask for journaled majority writes, releases and signals for w: 1, whatever the connection says', async () => {
  type Sent = { command: string; collection: string; writeConcern: unknown; seed?: true };
  const sent: Sent[] = [];
  const holder = await manager(
    'concerns',
    { ttl: 3000, heartbeat: 200 },
    { monitorCommands: true, writeConcern: { w: 'majority', wtimeoutMS: 5000 } },
  );
  const connection = connections.at(-1)!;
  connection.getClient().on('commandStarted', (event) => {
    if (!['findAndModify', 'update', 'insert'].includes(event.commandName)) return;
    const command = event.command as Record<string, unknown>;
    // The signal collection's first document (set-up, durable like any) is not a signal.
    const seed = (command.documents as { name?: unknown }[] | undefined)?.[0]?.name === null;
    sent.push({
      command: event.commandName,
      collection: String(command[event.commandName]),
      writeConcern: command.writeConcern,
      ...(seed && { seed: true as const }),
    });
  });
  const waiter = await manager('waiter', { ttl: 3000 });
  const lease = await holder.acquire('concerned');
  await waitFor(() => sent.some((s) => s.command === 'update'), { what: 'a renewal' });
  // A waiter in another manager marks the lock contended, so that the release signals it.
  const waiting = waiter.acquire('concerned', { wait: '30s' });
  const raw = connection.db!.collection<{ _id: string; contended?: boolean }>('locks');
  await waitFor(async () => (await raw.findOne({ _id: 'concerned' }))?.contended === true, {
    what: 'the contended mark',
  });
  await lease.release();
  await waiting;
  await holder.forceRelease('concerned');
  expect(await holder.inspect('concerned')).toMatchObject({ owner: 'waiter', held: false });

  // wtimeout: the server gives up on the acknowledgement when the client does (the command's timeout).
  const durable = { w: 'majority', j: true, wtimeout: 10_000 };
  const renewals = sent.filter((s) => s.command === 'update');
  expect(renewals.length).toBeGreaterThan(0);
  // A renewal's wtimeout is the tick's own bound (how long a deadline remains): any whole number.
  for (const renewal of renewals) {
    expect(renewal).toEqual({
      command: 'update',
      collection: 'locks',
      writeConcern: { w: 'majority', j: true, wtimeout: expect.any(Number) },
    });
    expect(Number.isInteger((renewal.writeConcern as { wtimeout: number }).wtimeout)).toBe(true);
  }
  expect(sent.filter((s) => s.command !== 'update' && !s.seed)).toEqual([
    { command: 'findAndModify', collection: 'locks', writeConcern: durable }, // acquire
    { command: 'findAndModify', collection: 'locks', writeConcern: { w: 1 } }, // release
    { command: 'insert', collection: 'locks.signals', writeConcern: { w: 1 } }, // its wake-up signal
    { command: 'findAndModify', collection: 'locks', writeConcern: { w: 1 } }, // forceRelease
  ]);
}, 60_000);

test('a renewal acknowledged before a crash survives it', async () => {
  const holder = await manager('renewing', { ttl: 3000, heartbeat: 300 });
  const lease = await holder.acquire('renewed');
  const first = lease.expiresAt.getTime();
  // The watchdog reads the lease back after each renewal: a later expiry means one was acknowledged.
  const renewed = await waitFor(() => (lease.expiresAt.getTime() > first + 500 ? lease.expiresAt.getTime() : 0), {
    what: 'a renewal',
    interval: 2, // crash right after it: an unjournaled write would still be in memory
  });
  engine = await engine.restart();
  const reader = await mongoose.createConnection(engine.uri, { dbName: 'durable' }).asPromise();
  connections.push(reader);
  const doc = await reader.db!.collection<{ _id: string; expiresAt: Date }>('locks').findOne({ _id: 'renewed' });
  expect(doc!.expiresAt.getTime()).toBeGreaterThanOrEqual(renewed);
}, 60_000);

test('a fair hand-over acknowledged before a crash survives it: the waiter told by the signal really holds', async () => {
  const holder = await manager('fair-holder', { fair: true });
  const waiterManager = await manager('fair-waiter', { fair: true, poll: '20s' });
  const held = await holder.acquire('handed-fair');
  const waiter = waiterManager.lease('handed-fair');
  const waiting = waiter.acquire({ wait: '30s' });
  const raw = connections.at(-1)!.db!.collection<{ _id: string; queue?: unknown[] }>('locks');
  await waitFor(async () => ((await raw.findOne({ _id: 'handed-fair' }))?.queue?.length ?? 0) === 1, {
    what: 'the waiter queued',
  });
  await held.release();
  await expect(waiting).resolves.toBe(true); // on the signal's grant
  // SIGKILL right after: only a journaled hand-over is sure to survive. (This engine often flushes
  // a w: 1 write this soon anyway, so the write concern itself is checked in spec/unit/commands.)
  engine = await engine.restart();
  const reader = await manager('reader');
  expect(await reader.inspect('handed-fair')).toMatchObject({ owner: 'fair-waiter', token: waiter.token, held: true });
  await expect(reader.tryAcquire('handed-fair')).resolves.toBeNull();
}, 60_000);
