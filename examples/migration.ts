// A one-off job that every replica of a service runs at start-up: a data migration. Under
// withLock the replicas take turns; the first applies the migration and records it, the others
// find it recorded and go on. Done exactly once, however many replicas start at the same moment.
//
//   npm run example:migration          # three replicas starting together, on the embedded engine
//   MONGODB_URI=mongodb://… tsx examples/migration.ts
import mongoose from 'mongoose';
import { LockManager } from 'mongoose-distributed-lock';

const MIGRATION = '2026-11-seed-plans';

interface Applied {
  _id: string;
  by: string;
  token: number;
  at: Date;
}

async function main(): Promise<void> {
  const uri = process.env.MONGODB_URI;
  if (!uri) throw new Error('set MONGODB_URI (or run `npm run example:migration`)');
  const name = process.env.REPLICA_NAME ?? `replica-${process.pid}`;
  const connection = await mongoose.createConnection(uri, { dbName: process.env.EXAMPLE_DB ?? 'examples' }).asPromise();
  const manager = new LockManager({ connection, owner: name, ttl: '30s' });
  try {
    await manager.withLock(
      'migrations',
      async (lease) => {
        const db = connection.db!;
        const applied = await db.collection<Applied>('migrations').findOne({ _id: MIGRATION });
        if (applied) {
          console.log(`${MIGRATION} was applied by ${applied.by} (token ${applied.token}): nothing to do`);
          return;
        }
        console.log(`applying ${MIGRATION} (token ${lease.token})...`);
        // Not idempotent on purpose: run twice, it would leave every plan twice.
        const plans = ['free', 'team', 'enterprise'].map((plan) => ({ name: plan, createdBy: name }));
        await db.collection('plans').insertMany(plans);
        await new Promise((resolve) => setTimeout(resolve, 1000)); // a migration takes a while
        lease.signal.throwIfAborted(); // lost the lock meanwhile: do not record a half-done migration as done
        await db
          .collection<Applied>('migrations')
          .insertOne({ _id: MIGRATION, by: name, token: lease.token, at: new Date() });
        console.log(`applied ${MIGRATION}: ${plans.length} plans created`);
      },
      { wait: '2m' },
    );
    console.log('starting the service');
  } finally {
    await manager.close();
    await connection.close();
  }
}

main()
  .catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  })
  .finally(() => {
    if (process.connected) process.disconnect(); // started by a parent (npm run example:migration)
  });
