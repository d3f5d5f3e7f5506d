// `mdlock run --limit N` (a semaphore's permit instead of the lock), in real processes against the
// real engine.
import type { mongo } from 'mongoose';
import { lockFixture } from '../helpers/locks';
import { mdlockRunner, node } from '../helpers/mdlock';

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

test('run --limit: a full semaphore exits 75; a lost permit stops the command and exits 70', async () => {
  const manager = await locks.manager({ owner: 'holder-1' });
  const permit = await manager.semaphore('full', { limit: 1 }).acquire();
  const busy = await mdlock.run(['run', 'full', '--limit', '1', '--', ...node(`console.log('ran')`)]);
  expect(busy).toMatchObject({
    code: 75,
    stdout: '',
    stderr: `mdlock: semaphore "full" is busy: 1 of 1 permits held by holder-1 (token ${permit.token})\n`,
  });
  await permit.release();

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
