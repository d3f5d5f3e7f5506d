// `mdlock run --limit N` (a semaphore's permit instead of the lock), and semaphores in `mdlock ls`
// and `mdlock inspect`, in real processes against the real engine.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { mongo } from 'mongoose';
import { lockFixture } from '../helpers/locks';
import { mdlockRunner, node } from '../helpers/mdlock';
import { waitFor } from '../helpers/wait';

const locks = lockFixture({ ttl: '30s' });
const mdlock = mdlockRunner(() => locks.db.name);

/** A semaphore as stored (the fields this file reads). */
interface SemaphoreDoc {
  _id: string;
  limit: number;
  holders: { owner: string; token: number; expiresAt: Date }[];
}

/** The semaphores as stored, read directly. */
const semaphores = async () => (await locks.documents('locks.semaphores')) as unknown as mongo.Collection<SemaphoreDoc>;

test('run --limit 2: three mdlock processes, at most two commands at once; ls and inspect show the semaphore', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdlock-sem-'));
  const log = path.join(dir, 'log');
  const go = path.join(dir, 'go');
  // Logs when it starts and ends (with its token), and ends once the test creates `go`.
  const command = node(`
    const fs = require('fs');
    const token = process.env.MDLOCK_TOKEN;
    fs.appendFileSync(${JSON.stringify(log)}, 'start ' + token + ' ' + Date.now() + '\\n');
    console.log('ready', token);
    setInterval(() => {
      if (!fs.existsSync(${JSON.stringify(go)})) return;
      fs.appendFileSync(${JSON.stringify(log)}, 'end ' + token + ' ' + Date.now() + '\\n');
      process.exit(0);
    }, 20);
  `);
  const children = [1, 2, 3].map((i) =>
    mdlock.start(['run', 'sem-job', '--limit', '2', '--wait', '20s', '-v', '--owner', `w${i}`, '--', ...command]),
  );
  const running = () => children.filter((child) => child.lines.some((line) => line.startsWith('ready')));
  const waiting = () => children.filter((child) => child.stderr().includes('waiting up to 20s'));
  await waitFor(() => running().length === 2 && waiting().length === 1, { what: 'two holders and one waiter' });
  const [waiter] = waiting();
  expect(running()).not.toContain(waiter);

  const doc = await (await semaphores()).findOne({ _id: 'sem-job' });
  expect(doc).toMatchObject({ limit: 2 });
  const holders = doc!.holders.sort((a, b) => a.token - b.token);
  expect(holders).toHaveLength(2);
  const who = holders.map((h) => `${h.owner} (token ${h.token})`).join(', ');
  expect(waiter!.stderr()).toBe(
    `mdlock: semaphore "sem-job" is busy: 2 of 2 permits held by ${who}; waiting up to 20s\n`,
  );
  // Each command got its own permit's token.
  const tokens = running().map((child) => Number(child.lines[0]!.split(' ')[1]));
  expect(tokens.sort((a, b) => a - b)).toEqual(holders.map((h) => h.token));

  const table = await mdlock.run(['ls', 'sem-*', '--held']);
  expect(table).toMatchObject({ code: 0, stderr: '' });
  expect(table.stdout.trimEnd().split('\n')).toEqual([
    expect.stringMatching(/^NAME\s+OWNER\s+TOKEN\s+STATE\s+EXPIRES IN$/),
    expect.stringMatching(/^sem-job\s+limit 2\s+-\s+2 held\s+-$/),
    ...holders.map((h): unknown =>
      expect.stringMatching(new RegExp(`^  permit\\s+${h.owner}\\s+${h.token}\\s+held\\s+\\d+s$`)),
    ),
  ]);
  const rows = JSON.parse((await mdlock.run(['ls', '--json'])).stdout) as unknown[];
  expect(rows).toEqual([
    {
      kind: 'semaphore',
      name: 'sem-job',
      limit: 2,
      held: true,
      holders: holders.map((h) => ({
        owner: h.owner,
        token: h.token,
        acquiredAt: expect.any(String),
        expiresAt: expect.any(String), // renewed meanwhile, perhaps
        expiresIn: expect.any(Number),
      })),
      queued: 0,
    },
  ]);
  const shown = await mdlock.run(['inspect', 'sem-job']);
  expect(shown).toMatchObject({ code: 0, stderr: '' });
  expect(shown.stdout).toMatch(/^name {5}sem-job\nkind {5}semaphore\nlimit {4}2\nstate {4}2 held\n/);
  for (const h of holders) {
    expect(shown.stdout).toMatch(
      new RegExp(`\nholder {3}${h.owner}, token ${h.token}, acquired \\S+, expires \\S+ \\(in \\d+s\\)\n`),
    );
  }

  fs.writeFileSync(go, '');
  const exits = await Promise.all(children.map((child) => child.exited));
  expect(exits).toEqual([0, 1, 2].map(() => ({ code: 0, signal: null })));
  expect(waiter!.stderr()).toMatch(
    /waiting up to 20s\nmdlock: acquired a permit of semaphore "sem-job" \(token \d+\)\nmdlock: releasing a permit of semaphore "sem-job"\nmdlock: released a permit of semaphore "sem-job"\n$/,
  );

  // At most two commands ran at once, by their own clocks.
  const events = fs
    .readFileSync(log, 'utf8')
    .trim()
    .split('\n')
    .map((line) => line.split(' '))
    .map(([kind, token, at]) => ({ kind, token: Number(token), at: Number(at) }));
  expect(events.filter((e) => e.kind === 'start')).toHaveLength(3);
  expect(new Set(events.map((e) => e.token)).size).toBe(3);
  let inside = 0;
  let most = 0;
  // Ends before starts at the same millisecond: a permit freed, then taken.
  for (const e of events.sort((a, b) => a.at - b.at || (a.kind === 'end' ? -1 : 1))) {
    inside += e.kind === 'start' ? 1 : -1;
    most = Math.max(most, inside);
  }
  expect(most).toBe(2);

  expect((await (await semaphores()).findOne({ _id: 'sem-job' }))!.holders).toEqual([]); // all released
  expect(await mdlock.run(['ls', '--held'])).toMatchObject({ stdout: 'no held locks in collection "locks"\n' });
  fs.rmSync(dir, { recursive: true, force: true });
});

test('run --limit: a full semaphore exits 75; another stored limit exits 1; a lost permit stops the command and exits 70', async () => {
  const manager = await locks.manager({ owner: 'holder-1' });
  const permit = await manager.semaphore('full', { limit: 1 }).acquire();
  const busy = await mdlock.run(['run', 'full', '--limit', '1', '--', ...node(`console.log('ran')`)]);
  expect(busy).toMatchObject({
    code: 75,
    stdout: '',
    stderr: `mdlock: semaphore "full" is busy: 1 of 1 permits held by holder-1 (token ${permit.token})\n`,
  });
  await permit.release();
  // Every holder must give the same limit.
  const other = await mdlock.run(['run', 'full', '--limit', '2', '--', ...node(`console.log('ran')`)]);
  expect(other).toMatchObject({ code: 1, stdout: '' });
  expect(other.stderr).toMatch(
    /^mdlock: .*semaphore "full" is stored with a limit of 1, and declared here with a limit of 2/,
  );

  const child = mdlock.start([
    'run',
    'lossy',
    '--limit',
    '3',
    '--heartbeat',
    '500ms',
    '--',
    ...node(`
    process.on('SIGTERM', () => { console.log('got SIGTERM'); process.exit(0); });
    console.log('ready', process.env.MDLOCK_TOKEN);
    setInterval(() => {}, 1000);
  `),
  ]);
  await child.line(/^ready \d+$/);
  await (await semaphores()).updateOne({ _id: 'lossy' }, { $set: { holders: [] } }); // as if it expired
  expect(await child.exited).toEqual({ code: 70, signal: null });
  expect(child.lines).toEqual([expect.stringMatching(/^ready \d+$/), 'got SIGTERM']);
  expect(child.stderr()).toMatch(/^mdlock: lost its permit of semaphore "lossy" \(\w+\): stopping the command/);
});

test('run --limit must be a whole number from 1: otherwise exit 64 naming --limit', async () => {
  for (const bad of ['0', '1.5']) {
    // More bad values in spec/unit/cli-args.spec.ts: each start of mdlock takes a second or two.
    const result = await mdlock.run(['run', 'job', `--limit=${bad}`, '--', 'true']);
    expect(result).toMatchObject({ code: 64, stdout: '' });
    expect(result.stderr).toMatch(/^mdlock: --limit must be .*\(usage: mdlock run <name> \[--limit N\]/);
  }
});
