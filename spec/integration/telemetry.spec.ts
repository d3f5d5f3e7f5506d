// Diagnostics channels: a subscriber to each of `mongoose-distributed-lock:acquired`, `:released`,
// `:lost` and `:timeout` gets one message per lease event, with the documented fields, for locks,
// semaphore permits and read-write holds; an unsubscribed subscriber gets nothing more;
// NODE_DEBUG=mongoose-distributed-lock prints the same events.
import diagnosticsChannel from 'node:diagnostics_channel';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { CHANNELS, LeaseLostError } from '../../lib/index';
import { lockFixture } from '../helpers/locks';
import { testUri } from '../helpers/mongo';
import { nextEvent } from '../helpers/wait';

const locks = lockFixture({ ttl: '3s' });

/** Subscribes to every channel for the test; returns what arrived, as [channel, message], in order. */
function subscribeAll() {
  const seen: [string, Record<string, unknown>][] = [];
  const subscriptions = Object.entries(CHANNELS).map(([key, name]) => {
    const onMessage = (message: unknown) => void seen.push([key, message as Record<string, unknown>]);
    diagnosticsChannel.subscribe(name, onMessage);
    return () => diagnosticsChannel.unsubscribe(name, onMessage);
  });
  return { seen, stop: () => subscriptions.forEach((stop) => stop()) };
}

test('a lock: acquired, released, timeout and lost, each with its fields, in order', async () => {
  const [a, b] = [await locks.manager({ owner: 'a' }), await locks.manager({ owner: 'b' })];
  const { seen, stop } = subscribeAll();
  try {
    const lease = await a.acquire('telemetry-lock');
    await lease.release();
    const again = await a.acquire('telemetry-lock');
    await expect(b.acquire('telemetry-lock', { wait: 100 })).rejects.toThrow();
    await b.forceRelease('telemetry-lock');
    const [lost] = await nextEvent<[LeaseLostError]>(again, 'lost', 20_000);
    expect(seen).toEqual([
      [
        'acquired',
        { name: 'telemetry-lock', kind: 'lock', owner: 'a', token: lease.token, expiresAt: expect.any(Date) },
      ],
      ['released', { name: 'telemetry-lock', kind: 'lock', token: lease.token }],
      [
        'acquired',
        { name: 'telemetry-lock', kind: 'lock', owner: 'a', token: again.token, expiresAt: expect.any(Date) },
      ],
      ['timeout', { name: 'telemetry-lock', kind: 'lock', phase: 'acquire' }],
      ['lost', { name: 'telemetry-lock', kind: 'lock', token: again.token, reason: 'freed', error: lost }],
    ]);
    expect(again.token).toBeGreaterThan(lease.token);
  } finally {
    stop();
  }
});

test('a semaphore permit and read-write holds say what they hold: permit, read, write', async () => {
  const manager = await locks.manager({ owner: 'kinds' });
  const { seen, stop } = subscribeAll();
  try {
    await manager.semaphore('telemetry-sem', { limit: 2 }).withPermit(() => 'ok');
    const rw = manager.readWriteLock('telemetry-rw');
    await rw.withRead(() => 'read');
    await rw.withWrite(() => 'written');
    expect(seen.map(([channel, message]) => [channel, message.name, message.kind])).toEqual([
      ['acquired', 'telemetry-sem', 'permit'],
      ['released', 'telemetry-sem', 'permit'],
      ['acquired', 'telemetry-rw', 'read'],
      ['released', 'telemetry-rw', 'read'],
      ['acquired', 'telemetry-rw', 'write'],
      ['released', 'telemetry-rw', 'write'],
    ]);
  } finally {
    stop();
  }
});

test('a lease without heartbeat that reaches its ttl publishes timeout (hold) with its token', async () => {
  const manager = await locks.manager();
  const { seen, stop } = subscribeAll();
  try {
    const lease = manager.lease('telemetry-ttl', { ttl: 1000, heartbeat: false });
    await lease.acquire();
    await nextEvent(lease, 'timeout', 20_000);
    expect(seen.at(-1)).toEqual([
      'timeout',
      { name: 'telemetry-ttl', kind: 'lock', phase: 'hold', token: lease.token },
    ]);
  } finally {
    stop();
  }
});

test('a subscriber gone is sent nothing more; channels without subscribers publish nothing', async () => {
  const manager = await locks.manager();
  const { seen, stop } = subscribeAll();
  const first = await manager.acquire('telemetry-unsubscribed');
  stop();
  await first.release();
  const second = await manager.acquire('telemetry-unsubscribed');
  await second.release();
  expect(seen.map(([channel, message]) => [channel, message.token])).toEqual([['acquired', first.token]]);
  expect(Object.values(CHANNELS).map((name) => diagnosticsChannel.channel(name).hasSubscribers)).toEqual([
    false,
    false,
    false,
    false,
  ]);
});

test('NODE_DEBUG=mongoose-distributed-lock prints each event; without it, nothing', () => {
  const script = path.join(__dirname, '..', 'fixtures', 'debug-log.ts');
  const run = (env: NodeJS.ProcessEnv) =>
    spawnSync(process.execPath, ['--import', 'tsx', script, testUri(), locks.db.name], {
      cwd: path.join(__dirname, '..', '..'),
      env: { ...process.env, ...env },
      encoding: 'utf8',
      timeout: 60_000,
    });
  const on = run({ NODE_DEBUG: 'mongoose-distributed-lock' });
  expect(on.status).toBe(0);
  expect(on.stderr).toMatch(/MONGOOSE-DISTRIBUTED-LOCK \d+: acquired lock .*name: 'debugged'/);
  expect(on.stderr).toMatch(/MONGOOSE-DISTRIBUTED-LOCK \d+: released lock .*name: 'debugged'/);
  const off = run({ NODE_DEBUG: '' });
  expect(off.status).toBe(0);
  expect(off.stderr).not.toMatch(/MONGOOSE-DISTRIBUTED-LOCK/);
});
