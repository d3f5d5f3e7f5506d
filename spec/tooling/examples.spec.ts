// Each example, run as its npm script runs it (in processes of its own), against this file's database.
import { lockFixture } from '../helpers/locks';
import { databaseUri } from '../helpers/mongo';
import { processes } from '../helpers/processes';

const locks = lockFixture();
const children = processes();

/** Runs an example to its end, with MONGODB_URI (and the examples' database) pointing at this file's database. */
async function example(file: string, args: string[] = [], env: NodeJS.ProcessEnv = {}) {
  const child = children.script(file, args, {
    env: { MONGODB_URI: databaseUri(locks.db.name), EXAMPLE_DB: locks.db.name, ...env },
  });
  const exit = await child.exited;
  // Drop the timestamps and align the rest: `name  text`.
  const lines = child.lines.map((line) => line.replace(/^\d\d:\d\d:\d\d\.\d{3}\s+(\S+)\s+/, '$1 '));
  return { ...exit, lines, output: child.output() };
}

async function collection(name: string) {
  return (await locks.documents()).db.collection(name);
}

test('quickstart: three workers take turns, each token larger than the last', async () => {
  const { code, lines } = await example('examples/quickstart.ts');
  expect(code).toBe(0);
  const tokens = lines.filter((l) => l.includes('holds')).map((l) => Number(/token (\d+)/.exec(l)![1]));
  expect(tokens).toHaveLength(6);
  expect(tokens).toEqual([...tokens].sort((a, b) => a - b));
  expect(new Set(tokens).size).toBe(6);
});

test('worker: stops its work on `lost`, waits for the lock, and resumes from where it stopped', async () => {
  const { code, lines, output } = await example('examples/worker.ts');
  expect(code).toBe(0);
  const lost = lines.findIndex((l) => /^worker LOST "ingest" \(taken\): stopping work$/.test(l));
  expect(lost).toBeGreaterThan(0);
  expect(lines[lost + 1]).toBe('worker stopped batch 3 half-way; waiting to get "ingest" back');
  const reacquired = lines.findIndex((l, i) => i > lost && l.startsWith('worker acquired "ingest"'));
  expect(lines.slice(lost, reacquired).some((l) => /batch \d of 6 done/.test(l))).toBe(false); // no work without the lock
  expect(lines.slice(lost, reacquired)).toContain('operator released "ingest"');
  const done = lines.filter((l) => /^worker batch \d of 6 done/.test(l)).map((l) => Number(/batch (\d)/.exec(l)![1]));
  expect(done).toEqual([1, 2, 3, 4, 5, 6]);
  const [first, second] = lines
    .filter((l) => l.startsWith('worker acquired'))
    .map((l) => Number(/token (\d+)/.exec(l)![1]));
  expect(second).toBeGreaterThan(first!);
  expect(lines.at(-1)).toBe('worker all 6 batches done');
  expect(output).not.toMatch(/error/i);
});

test('scheduler: several processes share a schedule, and only the leader runs each tick', async () => {
  const { code, lines, output } = await example(
    'examples/support/fleet.ts',
    ['examples/scheduler.ts', '--replicas', '3', '--for', '11s'],
    { SCHEDULE: '* * * * * *', ELECTION_TTL: '4s' },
  );
  expect(code).toBe(0);
  expect(output).not.toContain('FAILED');
  // Nobody failed, so one term until the fleet was stopped (when another might win for a moment).
  const stopping = lines.findIndex((l) => l.includes('no longer leader'));
  const elected = lines.slice(0, stopping).filter((l) => l.includes('elected leader'));
  expect(elected).toHaveLength(1);
  const leader = elected[0]!.split(' ')[0];
  const ticks = lines.slice(0, stopping).filter((l) => l.includes('ran the report'));
  expect(ticks.length).toBeGreaterThanOrEqual(3);
  expect(ticks.every((l) => l.startsWith(`${leader} `))).toBe(true);
  const reports = await (await collection('reports')).find().toArray();
  const allTicks = lines.filter((l) => l.includes('ran the report'));
  expect(reports).toHaveLength(allTicks.length); // one report per tick: none twice (its _id is the tick)
  // A tick in flight when the fleet stopped may print after the leader's "no longer leader".
  const leaderTicks = allTicks.filter((l) => l.startsWith(`${leader} `));
  expect(reports.filter((r) => r.by === leader)).toHaveLength(leaderTicks.length);
  expect(lines.filter((l) => l.endsWith(' stopped'))).toHaveLength(3); // each closed and exited
});

test('migration: every replica runs it at start-up under withLock; it is applied exactly once', async () => {
  const { code, lines } = await example('examples/support/fleet.ts', ['examples/migration.ts', '--replicas', '3']);
  expect(code).toBe(0);
  const applying = lines.filter((l) => l.includes('applying 2026-11-seed-plans'));
  expect(applying).toHaveLength(1);
  const applier = applying[0]!.split(' ')[0];
  expect(lines).toContain(`${applier} applied 2026-11-seed-plans: 3 plans created`);
  const skipped = lines.filter((l) => l.includes(`was applied by ${applier}`));
  expect(skipped).toHaveLength(2);
  expect(lines.filter((l) => l.endsWith('starting the service'))).toHaveLength(3);
  expect(await (await collection('plans')).countDocuments()).toBe(3);
});

test('crontab: the documented line on three hosts at once runs the job once; the others exit 75', async () => {
  const { code, lines } = await example('examples/crontab.ts');
  expect(code).toBe(0);
  const ran = lines.filter((l) => /^host-. sales report, fencing token/.test(l));
  expect(ran).toHaveLength(1);
  const token = Number(/token (\d+)/.exec(ran[0]!)![1]);
  const codes = lines.filter((l) => /^host-. exit code/.test(l)).map((l) => Number(/exit code (\d+)/.exec(l)![1]));
  expect(codes.sort()).toEqual([0, 75, 75]);
  expect(lines.some((l) => l.includes('busy') && !l.includes('exit code'))).toBe(false); // --quiet: no mail from cron
  const lock = await (await locks.documents()).findOne({ _id: 'sales-report' });
  expect(lock).toMatchObject({ token, leaseId: null });
});
