// `mdlock runs <name>`: the latest runs of a schedule, made by a real manager's runOnce, read by
// mdlock in a process of its own against the real engine.
import { lockFixture } from '../helpers/locks';
import { mdlockRunner } from '../helpers/mdlock';

const locks = lockFixture({ ttl: '30s' });
const mdlock = mdlockRunner(() => locks.db.name);

const at = (second: number) => new Date(Date.UTC(2030, 0, 1, 3, 0, second));
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

interface Row {
  name: string;
  scheduledAt: string;
  outcome: string;
  attempt: number;
  token: number;
  owner: string;
  startedAt: string;
  finishedAt: string | null;
  error: string | null;
}

async function runsJson(...args: string[]): Promise<Row[]> {
  const result = await mdlock.run(['runs', ...args, '--json']);
  expect(result).toMatchObject({ code: 0, stderr: '' });
  return JSON.parse(result.stdout) as Row[];
}

test('runs: newest first, with outcome, attempt, token, owner, started and finished; ls still lists locks only', async () => {
  const manager = await locks.manager({ owner: 'cron-a', collection: 'sched' });
  const tokens: number[] = [];
  // Tick :00 done at once; :01 throws, then is retried (attempt 2) and done; :02 fails for good.
  await manager.runOnce('report', at(0), (run) => void tokens.push(run.token));
  let thrown = false;
  await manager.runOnce(
    'report',
    at(1),
    (run) => {
      tokens.push(run.token);
      if (!thrown) {
        thrown = true;
        throw new Error('disk full');
      }
    },
    { retries: 1 },
  );
  await expect(
    manager.runOnce('report', at(2), (run) => {
      tokens.push(run.token);
      throw new Error('no data');
    }),
  ).rejects.toThrow('no data');
  // Tick :03 still running while mdlock reads it.
  let finish!: () => void;
  let started!: () => void;
  const running = new Promise<void>((resolve) => (started = resolve));
  const runningTick = manager.runOnce('report', at(3), (run) => {
    tokens.push(run.token);
    started();
    return new Promise<void>((resolve) => (finish = resolve));
  });
  await running;
  await manager.runOnce('other-schedule', at(0), () => {}); // not listed under "report"

  const rows = await runsJson('report', '--collection', 'sched');
  expect(rows.map((r) => [r.scheduledAt, r.outcome, r.attempt, r.token, r.error])).toEqual([
    [at(3).toISOString(), 'running', 1, tokens[4], null],
    [at(2).toISOString(), 'failed', 1, tokens[3], 'no data'],
    [at(1).toISOString(), 'done', 2, tokens[2], null],
    [at(0).toISOString(), 'done', 1, tokens[0], null],
  ]);
  expect(tokens[2]).toBeGreaterThan(tokens[1]!); // the retry ran under a new lease
  for (const row of rows) {
    expect(row).toMatchObject({ name: 'report', owner: 'cron-a', startedAt: expect.stringMatching(ISO) });
    if (row.outcome === 'running') expect(row.finishedAt).toBeNull();
    else expect(row.finishedAt).toMatch(ISO);
  }

  const table = await mdlock.run(['runs', 'report', '--collection', 'sched']);
  expect(table).toMatchObject({ code: 0, stderr: '' });
  const date = '\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z';
  expect(table.stdout.trimEnd().split('\n')).toEqual([
    expect.stringMatching(/^SCHEDULED AT\s+OUTCOME\s+ATTEMPT\s+TOKEN\s+OWNER\s+STARTED\s+FINISHED$/),
    expect.stringMatching(
      new RegExp(`^${at(3).toISOString()}\\s+running\\s+1\\s+${tokens[4]}\\s+cron-a\\s+${date}\\s+-$`),
    ),
    expect.stringMatching(
      new RegExp(`^${at(2).toISOString()}\\s+failed\\s+1\\s+${tokens[3]}\\s+cron-a\\s+${date}\\s+${date}$`),
    ),
    expect.stringMatching(
      new RegExp(`^${at(1).toISOString()}\\s+done\\s+2\\s+${tokens[2]}\\s+cron-a\\s+${date}\\s+${date}$`),
    ),
    expect.stringMatching(
      new RegExp(`^${at(0).toISOString()}\\s+done\\s+1\\s+${tokens[0]}\\s+cron-a\\s+${date}\\s+${date}$`),
    ),
  ]);

  expect((await runsJson('report', '--collection', 'sched', '--limit', '2')).map((r) => r.scheduledAt)).toEqual([
    at(3).toISOString(),
    at(2).toISOString(),
  ]);

  finish();
  await expect(runningTick).resolves.toEqual({ ran: true, result: undefined });
  expect((await runsJson('report', '--collection', 'sched', '--limit', '1'))[0]).toMatchObject({
    outcome: 'done',
    finishedAt: expect.stringMatching(ISO),
  });

  // ls lists the locks (the ticks' lock documents), never the run records.
  const ls = await mdlock.run(['ls', '--json', '--collection', 'sched']);
  const names = (JSON.parse(ls.stdout) as { name: string; held: boolean }[]).map((lock) => lock.name);
  expect(names.sort()).toEqual(
    [...[0, 1, 2, 3].map((s) => `report@${at(s).toISOString()}`), `other-schedule@${at(0).toISOString()}`].sort(),
  );
});

test('runs: 20 at most by default, --limit for more; nothing to list says so', async () => {
  const manager = await locks.manager({ owner: 'cron-b', collection: 'many' });
  for (let second = 0; second < 23; second++) await manager.runOnce('tick', at(second), () => {});
  const latest = await runsJson('tick', '--collection', 'many');
  expect(latest.map((r) => r.scheduledAt)).toEqual(
    Array.from({ length: 20 }, (_, i) => at(22 - i).toISOString()), // newest first
  );
  expect(await runsJson('tick', '--collection', 'many', '--limit', '50')).toHaveLength(23);

  expect(await mdlock.run(['runs', 'never-ran', '--collection', 'many'])).toMatchObject({
    code: 0,
    stdout: 'no runs of "never-ran" in collection "many.runs"\n',
    stderr: '',
  });
  expect(await runsJson('never-ran', '--collection', 'many')).toEqual([]);
  expect(await mdlock.run(['runs', 'tick', '--limit', '0'])).toMatchObject({
    code: 64,
    stdout: '',
    stderr: expect.stringMatching(
      /^mdlock: --limit must be a whole number of at least 1, received "0" \(usage: mdlock runs/,
    ),
  });
});
