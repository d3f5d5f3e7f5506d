// `mdlock top` in a real terminal: tmux (its own server, on a socket of this file's) runs it in a
// detached session of a fixed size; the test reads the screen with capture-pane, takes locks
// from another connection, and types keys with send-keys. Also `--once`, plain text for scripts.
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { lockFixture } from '../helpers/locks';
import { mdlockRunner } from '../helpers/mdlock';
import { databaseUri } from '../helpers/mongo';
import { root } from '../helpers/processes';
import { waitFor } from '../helpers/wait';

const locks = lockFixture({ ttl: '30s' });
const mdlock = mdlockRunner(() => locks.db.name);

const SOCKET = `mdlock-top-${process.pid}-${randomBytes(3).toString('hex')}`;
const run = promisify(execFile);
const tmux = async (...args: string[]) => (await run('tmux', ['-L', SOCKET, ...args], { encoding: 'utf8' })).stdout;

beforeAll(() => {
  const found = spawnSync('tmux', ['-V'], { encoding: 'utf8' });
  if (found.error || found.status !== 0) {
    throw new Error(
      'spec/cli/cli-top.spec.ts runs `mdlock top` in a terminal under tmux: install tmux (apt install tmux)',
    );
  }
});

afterAll(async () => {
  // Whatever happened: the server and every session in it go (an error means none was left), and
  // its socket file, which tmux leaves behind.
  await tmux('kill-server').catch(() => {});
  const dir = process.env.TMUX_TMPDIR ?? '/tmp';
  fs.rmSync(path.join(dir, `tmux-${process.getuid!()}`, SOCKET), { force: true });
});

/** A shell word. */
const quote = (word: string) => `'${word.replace(/'/g, `'\\''`)}'`;

/** The `mdlock top` command line, through tsx as the other specs run mdlock. */
function topCommand(args: readonly string[]): string {
  const argv = [process.execPath, '--import', 'tsx', path.join(root, 'lib/cli/main.ts'), 'top', ...args];
  return argv.map(quote).join(' ');
}

/** Starts `shell` in a detached 120×40 session `name`, with this file's database as MONGODB_URI. */
async function session(name: string, shell: string): Promise<void> {
  const env = ['-e', `MONGODB_URI=${databaseUri(locks.db.name)}`, '-e', 'NO_COLOR=1'];
  await tmux('new-session', '-d', '-s', name, '-x', '120', '-y', '40', ...env, '-c', root, shell);
}

const screen = (name: string) => tmux('capture-pane', '-p', '-t', name);
const format = async (name: string, what: string) => (await tmux('display-message', '-p', '-t', name, what)).trim();
const alive = (name: string) =>
  tmux('has-session', '-t', name).then(
    () => true,
    () => false,
  );

/** The screen once `test` passes on it; fails after `timeout` ms showing the last screen. */
async function screenWhere(name: string, test: (text: string) => boolean, what: string, timeout = 10_000) {
  let last = '';
  try {
    return await waitFor(
      async () => {
        last = await screen(name);
        return test(last) ? last : null;
      },
      { timeout, interval: 50, what },
    );
  } catch (error) {
    throw new Error(`${(error as Error).message}; the screen:\n${last}`, { cause: error });
  }
}

test('a lock taken elsewhere shows within a refresh; keys sort; q quits with 0 and the session ends', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdlock-top-'));
  const exit = path.join(dir, 'exit');
  await session('live', `${topCommand([])}; echo $? > ${quote(exit)}`);
  // Started (tsx compiles on the way: a generous first deadline), on the alternate screen.
  await screenWhere('live', (text) => text.includes('nothing held'), 'the first frame', 30_000);
  expect(await format('live', '#{alternate_on}')).toBe('1');
  const first = await screen('live');
  expect(first).toMatch(/^mdlock top: locks at \S+: 0 locks held, 0 semaphores, 0 read-write locks, 0 jobs\n/);
  expect(first).toContain('every 1.0s, sorted by name; keys: n name, t time left, k kind, q quit');

  const manager = await locks.manager({ owner: 'tester' });
  const lease = await manager.acquire('deploy');
  const taken = performance.now();
  const shown = await screenWhere('live', (text) => /^lock +deploy +tester /m.test(text), 'the lock on screen');
  const after = performance.now() - taken;
  // The claim is a refresh every second; the margin is for a loaded machine.
  expect(after).toBeLessThan(10_000);
  expect(shown).toMatch(new RegExp(`^lock +deploy +tester +${lease.token} +\\[#{9,10}\\.{0,1}\\] \\d+s`, 'm'));

  // A second lock, with less time left: `t` puts it first, `n` puts names back in order.
  const short = await manager.acquire('zeta', { ttl: '20s' });
  await screenWhere('live', (text) => text.includes('zeta'), 'the second lock');
  await tmux('send-keys', '-t', 'live', 't');
  const byTime = await screenWhere('live', (text) => text.includes('sorted by time left'), 'sorting by time');
  expect(byTime.indexOf('zeta')).toBeLessThan(byTime.indexOf('deploy'));
  await tmux('send-keys', '-t', 'live', 'n');
  const byName = await screenWhere('live', (text) => text.includes('sorted by name'), 'sorting by name');
  expect(byName.indexOf('deploy')).toBeLessThan(byName.indexOf('zeta'));
  await short.release();

  await tmux('send-keys', '-t', 'live', 'q');
  await waitFor(async () => !(await alive('live')), { timeout: 10_000, what: 'the session to end' });
  expect(fs.readFileSync(exit, 'utf8')).toBe('0\n');
  await lease.release();
  fs.rmSync(dir, { recursive: true, force: true });
}, 90_000);

test('SIGTERM ends top with 143 and restores the terminal: the main screen back, the cursor shown', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdlock-top-'));
  const [exit, modes] = [path.join(dir, 'exit'), path.join(dir, 'stty')];
  // The shell stays after top, so that the terminal top left behind can be read.
  const after = `code=$?; stty -a > ${quote(modes)}; echo $code > ${quote(exit)}; sleep 60`;
  await session('signalled', `${topCommand(['--interval', '200ms'])}; ${after}`);
  await screenWhere('signalled', (text) => text.startsWith('mdlock top:'), 'the first frame', 30_000);
  expect(await format('signalled', '#{alternate_on} #{cursor_flag}')).toBe('1 0');
  const shell = await format('signalled', '#{pane_pid}');
  const pid = Number((await run('ps', ['-o', 'pid=', '--ppid', shell], { encoding: 'utf8' })).stdout.trim());
  process.kill(pid, 'SIGTERM');
  await waitFor(() => fs.existsSync(exit) && fs.readFileSync(exit, 'utf8') !== '', { what: 'top to exit' });
  expect(fs.readFileSync(exit, 'utf8')).toBe('143\n');
  expect(await format('signalled', '#{alternate_on} #{cursor_flag}')).toBe('0 1');
  // Out of raw mode: lines and echo again.
  expect(fs.readFileSync(modes, 'utf8')).toMatch(/(^|\s)icanon\s/);
  expect(fs.readFileSync(modes, 'utf8')).toMatch(/(^|\s)echo\s/);
  await tmux('kill-session', '-t', 'signalled');
  fs.rmSync(dir, { recursive: true, force: true });
}, 90_000);

test('--once: one plain frame with a lock, a semaphore, a read-write lock, a leader and a job; no escape codes', async () => {
  const manager = await locks.manager({ owner: 'once', collection: 'once' });
  const lock = await manager.acquire('backup');
  const permit = await manager.semaphore('encode', { limit: 3 }).acquire();
  const read = await manager.readWriteLock('catalog').read();
  const election = manager.elect('scheduler');
  const leader = await new Promise<number>((resolve) => election.once('elected', (lease) => resolve(lease.token!)));
  const tick = new Date('2030-01-01T03:00:00.000Z');
  await manager.runOnce('nightly', tick, () => 'done');

  const result = await mdlock.run(['top', '--once', '--collection', 'once']);
  expect(result).toMatchObject({ code: 0, stderr: '' });
  expect(result.stdout).not.toMatch(/\x1b/); // eslint-disable-line no-control-regex
  const lines = result.stdout.trimEnd().split('\n');
  expect(lines[0]).toMatch(/^mdlock top: once at \S+Z: 2 locks held, 1 semaphore, 1 read-write lock, 1 job$/);
  expect(lines[1]).toBe('');
  const bar = '\\[#*\\.*\\] \\d+s';
  expect(lines.slice(2)).toEqual([
    expect.stringMatching(/^KIND +NAME +HOLDER +TOKEN +TIME LEFT +INFO$/),
    expect.stringMatching(new RegExp(`^lock +backup +once +${lock.token} +${bar}$`)),
    expect.stringMatching(/^rwlock +catalog +1 read +- *$/),
    expect.stringMatching(new RegExp(`^ +read +once +${read.token} +${bar}$`)),
    expect.stringMatching(/^semaphore +encode +1\/3 held +- *$/),
    expect.stringMatching(new RegExp(`^ +permit +once +${permit.token} +${bar}$`)),
    expect.stringMatching(/^job +nightly +once +\d+ +done, tick 2030-01-01T03:00:00.000Z$/),
    expect.stringMatching(new RegExp(`^leader +scheduler +once +${leader} +${bar}$`)), // the election's lock
  ]);
  // Each bar is the part of its ttl (30 s) the hold has left, in tenths.
  for (const line of lines.filter((l) => l.includes('['))) {
    const [, filled, dots, seconds] = /\[(#*)(\.*)\] (\d+)s/.exec(line)!;
    expect(filled!.length + dots!.length).toBe(10);
    expect(Math.abs(filled!.length - Number(seconds) / 3)).toBeLessThanOrEqual(1);
  }
  await election.close();
});

test('stdout not a terminal: plain frames, one per interval, until a signal (exit 143 on SIGTERM)', async () => {
  const child = mdlock.start(['top', '--interval', '200ms']);
  await waitFor(() => child.stdout().split('mdlock top: ').length > 3, { what: 'three frames' });
  child.process.kill('SIGTERM');
  expect(await child.exited).toEqual({ code: 143, signal: null });
  expect(child.stdout()).not.toMatch(/\x1b/); // eslint-disable-line no-control-regex
  // Each frame ends with an empty line.
  const frames = child.stdout().split(/\n\n(?=mdlock top: )/);
  expect(frames.length).toBeGreaterThanOrEqual(3);
  for (const frame of frames) expect(frame).toMatch(/^mdlock top: locks at \S+Z: [^\n]*\n\nnothing held\n*$/);
  expect(child.stderr()).toBe('');
});
