// Read-write locks in `mdlock ls` and `mdlock inspect`, and `mdlock release --force` of a
// semaphore's permits and a read-write lock's holds (all of them, or one by `--token`), in real
// processes against the real engine.
import { lockFixture } from '../helpers/locks';
import { mdlockRunner } from '../helpers/mdlock';
import { nextEvent, waitFor } from '../helpers/wait';

// A short ttl: a holder's watchdog (a tick every ttl / 3) sees its hold gone within a second.
const locks = lockFixture({ ttl: '3s' });
const mdlock = mdlockRunner(() => locks.db.name);

test('ls and inspect show a read-write lock: its writer or readers, and a waiting writer', async () => {
  const a = await locks.manager({ owner: 'reader-a', ttl: '30s' });
  const b = await locks.manager({ owner: 'reader-b', ttl: '30s' });
  const r1 = await a.readWriteLock('shelf').read();
  const r2 = await b.readWriteLock('shelf').read();
  const table = await mdlock.run(['ls', 'shelf']);
  expect(table).toMatchObject({ code: 0, stderr: '' });
  expect(table.stdout.trimEnd().split('\n')).toEqual([
    expect.stringMatching(/^NAME\s+OWNER\s+TOKEN\s+STATE\s+EXPIRES IN$/),
    expect.stringMatching(/^shelf\s+rwlock\s+-\s+2 read\s+-$/),
    expect.stringMatching(new RegExp(`^  read\\s+reader-a\\s+${r1.token}\\s+held\\s+\\d+s$`)),
    expect.stringMatching(new RegExp(`^  read\\s+reader-b\\s+${r2.token}\\s+held\\s+\\d+s$`)),
  ]);

  // A writer waits: new readers wait behind it, and ls says so.
  const writing = a.readWriteLock('shelf').write({ wait: '30s' });
  const shown = await waitFor(
    async () => {
      const result = await mdlock.run(['inspect', 'shelf']);
      return result.stdout.includes('waiting') || result.code !== 0 ? result : null;
    },
    { what: 'inspect to show the waiting writer' },
  );
  expect(shown).toMatchObject({ code: 0, stderr: '' });
  expect(shown.stdout).toMatch(
    new RegExp(
      `^name {5}shelf\\nkind {5}rwlock\\nstate {4}2 read, writer waiting\\n` +
        `reader {3}reader-a, token ${r1.token}, acquired \\S+, expires \\S+ \\(in \\d+s\\)\\n` +
        `reader {3}reader-b, token ${r2.token}, acquired \\S+, expires \\S+ \\(in \\d+s\\)\\n` +
        `waiting {2}a writer; new readers wait \\(marker expires \\S+, in [\\d.]+s\\)\\n$`,
    ),
  );
  await r1.release();
  await r2.release();
  const w = await writing;
  const rows = JSON.parse((await mdlock.run(['ls', '--json', '--held'])).stdout) as unknown[];
  expect(rows).toEqual([
    {
      kind: 'rwlock',
      name: 'shelf',
      held: true,
      readers: [],
      writer: {
        owner: 'reader-a',
        token: w.token,
        acquiredAt: expect.any(String),
        expiresAt: expect.any(String),
        expiresIn: expect.any(Number),
      },
      writerWaiting: null,
      queued: 0,
    },
  ]);
  await w.release();
  expect(await mdlock.run(['ls', '--held'])).toMatchObject({
    code: 0,
    stdout: 'no held locks in collection "locks"\n',
  });
  const missing = await mdlock.run(['inspect', 'nothing']);
  expect(missing).toMatchObject({ code: 1, stdout: '' });
  expect(missing.stderr).toBe('mdlock: no lock, semaphore or read-write lock named "nothing" in collection "locks"\n');
});

test('release --force of a semaphore: --token frees one permit (its holder sees it lost), without it every permit', async () => {
  const m = await locks.manager({ owner: 'worker' });
  const sem = m.semaphore('pool', { limit: 3 });
  const [p1, p2] = [await sem.acquire(), await sem.acquire()];
  // Listened for before the command runs: the holder's watchdog may see the loss before it exits.
  const p1Lost = nextEvent(p1, 'lost');
  const one = await mdlock.run(['release', '--force', 'pool', '--token', String(p1.token)]);
  expect(one).toMatchObject({
    code: 0,
    stderr: '',
    stdout: `released 1 permit of semaphore "pool" (held by worker (token ${p1.token}))\n`,
  });
  await p1Lost;
  expect(p2.held).toBe(true);
  expect((await sem.inspect()).holders.map((h) => h.token)).toEqual([p2.token]);

  const again = await mdlock.run(['release', '--force', 'pool', '--token', String(p1.token), '--json']);
  expect(JSON.parse(again.stdout)).toEqual({ name: 'pool', kind: 'semaphore', released: false, holders: [] });

  const p3 = await sem.acquire();
  const othersLost = Promise.all([nextEvent(p2, 'lost'), nextEvent(p3, 'lost')]);
  const all = await mdlock.run(['release', '--force', 'pool', '--json']);
  expect(JSON.parse(all.stdout)).toEqual({
    name: 'pool',
    kind: 'semaphore',
    released: true,
    holders: [
      { owner: 'worker', token: p2.token },
      { owner: 'worker', token: p3.token },
    ],
  });
  await othersLost;
  expect((await sem.inspect()).holders).toEqual([]);
});

test('release --force of a read-write lock, and --kind when a held lock and a held semaphore share a name', async () => {
  const m = await locks.manager({ owner: 'worker' });
  const w = await m.readWriteLock('catalog').write();
  const wLost = nextEvent(w, 'lost');
  const freed = await mdlock.run(['release', '--force', 'catalog']);
  expect(freed).toMatchObject({
    code: 0,
    stderr: '',
    stdout: `released 1 hold of read-write lock "catalog" (held by worker (token ${w.token}))\n`,
  });
  await wLost;

  const lock = await m.acquire('twin');
  const permit = await m.semaphore('twin', { limit: 1 }).acquire();
  const ambiguous = await mdlock.run(['release', '--force', 'twin']);
  expect(ambiguous).toMatchObject({ code: 64, stdout: '' });
  expect(ambiguous.stderr).toBe('mdlock: "twin" names a held lock and semaphore: say which with --kind\n');
  expect(lock.held && permit.held).toBe(true);
  const permitLost = nextEvent(permit, 'lost');
  const chosen = await mdlock.run(['release', '--force', 'twin', '--kind', 'semaphore']);
  expect(chosen.stdout).toBe(`released 1 permit of semaphore "twin" (held by worker (token ${permit.token}))\n`);
  await permitLost;
  expect(lock.held).toBe(true);
  // --token picks a permit or a read-write hold: the held lock of that name is never meant.
  const byToken = await mdlock.run(['release', '--force', 'twin', '--token', String(lock.token)]);
  expect(byToken.stdout).toBe(`semaphore "twin" had no live holder with token ${lock.token}: nothing to release\n`);
  expect(lock.held).toBe(true);
  expect((await m.inspect('twin'))?.held).toBe(true);
});
