// `mdlock run`'s final release against a stalled server: a signal that arrives while the release
// is on its way must not abandon it. This file pauses a private engine (SIGSTOP), so it starts its
// own whatever MONGODB_URI says.
import mongoose, { type Connection } from 'mongoose';
import type { LockDocument } from '../../lib/commands';
import { mdlockRunner, node } from '../helpers/mdlock';
import { databaseUri } from '../helpers/mongo';
import { waitFor } from '../helpers/wait';

import { startEngine } from '../../scripts/engine.cjs';

let engine: Awaited<ReturnType<typeof startEngine>>;
let connection: Connection;
const DB = 'cli_release';
const mdlock = mdlockRunner(() => DB);

beforeAll(async () => {
  engine = await startEngine();
  connection = await mongoose.createConnection(engine.uri, { dbName: DB }).asPromise();
});

afterAll(async () => {
  engine.resume();
  await connection.close();
  await engine.stop();
});

test('a SIGTERM or SIGINT during the final release waits for it: the lock is freed, and mdlock exits with the command', async () => {
  const uri = databaseUri(DB, engine.uri);
  const command = node(`console.log('ready', process.pid); setInterval(() => {}, 1000)`);
  const child = mdlock.start(['run', 'releasing', '-v', '--connect-timeout', '30s', '--', ...command], {
    MONGODB_URI: uri,
  });
  const pid = Number((await child.line(/^ready (\d+)$/))[1]);
  mdlock.adopt(pid);
  const locks = connection.db!.collection<LockDocument>('locks');
  expect(await locks.findOne({ _id: 'releasing' })).toMatchObject({ leaseId: expect.any(String) });

  engine.pause(); // the release now hangs until the engine resumes
  try {
    process.kill(pid, 'SIGKILL'); // the command ends: mdlock releases
    await waitFor(() => child.stderr().includes('mdlock: releasing "releasing"\n'), { what: 'the release to start' });
    child.process.kill('SIGTERM');
    await waitFor(() => child.stderr().includes('mdlock: SIGTERM: releasing "releasing" first\n'), {
      what: 'mdlock to note the SIGTERM',
    });
    child.process.kill('SIGINT');
    await waitFor(() => child.stderr().includes('mdlock: SIGINT: releasing "releasing" first\n'), {
      what: 'mdlock to note the SIGINT',
    });
    expect(child.done).toBe(false);
  } finally {
    engine.resume();
  }
  expect(await child.exited).toEqual({ code: 137, signal: null }); // the command's: 128 + SIGKILL
  expect(child.stderr()).toMatch(/first\nmdlock: released "releasing"\n$/);
  expect(await locks.findOne({ _id: 'releasing' })).toMatchObject({ leaseId: null });
}, 60_000);
