// The start-up check of what the deployment can do, on the standalone engine (which lacks nothing).
import { inspectDeployment } from '../../lib/deployment';
import { LockStore } from '../../lib/store';
import { lockFixture } from '../helpers/locks';

const locks = lockFixture();

test('hello describes the standalone engine: wire version of 4.2 or later, no replica set, no router', async () => {
  const store = new LockStore(await locks.db.connect(), 'locks', 5000);
  const deployment = await inspectDeployment(store, 5000);
  expect(deployment.maxWireVersion).toBeGreaterThanOrEqual(8);
  expect(deployment).toMatchObject({ arbiters: 0, mongos: false });
  expect(deployment.setName).toBeUndefined();
});

test('a manager on a deployment that lacks nothing reports nothing at start-up', async () => {
  const manager = await locks.manager();
  const errors: Error[] = [];
  manager.on('error', (error) => errors.push(error));
  await manager.ready;
  expect(errors).toEqual([]);
});
