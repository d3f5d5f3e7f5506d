// A benchmark process declaring the scheduled job `bench-tick` (every second), driven over IPC by
// bench/scenarios/schedule.ts: it records every command its connection sends (command monitoring),
// and when each tick's run started and was recorded done here, or when this process skipped it.
//   argv: <uri>
import { LockManager, type ScheduledJob } from 'mongoose-distributed-lock';
import { connect } from '../support';

type Message = { type: 'start'; collection: string } | { type: 'stop' };

/** What one process saw of a fleet's run: times are Date.now() (one clock for every process here). */
export interface Observed {
  /** When each command started, and its name. */
  commands: [at: number, name: string][];
  /** The ticks this process ran: their scheduled time, when the function started, when the run was recorded done. */
  runs: { tick: number; started: number; done: number }[];
  /** The ticks this process did not run, when it knew, and why. */
  skipped: { tick: number; at: number; reason: string }[];
  errors: string[];
}

const [uri] = process.argv.slice(2) as [string];

async function main(): Promise<void> {
  const connection = await connect(uri, { monitorCommands: true });
  let observed: Observed | undefined;
  connection.getClient().on('commandStarted', (event) => observed?.commands.push([Date.now(), event.commandName]));
  let running: { manager: LockManager; job: ScheduledJob } | undefined;
  const send = (message: object) => new Promise((resolve) => process.send!(message, resolve));

  const handle = async (message: Message): Promise<void> => {
    if (message.type === 'start') {
      const seen: Observed = { commands: [], runs: [], skipped: [], errors: [] };
      const manager = new LockManager({ connection, collection: message.collection });
      manager.on('error', (error) => seen.errors.push(error.message));
      const started = new Map<number, number>();
      const job = manager.schedule('bench-tick', '*/1 * * * * *', (run) => {
        started.set(run.scheduledAt.getTime(), Date.now());
      });
      job.on('done', (run) => {
        const tick = run.scheduledAt.getTime();
        seen.runs.push({ tick, started: started.get(tick)!, done: Date.now() });
      });
      job.on('skipped', ({ scheduledAt, reason }) =>
        seen.skipped.push({ tick: scheduledAt.getTime(), at: Date.now(), reason }),
      );
      job.on('failed', (run, error) => seen.errors.push(`tick ${run.scheduledAt.toISOString()}: ${error.message}`));
      job.on('error', (error) => seen.errors.push(error.message));
      observed = seen;
      running = { manager, job };
      await send({ type: 'started' });
    } else {
      const { manager, job } = running!;
      await job.stop();
      const result = observed!;
      observed = undefined; // the close's commands are not a tick's
      await manager.close();
      running = undefined;
      await send({ type: 'observed', ...result });
    }
  };
  process.on('message', (message: Message) => {
    handle(message).catch((error: unknown) => {
      console.error(error);
      process.exit(1);
    });
  });
  const shutdown = () => {
    void (running?.manager.close() ?? Promise.resolve()).then(() => connection.close()).finally(() => process.exit(0));
  };
  process.on('SIGTERM', shutdown);
  process.on('disconnect', shutdown);
  await send({ type: 'ready' });
}

void main();
