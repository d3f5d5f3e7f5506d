// The scheduling examples, run as their npm scripts run them (a parent and its replicas, in
// processes of their own), against this file's database: their output and the run records.
import type { RunRecord } from '../../lib/index';
import { lockFixture } from '../helpers/locks';
import { databaseUri } from '../helpers/mongo';
import { processes } from '../helpers/processes';

const locks = lockFixture();
const children = processes();

/** Runs an example to its end in a database of its own (EXAMPLE_DB), its lines without their timestamps. */
async function example(file: string, database: string) {
  const child = children.script(file, [], {
    env: { MONGODB_URI: databaseUri(locks.db.name), EXAMPLE_DB: database },
  });
  const exit = await child.exited;
  const lines = child.lines.map((line) => line.replace(/^\d\d:\d\d:\d\d\.\d{3}\s+(\S+)\s+/, '$1 '));
  return { ...exit, lines, output: child.output() };
}

async function records(database: string) {
  const connection = await locks.db.connect();
  const db = connection.useDb(database).db!;
  const runs = await db
    .collection<RunRecord & { _id: string }>('locks.runs')
    .find({ name: 'report' })
    .sort({ scheduledAt: 1 })
    .toArray();
  const reports = await db.collection<{ _id: Date; count?: number; finished?: number }>('reports').find().toArray();
  await db.dropDatabase(); // the example's own database: the fixture drops only the file's
  return { runs, reports };
}

/** Each record's tick is one second after the one before: no tick missed. */
function consecutive(runs: { scheduledAt: Date }[]): boolean {
  return runs.every((run, i) => i === 0 || run.scheduledAt.getTime() - runs[i - 1]!.scheduledAt.getTime() === 1000);
}

test('schedule: a runner killed mid-run; its tick is retried elsewhere (attempt 2); every tick runs once', async () => {
  const database = `${locks.db.name}-schedule`;
  const { code, lines, output } = await example('examples/schedule.ts', database);
  expect(code).toBe(0);
  expect(output).not.toMatch(/error|failed/i);
  const kill = lines.filter((l) => l.startsWith('fleet SIGKILL'));
  expect(kill).toHaveLength(1);
  const [, victim, tick] = /^fleet SIGKILL (\S+) in the middle of tick (\S+)$/.exec(kill[0]!)!;
  expect(lines.some((l) => l.startsWith(`${victim} tick ${tick}: running (attempt 1, token `))).toBe(true);
  expect(lines.some((l) => l === `${victim} tick ${tick}: done`)).toBe(false);
  const retry = lines.filter((l) => l.includes(`tick ${tick}: running (attempt 2`));
  expect(retry).toHaveLength(1);
  expect(retry[0]!.startsWith(`${victim} `)).toBe(false);
  expect(lines.filter((l) => l.endsWith(' stopped'))).toHaveLength(2); // the two survivors

  const { runs, reports } = await records(database);
  expect(runs.length).toBeGreaterThanOrEqual(6);
  expect(runs.every((run) => run.outcome === 'done')).toBe(true);
  expect(consecutive(runs)).toBe(true);
  const retried = runs.filter((run) => run.attempt !== 1);
  expect(retried).toHaveLength(1);
  expect(retried[0]).toMatchObject({ attempt: 2, owner: retry[0]!.split(' ')[0] });
  expect(retried[0]!.scheduledAt.toTimeString().slice(0, 8)).toBe(tick);
  // Every tick's work reached its end once (the killed run never did).
  expect(reports.map((r) => r._id.getTime()).sort()).toEqual(runs.map((r) => r.scheduledAt.getTime()));
  expect(reports.every((r) => r.finished === 1)).toBe(true);
  expect(lines).toContain(`summary ${runs.length} ticks, ${runs.length} done, 1 retried`);
  expect(lines).toContain('summary each tick ran to its end exactly once: yes');
  expect(lines).toContain('summary no tick missed from the first to the last: yes');
});

test('node-cron: three processes with runCoordinator(); each tick runs once', async () => {
  const database = `${locks.db.name}-node-cron`;
  const { code, lines, output } = await example('examples/node-cron.ts', database);
  expect(code).toBe(0);
  expect(output).not.toMatch(/error/i);
  const ran = lines.filter((l) => / tick \S+: ran the report$/.test(l));
  const ticks = ran.map((l) => /tick (\S+)/.exec(l)![1]);
  expect(new Set(ticks).size).toBe(ticks.length); // no tick printed twice
  expect(lines.filter((l) => l.endsWith(' stopped'))).toHaveLength(3);

  const { runs, reports } = await records(database);
  expect(runs.length).toBeGreaterThanOrEqual(4);
  expect(runs).toHaveLength(ran.length);
  expect(runs.every((run) => run.outcome === 'done' && run.attempt === 1)).toBe(true);
  expect(consecutive(runs)).toBe(true);
  expect(reports).toHaveLength(runs.length);
  expect(reports.every((r) => r.count === 1)).toBe(true);
  expect(lines).toContain('summary each tick ran exactly once: yes');
});

test('nestjs: two application instances, @Cron through runOnce(); each tick runs once', async () => {
  const database = `${locks.db.name}-nestjs`;
  const { code, lines, output } = await example('examples/nestjs-schedule.ts', database);
  expect(code).toBe(0);
  expect(output).not.toMatch(/error/i);
  const ran = lines.filter((l) => / tick \S+: ran the report \(token \d+\)$/.test(l));
  const ticks = ran.map((l) => /tick (\S+)/.exec(l)![1]);
  expect(new Set(ticks).size).toBe(ticks.length);
  expect(lines.filter((l) => l.endsWith(' stopped'))).toHaveLength(2);

  const { runs, reports } = await records(database);
  expect(runs.length).toBeGreaterThanOrEqual(4);
  expect(runs).toHaveLength(ran.length);
  expect(runs.every((run) => run.outcome === 'done' && run.attempt === 1)).toBe(true);
  expect(runs.every((run) => run.scheduledAt.getMilliseconds() === 0)).toBe(true); // truncated to the second
  expect(consecutive(runs)).toBe(true);
  expect(reports).toHaveLength(runs.length);
  expect(reports.every((r) => r.count === 1)).toBe(true);
  // Each run's owner is the instance that printed it, with the token it printed.
  for (const run of runs) {
    const line = ran.find((l) => l.includes(`tick ${run.scheduledAt.toTimeString().slice(0, 8)}:`))!;
    expect(line).toBe(
      `${String(run.owner)} tick ${run.scheduledAt.toTimeString().slice(0, 8)}: ran the report (token ${String(run.token)})`,
    );
  }
  expect(lines).toContain('summary each tick ran exactly once: yes');
});
