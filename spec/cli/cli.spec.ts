// `mdlock ls`, `inspect`, `release --force`, help, and its one-line errors, in real processes
// against the real engine. (`mdlock run` is in cli-run.spec.ts.)
import net from 'node:net';
import { version } from '../../package.json';
import type { LeaseLostError } from '../../lib/index';
import { lockFixture } from '../helpers/locks';
import { mdlockRunner, node } from '../helpers/mdlock';
import { nextEvent, waitFor } from '../helpers/wait';

const locks = lockFixture({ ttl: '30s' });
const mdlock = mdlockRunner(() => locks.db.name);

test('--help prints the usage and exits 0', async () => {
  const help = await mdlock.run(['--help']);
  expect(help).toMatchObject({ code: 0, stderr: '' });
  expect(help.stdout).toMatch(/^mdlock: distributed locks on MongoDB/);
  const commands = ['mdlock run <name>', 'mdlock ls', 'mdlock inspect <name>', 'mdlock release --force <name>'];
  for (const command of [...commands, 'mdlock runs <name> [--limit 20]']) {
    expect(help.stdout).toContain(command);
  }
  const run = await mdlock.run(['run', '--help']);
  expect(run.stdout).toMatch(/^usage: mdlock run <name>.*\n[\s\S]*--token-env/);
});

test('--version prints the package version and exits 0', async () => {
  expect(await mdlock.run(['--version'], { MONGODB_URI: '' })).toMatchObject({
    code: 0,
    stdout: `${version}\n`,
    stderr: '',
  });
  expect(version).toMatch(/^\d+\.\d+\.\d+/);
});

test('ls filters: a glob pattern taken literally but for *, and --held', async () => {
  const manager = await locks.manager({ owner: 'filtered', collection: 'filtered' });
  const held = await Promise.all(['job:a', 'job.x', 'jobXa', 'other'].map((name) => manager.acquire(name)));
  await (await manager.acquire('job:b')).release();
  const names = async (...args: string[]) => {
    const result = await mdlock.run(['ls', ...args, '--json', '--collection', 'filtered']);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    return (JSON.parse(result.stdout) as { name: string }[]).map((lock) => lock.name);
  };
  expect(await names('job:*')).toEqual(['job:a', 'job:b']);
  expect(await names('job:*', '--held')).toEqual(['job:a']);
  expect(await names('job.*')).toEqual(['job.x']); // the dot is a dot
  expect(await names('*a')).toEqual(['job:a', 'jobXa']);
  expect(await names('other')).toEqual(['other']);
  expect(await names('--held')).toEqual(['job.x', 'job:a', 'jobXa', 'other']);

  const table = await mdlock.run(['ls', 'job:*', '--held', '--collection', 'filtered']);
  expect(table.stdout.trimEnd().split('\n')).toEqual([
    expect.stringMatching(/^NAME\s+OWNER/),
    expect.stringMatching(/^job:a\s+filtered\s+\d+\s+held\s+\d+s$/),
  ]);
  expect(await mdlock.run(['ls', 'nothing*', '--collection', 'filtered'])).toMatchObject({
    code: 0,
    stdout: 'no locks matching "nothing*" in collection "filtered"\n',
  });
  await Promise.all(held.map((lease) => lease.release()));
  expect(await mdlock.run(['ls', '--held', '--collection', 'filtered'])).toMatchObject({
    stdout: 'no held locks in collection "filtered"\n',
  });
});

test('--owner is taken literally, even when it looks like an aggregation variable', async () => {
  const where = ['--collection', 'owners'];
  const command = node('console.log("ran")');
  const ran = await mdlock.run(['run', 'dollar-owner', '--owner', '$$NOW', ...where, '--', ...command]);
  expect(ran).toMatchObject({ code: 0, stdout: 'ran\n', stderr: '' });
  const inspected = await mdlock.run(['inspect', 'dollar-owner', '--json', ...where]);
  expect(JSON.parse(inspected.stdout)).toMatchObject({ name: 'dollar-owner', owner: '$$NOW', held: false });
  expect((await mdlock.run(['ls', ...where])).stdout).toMatch(/^dollar-owner\s+\$\$NOW\s+\d+\s+free\s+-$/m);
});

test('ls: a table of locks with owner, token, held or free, and time left; --json for scripts', async () => {
  const empty = await mdlock.run(['ls']);
  expect(empty).toMatchObject({ code: 0, stdout: 'no locks in collection "locks"\n' });
  expect(JSON.parse((await mdlock.run(['ls', '--json'])).stdout)).toEqual([]);

  const manager = await locks.manager({ owner: 'worker-7' });
  const held = await manager.acquire('b-held', { ttl: '40s' });
  const freed = await manager.acquire('a-freed');
  const freedToken = freed.token;
  await freed.release();

  const table = await mdlock.run(['ls']);
  expect(table.code).toBe(0);
  const lines = table.stdout.trimEnd().split('\n');
  expect(lines[0]).toMatch(/^NAME\s+OWNER\s+TOKEN\s+STATE\s+EXPIRES IN$/);
  expect(lines[1]).toMatch(new RegExp(`^a-freed\\s+worker-7\\s+${freedToken}\\s+free\\s+-$`));
  const [, left] = new RegExp(`^b-held\\s+worker-7\\s+${held.token}\\s+held\\s+(\\d+)s$`).exec(lines[2]!)!;
  expect(Number(left)).toBeGreaterThan(20); // renewed every 13 s, for 40 s each time
  expect(Number(left)).toBeLessThanOrEqual(40);

  const rows = JSON.parse((await mdlock.run(['ls', '--json'])).stdout) as Record<string, unknown>[];
  expect(rows).toEqual([
    {
      name: 'a-freed',
      owner: 'worker-7',
      token: freedToken,
      held: false,
      acquiredAt: expect.any(String),
      expiresAt: expect.any(String),
      expiresIn: null,
      queued: 0,
    },
    expect.objectContaining({ name: 'b-held', token: held.token, held: true, expiresIn: expect.any(Number) }),
  ]);
  await held.release();
});

test('inspect shows one lock; a lock with no document exits 1', async () => {
  const manager = await locks.manager({ owner: 'inspected-owner' });
  const lease = await manager.acquire('inspected');
  const shown = await mdlock.run(['inspect', 'inspected']);
  expect(shown).toMatchObject({ code: 0, stderr: '' });
  expect(shown.stdout).toMatch(/^name {5}inspected\nstate {4}held\nowner {4}inspected-owner\n/);
  expect(shown.stdout).toContain(`token    ${lease.token}\n`);
  expect(shown.stdout).toMatch(/\nexpires {2}\S+ \(in \d+s\)\n$/);

  const json = JSON.parse((await mdlock.run(['inspect', 'inspected', '--json'])).stdout) as Record<string, unknown>;
  expect(json).toMatchObject({ name: 'inspected', owner: 'inspected-owner', token: lease.token, held: true });
  expect(new Date(json.expiresAt as string).getTime()).toBe(lease.expiresAt?.getTime());
  await lease.release();

  const missing = await mdlock.run(['inspect', 'never-taken']);
  expect(missing).toMatchObject({
    code: 1,
    stdout: '',
    stderr: 'mdlock: no lock, semaphore or read-write lock named "never-taken" in collection "locks"\n',
  });
  expect(await mdlock.run(['inspect', 'never-taken', '--json'])).toMatchObject({ code: 1, stdout: 'null\n' });
});

test('ls and inspect count the fair waiters queued for a lock, a semaphore and a read-write lock', async () => {
  const holder = await locks.manager({ owner: 'holder' });
  const waiter = await locks.manager({ owner: 'waiter', fair: true });
  const held = [
    await holder.acquire('q-lock'),
    await holder.semaphore('q-sem', { limit: 1 }).acquire(),
    await holder.readWriteLock('q-rw').write(),
  ];
  const abort = new AbortController();
  const waits = [
    waiter.acquire('q-lock', { signal: abort.signal }),
    waiter.acquire('q-lock', { signal: abort.signal }),
    waiter.semaphore('q-sem', { limit: 1 }).acquire({ signal: abort.signal }),
    waiter.readWriteLock('q-rw').read({ signal: abort.signal }),
  ];
  for (const w of waits) w.catch(() => {}); // aborted below
  const queued = async () =>
    (JSON.parse((await mdlock.run(['ls', 'q-*', '--json'])).stdout) as { name: string; queued: number }[]).map(
      (r) => `${r.name} ${r.queued}`,
    );
  await waitFor(async () => (await queued()).join() === 'q-lock 2,q-sem 1,q-rw 1', { what: 'the queues' });
  const table = (await mdlock.run(['ls', 'q-*'])).stdout;
  expect(table).toMatch(/\nq-lock\s+holder\s+\d+\s+held, 2 queued\s+\d+s\n/);
  expect(table).toMatch(/\nq-sem\s+limit 1\s+-\s+1 held, 1 queued\s+-\n/);
  expect(table).toMatch(/\nq-rw\s+rwlock\s+-\s+write, 1 queued\s+-\n/);
  expect((await mdlock.run(['inspect', 'q-lock'])).stdout).toContain('\nqueued   2 fair waiters\n');
  expect((await mdlock.run(['inspect', 'q-sem'])).stdout).toContain('\nqueued   1 fair waiter\n');
  expect((await mdlock.run(['inspect', 'q-rw', '--json'])).stdout).toContain('"queued": 1');
  abort.abort(new Error('done'));
  await Promise.allSettled(waits);
  await waitFor(async () => (await queued()).join() === 'q-lock 0,q-sem 0,q-rw 0', { what: 'the queues emptied' });
  expect((await mdlock.run(['inspect', 'q-lock'])).stdout).not.toContain('queued');
  await Promise.all(held.map((lease) => lease.release()));
});

test('release --force frees a lock whoever holds it: its holder sees the lease lost', async () => {
  const holder = await locks.manager({ owner: 'stuck-worker' });
  const lease = await holder.acquire('stuck', { ttl: '20s', heartbeat: '500ms' });
  const token = lease.token;
  const lost = nextEvent<[LeaseLostError]>(lease, 'lost');
  const released = await mdlock.run(['release', '--force', 'stuck']);
  expect(released).toMatchObject({ code: 0, stderr: '' });
  expect(released.stdout).toBe(`released "stuck" (it was held by stuck-worker, token ${token})\n`);
  expect((await lost)[0]).toMatchObject({ lock: 'stuck' });
  expect(await holder.inspect('stuck')).toMatchObject({ held: false });

  const again = await mdlock.run(['release', '--force', 'stuck', '--json']);
  expect(again.code).toBe(0);
  expect(JSON.parse(again.stdout)).toEqual({
    name: 'stuck',
    released: false,
    owner: 'stuck-worker',
    token,
  });
  expect(await mdlock.run(['release', '--force', 'stuck'])).toMatchObject({
    stdout: '"stuck" was not held: nothing to release\n',
  });
});

test('--collection selects the lock collection', async () => {
  const manager = await locks.manager({ collection: 'mutexes', owner: 'other-collection' });
  const lease = await manager.acquire('elsewhere');
  expect((await mdlock.run(['ls'])).stdout).not.toContain('elsewhere');
  expect((await mdlock.run(['ls', '--collection', 'mutexes'])).stdout).toContain('other-collection');
  await lease.release();
});

test('one-line errors: bad usage and a bad URI exit 64; an unreachable server exits 69 within the connect timeout', async () => {
  const oneLine = (text: string) => expect(text).toMatch(/^mdlock: [^\n]+\n$/);
  const unknown = await mdlock.run(['ls', '--frobnicate']);
  expect(unknown).toMatchObject({ code: 64, stdout: '' });
  expect(unknown.stderr).toBe('mdlock: unknown option --frobnicate (see mdlock --help)\n');
  const missing = await mdlock.run(['run', 'job']);
  expect(missing.code).toBe(64);
  expect(missing.stderr).toMatch(/^mdlock: missing the command to run after "--"/);
  oneLine(missing.stderr);
  const none = await mdlock.run([]);
  expect(none).toMatchObject({
    code: 64,
    stderr: 'mdlock: missing command: run, ls, inspect, release, runs or top (see mdlock --help)\n',
  });
  const noUri = await mdlock.run(['ls'], { MONGODB_URI: '' });
  expect(noUri).toMatchObject({ code: 64 });
  expect(noUri.stderr).toMatch(/^mdlock: no MongoDB URI: pass --uri or set MONGODB_URI/);

  const badUri = await mdlock.run(['ls', '--uri', 'postgres://db/x']);
  expect(badUri.code).toBe(64);
  expect(badUri.stderr).toMatch(/^mdlock: invalid MongoDB URI "postgres:\/\/db\/x": /);
  oneLine(badUri.stderr);

  // Not a host name: refused before any connection is tried (it used to time out, exit 69).
  const spaced = await mdlock.run(['ls', '--uri', 'mongodb://bad uri']);
  expect(spaced).toMatchObject({
    code: 64,
    stdout: '',
    stderr: 'mdlock: invalid MongoDB URI "mongodb://bad uri": "bad uri" is not a host name\n',
  });
  // No database: refused rather than silently using "test".
  const noDatabase = await mdlock.run(['ls', '--uri', 'mongodb://127.0.0.1:27017/?directConnection=true']);
  expect(noDatabase.code).toBe(64);
  expect(noDatabase.stderr).toMatch(/: it names no database: add one, as in mongodb:\/\/host:27017\/app/);
  oneLine(noDatabase.stderr);

  // A port nobody listens on: refused at once. A password in the URI is not printed.
  const port = await freePort();
  const refused = await mdlock.run([
    'ls',
    '--uri',
    `mongodb://ops:s3cret@127.0.0.1:${port}/x`,
    '--connect-timeout',
    '1s',
  ]);
  expect(refused.code).toBe(69);
  expect(refused.stderr).toMatch(
    new RegExp(`^mdlock: cannot reach MongoDB at mongodb://ops:\\*\\*\\*@127\\.0\\.0\\.1:${port}/x within 1000 ms: `),
  );
  expect(refused.stderr).not.toContain('s3cret');
  oneLine(refused.stderr);

  // A server that accepts connections and never answers: bounded by the connect timeout, not a hang.
  const sockets = new Set<net.Socket>();
  const silent = net.createServer((socket) => void sockets.add(socket)); // reads nothing, answers nothing
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  try {
    const { port: silentPort } = silent.address() as net.AddressInfo;
    const hung = await mdlock.run([
      'run',
      'job',
      '--uri',
      `mongodb://127.0.0.1:${silentPort}/x`,
      '--connect-timeout',
      '1500ms',
      '--',
      'true',
    ]);
    expect(hung.code).toBe(69);
    expect(hung.stderr).toMatch(/^mdlock: cannot reach MongoDB at mongodb:\/\/127\.0\.0\.1:\d+\/x within 1500 ms: /);
    expect(hung.took).toBeLessThan(15_000); // 1.5 s, plus starting Node.js and tsx on a busy machine
  } finally {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  }
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
