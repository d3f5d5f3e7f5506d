// Scheduling across real processes (spec/fixtures/schedule-worker.ts): a fleet whose clocks are
// 1.5 s apart runs every tick of a per-second schedule exactly once; so does node-cron with
// runCoordinator(); a runner killed mid-run is retried by another process with attempt 2 and a
// larger token, or recorded lost when no retry is left; a process starting settles an older tick left running.
import type { Connection } from 'mongoose';
import { elapse, lockFixture } from '../helpers/locks';
import { databaseUri } from '../helpers/mongo';
import { processes, type Child } from '../helpers/processes';

const locks = lockFixture({ ttl: '3s' });
const children = processes();
const WORKER = 'spec/fixtures/schedule-worker.ts';
/** How long the fleets run: ~12 s in npm test; SCHEDULE_FLEET_SECONDS=30 for a longer run. */
const FLEET_SECONDS = Number(process.env.SCHEDULE_FLEET_SECONDS ?? 12);

let raw: Connection;
beforeAll(async () => {
  raw = await locks.db.connect();
});

function worker(owner: string, offset: number, mode: string, args: string[]): Child {
  return children.script(WORKER, [databaseUri(locks.db.name), owner, String(offset), mode, ...args]);
}

async function stopAll(fleet: Child[]): Promise<void> {
  for (const child of fleet) children.kill(child, 'SIGTERM');
  const exits = await Promise.all(fleet.map((child) => child.exited));
  for (const [i, exit] of exits.entries())
    expect({ exit, output: fleet[i]!.stdout() }).toMatchObject({ exit: { code: 0 } });
}

/** Every whole second in [from, to]. */
function secondsBetween(from: number, to: number): string[] {
  const ticks: string[] = [];
  for (let t = Math.ceil(from / 1000) * 1000; t <= to; t += 1000) ticks.push(new Date(t).toISOString());
  return ticks;
}

async function counters(): Promise<Map<string, { count: number; by: string[] }>> {
  const docs = await raw.db!.collection<{ _id: string; count: number; by: string[] }>('counters').find({}).toArray();
  return new Map(docs.map((doc) => [doc._id, doc]));
}

const timeout = (FLEET_SECONDS + 60) * 1000;

test(
  'three processes with clocks 1.5 s apart run every tick of "*/1 * * * * *" exactly once',
  async () => {
    await raw.db!.collection('counters').deleteMany({});
    const fleet = [
      worker('behind', -1500, 'schedule', ['skew', '*/1 * * * * *', '3s', '1']),
      worker('exact', 0, 'schedule', ['skew', '*/1 * * * * *', '3s', '1']),
      worker('ahead', 1500, 'schedule', ['skew', '*/1 * * * * *', '3s', '1']),
    ];
    await Promise.all(fleet.map((child) => child.line(/^started$/)));
    const started = Date.now();
    await elapse(FLEET_SECONDS * 1000); // the subject: a schedule running for this long
    const ended = Date.now();
    await stopAll(fleet);

    // Every tick from when all three ran (by the real clock) until the latest clock had passed it.
    const window = secondsBetween(started + 2000, ended - 3000);
    expect(window.length).toBeGreaterThanOrEqual(FLEET_SECONDS - 6);
    const counted = await counters();
    const missing = window.filter((tick) => !counted.has(tick));
    const twice = [...counted].filter(([, doc]) => doc.count !== 1).map(([tick, doc]) => `${tick}: ${doc.by.join()}`);
    expect({ missing, twice }).toEqual({ missing: [], twice: [] });

    const manager = await locks.manager();
    const records = new Map(
      (await manager.runs('skew', { limit: 1000 })).map((record) => [record.scheduledAt.toISOString(), record]),
    );
    for (const tick of window) expect(records.get(tick)).toMatchObject({ outcome: 'done', attempt: 1 });
    // Each tick ran where its record says, and no other process started it.
    const runLines = fleet.flatMap((child) => child.lines.filter((line) => line.startsWith('run ')));
    const started1 = new Map<string, number>();
    for (const line of runLines) {
      const tick = line.split(' ')[1]!;
      started1.set(tick, (started1.get(tick) ?? 0) + 1);
    }
    expect([...started1].filter(([, n]) => n !== 1)).toEqual([]);
    // Every process fired every tick: it ran it, or found it done (the one ahead usually wins).
    for (const child of fleet) {
      const handled = new Set(
        child.lines
          .map((line) => /^(?:run (\S+) 1 \d+|skipped (\S+) done)$/.exec(line))
          .map((match) => match?.[1] ?? match?.[2]),
      );
      expect(window.filter((tick) => !handled.has(tick))).toEqual([]);
    }
    for (const child of fleet) expect(child.lines.filter((line) => line.startsWith('error'))).toEqual([]);
  },
  timeout,
);

test(
  'node-cron 4.6 with runCoordinator() in three processes: each tick once',
  async () => {
    await raw.db!.collection('counters').deleteMany({});
    const fleet = ['a', 'b', 'c'].map((owner) => worker(owner, 0, 'cron', ['nightly', '*/1 * * * * *']));
    await Promise.all(fleet.map((child) => child.line(/^started$/)));
    const started = Date.now();
    await elapse(Math.min(FLEET_SECONDS, 10) * 1000);
    const ended = Date.now();
    await stopAll(fleet);

    const window = secondsBetween(started + 1500, ended - 1500);
    const counted = await counters();
    const missing = window.filter((tick) => !counted.has(tick));
    const twice = [...counted].filter(([, doc]) => doc.count !== 1).map(([tick, doc]) => `${tick}: ${doc.by.join()}`);
    expect({ missing, twice }).toEqual({ missing: [], twice: [] });
    const manager = await locks.manager();
    const records = new Map(
      (await manager.runs('nightly', { limit: 1000 })).map((record) => [record.scheduledAt.toISOString(), record]),
    );
    for (const tick of window) expect(records.get(tick)).toMatchObject({ outcome: 'done', attempt: 1 });
    const ranLines = fleet.flatMap((child) => child.lines.filter((line) => line.startsWith('ran ')));
    expect(ranLines.length).toBe(new Set(ranLines).size);
  },
  timeout,
);

/** Starts a runner of the tick in a child process, and resolves once its function is running. */
async function hangingRunner(name: string, tick: Date, retries: number) {
  const child = worker('doomed', 0, 'hang', [name, tick.toISOString(), '2s', String(retries)]);
  const [, attempt, token] = await child.line(/^running (\d+) (\d+)$/);
  return { child, attempt: Number(attempt), token: Number(token) };
}

test('a runner killed mid-run: with retries 1 another process runs attempt 2 with a larger token', async () => {
  const tick = new Date(Date.UTC(2031, 5, 1));
  const doomed = await hangingRunner('killed', tick, 1);
  expect(doomed.attempt).toBe(1);
  const manager = await locks.manager({ owner: 'survivor' });
  const seen: Array<[number, number]> = [];
  // Waiting on the tick's lease already when the runner dies (its default wait outlasts a ttl).
  const result = manager.runOnce(
    'killed',
    tick,
    (run) => {
      seen.push([run.attempt, run.token]);
      return 'recovered';
    },
    { ttl: '2s', retries: 1 },
  );
  children.kill(doomed.child, 'SIGKILL');
  await doomed.child.exited;
  expect(await result).toEqual({ ran: true, result: 'recovered' });
  expect(seen).toEqual([[2, expect.any(Number)]]);
  expect(seen[0]![1]).toBeGreaterThan(doomed.token);
  expect(await manager.runs('killed')).toEqual([
    expect.objectContaining({ attempt: 2, token: seen[0]![1], owner: 'survivor', outcome: 'done' }),
  ]);
});

test('a runner killed mid-run: with retries 0 the tick is recorded lost, and nobody runs it', async () => {
  const tick = new Date(Date.UTC(2031, 5, 2));
  const doomed = await hangingRunner('killed-once', tick, 0);
  const manager = await locks.manager({ owner: 'survivor' });
  let called = false;
  const result = manager.runOnce('killed-once', tick, () => (called = true), { ttl: '2s' });
  children.kill(doomed.child, 'SIGKILL');
  expect(await result).toEqual({ ran: false, outcome: 'lost' });
  expect(called).toBe(false);
  expect(await manager.runs('killed-once')).toEqual([
    expect.objectContaining({ attempt: 1, token: doomed.token, owner: 'doomed', outcome: 'lost' }),
  ]);
});

test('a process starting takes up an older tick left running by a killed runner, though a later tick is settled', async () => {
  // The runner of T was killed, and so was every peer that knew of T; a later tick was done since.
  // The process that starts next must settle T (here: attempt 2 runs), not only the newest record.
  const now = Math.floor(Date.now() / 1000) * 1000;
  const old = new Date(now - 20_000);
  const doomed = await hangingRunner('orphaned', old, 1);
  children.kill(doomed.child, 'SIGKILL');
  await doomed.child.exited;
  const manager = await locks.manager({ owner: 'newcomer' });
  expect(await manager.runOnce('orphaned', new Date(now - 10_000), () => 'later')).toEqual({
    ran: true,
    result: 'later',
  });
  const runs: Array<[number, number]> = [];
  // Once a year: nothing but the records brings T back.
  const job = manager.schedule(
    'orphaned',
    '0 0 1 1 *',
    (run) => void runs.push([run.scheduledAt.getTime(), run.attempt]),
    {
      ttl: '2s',
      retries: 1,
    },
  );
  const done = await new Promise<number>((resolve) => job.on('done', (run) => resolve(run.scheduledAt.getTime())));
  await job.stop();
  expect(done).toBe(old.getTime());
  expect(runs).toEqual([[old.getTime(), 2]]);
  const records = await manager.runs('orphaned');
  expect(records.map((r) => [r.scheduledAt.getTime(), r.outcome, r.attempt])).toEqual([
    [now - 10_000, 'done', 1],
    [old.getTime(), 'done', 2],
  ]);
});
