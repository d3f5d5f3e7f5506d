// A stalled server: the local deadline ends a hold on time even though the renewal hangs.
// These tests pause a private engine (SIGSTOP), so they start their own whatever MONGODB_URI says.
import mongoose, { type Connection } from 'mongoose';
import { LeaseLostError, LockError, LockManager } from '../../lib/index';
import { elapse } from '../helpers/locks';
import { nextEvent, waitFor } from '../helpers/wait';

import { startEngine } from '../../scripts/engine.cjs';

let engine: Awaited<ReturnType<typeof startEngine>>;
const connections: Connection[] = [];
const managers: LockManager[] = [];

beforeAll(async () => {
  engine = await startEngine();
});

afterAll(async () => {
  engine.resume();
  await Promise.all(managers.map((m) => m.close()));
  await Promise.all(connections.map((c) => c.close()));
  await engine.stop();
});

async function manager(options: ConstructorParameters<typeof LockManager>[0] = {}) {
  const connection = await mongoose.createConnection(engine.uri, { dbName: 'paused' }).asPromise();
  connections.push(connection);
  const m = new LockManager({ connection, ...options });
  m.on('error', () => {}); // the outage is expected here
  managers.push(m);
  return m;
}

test('a holder whose server stalls emits lost (expired) and aborts its signal before the server could expire it', async () => {
  const holder = await manager({ ttl: 3000, heartbeat: 500, owner: 'holder' });
  const lease = await holder.acquire('stalled');
  const { token, signal } = lease;
  let lossAt = 0;
  lease.on('lost', () => (lossAt = Date.now())); // same machine as the engine: comparable with its clock

  engine.pause();
  // No renewal can land from here on: the server-side expiry is at least the last one known now.
  const serverExpiry = lease.expiresAt.getTime();
  const [error] = await nextEvent<[LeaseLostError]>(lease, 'lost', 10_000);
  expect(error).toMatchObject({ reason: 'expired', token, name: 'LeaseLostError', lock: 'stalled' });
  expect(signal.aborted).toBe(true);
  expect(signal.reason).toBe(error);
  expect(lease.held).toBe(false);
  expect(lossAt).toBeLessThan(serverExpiry); // nobody else could hold the lock yet

  engine.resume();
  const contender = await manager({ ttl: 3000, owner: 'contender' });
  const next = await contender.acquire('stalled', { wait: '20s' });
  expect(next.token).toBeGreaterThan(token);
  expect(await contender.inspect('stalled')).toMatchObject({ owner: 'contender', token: next.token, held: true });
  // The renewal stalled by the pause, delivered after the resume, did not bring the old hold back.
  expect(lease.held).toBe(false);
  await next.release();
}, 60_000);

test('a command to a stalled server fails with a connection error after the command timeout, never hangs', async () => {
  const m = await manager({ commandTimeout: 800 });
  await (await m.acquire('probe')).release(); // connected and warm
  engine.pause();
  try {
    const started = performance.now();
    const error = await m.tryAcquire('probe').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LockError);
    expect(error).toMatchObject({ code: 'connection', message: expect.stringContaining('did not answer within') });
    expect(performance.now() - started).toBeGreaterThanOrEqual(700);
    await expect(m.inspect('probe')).rejects.toMatchObject({ code: 'connection' });
  } finally {
    engine.resume();
  }
  // A wait rides out the outage and gets the lock once the server is back.
  engine.pause();
  const waiting = m.acquire('probe', { wait: '30s' });
  setTimeout(() => engine.resume(), 1500);
  const lease = await waiting;
  expect(lease.held).toBe(true);
  await lease.release();
}, 60_000);

test('close() returns within about commandTimeout while the server is stalled, even with a wake-up cursor waiting', async () => {
  const holderManager = await manager({ commandTimeout: 1000, owner: 'holder' });
  const m = await manager({ commandTimeout: 1000, poll: 200 });
  const holder = await holderManager.acquire('stalled-close', { ttl: 20_000 });
  const mine = await m.acquire('mine-while-stalled', { ttl: 20_000 });
  // A wait in progress: its manager tails the release signals with an awaiting getMore.
  const waiting = m.acquire('stalled-close', { wait: '1m' }).catch((error: unknown) => error);
  await new Promise((resolve) => setTimeout(resolve, 1200)); // let the cursor's getMore reach the server
  engine.pause();
  try {
    const started = performance.now();
    await m.close();
    const took = performance.now() - started;
    // Bounded by commandTimeout (1 s) and not by the stall; 4 s of slack for a loaded machine.
    expect(took).toBeLessThan(5000);
    expect(await waiting).toMatchObject({ code: 'closed' });
    expect(mine.held).toBe(false);
  } finally {
    engine.resume();
  }
  await holder.release();
}, 60_000);

/** The whole seconds in (from, to]. */
function secondsBetween(from: number, to: number): number[] {
  const ticks: number[] = [];
  for (let t = Math.floor(from / 1000) * 1000 + 1000; t <= to; t += 1000) ticks.push(t);
  return ticks;
}

test("a schedule across a stall of 12 s: once the server answers, every tick of the stall has a record (misfire 'skip': missed, or run if still recent)", async () => {
  const m = await manager({ ttl: 3000, commandTimeout: 1000, owner: 'scheduler' });
  const job = m.schedule('through-stall', '*/1 * * * * *', () => 'ran', { tolerance: '2s', misfire: 'skip' });
  const outcomes = new Map<number, string>();
  job.on('done', (run) => void outcomes.set(run.scheduledAt.getTime(), 'done'));
  job.on('skipped', (tick) => void outcomes.set(tick.scheduledAt.getTime(), tick.reason));
  job.on('error', () => {}); // the stall is reported once; expected here
  await nextEvent(job, 'done', 10_000); // running normally
  engine.pause();
  const pausedAt = Date.now();
  await elapse(12_000); // the subject: a stall longer than three ttls
  engine.resume();
  const resumedAt = Date.now();
  const stalled = secondsBetween(pausedAt, resumedAt);
  // A tick whose claim reached the server during the stall is held by that orphan claim for a ttl:
  // skipped as `running` at first, then come back to and run.
  const final = (tick: number) => ['done', 'missed'].includes(outcomes.get(tick) ?? '');
  await waitFor(() => stalled.every(final), {
    timeout: 40_000,
    what: 'every stalled tick settled',
  });
  await job.stop();
  const records = new Map((await m.runs('through-stall', { limit: 1000 })).map((r) => [r.scheduledAt.getTime(), r]));
  for (const tick of stalled) {
    expect([tick, records.get(tick)?.outcome]).toEqual([tick, expect.stringMatching(/^(done|missed)$/)]);
    expect([tick, outcomes.get(tick)]).toEqual([tick, records.get(tick)!.outcome]);
  }
  // The oldest ticks of the stall are beyond the tolerance when it ends: missed, not run late.
  expect(outcomes.get(stalled[0]!)).toBe('missed');
}, 90_000);

test('stop() ends every sleep of a schedule: with a stalled tick being retried, it returns without waiting for the next tick (a minute away)', async () => {
  const connection = await mongoose
    .createConnection(engine.uri, { dbName: 'paused', monitorCommands: true })
    .asPromise();
  connections.push(connection);
  const m = new LockManager({ connection, ttl: 3000, commandTimeout: 1000, owner: 'stopper' });
  m.on('error', () => {});
  managers.push(m);
  // The job reads its newest record first: the stall begins once that read has been answered.
  const startedUpReads = new Set<number>();
  connection.getClient().on('commandStarted', (event) => {
    if (event.commandName === 'find' && (event.command as { find?: unknown }).find === 'locks.runs')
      startedUpReads.add(event.requestId);
  });
  const startedUp = new Promise<void>((resolve) =>
    connection.getClient().on('commandSucceeded', (event) => {
      if (event.commandName === 'find' && event.reply && startedUpReads.has(event.requestId)) resolve();
    }),
  );
  const second = (new Date().getUTCSeconds() + 3) % 60;
  const job = m.schedule('stop-while-retrying', `${second} * * * * *`, () => 'ran');
  const errors: string[] = [];
  job.on('error', (error) => void errors.push(error.message));
  await startedUp;
  engine.pause();
  try {
    // The tick met the stall (an error naming the tick's lock, `<name>@<date>`): retried every second.
    await waitFor(() => errors.some((message) => message.includes('stop-while-retrying@')), {
      timeout: 40_000,
      what: "the tick's error",
    });
    const before = performance.now();
    await job.stop();
    expect(performance.now() - before).toBeLessThan(20_000); // the next tick is ~57 s away
  } finally {
    engine.resume();
  }
}, 90_000);
