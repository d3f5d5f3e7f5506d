// @nestjs/schedule in two instances of a Nest application (an application context: no HTTP
// server): a provider's `@Cron('* * * * * *')` method runs its work through `locks.runOnce()`, so
// each tick runs in one instance only. At the end, a summary from `locks.runs()`.
//
//   npm run example:nestjs            # two instances on the embedded engine, about 10 s
//
// Decorators: Nest's are TypeScript's legacy ("experimental") decorators, and this repository's
// tsconfig does not enable `experimentalDecorators` (tsx, through esbuild, would then compile
// `@Cron(...)` as a standard decorator, which Nest does not support). So this file applies them by
// hand, as the compiler would: `Cron(pattern)(prototype, 'method', descriptor)` is what
// `@Cron(pattern) method() {}` compiles to. In an application with `"experimentalDecorators": true`
// write them as usual:
//
//   @Injectable()
//   class ReportJob {
//     constructor(@Inject(LOCKS) private readonly locks: LockManager) {}
//     @Cron('* * * * * *') async report() { ... }
//   }
import 'reflect-metadata';
import { Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Cron, ScheduleModule } from '@nestjs/schedule';
import type { Connection } from 'mongoose';
import { LockError, LockErrorCode, type LockManager } from 'mongoose-distributed-lock';
import { say } from './support/output';
import { replica, replicaName, runFleet, second } from './support/schedule-fleet';

const LOCKS = Symbol('LockManager');
const CONNECTION = Symbol('Connection');

class ReportJob {
  constructor(
    private readonly locks: LockManager,
    private readonly connection: Connection,
  ) {}

  /** `@Cron('* * * * * *')`: fires every second in every instance. */
  async report(): Promise<void> {
    // @nestjs/schedule does not pass the tick's time to the method: the tick is identified by the
    // time it fired at, truncated to the pattern's period (here a second), which every instance
    // computes alike. (For '0 */5 * * * *', truncate to 5 minutes.)
    const scheduledAt = new Date(Math.floor(Date.now() / 1000) * 1000);
    if (this.locks.closed) return; // shutting down: a tick that fires now is nobody's to run
    const result = await this.locks
      .runOnce('report', scheduledAt, async (run) => {
        const reports = this.connection.db!.collection<{ _id: Date; count: number }>('reports');
        await reports.updateOne({ _id: run.scheduledAt }, { $inc: { count: 1 } }, { upsert: true });
        return run.token;
      })
      .catch((error: unknown) => {
        // The manager closed while this tick waited for another instance's run: a shutdown, not a failure.
        if (error instanceof LockError && error.code === LockErrorCode.Closed) return { ran: false as const };
        throw error;
      });
    if (result.ran) console.log(`tick ${second(scheduledAt)}: ran the report (token ${String(result.result)})`);
  }
}
// What `@Cron('* * * * * *')` on `report` compiles to.
Cron('* * * * * *', { name: 'report' })(
  ReportJob.prototype,
  'report',
  Object.getOwnPropertyDescriptor(ReportJob.prototype, 'report')!,
);

/** The application: the schedule module, and the job made from the lock manager and the connection. */
function appModule(locks: LockManager, connection: Connection): object {
  class AppModule {}
  Module({
    imports: [ScheduleModule.forRoot()],
    providers: [
      { provide: LOCKS, useValue: locks },
      { provide: CONNECTION, useValue: connection },
      {
        provide: ReportJob,
        useFactory: (l: LockManager, c: Connection) => new ReportJob(l, c),
        inject: [LOCKS, CONNECTION],
      },
    ],
  })(AppModule);
  return AppModule;
}

if (replicaName) {
  void replica(async (locks, connection) => {
    const app: INestApplicationContext = await NestFactory.createApplicationContext(appModule(locks, connection), {
      logger: ['error', 'warn'],
    });
    return () => app.close(); // stops the cron jobs; the manager is closed after
  }).catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
} else {
  runFleet({
    script: __filename,
    names: ['nest-a', 'nest-b'],
    seconds: 7,
    async summary(locks, connection) {
      const runs = await locks.runs('report', { limit: 1000 });
      const done = runs.filter((run) => run.outcome === 'done');
      say(
        'summary',
        `${runs.length} ticks, ${done.length} done, by ${new Set(runs.map((r) => r.owner)).size} instances`,
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
