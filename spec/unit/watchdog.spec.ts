import type { LostReason } from '../../lib/errors';
import type { LeaseTiming } from '../../lib/options';
import type { HoldKey, HoldState } from '../../lib/store';
import { Watchdog, type WatchedHold, type WatchdogStore } from '../../lib/watchdog';
import { FakeClock as BaseClock } from '../helpers/fake-clock';

/** The shared fake clock, moved forward by a test with promise callbacks run between timers. */
class FakeClock extends BaseClock {
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    for (;;) {
      await flush();
      if (!this.fireNext(end)) break;
    }
    this.time = end;
    await flush();
  }
}

const flush = async () => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

/** A store whose replies the test decides; it records every call. */
class StubStore implements WatchdogStore {
  renews: HoldKey[][] = [];
  reads: string[][] = [];
  states = new Map<string, HoldState>();
  readGate: Promise<void> | undefined;
  renewError: Error | undefined;
  renew(holds: readonly HoldKey[]) {
    this.renews.push(holds.map((h) => ({ name: h.name, leaseId: h.leaseId })));
    return this.renewError ? Promise.reject(this.renewError) : Promise.resolve();
  }
  async read(names: readonly string[]) {
    this.reads.push([...names]);
    await this.readGate;
    return new Map([...this.states].filter(([name]) => names.includes(name)));
  }
}

function timing(interval: number, heartbeat: number | false = interval): LeaseTiming {
  return { ttl: interval * 3, heartbeat, margin: interval * 0.3, interval };
}

function hold(name: string, t: LeaseTiming, deadline: number) {
  const events: string[] = [];
  const watched: WatchedHold & { events: string[] } = {
    name,
    leaseId: `id-${name}`,
    timing: t,
    deadline,
    expiresAt: new Date(0),
    events,
    lost: (reason: LostReason) => events.push(`lost:${reason}`),
    deadlinePassed: () => events.push('deadline'),
  };
  return watched;
}

function setup() {
  const clock = new FakeClock();
  const store = new StubStore();
  const errors: unknown[] = [];
  const watchdog = new Watchdog(store, (e) => errors.push(e), clock);
  return { clock, store, errors, watchdog };
}

test('each tick renews every heartbeat lease in one command and reads every lease in one command', async () => {
  const { clock, store, watchdog } = setup();
  const holds = ['a', 'b', 'c'].map((n) => hold(n, timing(100), 1000));
  const quiet = hold('q', timing(100, false), 1000);
  for (const h of [...holds, quiet]) {
    watchdog.add(h);
    store.states.set(h.name, { leaseId: h.leaseId, remaining: 300, expiresAt: new Date(300) });
  }
  await clock.advance(99);
  expect(store.renews).toHaveLength(0);
  await clock.advance(1);
  expect(store.renews).toEqual([holds.map((h) => ({ name: h.name, leaseId: h.leaseId }))]);
  expect(store.reads).toEqual([['a', 'b', 'c', 'q']]);
  await clock.advance(300);
  expect(store.renews).toHaveLength(4);
  expect(store.reads).toHaveLength(4);
  expect(watchdog.ticks).toBe(4);
});

test('the local deadline comes from the server remaining time: read send time + remaining − margin', async () => {
  const { clock, store, watchdog } = setup();
  const h = hold('a', timing(100), 200);
  watchdog.add(h);
  store.states.set('a', { leaseId: h.leaseId, remaining: 300, expiresAt: new Date(12345) });
  await clock.advance(100);
  expect(h.deadline).toBe(100 + 300 - 30);
  expect(h.expiresAt).toEqual(new Date(12345));
  expect(h.events).toEqual([]);
});

test('a hung tick never overlaps the next, and the deadline fires regardless', async () => {
  const { clock, store, watchdog } = setup();
  const h = hold('a', timing(100), 250);
  store.states.set('a', { leaseId: h.leaseId, remaining: 300, expiresAt: new Date(0) });
  let open!: () => void;
  store.readGate = new Promise((resolve) => (open = resolve));
  watchdog.add(h);
  await clock.advance(1000);
  expect(store.reads).toHaveLength(1); // one tick, stuck on its read
  expect(h.events).toEqual(['deadline']);
  expect(watchdog.size).toBe(0);
  open();
  await clock.advance(1000);
  expect(h.events).toEqual(['deadline']); // a late answer does not bring the hold back
  expect(clock.pending).toBe(0);
});

test.each<[string, HoldState | undefined, LostReason]>([
  ['the document is gone', undefined, 'deleted'],
  ['another lease id holds it', { leaseId: 'someone-else', remaining: 500, expiresAt: new Date(0) }, 'taken'],
  ['the server says it expired', { leaseId: 'id-a', remaining: 0, expiresAt: new Date(0) }, 'expired'],
])('a hold is lost when %s', async (_, state, reason) => {
  const { clock, store, watchdog } = setup();
  const h = hold('a', timing(100), 1000);
  if (state) store.states.set('a', state);
  watchdog.add(h);
  await clock.advance(100);
  expect(h.events).toEqual([`lost:${reason}`]);
  expect(watchdog.size).toBe(0);
  await clock.advance(1000);
  expect(store.reads).toHaveLength(1); // nothing held, nothing to tick for
});

test('a hold released while its tick is out is left alone', async () => {
  const { clock, store, watchdog } = setup();
  const h = hold('a', timing(100), 1000);
  let open!: () => void;
  store.readGate = new Promise((resolve) => (open = resolve));
  watchdog.add(h);
  await clock.advance(100);
  watchdog.remove(h);
  open();
  await clock.advance(10);
  expect(h.events).toEqual([]);
});

test('a lease with a shorter interval brings the next tick forward; the tick period is the shortest interval', async () => {
  const { clock, store, watchdog } = setup();
  const slow = hold('slow', timing(1000), 10_000);
  const fast = hold('fast', timing(100), 10_000);
  for (const h of [slow, fast])
    store.states.set(h.name, { leaseId: h.leaseId, remaining: 5000, expiresAt: new Date(0) });
  watchdog.add(slow);
  await clock.advance(50);
  watchdog.add(fast);
  await clock.advance(100);
  expect(store.reads).toEqual([['slow', 'fast']]);
  await clock.advance(100);
  expect(store.reads).toHaveLength(2);
});

test('a failed tick is reported and retried after half an interval', async () => {
  const { clock, store, errors, watchdog } = setup();
  const h = hold('a', timing(100), 10_000);
  store.states.set('a', { leaseId: h.leaseId, remaining: 5000, expiresAt: new Date(0) });
  store.renewError = new Error('network down');
  watchdog.add(h);
  await clock.advance(100);
  expect(errors).toEqual([store.renewError]);
  expect(store.renews).toHaveLength(1);
  await clock.advance(50);
  expect(store.renews).toHaveLength(2);
});

test('stop() clears every timer and is safe to call twice', async () => {
  const { clock, store, watchdog } = setup();
  watchdog.add(hold('a', timing(100), 1000));
  expect(clock.pending).toBe(2); // the tick and the deadline
  watchdog.stop();
  watchdog.stop();
  expect(clock.pending).toBe(0);
  await clock.advance(5000);
  expect(store.reads).toHaveLength(0);
});

test("a jump of the server's clock beyond half the margin is reported (code clock); steady reads are not", async () => {
  const { clock, store, errors, watchdog } = setup();
  const h = hold('a', timing(100), 250); // margin 30 ms
  watchdog.add(h);
  let serverTime = 1_000_000;
  const answer = () =>
    store.states.set('a', {
      leaseId: h.leaseId,
      remaining: 300,
      expiresAt: new Date(0),
      now: new Date(serverTime + clock.now()),
    });
  answer();
  await clock.advance(100);
  answer();
  await clock.advance(100);
  expect(errors).toEqual([]); // the server's clock runs with ours: no jump
  serverTime += 500; // stepped forward half a second
  answer();
  await clock.advance(100);
  expect(errors).toHaveLength(1);
  expect(errors[0]).toMatchObject({ code: 'clock', message: expect.stringMatching(/jumped ahead by about 500 ms/) });
  watchdog.stop();
});

test('a read that could not be majority rests the deadline only on an acknowledged renewal', async () => {
  const { clock, store, watchdog } = setup();
  const h = hold('a', timing(100), 250); // ttl 300, margin 30
  watchdog.add(h);
  // The read shows far more time left than the renewal just acknowledged can vouch for.
  store.states.set('a', { leaseId: h.leaseId, remaining: 10_000, expiresAt: new Date(0), confirmed: false });
  await clock.advance(100);
  expect(h.deadline).toBe(100 + 300 - 30); // renewal sent at 100, ttl 300, margin 30
  // The renewal fails: the deadline is not extended by what the read shows.
  store.renewError = new Error('no majority');
  await clock.advance(100);
  expect(h.deadline).toBe(370);
  watchdog.stop();
});

test('permits beside locks: one more renewal and one more read per tick, the permits read by lease id', async () => {
  const { clock, store: locks, errors } = setup();
  const permits = { renews: [] as string[][], reads: [] as string[][], states: new Map<string, HoldState>() };
  const store: WatchdogStore = {
    renew: (holds) => locks.renew(holds),
    read: (names) => locks.read(names),
    permits: {
      renew: (holds) => Promise.resolve(void permits.renews.push(holds.map((h) => h.leaseId))),
      read: (holds) => {
        permits.reads.push(holds.map((h) => h.leaseId));
        return Promise.resolve(new Map([...permits.states].filter(([id]) => holds.some((h) => h.leaseId === id))));
      },
    },
  };
  const watchdog = new Watchdog(store, (e) => errors.push(e), clock);
  const lock = hold('sem', timing(100), 1000);
  // Three permits of one semaphore, named as a lock held beside them: told apart by lease id.
  const held = [1, 2, 3].map((n) => ({ ...hold('sem', timing(100), 1000), leaseId: `permit-${n}`, permit: true }));
  for (const h of [lock, ...held]) watchdog.add(h);
  locks.states.set('sem', { leaseId: lock.leaseId, remaining: 300, expiresAt: new Date(300) });
  for (const h of held.slice(0, 2))
    permits.states.set(h.leaseId, { leaseId: h.leaseId, remaining: 250, expiresAt: new Date(250) });
  permits.states.set('permit-3', { leaseId: '', remaining: 0, expiresAt: new Date(0) }); // gone, every permit taken
  await clock.advance(100);
  await clock.advance(100);
  expect(locks.renews).toEqual([[{ name: 'sem', leaseId: lock.leaseId }], [{ name: 'sem', leaseId: lock.leaseId }]]);
  expect(locks.reads).toEqual([['sem'], ['sem']]);
  expect(permits.renews).toEqual([
    ['permit-1', 'permit-2', 'permit-3'],
    ['permit-1', 'permit-2'],
  ]);
  expect(permits.reads).toEqual(permits.renews);
  expect(held.map((h) => h.events)).toEqual([[], [], ['lost:taken']]);
  expect(held[0]!.deadline).toBe(100 + 100 + 250 - held[0]!.timing.margin);
  expect(lock.events).toEqual([]);
  expect(errors).toEqual([]);
});

test('fair waits: their queue entries are renewed in one command per tick beside the holds, and only while they wait', async () => {
  const clock = new FakeClock();
  const store = new StubStore();
  const queued: HoldKey[][] = [];
  const queuedPermits: HoldKey[][] = [];
  const sent: string[] = [];
  const withQueues: WatchdogStore = {
    renew: (holds) => (sent.push('renew'), store.renew(holds)),
    read: (names) => (sent.push('read'), store.read(names)),
    renewQueued: (waits) => (sent.push('queue'), queued.push([...waits]), Promise.resolve()),
    permits: {
      renew: () => Promise.resolve(),
      read: () => Promise.resolve(new Map()),
      renewQueued: (waits) => (sent.push('queue-permits'), queuedPermits.push([...waits]), Promise.resolve()),
    },
  };
  const watchdog = new Watchdog(withQueues, () => {}, clock);
  // Waits alone keep the watchdog ticking: nothing held, nothing read.
  const wait = { name: 'w', leaseId: 'id-w', interval: 100 };
  const permitWait = { name: 'p', leaseId: 'id-p', interval: 100, permit: true };
  watchdog.addWait(wait);
  watchdog.addWait(permitWait);
  await clock.advance(100);
  expect(queued).toEqual([[wait]]);
  expect(queuedPermits).toEqual([[permitWait]]);
  expect(sent).toEqual(['queue', 'queue-permits']);
  // With a hold as well: still one command each, sent together before the read.
  const h = hold('a', timing(100), 1000);
  store.states.set('a', { leaseId: h.leaseId, remaining: 300, expiresAt: new Date(300) });
  watchdog.add(h);
  sent.length = 0;
  await clock.advance(100);
  expect(sent).toEqual(['queue', 'queue-permits', 'renew', 'read']);
  expect(queued).toHaveLength(2);
  // A wait that ended is no longer renewed.
  watchdog.removeWait(wait);
  watchdog.removeWait(permitWait);
  sent.length = 0;
  await clock.advance(100);
  expect(sent).toEqual(['renew', 'read']);
  watchdog.remove(h);
  sent.length = 0;
  await clock.advance(500);
  expect(sent).toEqual([]);
  watchdog.stop();
});
