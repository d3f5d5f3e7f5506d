// A program written for mongoose-distributed-lock 0.0.1 (spec/fixtures/readme-0.0.1.cjs) runs
// unmodified against this package, in a process of its own, and behaves as 0.0.1 documented.
// `require('mongoose-distributed-lock')` resolves to lib/main.cjs, the file the build ships as
// the package's CommonJS entry point; tsx compiles the TypeScript sources behind it.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { lockFixture } from '../helpers/locks';
import { testUri } from '../helpers/mongo';

const root = path.join(__dirname, '..', '..');
const locks = lockFixture();

function run(program: string, env: Record<string, string>) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', program],
      { cwd: root, env: { ...process.env, ...env }, timeout: 50_000 },
      (error, stdout, stderr) =>
        resolve({ code: error ? ((error.code as number | undefined) ?? -1) : 0, stdout, stderr }),
    );
  });
}

test("0.0.1's README program runs unmodified, prints what 0.0.1 documented, and exits by itself", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdl-readme-'));
  const tsconfig = path.join(dir, 'tsconfig.json');
  const paths = { 'mongoose-distributed-lock': [path.join(root, 'lib', 'main.cjs')] };
  fs.writeFileSync(tsconfig, JSON.stringify({ compilerOptions: { paths } }));
  const url = new URL(testUri());
  url.pathname = `/${locks.db.name}`;
  try {
    const { code, stdout, stderr } = await run(path.join(root, 'spec', 'fixtures', 'readme-0.0.1.cjs'), {
      TSX_TSCONFIG_PATH: tsconfig,
      MONGODB_URL: url.href,
    });
    expect({ code, stderr: stderr.split('\n').filter(Boolean) }).toEqual({
      code: 0,
      stderr: ['lock_already_aquired', 'timeout in pollAquire for lock name testLock', 'releasing_not_aquired_lock'],
    });
    expect(stdout.split('\n').filter(Boolean)).toEqual([
      'properties testLock null 60000 500 122',
      'lock: acquired, lockId set: true',
      'rival: acquired false - probeMaxAttempts 12',
      'rival: gave up, lockAcquired false',
      'lock: released',
      'rival: acquired by polling true',
      'brief: acquired true',
      'brief: had timed out true',
      'rival: released, had timed out false',
    ]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  // What it left behind: free locks (no document deleted), in the default collection.
  const docs = await (await locks.documents()).find({}, { projection: { _id: 1, leaseId: 1 } }).toArray();
  expect(docs.sort((a, b) => a._id.localeCompare(b._id))).toEqual([
    { _id: 'briefLock', leaseId: null },
    { _id: 'testLock', leaseId: null },
  ]);
});
