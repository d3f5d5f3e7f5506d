// Three workers, each with its own connection (as three processes would have), all want to run
// the same job. withLock lets one in at a time; the fencing token grows with every hold.
//
//   npm run example:quickstart
import mongoose from 'mongoose';
import { LockManager } from 'mongoose-distributed-lock';
import { withDatabase } from './support/database';

async function worker(uri: string, name: string): Promise<void> {
  const connection = await mongoose.createConnection(uri, { dbName: 'quickstart' }).asPromise();
  const manager = new LockManager({ connection, owner: name, ttl: '10s' });
  try {
    for (let run = 1; run <= 2; run++) {
      await manager.withLock('nightly-report', async (lease) => {
        console.log(`${name} holds nightly-report (token ${lease.token}), working...`);
        await new Promise((resolve) => setTimeout(resolve, 300));
        console.log(`${name} is done and releases it`);
      });
    }
  } finally {
    await manager.close();
    await connection.close();
  }
}

void withDatabase(async (uri) => {
  await Promise.all(['worker-a', 'worker-b', 'worker-c'].map((name) => worker(uri, name)));
  console.log('every run held the lock alone; see the README for events, waits and leader election');
});
