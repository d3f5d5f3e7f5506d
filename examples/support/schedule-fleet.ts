// The two halves of the scheduling examples (schedule.ts, node-cron.ts, nestjs-schedule.ts): each
// runs as the parent that starts the database and its replicas (the same file, with REPLICA_NAME
// set) and prints a summary from the database at the end, or as one of those replicas.
import mongoose from 'mongoose';
import { LockManager } from 'mongoose-distributed-lock';
import { startDatabase } from './database';
import { startReplica, stopOnSignals, stopReplicas, type Replica } from './fleet';
import { say } from './output';

/** The replica's name when this process is one (set by the parent), else undefined. */
export const replicaName = process.env.REPLICA_NAME;

/** The examples' database on `uri` (EXAMPLE_DB, or `examples`). */
export function connect(uri: string): Promise<mongoose.Connection> {
  return mongoose.createConnection(uri, { dbName: process.env.EXAMPLE_DB ?? 'examples' }).asPromise();
}

/**
 * A replica: connects, makes a manager owned by the replica's name, runs `setup` (which returns how
 * to stop what it started), prints `started`; on SIGTERM, SIGINT or its parent going away, stops,
 * closes and prints `stopped`.
 */
export async function replica(
  setup: (locks: LockManager, connection: mongoose.Connection) => Promise<() => Promise<void>>,
): Promise<void> {
  const uri = process.env.MONGODB_URI;
  if (!uri) throw new Error('set MONGODB_URI (or run the example through its npm script)');
  const connection = await connect(uri);
  const locks = new LockManager({ connection, owner: replicaName, poll: 100 });
  locks.on('error', (error) => console.log(`error: ${error.message}`));
  const stopWork = await setup(locks, connection);
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void (async () => {
      await stopWork();
      await locks.close();
      await connection.close();
      console.log('stopped');
      if (process.connected) process.disconnect(); // the IPC channel would keep us alive
    })();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.once('disconnect', stop);
  console.log('started');
}

/** What the parent does with its replicas. */
export interface FleetPlan {
  /** This example's file (`__filename`): each replica runs it with REPLICA_NAME set. */
  readonly script: string;
  readonly names: readonly string[];
  /** How long the replicas run once all of them have started. */
  readonly seconds: number;
  /** Each line a replica prints (after it is shown), with the replica, e.g. to kill it. */
  readonly onLine?: (replica: Replica, line: string) => void;
  /** Once every replica has started. */
  readonly onStarted?: () => void;
  /** After the replicas have stopped: read the database and print the summary. */
  readonly summary: (locks: LockManager, connection: mongoose.Connection) => Promise<void>;
}

/** The parent: the database (embedded unless MONGODB_URI), the replicas, their run, the summary. */
export async function runFleet(plan: FleetPlan): Promise<void> {
  const database = await startDatabase();
  stopOnSignals(() => database.stop());
  try {
    const started = plan.names.map((name) => {
      let ready!: () => void;
      const isReady = new Promise<void>((resolve) => (ready = resolve));
      const child: Replica = startReplica(plan.script, name, database.uri, (line) => {
        say(name, line);
        if (line === 'started') ready();
        plan.onLine?.(child, line);
      });
      return Promise.race([isReady, child.exited.then(() => ready())]);
    });
    await Promise.all(started);
    say('fleet', `${plan.names.length} processes started; running for ${plan.seconds} s`);
    plan.onStarted?.();
    await new Promise((resolve) => setTimeout(resolve, plan.seconds * 1000));
    say('fleet', 'stopping every process (SIGTERM)');
    await stopReplicas();
    const connection = await connect(database.uri);
    const locks = new LockManager({ connection, owner: 'summary' });
    try {
      await plan.summary(locks, connection);
    } finally {
      await locks.close();
      await connection.close();
    }
  } finally {
    await stopReplicas();
    await database.stop();
  }
}

/** HH:MM:SS of a tick, in local time. */
export function second(date: Date): string {
  return date.toTimeString().slice(0, 8);
}
