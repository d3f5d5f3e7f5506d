// A long-running worker: it holds the lock "ingest" while it processes batches, follows the
// manager's events, and stops its work the moment the lock is lost. Here an operator takes the
// lock away by force half-way (as `mdlock release --force` or a misbehaving peer would): the
// worker abandons the batch in progress, waits to get the lock back, and resumes from there.
//
//   npm run example:worker
import mongoose from 'mongoose';
import { LockManager, type Lease } from 'mongoose-distributed-lock';
import { withDatabase } from './support/database';
import { say } from './support/output';

const BATCHES = 6;

/** One batch of work: 400 ms that stop as soon as `signal` aborts. */
function processBatch(signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, 400);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(signal.reason as Error);
      },
      { once: true },
    );
  });
}

/** Someone else takes "ingest" for a while: a lease taken by force, then released. */
async function operatorInterferes(operator: LockManager): Promise<void> {
  const lease = operator.lease('ingest');
  await lease.forceAcquire();
  say('operator', `took "ingest" by force (token ${lease.token}); holding it for 1.5 s`);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  await lease.release();
  say('operator', 'released "ingest"');
}

async function work(manager: LockManager, operator: LockManager): Promise<void> {
  let done = 0;
  let interference: Promise<void> | undefined;
  while (done < BATCHES) {
    const lease: Lease = await manager.acquire('ingest'); // waits as long as it takes
    try {
      while (done < BATCHES) {
        await processBatch(lease.signal);
        done++;
        say('worker', `batch ${done} of ${BATCHES} done (token ${lease.token})`);
        if (done === 2) interference ??= operatorInterferes(operator);
      }
    } catch (error) {
      if (!lease.signal.aborted) throw error;
      say('worker', `stopped batch ${done + 1} half-way; waiting to get "ingest" back`);
    } finally {
      if (lease.held) await lease.release();
    }
  }
  await interference;
}

void withDatabase(async (uri) => {
  const connect = () => mongoose.createConnection(uri, { dbName: process.env.EXAMPLE_DB ?? 'examples' }).asPromise();
  const [workerConnection, operatorConnection] = [await connect(), await connect()]; // as two processes would
  // A short ttl so that the loss shows quickly: the watchdog checks every ttl / 3 = 1 s.
  const manager = new LockManager({ connection: workerConnection, owner: 'worker', ttl: '3s' });
  const operator = new LockManager({ connection: operatorConnection, owner: 'operator' });
  manager.on('acquired', (_lease, { name, token }) => say('worker', `acquired "${name}" (token ${token})`));
  manager.on('released', (_lease, { name }) => say('worker', `released "${name}"`));
  manager.on('lost', (_lease, error) => say('worker', `LOST "${error.lock}" (${error.reason}): stopping work`));
  manager.on('error', (error) => say('worker', `error: ${error.message}`));
  try {
    await work(manager, operator);
    say('worker', `all ${BATCHES} batches done`);
  } finally {
    await Promise.all([manager.close(), operator.close()]);
    await Promise.all([workerConnection.close(), operatorConnection.close()]);
  }
});
