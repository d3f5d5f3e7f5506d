// A cron scheduler that every replica of a service runs, with the same schedule: croner fires on
// each of them, and only the elected leader runs the job. If the leader dies, another replica
// takes over once its lease expires (the ttl); if it steps down (SIGUSR2, or SIGTERM on a
// deploy), another takes over at once.
//
//   npm run example:scheduler                   # three replicas on the embedded engine, for 20 s
//   MONGODB_URI=mongodb://… REPLICA_NAME=web-1 tsx examples/scheduler.ts   # one replica of your own
//
// Settings (environment): SCHEDULE (croner pattern, default every 2 s), ELECTION_TTL (default 6s).
import mongoose from 'mongoose';
import { Cron } from 'croner';
import { LockManager, type Lease } from 'mongoose-distributed-lock';

const uri = process.env.MONGODB_URI;
const name = process.env.REPLICA_NAME ?? `scheduler-${process.pid}`;
const schedule = process.env.SCHEDULE ?? '*/2 * * * * *';
const ttl = process.env.ELECTION_TTL ?? '6s';

/** The job: one report per tick, stored under the tick's time, so a second run of a tick would fail loudly. */
async function runReport(connection: mongoose.Connection, tick: Date, lease: Lease): Promise<void> {
  const reports = connection.db!.collection<{ _id: Date; by: string; term: number }>('reports');
  // The term (fencing token) goes with the write: whoever reads the reports can tell leaders' terms apart.
  await reports.insertOne({ _id: tick, by: name, term: lease.token! });
}

async function main(): Promise<void> {
  if (!uri) throw new Error('set MONGODB_URI (or run `npm run example:scheduler`)');
  const connection = await mongoose.createConnection(uri, { dbName: process.env.EXAMPLE_DB ?? 'examples' }).asPromise();
  const manager = new LockManager({ connection, owner: name, poll: 250 });
  manager.on('error', (error) => console.log(`error: ${error.message}`));

  const election = manager.elect('scheduler', { ttl });
  election.on('elected', (lease) => console.log(`elected leader (term ${lease.token})`));
  election.on('revoked', (reason) => console.log(`no longer leader (${reason})`));
  console.log(`campaigning for leadership of "scheduler" (schedule "${schedule}", ttl ${ttl})`);

  const job = new Cron(schedule, { protect: true }, async () => {
    const tick = new Date(Math.round(Date.now() / 1000) * 1000); // the second this run was scheduled for
    const lease = election.leader;
    if (!lease) return; // a follower: the leader runs this tick
    try {
      await runReport(connection, tick, lease);
      console.log(`tick ${tick.toTimeString().slice(0, 8)}: ran the report (term ${lease.token})`);
    } catch (error) {
      console.log(`tick ${tick.toTimeString().slice(0, 8)}: FAILED: ${(error as Error).message}`);
    }
  });

  // SIGUSR2: hand leadership over to another replica now (this one rejoins the race after a ttl).
  process.on('SIGUSR2', () => {
    void election.resign().then((stepped) => console.log(stepped ? 'resigned' : 'not leading: nothing to resign'));
  });

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    job.stop();
    void (async () => {
      await election.close(); // steps down at once if leading
      await manager.close();
      await connection.close();
      console.log('stopped');
      if (process.connected) process.disconnect(); // the IPC channel of a parent would keep us alive
    })();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.once('disconnect', stop); // started by a parent process (npm run example:scheduler) that went away
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
