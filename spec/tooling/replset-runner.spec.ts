// `npm run test:replset` needs a replica set: on the standalone engine it stops at once, saying so.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { testUri } from '../helpers/mongo';

const ROOT = path.join(__dirname, '..', '..');

function runner(env: Record<string, string | undefined>) {
  const { MONGODB_URI: _ignored, ...rest } = process.env;
  return spawnSync(process.execPath, ['scripts/test-replset.cjs'], {
    cwd: ROOT,
    env: { ...rest, ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
}

test('against a standalone server it runs nothing and says it needs a replica set', () => {
  const started = performance.now();
  const result = runner({ MONGODB_URI: testUri() });
  expect(result.status).toBe(2);
  expect(result.stderr).toMatch(/needs a replica set, and .* is a standalone server: nothing was run/);
  expect(performance.now() - started).toBeLessThan(20_000);
});

test('without MONGODB_URI it says how to point it at a replica set', () => {
  const result = runner({});
  expect(result.status).toBe(2);
  expect(result.stderr).toMatch(/set MONGODB_URI/);
});
