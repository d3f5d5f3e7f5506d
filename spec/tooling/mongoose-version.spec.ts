// The suite runs on the mongoose major MDL_MONGOOSE selects (8, or 9 when unset): `npm test` on
// mongoose 9, `npm run test:mongoose8` on mongoose 8 (jest.config.js maps `mongoose` to the
// `mongoose8` devDependency). This file checks that the selection took effect everywhere Jest
// loads mongoose (this test, the spec helpers and lib/ must share one instance), and that a lock
// can be taken and released on it.
import mongoose from 'mongoose';
import { LockManager } from '../../lib/index';
import { lockFixture } from '../helpers/locks';
import { testUri } from '../helpers/mongo';

const selected = Number(process.env.MDL_MONGOOSE || '9');
const locks = lockFixture({ ttl: '30s' });

test(`the mongoose loaded is mongoose ${selected}, the major MDL_MONGOOSE selects`, () => {
  expect([8, 9]).toContain(selected);
  expect(Number(mongoose.version.split('.')[0])).toBe(selected);
});

test('the spec helpers open their connections with the same mongoose instance as this test', async () => {
  const connection = await locks.db.connect();
  expect(connection.base).toBe(mongoose);
});

test('a LockManager acquires and releases a lock on this mongoose, as the database shows', async () => {
  const manager = await locks.manager({ owner: `mongoose-${mongoose.version}` });
  const docs = await locks.documents();
  const events: string[] = [];
  manager.on('acquired', (lease) => events.push(`acquired:${lease.token}`));
  manager.on('released', (lease) => events.push(`released:${lease.token}`));

  const lease = await manager.acquire('versioned');
  expect(lease.held).toBe(true);
  const held = await docs.findOne({ _id: 'versioned' });
  expect(held).toMatchObject({
    token: lease.token,
    owner: `mongoose-${mongoose.version}`,
    leaseId: expect.any(String),
  });

  await expect(lease.release()).resolves.toBe(true);
  expect(lease.held).toBe(false);
  const freed = await docs.findOne({ _id: 'versioned' });
  expect(freed).toMatchObject({ token: lease.token, leaseId: null, freedAt: expect.any(Date) });
  expect(events).toEqual([`acquired:${lease.token}`, `released:${lease.token}`]);
});

describe("lib/ uses this test's mongoose instance", () => {
  // A manager without a connection uses `mongoose.connection` as lib/ imports it: it can take a
  // lock only if that is the default connection this test opened (lib/ loaded the same mongoose).
  let manager: LockManager | undefined;
  afterAll(async () => {
    await manager?.close();
    await mongoose.connection.db?.dropDatabase();
    await mongoose.disconnect();
  });

  test('a manager on the default connection takes a lock once this mongoose connects', async () => {
    await mongoose.connect(testUri(), { dbName: `${locks.db.name}_default` });
    manager = new LockManager({ ttl: '30s' });
    const lease = await manager.acquire('default-connection');
    expect(lease.held).toBe(true);
    const held = await mongoose.connection
      .db!.collection<{ _id: string }>('locks')
      .findOne({ _id: 'default-connection' });
    expect(held).toMatchObject({ token: lease.token, leaseId: expect.any(String) });
    await expect(lease.release()).resolves.toBe(true);
  });
});
