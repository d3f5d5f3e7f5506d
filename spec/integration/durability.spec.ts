// A server that crashes and restarts on the same data directory keeps every lock change it
// acknowledged: holds, renewals, releases and tokens. Found by the torture test's restart fault:
// without a journaled write concern, a standalone server acknowledged an acquisition, lost it
// in the crash, and handed the lock to a contender while the first holder still believed it held it.
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

async function manager(owner: string, options: ConstructorParameters<typeof LockManager>[0] = {}) {
  const connection = await mongoose.createConnection(engine.uri, { dbName: 'durable' }).asPromise();
  connections.push(connection);
  const m = new LockManager({ connection, owner, ttl: '60s', ...options });
  m.on('error', () => {}); // the crash is expected here
  managers.push(m);
  return m;
}

test('acquisitions and releases acknowledged just before a crash survive the restart', async () => {
  const holder = await manager('holder');
  const names = Array.from({ length: 6 }, (_, i) => `held-${i}`);
  const leases = [];
  for (const name of names) leases.push(await holder.acquire(name));
  const released = await holder.acquire('released');
  const releasedToken = released.token;
  await released.release();

  engine = await engine.restart(); // SIGKILL: no clean shutdown, no chance to flush anything

  const contender = await manager('contender');
  for (const [i, name] of names.entries()) {
    expect(await contender.inspect(name)).toMatchObject({ owner: 'holder', token: leases[i]!.token, held: true });
    await expect(contender.tryAcquire(name)).resolves.toBeNull();
  }
  const after = await contender.tryAcquire('released');
  expect(after).not.toBeNull();
  expect(after!.token).toBeGreaterThan(releasedToken);
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
