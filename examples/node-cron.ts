// node-cron 4.6 in three processes, each with the same task: `cron.setRunCoordinator(
// locks.runCoordinator())` makes node-cron ask the database before each run, so each tick runs in
// one process only. At the end, a summary from `locks.runs()`.
//
//   npm run example:node-cron         # three processes on the embedded engine, about 10 s
import cron from 'node-cron';
import { say } from './support/output';
import { replica, replicaName, runFleet, second } from './support/schedule-fleet';

if (replicaName) {
  void replica((locks, connection) => {
    const reports = connection.db!.collection<{ _id: Date; count: number }>('reports');
    cron.setRunCoordinator(locks.runCoordinator());
    const task = cron.schedule(
      '* * * * * *',
      async (context) => {
        // context.date is the tick (node-cron's slot), the same in every process.
        await reports.updateOne({ _id: context.date }, { $inc: { count: 1 } }, { upsert: true });
        console.log(`tick ${second(context.date)}: ran the report`);
      },
      { name: 'report', distributed: true, distributedLease: 5000 }, // the tick's lease: 5 s
    );
    return Promise.resolve(async () => void (await task.stop()));
  }).catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
} else {
  runFleet({
    script: __filename,
    names: ['cron-a', 'cron-b', 'cron-c'],
    seconds: 7,
    async summary(locks, connection) {
      const runs = await locks.runs('report', { limit: 1000 });
      const done = runs.filter((run) => run.outcome === 'done');
      say(
        'summary',
        `${runs.length} ticks, ${done.length} done, by ${new Set(runs.map((r) => r.owner)).size} processes`,
      );
      const reports = await connection.db!.collection<{ _id: Date; count: number }>('reports').find().toArray();
      const once = reports.length === runs.length && reports.every((report) => report.count === 1);
      say('summary', `each tick ran exactly once: ${once ? 'yes' : 'NO'}`);
    },
  }).catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
