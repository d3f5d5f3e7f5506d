// A scheduled job that every replica of a service declares: `locks.schedule()` runs each tick once
// across the three processes. One of them is killed (SIGKILL) in the middle of a run: the tick's
// lease runs out, another process retries it (attempt 2, a larger fencing token), and no tick is
// lost or run twice. At the end, a summary from `locks.runs()`.
//
//   npm run example:schedule          # three processes on the embedded engine, about 15 s
import type { Replica } from './support/fleet';
import { say } from './support/output';
import { replica, replicaName, runFleet, second } from './support/schedule-fleet';

const WORK_MS = 600; // each run takes this long: long enough to be killed in the middle of it

if (replicaName) {
  void replica((locks, connection) => {
    const reports = connection.db!.collection<{ _id: Date; finished: number; by: string[] }>('reports');
    const job = locks.schedule(
      'report',
      '* * * * * *',
      async (run) => {
        console.log(`tick ${second(run.scheduledAt)}: running (attempt ${run.attempt}, token ${run.token})`);
        await new Promise((resolve) => setTimeout(resolve, WORK_MS));
        run.signal.throwIfAborted(); // the lease was lost: this run is no longer ours to finish
        await reports.updateOne(
          { _id: run.scheduledAt },
          { $inc: { finished: 1 }, $push: { by: replicaName } },
          { upsert: true },
        );
        console.log(`tick ${second(run.scheduledAt)}: done`);
      },
      { retries: 1, ttl: '3s' }, // a dead runner's tick is retried once its 3 s lease runs out
    );
    job.on('failed', (run, error) => console.log(`tick ${second(run.scheduledAt)}: failed: ${error.message}`));
    job.on('error', (error) => console.log(`error: ${error.message}`));
    return Promise.resolve(() => job.stop());
  }).catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
} else {
  let killAfter = Infinity;
  let killed: string | undefined;
  runFleet({
    script: __filename,
    names: ['schedule-a', 'schedule-b', 'schedule-c'],
    seconds: 11,
    onStarted: () => (killAfter = Date.now() + 3000),
    onLine(child: Replica, line: string) {
      // The first run to start 3 s after every process is up: its process dies in the middle of it.
      const running = /^tick (\S+): running \(attempt 1/.exec(line);
      if (running && killed === undefined && Date.now() >= killAfter) {
        killed = running[1];
        say('fleet', `SIGKILL ${child.name} in the middle of tick ${killed}`);
        child.process.kill('SIGKILL');
      }
    },
    async summary(locks, connection) {
      const runs = await locks.runs('report', { limit: 1000 });
      const done = runs.filter((run) => run.outcome === 'done');
      const retried = runs.filter((run) => run.attempt > 1);
      say('summary', `${runs.length} ticks, ${done.length} done, ${retried.length} retried`);
      for (const run of retried) {
        say('summary', `tick ${second(run.scheduledAt)}: attempt ${run.attempt} by ${run.owner}, token ${run.token}`);
      }
      const reports = await connection.db!.collection<{ _id: Date; finished: number }>('reports').find().toArray();
      const once = reports.length === runs.length && reports.every((report) => report.finished === 1);
      say('summary', `each tick ran to its end exactly once: ${once ? 'yes' : 'NO'}`);
      const times = runs.map((run) => run.scheduledAt.getTime()).sort((a, b) => a - b);
      const gaps = times.slice(1).filter((time, i) => time - times[i]! !== 1000).length;
      say('summary', `no tick missed from the first to the last: ${gaps === 0 ? 'yes' : 'NO'}`);
    },
  }).catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
