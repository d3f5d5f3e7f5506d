// The attempt loop of Lease.acquire() and forceAcquire(), with a fake store and a fake clock: no
// database, no real time. Each test scripts the store's answers, then checks the commands the
// lease sent (with which lease ids, in which order, at which time) and the events it emitted.
import type { AcquireRequest } from '../../lib/commands';
import { LockError, LockErrorCode, LockTimeoutError } from '../../lib/errors';
import { Lease, type LeaseContext, type LeaseStore } from '../../lib/lease';
import { connectionClosed } from '../../lib/mongo-errors';
import type { LeaseTiming } from '../../lib/options';
import type { AcquireResult, ReleaseResult } from '../../lib/store';
import { Wakeups } from '../../lib/wakeups';
import { FakeClock as BaseClock } from '../helpers/fake-clock';

/** The shared fake clock, which also runs an acquisition to its end. */
class FakeClock extends BaseClock {
  /**
   * Runs until `work` settles: lets promise callbacks run, and whenever nothing else can happen
   * moves time to the next timer and fires it. Fails if `work` waits with no timer left.
   */
  async settle<T>(work: Promise<T>): Promise<PromiseSettledResult<T>> {
    let outcome: PromiseSettledResult<T> | undefined;
    work.then(
      (value) => (outcome = { status: 'fulfilled', value }),
      (reason: unknown) => (outcome = { status: 'rejected', reason }),
    );
    for (;;) {
      await new Promise((resolve) => setImmediate(resolve));
      if (outcome) return outcome;
      if (!this.fireNext()) throw new Error('the acquisition waits for something that never comes (no timer is due)');
    }
  }
}

const TTL = 1000;
const MARGIN = 100;
const POLL = 250;
const timing: LeaseTiming = { ttl: TTL, heartbeat: TTL / 3, margin: MARGIN, interval: TTL / 3 };

/** One scripted answer: what the store does with an acquire request. */
type Reply = (request: AcquireRequest) => Promise<AcquireResult>;

function setup() {
  const clock = new FakeClock();
  /** What happened, in order: the store's commands (with the time they were sent) and the events. */
  const log: string[] = [];
  const ids = new Map<string, string>();
  /** Lease ids are random: the log names them #1, #2... in the order they first appear. */
  const label = (leaseId: string) => {
    if (!ids.has(leaseId)) ids.set(leaseId, `#${ids.size + 1}`);
    return ids.get(leaseId)!;
  };
  const requests: AcquireRequest[] = [];
  const lateCallbacks: ((result: AcquireResult) => void)[] = [];
  const replies: Reply[] = [];
  const reported: unknown[] = [];
  const forwarded: unknown[][] = [];
  let token = 0;
  /** The lease id that holds the lock in the fake store. */
  let holder: string | undefined;

  const result = (acquired: boolean, remaining: number): AcquireResult => ({
    acquired,
    remaining,
    expiresAt: new Date(1_000_000 + clock.time + remaining),
    token: acquired ? ++token : token,
    owner: acquired ? 'me' : 'someone else',
  });
  const reply = {
    /** The lock is ours for `remaining` ms; the answer arrives after `delay` ms. */
    granted:
      (remaining = TTL, delay = 0): Reply =>
      (request) => {
        clock.time += delay;
        holder = request.leaseId;
        return Promise.resolve(result(true, remaining));
      },
    /** Someone else holds it for `remaining` more ms. */
    busy:
      (remaining = TTL): Reply =>
      () =>
        Promise.resolve(result(false, remaining)),
    fails:
      (error: Error): Reply =>
      () =>
        Promise.reject(error),
    /** Runs `before`, then answers as `then` does. */
    after:
      (before: () => void, then: Reply): Reply =>
      (request) => {
        before();
        return then(request);
      },
  };

  const store: LeaseStore = {
    acquire(request, late) {
      requests.push(request);
      if (late) lateCallbacks.push(late);
      log.push(`acquire ${label(request.leaseId)} at ${clock.time}`);
      const next = replies.shift();
      if (!next) throw new Error(`no reply scripted for attempt ${requests.length}`);
      return next(request);
    },
    release(name, leaseId, _timeout, lapsed = false) {
      log.push(`release ${label(leaseId)}${lapsed ? ' (lapsed)' : ''}`);
      const outcome: ReleaseResult['outcome'] = holder === leaseId ? 'released' : 'freed';
      if (holder === leaseId) holder = undefined;
      return Promise.resolve({ outcome, contended: false });
    },
  };
  const wakeups = new Wakeups(undefined, clock);
  const closing = new AbortController();
  const context: LeaseContext = {
    settings: { owner: 'me', poll: POLL },
    store,
    clock,
    closing: closing.signal,
    host: {
      held: (_lease, hold, isHeld) => log.push(`${isHeld ? 'held' : 'ended'} ${label(hold.leaseId)}`),
      settled: () => Promise.resolve(),
      watch: (name) => wakeups.watch(name),
      pending: () => {},
      // As the manager does: a lock freed here wakes this manager's waiters for it.
      freed: (name) => Promise.resolve(wakeups.wake(name)),
      forward: (event, lease, args) => forwarded.push([event, lease, ...args]),
      report: (error) => reported.push(error),
    },
  };
  const lease = new Lease('job', timing, context);
  lease.on('acquired', (event) => log.push(`event acquired token ${event.token}`));
  lease.on('timeout', (event) => log.push(`event timeout ${event.phase}`));
  lease.on('released', (event) => log.push(`event released token ${event.token}`));
  lease.on('lost', (error) => log.push(`event lost ${error.reason}`));

  /** Runs an acquisition to its end, logging when it settles. */
  const run = async <T>(work: Promise<T>) => {
    const outcome = await clock.settle(work);
    log.push(outcome.status === 'fulfilled' ? `resolved ${String(outcome.value)}` : 'rejected');
    return outcome;
  };
  return { clock, log, requests, lateCallbacks, replies, reply, reported, forwarded, lease, run, closing, label };
}

const connectionError = () => new LockError(LockErrorCode.Connection, 'acquire: MongoDB did not answer within 50 ms');

test('a grant that arrives after its local deadline is given back under a retired id; the wait keeps to its poll and takes the lock with a new id', async () => {
  const { log, requests, replies, reply, lease, run, forwarded, reported } = setup();
  // Granted for 1000 ms, but the answer took 950 ms: past sentAt + remaining - margin (900).
  replies.push(reply.granted(TTL, 950), reply.granted());
  const outcome = await run(lease.acquire({ wait: Infinity }));

  expect(outcome).toEqual({ status: 'fulfilled', value: true });
  expect(log).toEqual([
    'acquire #1 at 0',
    'release #1',
    // Its own give-back freed the lock and woke this wait's name; the sleep still lasts a full poll.
    `acquire #2 at ${950 + POLL}`,
    'held #2',
    'event acquired token 2',
    'resolved true',
  ]);
  expect(requests.map((r) => r.waiting)).toEqual([true, true]);
  expect(lease.held).toBe(true);
  expect(lease.token).toBe(2);
  expect(forwarded).toEqual([['acquired', lease, expect.objectContaining({ name: 'job', token: 2, owner: 'me' })]]);
  expect(reported).toEqual([]);
});

test('a wait rides out an outage: connection errors are reported and retried with the same lease id at the poll, then the grant is kept', async () => {
  const { log, replies, reply, lease, run, reported } = setup();
  const errors = [connectionError(), connectionError()];
  replies.push(reply.fails(errors[0]!), reply.fails(errors[1]!), reply.granted());
  const outcome = await run(lease.acquire({ wait: Infinity }));

  expect(outcome).toEqual({ status: 'fulfilled', value: true });
  expect(log).toEqual([
    'acquire #1 at 0',
    `acquire #1 at ${POLL}`,
    `acquire #1 at ${2 * POLL}`,
    'held #1',
    'event acquired token 1',
    'resolved true',
  ]);
  expect(reported).toEqual(errors);
});

test('an abort that comes with the grant: the grant is given back before acquire() rejects with the reason', async () => {
  const { log, replies, reply, lease, run, forwarded } = setup();
  const controller = new AbortController();
  const reason = new Error('the caller gave up');
  replies.push(reply.after(() => controller.abort(reason), reply.granted()));
  const outcome = await run(lease.acquire({ wait: Infinity, signal: controller.signal }));

  expect(outcome).toEqual({ status: 'rejected', reason });
  expect(log).toEqual(['acquire #1 at 0', 'release #1', 'rejected']);
  expect(lease.held).toBe(false);
  expect(lease.token).toBeUndefined();
  expect(forwarded).toEqual([]);
});

test('an attempt with an unknown outcome is retried with the same lease id, which is given back when the wait ends without the lock', async () => {
  const { log, replies, reply, lease, run, forwarded } = setup();
  replies.push(reply.fails(connectionError()), reply.fails(connectionError()), reply.fails(connectionError()));
  const outcome = await run(lease.acquire({ wait: 400 }));

  expect(outcome.status).toBe('rejected');
  expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(LockTimeoutError);
  expect(log).toEqual([
    'acquire #1 at 0',
    `acquire #1 at ${POLL}`,
    'acquire #1 at 400', // the last attempt falls on the limit
    'event timeout acquire',
    'release #1',
    'rejected',
  ]);
  expect(forwarded).toEqual([['timeout', lease, { name: 'job', phase: 'acquire' }]]);
});

test('a single attempt whose answer was lost is given back before it rejects', async () => {
  const { log, replies, reply, lease, run } = setup();
  const error = connectionError();
  replies.push(reply.fails(error));
  const outcome = await run(lease.acquire());

  expect(outcome).toEqual({ status: 'rejected', reason: error });
  expect(log).toEqual(['acquire #1 at 0', 'release #1', 'rejected']);
});

test('a late answer to an attempt whose retry became the hold is not given back', async () => {
  const { log, replies, reply, lease, run, lateCallbacks } = setup();
  replies.push(reply.fails(connectionError()), reply.granted());
  expect(await run(lease.acquire({ wait: Infinity }))).toEqual({ status: 'fulfilled', value: true });
  // The first attempt's answer comes in now: the server applied it after all (same id: the hold).
  lateCallbacks[0]!({ acquired: true, remaining: TTL, expiresAt: new Date(), token: 1, owner: 'me' });
  await new Promise((resolve) => setImmediate(resolve));

  expect(log).toEqual([
    'acquire #1 at 0',
    `acquire #1 at ${POLL}`,
    'held #1',
    'event acquired token 1',
    'resolved true',
  ]);
  expect(lease.held).toBe(true);
});

test('a closed connection is not ridden out: the wait rejects after one attempt, with nothing to give back', async () => {
  const { log, replies, reply, lease, run, reported } = setup();
  const error = connectionClosed('acquire: the mongoose connection is closed');
  replies.push(reply.fails(error));
  const outcome = await run(lease.acquire({ wait: Infinity }));

  expect(outcome).toEqual({ status: 'rejected', reason: error });
  expect(log).toEqual(['acquire #1 at 0', 'rejected']);
  expect(reported).toEqual([]);
});

test('forceAcquire() rejects (code connection) when the answer came too late, after giving the hold back', async () => {
  const { log, requests, replies, reply, lease, run, forwarded } = setup();
  replies.push(reply.granted(TTL, TTL - MARGIN)); // answered exactly at the local deadline: too late
  const outcome = await run(lease.forceAcquire());

  expect(outcome.status).toBe('rejected');
  const error = (outcome as PromiseRejectedResult).reason as LockError;
  expect(error).toBeInstanceOf(LockError);
  expect(error.code).toBe(LockErrorCode.Connection);
  expect(error.message).toMatch(/given back/);
  expect(log).toEqual(['acquire #1 at 0', 'release #1', 'rejected']);
  expect(requests).toEqual([
    expect.objectContaining({ name: 'job', owner: 'me', ttl: TTL, force: true, waiting: false }),
  ]);
  expect(lease.held).toBe(false);
  expect(forwarded).toEqual([]);
});

test('forceAcquire() keeps a grant that came in time', async () => {
  const { log, replies, reply, lease, run } = setup();
  replies.push(reply.granted(TTL, TTL - MARGIN - 1));
  expect(await run(lease.forceAcquire())).toEqual({ status: 'fulfilled', value: true });
  expect(log).toEqual(['acquire #1 at 0', 'held #1', 'event acquired token 1', 'resolved true']);
});

test('wait: 0 makes one attempt without marking the lock contended; a wait above 0 marks it', async () => {
  const zero = setup();
  zero.replies.push(zero.reply.busy());
  const outcome = await zero.run(zero.lease.acquire({ wait: 0 }));
  expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(LockTimeoutError);
  expect(zero.log).toEqual(['acquire #1 at 0', 'event timeout acquire', 'rejected']);
  expect(zero.requests.map((r) => r.waiting)).toEqual([false]);

  const once = setup();
  once.replies.push(once.reply.busy());
  expect(await once.run(once.lease.acquire())).toEqual({ status: 'fulfilled', value: false });
  expect(once.log).toEqual(['acquire #1 at 0', 'resolved false']);
  expect(once.requests.map((r) => r.waiting)).toEqual([false]);

  const waiting = setup();
  waiting.replies.push(waiting.reply.busy(), waiting.reply.granted());
  expect(await waiting.run(waiting.lease.acquire({ wait: 1000 }))).toEqual({ status: 'fulfilled', value: true });
  expect(waiting.requests.map((r) => r.waiting)).toEqual([true, true]);
});

test('a waiter tries again when the expiry it saw comes round, if that is sooner than its poll', async () => {
  const { log, replies, reply, lease, run } = setup();
  replies.push(reply.busy(100), reply.granted());
  expect(await run(lease.acquire({ wait: Infinity }))).toEqual({ status: 'fulfilled', value: true });
  // 100 ms left on the holder's lease, plus 2 ms of slack: before the 250 ms poll.
  expect(log.slice(0, 2)).toEqual(['acquire #1 at 0', 'acquire #1 at 102']);
});

test("the manager's close during a wait rejects it, and gives back an attempt whose outcome is unknown", async () => {
  const { log, replies, reply, lease, run, closing } = setup();
  const reason = new Error('closed');
  replies.push(reply.after(() => closing.abort(reason), reply.fails(connectionError())));
  const outcome = await run(lease.acquire({ wait: Infinity }));

  expect(outcome).toEqual({ status: 'rejected', reason });
  expect(log).toEqual(['acquire #1 at 0', 'release #1', 'rejected']);
});
