// `mdlock run` in real processes against the real engine: exit codes, the fencing token, a busy
// lock, a lost lease stopping the command, signals passed on, and the lock released on the way out.
import fs from 'node:fs';
import { lockFixture } from '../helpers/locks';
import { mdlockRunner, node } from '../helpers/mdlock';
import { alive } from '../helpers/processes';
import { waitFor } from '../helpers/wait';

const locks = lockFixture({ ttl: '30s' });
const mdlock = mdlockRunner(() => locks.db.name);

/** A command that says it is ready (with its pid), and reports SIGTERM (then exits 0, or ignores it). */
const patient = (onTerm: 'exit' | 'ignore') =>
  node(`
    process.on('SIGTERM', () => { console.log('got SIGTERM'); ${onTerm === 'exit' ? 'process.exit(0)' : ''} });
    console.log('ready', process.env.MDLOCK_TOKEN, 'pid', process.pid);
    setInterval(() => {}, 1000);
  `);

/** The process group of `pid` (Linux: /proc). */
function groupOf(pid: number): number {
  return Number(fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[2]);
}

/** True while a watcher process (`node -e <script> <pgid> <grace>`) watches the group of `pid`. */
function watcherOf(pid: number): boolean {
  const group = String(groupOf(pid));
  return fs.readdirSync('/proc').some((entry) => {
    if (!/^\d+$/.test(entry)) return false;
    try {
      const argv = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      return argv[1] === '-e' && argv[2]!.includes('process.stdin') && argv[3] === group && alive(Number(entry));
    } catch {
      return false; // gone meanwhile
    }
  });
}

test('runs the command holding the lock, gives it the fencing token, exits with its code and releases', async () => {
  const docs = await locks.documents();
  const script = node(`console.log(process.env.FENCE); process.exit(3)`);
  const result = await mdlock.run([
    'run',
    'token-job',
    '--token-env',
    'FENCE',
    '--owner',
    'cron@web1',
    '--',
    ...script,
  ]);
  expect(result).toMatchObject({ code: 3, signal: null, stderr: '' });
  const doc = await docs.findOne({ _id: 'token-job' });
  expect(doc).toMatchObject({ owner: 'cron@web1', leaseId: null }); // released
  expect(result.stdout.trim()).toBe(String(doc!.token));

  const ok = await mdlock.run(['run', 'token-job', '--', ...node('console.log(process.env.MDLOCK_TOKEN)')]);
  expect(ok.code).toBe(0);
  expect(Number(ok.stdout.trim())).toBeGreaterThan(doc!.token);
});

test('a busy lock: exit code 75 at once, or after --wait; --wait forever runs once the lock is freed', async () => {
  const holder = await locks.manager({ owner: 'holder-1' });
  const held = await holder.acquire('busy-job');
  const ran = node(`console.log('ran')`);

  const busy = await mdlock.run(['run', 'busy-job', '--', ...ran]);
  expect(busy).toMatchObject({ code: 75, stdout: '' });
  expect(busy.stderr).toBe(`mdlock: lock "busy-job" is busy: held by holder-1 (token ${held.token})\n`);

  const quiet = await mdlock.run(['run', 'busy-job', '--quiet', '--', ...ran]);
  expect(quiet).toMatchObject({ code: 75, stdout: '', stderr: '' });

  const waited = await mdlock.run(['run', 'busy-job', '--wait', '1500ms', '--', ...ran]);
  expect(waited).toMatchObject({ code: 75, stdout: '' });
  expect(waited.stderr).toMatch(/^mdlock: lock "busy-job" is busy after waiting 1\.5s: held by holder-1/);
  expect(waited.took).toBeGreaterThanOrEqual(1500);

  const forever = mdlock.start(['run', 'busy-job', '--wait', 'forever', '--verbose', '--', ...ran]);
  await waitFor(() => forever.stderr().includes('waiting'), { what: 'mdlock to wait' });
  expect(forever.stderr()).toBe(
    `mdlock: lock "busy-job" is busy: held by holder-1 (token ${held.token}); waiting as long as it takes\n`,
  );
  await held.release();
  expect(await forever.exited).toEqual({ code: 0, signal: null });
  expect(forever.stdout()).toBe('ran\n');
  expect(forever.stderr()).toMatch(
    /waiting as long as it takes\nmdlock: acquired "busy-job" \(token \d+\)\nmdlock: releasing "busy-job"\nmdlock: released "busy-job"\n$/,
  );
});

test('when the lease is lost, the command gets SIGTERM, and mdlock exits 70', async () => {
  const operator = await locks.manager();
  const child = mdlock.start(['run', 'lost-job', '--ttl', '30s', '--heartbeat', '500ms', '--', ...patient('exit')]);
  mdlock.adopt(Number((await child.line(/^ready \d+ pid (\d+)$/))[1]));
  await operator.forceRelease('lost-job');
  expect(await child.exited).toEqual({ code: 70, signal: null });
  expect(child.lines).toEqual([expect.stringMatching(/^ready \d+ pid \d+$/), 'got SIGTERM']);
  // The reason is the library's: `freed` once it tells a forced release from a lock taken by another holder.
  expect(child.stderr()).toMatch(
    /^mdlock: lost the lock "lost-job" \((taken|freed)\): stopping the command \(SIGKILL after 3\.0s\)\n$/,
  );
});

test('the grace is bounded by the lease margin: a command that ignores SIGTERM is killed, with its process group, ttl / 10 after a loss', async () => {
  const operator = await locks.manager();
  // A shell that starts a grandchild of mdlock, which must be stopped too, then the stubborn command.
  const [nodePath, , script] = patient('ignore');
  const command = ['sh', '-c', 'sleep 300 & echo "grandchild $!"; "$0" -e "$1"', nodePath!, script!];
  const options = ['--ttl', '20s', '--heartbeat', '500ms', '--grace', '1m']; // the grace is cut to 2 s
  const child = mdlock.start(['run', 'stubborn-job', ...options, '--', ...command]);
  const [, grandchild] = await child.line(/^grandchild (\d+)$/);
  mdlock.adopt(Number(grandchild));
  mdlock.adopt(Number((await child.line(/^ready \d+ pid (\d+)$/))[1]));
  const lostAt = performance.now();
  await operator.forceRelease('stubborn-job');
  await child.line(/^got SIGTERM$/);
  expect(await child.exited).toEqual({ code: 70, signal: null });
  const took = performance.now() - lostAt;
  expect(took).toBeGreaterThanOrEqual(2000); // the bounded grace period
  expect(took).toBeLessThan(40_000); // far from the minute asked for
  expect(child.stderr()).toMatch(/stopping the command \(SIGKILL after 2\.0s\)\n$/);
  await waitFor(() => !alive(Number(grandchild)), { what: 'the grandchild to be gone' });
}, 60_000);

test('the command ends when mdlock is killed (SIGKILL): its watcher stops the process group', async () => {
  const child = mdlock.start(['run', 'orphaned', '--', ...patient('exit')]);
  const pid = Number((await child.line(/^ready \d+ pid (\d+)$/))[1]);
  mdlock.adopt(pid);
  await waitFor(() => watcherOf(pid), { what: 'the watcher to start' });
  child.process.kill('SIGKILL');
  expect(await child.exited).toEqual({ code: null, signal: 'SIGKILL' });
  await waitFor(() => !alive(pid), { what: 'the command to be gone', timeout: 10_000 });
  // Asked to stop first (its stdout is still the pipe this test reads).
  await waitFor(() => child.lines.includes('got SIGTERM'), { what: 'the command to report SIGTERM' });

  // A command that ignores SIGTERM is killed after the grace.
  const stubborn = mdlock.start(['run', 'orphaned-stubborn', '--ttl', '10s', '--', ...patient('ignore')]);
  const stubbornPid = Number((await stubborn.line(/^ready \d+ pid (\d+)$/))[1]);
  mdlock.adopt(stubbornPid);
  stubborn.process.kill('SIGKILL');
  await stubborn.exited;
  await waitFor(() => !alive(stubbornPid), { what: 'the stubborn command to be gone', timeout: 15_000 });
  expect(stubborn.lines).toContain('got SIGTERM');
});

test('a command that exits leaves its background processes alone: the watcher stands down', async () => {
  const result = await mdlock.run(['run', 'background', '--', 'sh', '-c', 'sleep 300 & echo "background $!"']);
  expect(result.code).toBe(0);
  const background = Number(/^background (\d+)$/m.exec(result.stdout)![1]);
  mdlock.adopt(background);
  // mdlock has exited and closed its end of the watcher's pipe: a watcher not disarmed would act now.
  await waitFor(() => !watcherOf(background), { what: 'no watcher left' });
  expect(alive(background)).toBe(true);
  process.kill(background, 'SIGKILL');
});

test('signals sent to mdlock reach the command, and the lock is released whatever the exit', async () => {
  const watcher = await locks.manager();
  const polite = mdlock.start(['run', 'signalled', '--', ...patient('exit')]);
  mdlock.adopt(Number((await polite.line(/^ready \d+ pid (\d+)$/))[1]));
  expect(await watcher.inspect('signalled')).toMatchObject({ held: true });
  polite.process.kill('SIGTERM');
  expect(await polite.exited).toEqual({ code: 0, signal: null }); // the command's own exit code
  expect(polite.lines).toContain('got SIGTERM');
  expect(await watcher.inspect('signalled')).toMatchObject({ held: false });

  const interrupted = mdlock.start([
    'run',
    'signalled',
    '--',
    ...node(`console.log('ready', process.pid); setInterval(() => {}, 1000)`),
  ]);
  mdlock.adopt(Number((await interrupted.line(/^ready (\d+)$/))[1]));
  interrupted.process.kill('SIGINT');
  expect(await interrupted.exited).toEqual({ code: 130, signal: null }); // 128 + SIGINT, as shells say
  expect(await watcher.inspect('signalled')).toMatchObject({ held: false });

  // Interrupted while waiting for a busy lock: never runs the command.
  const held = await watcher.acquire('signalled');
  const waiting = mdlock.start(['run', 'signalled', '--wait', 'forever', '-v', '--', ...node(`console.log('ran')`)]);
  await waitFor(() => waiting.stderr().includes('waiting'), { what: 'mdlock to wait' });
  waiting.process.kill('SIGTERM');
  expect(await waiting.exited).toEqual({ code: 143, signal: null });
  expect(waiting.stdout()).toBe('');
  expect((await watcher.inspect('signalled'))!.token).toBe(held.token); // it never took the lock
  await held.release();
});

test('a command that cannot be started: 127 when not found, 126 when not executable; the lock is released', async () => {
  const missing = await mdlock.run(['run', 'no-command', '--', '/nonexistent/command']);
  expect(missing).toMatchObject({
    code: 127,
    stderr: 'mdlock: cannot run "/nonexistent/command": command not found\n',
  });
  const notExecutable = await mdlock.run(['run', 'no-command', '--', __filename]);
  expect(notExecutable.code).toBe(126);
  expect(await (await locks.manager()).inspect('no-command')).toMatchObject({ held: false });
});
