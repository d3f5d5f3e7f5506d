// examples/telemetry.ts, run as its npm script runs it: after its few acquisitions, its Prometheus
// endpoint (on a free port) serves the library's metrics with their values; its spans go to the
// console; on SIGTERM it closes everything and exits by itself.
import { lockFixture } from '../helpers/locks';
import { databaseUri } from '../helpers/mongo';
import { processes } from '../helpers/processes';

const locks = lockFixture();
const children = processes();

test('telemetry example: Prometheus scrapes the lock metrics after a few acquisitions; console spans', async () => {
  const child = children.script('examples/telemetry.ts', [], {
    env: { MONGODB_URI: databaseUri(locks.db.name), EXAMPLE_DB: locks.db.name, METRICS_PORT: '0' },
  });
  const [, url] = await child.line(/^metrics at (http:\/\/\S+)/, 60_000);
  const response = await fetch(url!);
  expect(response.status).toBe(200);
  const text = await response.text();
  const sample = (metric: string, labels: string) =>
    Number(new RegExp(`^${metric}\\{${labels}[^}]*\\} (\\S+)$`, 'm').exec(text)?.[1]);
  const lock = 'lock_name="nightly-report",lock_kind="lock"';
  expect(sample('lock_acquisitions_total', `${lock},lock_outcome="acquired"`)).toBe(4);
  expect(sample('lock_acquisitions_total', `${lock},lock_outcome="busy"`)).toBe(1);
  expect(sample('lock_acquisitions_total', `${lock},lock_outcome="timeout"`)).toBe(1);
  expect(sample('lock_wait_time_count', `${lock},lock_outcome="timeout"`)).toBe(1);
  expect(sample('lock_wait_time_sum', `${lock},lock_outcome="timeout"`)).toBeGreaterThanOrEqual(0.2);
  expect(sample('lock_hold_time_count', `${lock},lock_hold_end="released"`)).toBe(4);
  expect(sample('lock_held', lock)).toBe(0);
  expect(text).toMatch(/^# TYPE lock_wait_time histogram$/m);
  // Buckets in seconds: every timed-out wait of 0.2 s falls in the 0.25 s bucket or above, none at 0.1 s.
  expect(sample('lock_wait_time_bucket', `${lock},lock_outcome="timeout",[^}]*le="0.1"`)).toBe(0);
  expect(sample('lock_wait_time_bucket', `${lock},lock_outcome="timeout",[^}]*le="30"`)).toBe(1);
  // The console exporter printed the spans: three withLock calls, and their acquisitions.
  const output = child.stdout();
  expect(output.match(/name: 'withLock'/g)).toHaveLength(3);
  expect(output.match(/name: 'acquire lock'/g)).toHaveLength(6);
  expect(output).toContain("'lock.outcome': 'timeout'");

  children.kill(child, 'SIGTERM');
  expect(await child.exited).toEqual({ code: 0, signal: null });
  expect(child.lines.at(-1)).toBe('stopped');
});
