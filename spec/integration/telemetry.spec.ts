// Diagnostics channels: a subscriber to each of `mongoose-distributed-lock:acquired`, `:released`,
// `:lost` and `:timeout` gets one message per lease event, with the documented fields, for locks,
// semaphore permits and read-write holds; `:heartbeat`, `:elected`, `:revoked` and `:run` one per
// watchdog tick, leadership change and scheduled run; the tracing channels `:acquire` and `:with`
// wrap each acquisition and each withLock-like call; an unsubscribed subscriber gets nothing more;
// NODE_DEBUG=mongoose-distributed-lock prints the same events.
import diagnosticsChannel from 'node:diagnostics_channel';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import {
  CHANNELS,
  LeaseLostError,
  TRACING_CHANNELS,
  type AcquireContext,
  type HeartbeatMessage,
  type WithContext,
} from '../../lib/index';
import { lockFixture } from '../helpers/locks';
import { testUri } from '../helpers/mongo';
import { nextEvent, waitFor } from '../helpers/wait';

const locks = lockFixture({ ttl: '3s' });

/** Subscribes to every lease event's channel for the test; returns what arrived, as [channel, message], in order. */
function subscribeAll(keys: readonly (keyof typeof CHANNELS)[] = ['acquired', 'released', 'lost', 'timeout']) {
  const seen: [string, Record<string, unknown>][] = [];
  const subscriptions = keys.map((key) => {
    const name = CHANNELS[key];
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
  expect(Object.values(CHANNELS).map((name) => diagnosticsChannel.channel(name).hasSubscribers)).toEqual(
    Object.values(CHANNELS).map(() => false),
  );
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
  expect(on.stderr).toMatch(/MONGOOSE-DISTRIBUTED-LOCK \d+: acquire \{ name: 'debugged', kind: 'lock'/);
  expect(on.stderr).toMatch(
    /MONGOOSE-DISTRIBUTED-LOCK \d+: attempt \{ name: 'debugged', attempt: 1, acquired: true, durationMs: [\d.]+ \}/,
  );
  expect(on.stderr).toMatch(
    /MONGOOSE-DISTRIBUTED-LOCK \d+: acquire-end \{ .*outcome: 'acquired', token: \d+, waitedMs: [\d.]+ \}/,
  );
  const off = run({ NODE_DEBUG: '' });
  expect(off.status).toBe(0);
  expect(off.stderr).not.toMatch(/MONGOOSE-DISTRIBUTED-LOCK/);
});

/**
 * Subscribes to a tracing channel for the test; returns its events as [event, snapshot of the
 * context], in order (`start` before the work, `asyncStart` once it settled, `error` if it rejected).
 */
function traceAll<C extends object>(name: string) {
  const events: [string, C][] = [];
  const channel = diagnosticsChannel.tracingChannel<unknown, C>(name);
  const record = (event: string) => (context: C) => {
    const { error: _error, result: _result, ...fields } = context as C & { error?: unknown; result?: unknown };
    events.push([event, { ...fields } as C]);
  };
  const handlers = {
    start: record('start'),
    end: record('end'),
    asyncStart: record('asyncStart'),
    asyncEnd: record('asyncEnd'),
    error: record('error'),
  };
  channel.subscribe(handlers);
  return { events, stop: () => channel.unsubscribe(handlers) };
}

test('acquire tracing channel: each acquisition, its wait, outcome and token', async () => {
  const [a, b] = [await locks.manager({ owner: 'a' }), await locks.manager({ owner: 'b' })];
  const { events, stop } = traceAll<AcquireContext>(TRACING_CHANNELS.acquire);
  const ends = () => events.filter(([event]) => event === 'asyncStart').map(([, context]) => context);
  try {
    const lease = await a.acquire('traced', { wait: '5s' });
    expect(await b.tryAcquire('traced')).toBeNull();
    await expect(b.acquire('traced', { wait: 100 })).rejects.toThrow(/could not acquire/);
    const aborted = new AbortController();
    const waiting = b.acquire('traced', { signal: aborted.signal });
    await waitFor(() => events.filter(([event]) => event === 'start').length === 4);
    aborted.abort(new Error('no longer needed'));
    await expect(waiting).rejects.toThrow('no longer needed');
    await lease.release();
    expect(ends()).toEqual([
      { name: 'traced', kind: 'lock', owner: 'a', wait: 5000, outcome: 'acquired', token: lease.token },
      { name: 'traced', kind: 'lock', owner: 'b', wait: 0, outcome: 'busy' },
      { name: 'traced', kind: 'lock', owner: 'b', wait: 100, outcome: 'timeout' },
      { name: 'traced', kind: 'lock', owner: 'b', wait: Infinity, outcome: 'aborted' },
    ]);
    // start, end (the promise made), then asyncStart and asyncEnd (settled); error before them if it rejected.
    const first = events.slice(0, 4).map(([event]) => event);
    expect(first).toEqual(['start', 'end', 'asyncStart', 'asyncEnd']);
    expect(events[0]![1]).toEqual({ name: 'traced', kind: 'lock', owner: 'a', wait: 5000 });
    expect(events.filter(([event]) => event === 'error')).toHaveLength(2);
  } finally {
    stop();
  }
});

test('acquire tracing channel: permits, reads, writes and elections say their kind', async () => {
  const manager = await locks.manager({ owner: 'kinds' });
  const { events, stop } = traceAll<AcquireContext>(TRACING_CHANNELS.acquire);
  try {
    await (await manager.semaphore('traced-sem', { limit: 2 }).acquire()).release();
    const rw = manager.readWriteLock('traced-rw');
    await (await rw.read()).release();
    await (await rw.write({ wait: '1s' })).release();
    const election = manager.elect('traced-election', { ttl: 3000, heartbeat: 1000 });
    await nextEvent(election, 'elected');
    await election.close();
    const ends = events.filter(([event]) => event === 'asyncStart').map(([, c]) => [c.name, c.kind, c.outcome]);
    expect(ends).toEqual([
      ['traced-sem', 'permit', 'acquired'],
      ['traced-rw', 'read', 'acquired'],
      ['traced-rw', 'write', 'acquired'],
      ['traced-election', 'election', 'acquired'],
    ]);
  } finally {
    stop();
  }
});

test('with tracing channel: withLock, withPermit, withRead, withWrite from acquisition to release', async () => {
  const manager = await locks.manager({ owner: 'with' });
  const { events, stop } = traceAll<WithContext>(TRACING_CHANNELS.with);
  const acquisitions = traceAll<AcquireContext>(TRACING_CHANNELS.acquire);
  const order: string[] = [];
  const onAcquireStart = () => void order.push('acquire');
  diagnosticsChannel.subscribe('tracing:mongoose-distributed-lock:acquire:start', onAcquireStart);
  const onWithStart = () => void order.push('with');
  diagnosticsChannel.subscribe('tracing:mongoose-distributed-lock:with:start', onWithStart);
  try {
    let token: number | undefined;
    await manager.withLock('with-lock', (lease) => void (token = lease.token));
    await expect(
      manager.withLock('with-lock', () => {
        throw new Error('work failed');
      }),
    ).rejects.toThrow('work failed');
    await manager.semaphore('with-sem', { limit: 1 }).withPermit(() => 1);
    await manager.readWriteLock('with-rw').withRead(() => 1);
    await manager.readWriteLock('with-rw').withWrite(() => 1);
    const held = await manager.acquire('with-busy');
    await expect(manager.withLock('with-busy', () => 1, { wait: 50 })).rejects.toThrow(/could not acquire/);
    await held.release();
    const ends = events.filter(([event]) => event === 'asyncStart').map(([, context]) => context);
    expect(ends).toEqual([
      { name: 'with-lock', kind: 'lock', owner: 'with', outcome: 'done', token },
      { name: 'with-lock', kind: 'lock', owner: 'with', outcome: 'failed', token: expect.any(Number) },
      { name: 'with-sem', kind: 'permit', owner: 'with', outcome: 'done', token: expect.any(Number) },
      { name: 'with-rw', kind: 'read', owner: 'with', outcome: 'done', token: expect.any(Number) },
      { name: 'with-rw', kind: 'write', owner: 'with', outcome: 'done', token: expect.any(Number) },
      { name: 'with-busy', kind: 'lock', owner: 'with', outcome: 'timeout' },
    ]);
    // Each call's acquisition is traced inside it.
    expect(order.slice(0, 2)).toEqual(['with', 'acquire']);
    expect(acquisitions.events.filter(([event]) => event === 'start')).toHaveLength(7);
  } finally {
    stop();
    acquisitions.stop();
    diagnosticsChannel.unsubscribe('tracing:mongoose-distributed-lock:acquire:start', onAcquireStart);
    diagnosticsChannel.unsubscribe('tracing:mongoose-distributed-lock:with:start', onWithStart);
  }
});

test('heartbeat: one message per watchdog tick, with the holds renewed and lost', async () => {
  const manager = await locks.manager({ owner: 'beat', ttl: 3000, heartbeat: 300 });
  const other = await locks.manager();
  const ticks: HeartbeatMessage[] = [];
  const onTick = (message: unknown) => void ticks.push(message as HeartbeatMessage);
  diagnosticsChannel.subscribe(CHANNELS.heartbeat, onTick);
  try {
    const first = await manager.acquire('beat-1');
    const second = await manager.acquire('beat-2');
    await waitFor(() => ticks.some((t) => t.leases === 2), { what: 'a tick of both leases' });
    expect(ticks.find((t) => t.leases === 2)).toEqual({
      leases: 2,
      renewed: 2,
      lost: 0,
      failed: false,
      durationMs: expect.any(Number),
    });
    await other.forceRelease('beat-2');
    await nextEvent(second, 'lost', 20_000);
    expect(ticks.find((t) => t.lost > 0)).toEqual({
      leases: 2,
      renewed: 2,
      lost: 1,
      failed: false,
      durationMs: expect.any(Number),
    });
    expect(ticks.every((t) => t.durationMs >= 0)).toBe(true);
    await first.release();
  } finally {
    diagnosticsChannel.unsubscribe(CHANNELS.heartbeat, onTick);
  }
});

test('elected and revoked: leadership gained and lost, with the term and the reason', async () => {
  const [a, b] = [await locks.manager({ owner: 'leader-a' }), await locks.manager({ owner: 'leader-b' })];
  const { seen, stop } = subscribeAll(['elected', 'revoked']);
  try {
    const first = a.elect('telemetry-election', { ttl: 3000, heartbeat: 500 });
    const [lease] = await nextEvent<[{ token: number }]>(first, 'elected');
    const termA = lease.token;
    const second = b.elect('telemetry-election', { ttl: 3000, heartbeat: 500 });
    const elsewhere = nextEvent<[{ token: number }]>(second, 'elected');
    await first.resign({ rejoinAfter: '1m' });
    const termB = (await elsewhere)[0].token;
    await b.forceRelease('telemetry-election');
    await nextEvent(second, 'revoked', 20_000);
    await Promise.all([first.close(), second.close()]);
    expect(seen.slice(0, 4)).toEqual([
      ['elected', { name: 'telemetry-election', owner: 'leader-a', token: termA }],
      ['revoked', { name: 'telemetry-election', owner: 'leader-a', token: termA, reason: 'resigned' }],
      ['elected', { name: 'telemetry-election', owner: 'leader-b', token: termB }],
      ['revoked', { name: 'telemetry-election', owner: 'leader-b', token: termB, reason: 'lost' }],
    ]);
  } finally {
    stop();
  }
});

test('run: a scheduled run starts and ends, done or failed, with its tick, token and duration', async () => {
  const manager = await locks.manager({ owner: 'runner' });
  const { seen, stop } = subscribeAll(['run']);
  try {
    const tick = new Date('2026-12-01T12:00:00.000Z');
    let token: number | undefined;
    await manager.runOnce('telemetry-run', tick, (run) => void (token = run.token));
    const failing = new Error('report failed');
    await expect(
      manager.runOnce('telemetry-run', new Date(tick.getTime() + 60_000), () => {
        throw failing;
      }),
    ).rejects.toThrow('report failed');
    const run = { name: 'telemetry-run', scheduledAt: tick, attempt: 1, owner: 'runner' };
    const later = { ...run, scheduledAt: new Date(tick.getTime() + 60_000), token: expect.any(Number) };
    expect(seen).toEqual([
      ['run', { phase: 'start', ...run, token }],
      ['run', { phase: 'end', ...run, token, outcome: 'done', durationMs: expect.any(Number) }],
      ['run', { phase: 'start', ...later }],
      ['run', { phase: 'end', ...later, outcome: 'failed', durationMs: expect.any(Number), error: failing }],
    ]);
  } finally {
    stop();
  }
});
