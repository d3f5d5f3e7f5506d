// The torture checker on synthetic histories: a clean one passes, and each kind of bad history
// is caught by the check meant for it (a checker that never fails proves nothing).
import { checkHistory, type CheckName, type CheckOptions } from './checker';
import type { EventBody, TortureEvent } from './history';

/** Wall clock = monotonic clock + this, as on a machine whose clock is not stepped. */
const OFFSET = 1_700_000_000_000;

/** Builds a history: events are given at a monotonic time in ms; their wall time follows. */
function history() {
  const events: TortureEvent[] = [];
  const seqs = new Map<string, number>();
  const at = (src: string, mono: number, body: EventBody, wall = mono + OFFSET) => {
    const seq = seqs.get(src) ?? 0;
    seqs.set(src, seq + 1);
    events.push({ src, seq, mono, wall, ...body });
  };
  const builder = {
    events,
    at,
    /** A worker that started and exited by itself. */
    worker(id: string) {
      at('orchestrator', 0, { type: 'spawn', worker: id, pid: 1 });
      at('orchestrator', 100_000, { type: 'worker-exit', worker: id, code: 0, signal: null, byItself: true });
      return builder;
    },
    /**
     * A hold of `name` by `worker` from `from` to `to` (monotonic ms), granted by the server at
     * `granted` (default: 2 ms before `from`) for `ttl` ms, ended as `end` says.
     */
    hold(
      worker: string,
      name: string,
      token: number,
      from: number,
      to: number,
      {
        ttl = 1000,
        granted = from - 2,
        end = 'stop',
        kind,
        asked,
      }: { ttl?: number; granted?: number; end?: string; kind?: 'permit' | 'read' | 'write'; asked?: number } = {},
    ) {
      // `asked`: when the acquisition call began (an `op` event), if given.
      if (asked !== undefined) {
        const op = seqs.get(worker) ?? 0;
        at(worker, asked, { type: 'op', op, name, mode: 'sem-acquire', ttl, heartbeat: false });
      }
      const expiresAt = granted + OFFSET + ttl;
      at(worker, from, { type: 'acquired', name, token, expiresAt, ttl, heartbeat: false, ...(kind && { kind }) });
      if (asked !== undefined)
        at(worker, from + 0.1, { type: 'op-end', op: seqs.get(worker)! - 2, outcome: 'held', token });
      if (end === 'stop') at(worker, to, { type: 'stop', name, token, why: 'release' });
      if (end === 'lost') at(worker, to, { type: 'lost', name, token, reason: 'expired' });
      if (end === 'hold-timeout') at(worker, to, { type: 'hold-timeout', name, token });
      if (end === 'stop') at(worker, to + 1, { type: 'release-end', name, token, result: true });
      return builder;
    },
    /** `n` accepted fenced writes and unfenced increments by `worker` under `token`, starting at `from`. */
    writes(worker: string, name: string, token: number, from: number, n: number) {
      for (let i = 0; i < n; i++) {
        at(worker, from + i, { type: 'fence', name, token, phase: 'begin' });
        at(worker, from + i + 0.2, { type: 'fence', name, token, phase: 'ok' });
        at(worker, from + i + 0.4, { type: 'inc', name, token, phase: 'begin' });
        at(worker, from + i + 0.6, { type: 'inc', name, token, phase: 'done' });
      }
      return builder;
    },
    resource(name: string, token: number, count: number, plain: number) {
      at('orchestrator', 99_000, { type: 'resource', name, token, count, plain });
      return builder;
    },
  };
  return builder;
}

/** Two workers taking turns on one name, with fenced writes: nothing wrong with it. */
function cleanRun() {
  return history()
    .worker('w1')
    .worker('w2')
    .hold('w1', 'job', 10, 1000, 1500)
    .writes('w1', 'job', 10, 1100, 3)
    .hold('w2', 'job', 11, 1510, 1800, { granted: 1505 })
    .writes('w2', 'job', 11, 1600, 2)
    .hold('w1', 'job', 12, 2000, 2900, { ttl: 1000, end: 'hold-timeout' })
    .resource('job', 11, 5, 5);
}

const strict: CheckOptions = { unfencedExact: true };
const failed = (events: TortureEvent[], options = strict): CheckName[] => [
  ...new Set(checkHistory(events, options).violations.map((v) => v.check)),
];

test('a clean history passes every check, and the summary counts what happened', () => {
  const report = checkHistory(cleanRun().events, strict);
  expect(report.violations).toEqual([]);
  expect(report.stats).toMatchObject({
    acquisitions: 3,
    ends: { stop: 2, 'hold-timeout': 1 },
    fenced: { accepted: 5, rejected: 0, unknown: 0, final: 5 },
    unfenced: { increments: 5, final: 5, lostUpdates: 0 },
    workers: 2,
  });
  expect(report.stats.closestHandover).toBeCloseTo(10);
});

test('exclusion: a hold that begins before the previous holder stopped', () => {
  const run = history().worker('w1').worker('w2').hold('w1', 'job', 10, 1000, 1500).hold('w2', 'job', 11, 1400, 1600);
  expect(failed(run.events)).toContain('exclusion');
});

test('tokens: a later hold with a token that is not larger', () => {
  const run = history().worker('w1').worker('w2').hold('w1', 'job', 10, 1000, 1100).hold('w2', 'job', 10, 1200, 1300);
  expect(failed(run.events)).toEqual(['tokens']);
  const lower = history().worker('w1').worker('w2').hold('w1', 'job', 10, 1000, 1100).hold('w2', 'job', 9, 1200, 1300);
  expect(failed(lower.events)).toContain('tokens');
});

test('expiry: a loss (or a stop) reported after the lease had expired on the server', () => {
  const lostLate = history().worker('w1').hold('w1', 'job', 10, 1000, 2100, { granted: 998, ttl: 1000, end: 'lost' });
  expect(failed(lostLate.events)).toEqual(['expiry']);
  const stoppedLate = history().worker('w1').hold('w1', 'job', 10, 1000, 2500, { granted: 998, ttl: 1000 });
  expect(failed(stoppedLate.events)).toEqual(['expiry']);
  // A later expiry learned from a renewal moves the bound.
  const renewed = history().worker('w1').hold('w1', 'job', 10, 1000, 2500, { granted: 998, ttl: 1000, end: 'lost' });
  renewed.at('w1', 1400, { type: 'expiry', name: 'job', token: 10, expiresAt: 2600 + OFFSET });
  expect(failed(renewed.events)).toEqual([]);
});

test('steal: the server granted a lock while the previous hold was live, even with no local overlap', () => {
  // w1 is killed at 1200 holding a lease live on the server until 1998; w2 is granted it at 1500.
  const run = history().worker('w2').hold('w1', 'job', 10, 1000, 0, { granted: 998, ttl: 1000, end: 'none' });
  run.at('orchestrator', 1, { type: 'spawn', worker: 'w1', pid: 2 });
  run.at('orchestrator', 1200, { type: 'kill', worker: 'w1', pid: 2 });
  run.hold('w2', 'job', 11, 1510, 1600, { granted: 1500 });
  expect(failed(run.events)).toEqual(['steal']);
  // Granted after the expiry: a clean takeover.
  const fair = history().worker('w2').hold('w1', 'job', 10, 1000, 0, { granted: 998, ttl: 1000, end: 'none' });
  fair.at('orchestrator', 1, { type: 'spawn', worker: 'w1', pid: 2 });
  fair.at('orchestrator', 1200, { type: 'kill', worker: 'w1', pid: 2 });
  fair.hold('w2', 'job', 11, 2010, 2100, { granted: 2000 });
  const report = checkHistory(fair.events, strict);
  expect(report.violations).toEqual([]);
  expect(report.stats.takeover).toEqual({ count: 1, afterKill: [800, 800], afterExpiry: [2, 2] });
});

test('fenced: a final count that does not match the accepted writes, or a token that was never written', () => {
  const lostWrite = cleanRun();
  lostWrite.events.pop(); // the resource event
  lostWrite.resource('job', 11, 4, 5);
  expect(failed(lostWrite.events)).toEqual(['fenced']);
  const strangeToken = cleanRun();
  strangeToken.events.pop();
  strangeToken.resource('job', 99, 5, 5);
  expect(failed(strangeToken.events)).toEqual(['fenced']);
  // A write whose outcome is unknown (its writer was cut off) may or may not have landed.
  const unknown = cleanRun();
  unknown.at('w2', 1700, { type: 'fence', name: 'job', token: 11, phase: 'begin' });
  unknown.at('w2', 1701, { type: 'fence', name: 'job', token: 11, phase: 'error' });
  expect(failed(unknown.events)).toEqual([]);
});

test('unfenced: a lost update is a violation when the counter must be exact, and counted either way', () => {
  const run = cleanRun();
  run.events.pop();
  run.resource('job', 11, 5, 4);
  expect(failed(run.events)).toEqual(['unfenced']);
  const lenient = checkHistory(run.events, { unfencedExact: false });
  expect(lenient.violations).toEqual([]);
  expect(lenient.stats.unfenced.lostUpdates).toBe(1);
  const impossible = cleanRun();
  impossible.events.pop();
  impossible.resource('job', 11, 5, 9); // more increments landed than were ever made
  expect(failed(impossible.events, { unfencedExact: false })).toEqual(['unfenced']);
});

test('liveness: an operation that never ended, a hold that never ended, a worker that did not exit by itself', () => {
  const hung = cleanRun();
  hung.at('w1', 3000, { type: 'op', op: 7, name: 'job', mode: 'acquire-wait', ttl: 1000, heartbeat: false });
  expect(failed(hung.events)).toEqual(['liveness']);
  const endless = history().worker('w1').hold('w1', 'job', 10, 1000, 0, { end: 'none' });
  expect(failed(endless.events)).toContain('liveness');
  const stuck = history();
  stuck.at('orchestrator', 0, { type: 'spawn', worker: 'w1', pid: 1 });
  stuck.at('orchestrator', 9, { type: 'worker-exit', worker: 'w1', code: null, signal: 'SIGKILL', byItself: false });
  expect(failed(stuck.events)).toEqual(['liveness']);
  const crashed = cleanRun();
  crashed.at('w2', 3000, { type: 'crash', message: 'TypeError: boom' });
  expect(failed(crashed.events)).toEqual(['liveness']);
  // A killed worker's unfinished business is not a hang.
  const killed = cleanRun();
  killed.at('w2', 3000, { type: 'op', op: 7, name: 'job', mode: 'acquire-wait', ttl: 1000, heartbeat: false });
  killed.at('orchestrator', 3001, { type: 'kill', worker: 'w2', pid: 1 });
  expect(failed(killed.events)).toEqual([]);
});

test('clock: a step of the realtime clock during the run voids the wall-clock checks', () => {
  const run = cleanRun();
  run.at('w1', 3500, { type: 'stop', name: 'x', token: 1, why: 'close' }, 3500 + OFFSET + 5000);
  expect(failed(run.events)).toContain('clock');
});

test('freeze: a frozen holder may outlive its lease, but not overlap the next holder before it froze', () => {
  // w1 freezes at 1300, wakes after the lease expired and reports the loss at 2500; w2 took over at 2050.
  const frozen = history().worker('w1').worker('w2');
  frozen.hold('w1', 'job', 10, 1000, 2500, { granted: 998, ttl: 1000, end: 'lost' });
  frozen.at('w1', 1300, { type: 'freeze', name: 'job', token: 10, ms: 2000 });
  frozen.hold('w2', 'job', 11, 2050, 2200, { granted: 2040 });
  expect(failed(frozen.events)).toEqual([]);
  expect(checkHistory(frozen.events, strict).stats.frozenHolds).toBe(1);
  // Overlapping the part of the hold before the freeze is still a violation.
  const early = history().worker('w1').worker('w2');
  early.hold('w1', 'job', 10, 1000, 2500, { granted: 998, ttl: 1000, end: 'lost' });
  early.at('w1', 1300, { type: 'freeze', name: 'job', token: 10, ms: 2000 });
  early.hold('w2', 'job', 11, 1200, 1250, { granted: 1190 });
  expect(failed(early.events)).toEqual(expect.arrayContaining(['exclusion', 'steal']));
});

test('history: events about a hold that was never acquired', () => {
  const run = cleanRun();
  run.at('w2', 3000, { type: 'lost', name: 'job', token: 77, reason: 'taken' });
  expect(failed(run.events)).toEqual(['history']);
});

test('block: a holder blocked past its lease, told at its first look that it no longer holds, is clean', () => {
  // w1's event loop is blocked from 1300 to 2400; its lease expired on the server at 1998; w2 takes over at 2050.
  const blocked = history().worker('w1').worker('w2');
  blocked.hold('w1', 'job', 10, 1000, 2400, { granted: 998, ttl: 1000, end: 'lost' });
  blocked.at('w1', 1300, { type: 'block', name: 'job', token: 10, ms: 1100, expiresAt: 1998 + OFFSET });
  blocked.at('w1', 2400.5, { type: 'block-end', name: 'job', token: 10, held: false, aborted: true });
  blocked.hold('w2', 'job', 11, 2050, 2200, { granted: 2040 });
  const report = checkHistory(blocked.events, strict);
  expect(report.violations).toEqual([]);
  expect(report.stats.blockedHolds).toBe(1);
  // A lease without heartbeat ends as "ran out": as good.
  const ranOut = history().worker('w1');
  ranOut.hold('w1', 'job', 10, 1000, 2400, { granted: 998, ttl: 1000, end: 'hold-timeout' });
  ranOut.at('w1', 1300, { type: 'block', name: 'job', token: 10, ms: 1100, expiresAt: 1998 + OFFSET });
  ranOut.at('w1', 2400.5, { type: 'block-end', name: 'job', token: 10, held: false, aborted: true });
  expect(failed(ranOut.events)).toEqual([]);
  // Blocked, but not past the expiry: still held, and it goes on working.
  const short = history().worker('w1');
  short.hold('w1', 'job', 10, 1000, 1900, { granted: 998, ttl: 1000 });
  short.at('w1', 1300, { type: 'block', name: 'job', token: 10, ms: 300, expiresAt: 1998 + OFFSET });
  short.at('w1', 1600, { type: 'block-end', name: 'job', token: 10, held: true, aborted: false });
  short.writes('w1', 'job', 10, 1700, 2).resource('job', 10, 2, 2);
  const shortReport = checkHistory(short.events, strict);
  expect(shortReport.violations).toEqual([]);
  expect(shortReport.stats.blockedHolds).toBe(0);
});

test('block: a holder told "held" after its lease expired, which then writes, fails block, expiry and exclusion', () => {
  // The look at 2400 says held; w1 writes at 2410 and learns of the loss at 2450; w2 took over at 2050.
  const stale = history().worker('w1').worker('w2');
  stale.hold('w1', 'job', 10, 1000, 2450, { granted: 998, ttl: 1000, end: 'lost' });
  stale.at('w1', 1300, { type: 'block', name: 'job', token: 10, ms: 1100, expiresAt: 1998 + OFFSET });
  stale.at('w1', 2400.5, { type: 'block-end', name: 'job', token: 10, held: true, aborted: false });
  stale.writes('w1', 'job', 10, 2410, 1);
  stale.hold('w2', 'job', 11, 2050, 2200, { granted: 2040 });
  stale.writes('w2', 'job', 11, 2100, 1).resource('job', 11, 2, 2);
  expect(failed(stale.events)).toEqual(['exclusion', 'expiry', 'block']);
  // Either look alone saying so is enough.
  const unaborted = history().worker('w1');
  unaborted.hold('w1', 'job', 10, 1000, 2400, { granted: 998, ttl: 1000, end: 'lost' });
  unaborted.at('w1', 1300, { type: 'block', name: 'job', token: 10, ms: 1100, expiresAt: 1998 + OFFSET });
  unaborted.at('w1', 2400.5, { type: 'block-end', name: 'job', token: 10, held: false, aborted: false });
  expect(failed(unaborted.events)).toEqual(['block']);
  // Told it lost the lock, but for another reason than its expiry.
  const taken = history().worker('w1');
  taken.hold('w1', 'job', 10, 1000, 2400, { granted: 998, ttl: 1000, end: 'none' });
  taken.at('w1', 1300, { type: 'block', name: 'job', token: 10, ms: 1100, expiresAt: 1998 + OFFSET });
  taken.at('w1', 2400.2, { type: 'lost', name: 'job', token: 10, reason: 'taken' });
  taken.at('w1', 2400.5, { type: 'block-end', name: 'job', token: 10, held: false, aborted: true });
  expect(failed(taken.events)).toEqual(['block']);
});

test('close: a close() slower than commandTimeout + the slack, or one that never returns, fails', () => {
  const closing = (ms?: number) => {
    const run = cleanRun();
    run.at('w2', 3000, { type: 'close', commandTimeout: 3000 });
    if (ms !== undefined) run.at('w2', 3000 + ms, { type: 'closed', ms });
    return run;
  };
  const report = checkHistory(closing(7900).events, strict);
  expect(report.violations).toEqual([]);
  expect(report.stats.closes).toEqual({ count: 1, slowest: 7900, leftovers: 0 });
  expect(failed(closing(8100).events)).toEqual(['close']);
  expect(failed(closing(8100).events, { ...strict, closeSlack: 6000 })).toEqual([]);
  expect(failed(closing().events)).toEqual(['close']);
  // A worker killed while closing is not a hang.
  const killed = closing();
  killed.at('orchestrator', 5000, { type: 'kill', worker: 'w2', pid: 1 });
  expect(failed(killed.events)).toEqual([]);
});

test('close: a lock a closed worker left held may outlive the stall by its ttl, not more', () => {
  const leftover = (expiresAfter: number) => {
    const run = cleanRun();
    run.at('w2', 3000, { type: 'close', commandTimeout: 3000 });
    run.at('w2', 6000, { type: 'closed', ms: 3000 });
    const since = 6100 + OFFSET;
    run.at('orchestrator', 6300, {
      type: 'leftover',
      worker: 'w2',
      name: 'job',
      token: 11,
      expiresAt: since + expiresAfter,
      ttl: 2000,
      since,
    });
    return run;
  };
  // A renewal the server received during the stall, and ran when it resumed, is fine.
  const report = checkHistory(leftover(2300).events, strict);
  expect(report.violations).toEqual([]);
  expect(report.stats.closes.leftovers).toBe(1);
  expect(failed(leftover(3500).events)).toEqual(['close']);
});

// The scheduling workload: ticks (scheduledAt, ms) one second apart; runs at monotonic times.
const [A, B, C, D] = [10_000, 11_000, 12_000, 13_000];

/** A run of `tick` by `worker` from `from` to `to`: its write (accepted) if it returns, then its done event. */
function tickRun(
  run: ReturnType<typeof history>,
  worker: string,
  tick: number,
  attempt: number,
  token: number,
  from: number,
  to: number | undefined,
  how: 'returned' | 'threw' | 'aborted' = 'returned',
) {
  run.at(worker, from, { type: 'tick-run', tick, attempt, token, expiresAt: from + OFFSET + 3000, ttl: 3000 });
  if (to === undefined) return run;
  if (how === 'returned') {
    run.at(worker, to - 2, { type: 'tick-write', tick, token, phase: 'begin' });
    run.at(worker, to - 1, { type: 'tick-write', tick, token, phase: 'ok' });
  }
  run.at(worker, to, { type: 'tick-end', tick, attempt, token, how });
  if (how === 'returned') run.at(worker, to + 1, { type: 'tick-done', tick, attempt, token });
  else run.at(worker, to + 1, { type: 'tick-failed', tick, attempt, token, reason: 'injected failure' });
  return run;
}

const tickRecord = (tick: number, attempt: number, token: number, outcome: string) =>
  ({ type: 'tick-record', tick, attempt, token, outcome, owner: 's1' }) as const;

/**
 * A: done at once. B: failed, retried elsewhere, done. C: its runner killed, the retry failed.
 * D: missed. With `change`, to spoil one part of it before the records and counters are added.
 */
function cleanSchedule(change: (run: ReturnType<typeof history>) => void = () => {}) {
  const run = history().worker('s1').worker('s2');
  run.at('orchestrator', 1, { type: 'spawn', worker: 's3', pid: 3 });
  tickRun(run, 's1', A, 1, 5, 1000, 1500);
  tickRun(run, 's1', B, 1, 6, 1100, 1300, 'threw');
  tickRun(run, 's2', B, 2, 7, 1400, 1600);
  tickRun(run, 's3', C, 1, 8, 1700, undefined);
  run.at('orchestrator', 1800, { type: 'kill', worker: 's3', pid: 3 });
  tickRun(run, 's1', C, 2, 9, 4900, 5000, 'threw');
  run.at('s2', 6000, { type: 'tick-skipped', tick: D, reason: 'missed' });
  change(run);
  run.at('orchestrator', 99_500, { type: 'tick-window', from: A, to: D, every: 1000 });
  run.at('orchestrator', 99_501, tickRecord(A, 1, 5, 'done'));
  run.at('orchestrator', 99_502, tickRecord(B, 2, 7, 'done'));
  run.at('orchestrator', 99_503, tickRecord(C, 2, 9, 'failed'));
  run.at('orchestrator', 99_504, tickRecord(D, 0, 0, 'missed'));
  run.at('orchestrator', 99_505, { type: 'tick-resource', tick: A, token: 5, count: 1 });
  run.at('orchestrator', 99_506, { type: 'tick-resource', tick: B, token: 7, count: 1 });
  return run;
}

/** Replaces the orchestrator's final event of `type` about `tick` by `body`. */
function replaceFinal(run: ReturnType<typeof history>, type: string, tick: number, body: EventBody) {
  const i = run.events.findIndex((e) => e.type === type && 'tick' in e && e.tick === tick);
  const old = run.events[i]!;
  run.events[i] = { src: old.src, seq: old.seq, mono: old.mono, wall: old.wall, ...body };
  return run;
}

test('schedule: a clean history passes every check, and the summary counts runs, retries and outcomes', () => {
  const report = checkHistory(cleanSchedule().events, strict);
  expect(report.violations).toEqual([]);
  expect(report.stats.schedule).toMatchObject({
    ticks: 4,
    window: 4,
    runs: 5,
    retries: 2,
    outcomes: { done: 2, failed: 1, missed: 1 },
    runEnds: { returned: 2, threw: 2, killed: 1 },
    skipped: { missed: 1 },
    writes: { accepted: 2, rejected: 0, unknown: 0 },
  });
});

test('tick-once: a tick completed twice, or run again after it was done', () => {
  const twice = cleanSchedule((run) => run.at('s2', 2000, { type: 'tick-done', tick: A, attempt: 1, token: 5 }));
  expect(failed(twice.events)).toEqual(['tick-once']);
  const again = cleanSchedule((run) => tickRun(run, 's2', A, 2, 12, 3000, 3100, 'aborted'));
  expect(failed(again.events)).toEqual(['tick-once']);
  // The record says failed, yet a run reported it done.
  const disowned = replaceFinal(cleanSchedule(), 'tick-record', B, tickRecord(B, 2, 7, 'failed'));
  expect(failed(disowned.events)).toContain('tick-once');
});

test('tick-overlap: a retry that begins before the previous attempt ended', () => {
  const run = history().worker('s1').worker('s2');
  tickRun(run, 's1', B, 1, 6, 1100, 1300, 'threw');
  tickRun(run, 's2', B, 2, 7, 1250, 1600);
  run.at('orchestrator', 99_000, { type: 'tick-resource', tick: B, token: 7, count: 1 });
  expect(failed(run.events)).toEqual(['tick-overlap']);
  // A runner killed mid-run counts as running until its kill; one frozen, until its freeze.
  const killed = history().worker('s2');
  killed.at('orchestrator', 1, { type: 'spawn', worker: 's1', pid: 3 });
  tickRun(killed, 's1', B, 1, 6, 1100, undefined);
  killed.at('orchestrator', 1800, { type: 'kill', worker: 's1', pid: 3 });
  tickRun(killed, 's2', B, 2, 7, 1700, 1900);
  killed.at('orchestrator', 99_000, { type: 'tick-resource', tick: B, token: 7, count: 1 });
  expect(failed(killed.events)).toEqual(['tick-overlap']);
  const frozen = history().worker('s1').worker('s2');
  tickRun(frozen, 's1', B, 1, 6, 1100, 5000, 'aborted');
  frozen.at('s1', 1200, { type: 'tick-freeze', tick: B, token: 6, ms: 4000 });
  tickRun(frozen, 's2', B, 2, 7, 4500, 4700);
  frozen.at('orchestrator', 99_000, { type: 'tick-resource', tick: B, token: 7, count: 1 });
  expect(failed(frozen.events)).toEqual([]);
});

test('tick-overlap: a freeze stops every run its process has open, not only the one that froze', () => {
  // s1 runs A and B at once; the freeze is recorded by A's run, but B's run stops with the process.
  const run = history().worker('s1').worker('s2');
  tickRun(run, 's1', A, 1, 5, 1000, 5100, 'aborted');
  tickRun(run, 's1', B, 1, 6, 1100, 5000, 'aborted');
  run.at('s1', 1200, { type: 'tick-freeze', tick: A, token: 5, ms: 4000 });
  tickRun(run, 's2', B, 2, 7, 4500, 4700);
  run.at('orchestrator', 99_000, { type: 'tick-resource', tick: B, token: 7, count: 1 });
  expect(failed(run.events)).toEqual([]);
  // Without the freeze, B's two runs overlap.
  const unfrozen = history().worker('s1').worker('s2');
  tickRun(unfrozen, 's1', B, 1, 6, 1100, 5000, 'aborted');
  tickRun(unfrozen, 's2', B, 2, 7, 4500, 4700);
  unfrozen.at('orchestrator', 99_000, { type: 'tick-resource', tick: B, token: 7, count: 1 });
  expect(failed(unfrozen.events)).toEqual(['tick-overlap']);
});

test('tick-tokens: a later attempt with a token or an attempt number that is not larger', () => {
  const token = history().worker('s1').worker('s2');
  tickRun(token, 's1', B, 1, 6, 1100, 1300, 'threw');
  tickRun(token, 's2', B, 2, 6, 1400, 1600);
  token.at('orchestrator', 99_000, { type: 'tick-resource', tick: B, token: 6, count: 1 });
  expect(failed(token.events)).toEqual(['tick-tokens']);
  const attempt = history().worker('s1').worker('s2');
  tickRun(attempt, 's1', B, 1, 6, 1100, 1300, 'threw');
  tickRun(attempt, 's2', B, 1, 7, 1400, 1600);
  attempt.at('orchestrator', 99_000, { type: 'tick-resource', tick: B, token: 7, count: 1 });
  expect(failed(attempt.events)).toEqual(['tick-tokens']);
});

test("tick-fenced: a counter that does not match the accepted writes, or not the done run's token", () => {
  const extra = replaceFinal(cleanSchedule(), 'tick-resource', A, {
    type: 'tick-resource',
    tick: A,
    token: 5,
    count: 2,
  });
  expect(failed(extra.events)).toEqual(['tick-fenced']);
  const missing = replaceFinal(cleanSchedule(), 'tick-resource', A, {
    type: 'tick-resource',
    tick: A,
    token: 5,
    count: 0,
  });
  expect(failed(missing.events)).toEqual(['tick-fenced']);
  // B's first attempt wrote too (token 6): a counter left at 6 was not written last by the done run.
  const stale = cleanSchedule((run) => {
    run.at('s1', 1290, { type: 'tick-write', tick: B, token: 6, phase: 'begin' });
    run.at('s1', 1291, { type: 'tick-write', tick: B, token: 6, phase: 'ok' });
  });
  replaceFinal(stale, 'tick-resource', B, { type: 'tick-resource', tick: B, token: 6, count: 2 });
  expect(failed(stale.events)).toEqual(['tick-fenced']);
  // A write whose outcome is unknown may or may not have landed.
  const unknown = cleanSchedule((run) => run.at('s1', 4950, { type: 'tick-write', tick: C, token: 9, phase: 'begin' }));
  expect(failed(unknown.events)).toEqual([]);
});

test('tick-accounted: a tick of the window without a record, unsettled, or settled against the policy', () => {
  const gone = cleanSchedule();
  gone.events.splice(
    gone.events.findIndex((e) => e.type === 'tick-record' && e.tick === D),
    1,
  );
  expect(failed(gone.events)).toEqual(['tick-accounted']);
  const running = replaceFinal(cleanSchedule(), 'tick-record', C, tickRecord(C, 2, 9, 'running'));
  expect(failed(running.events)).toEqual(['tick-accounted']);
  const early = replaceFinal(cleanSchedule(), 'tick-record', C, tickRecord(C, 1, 8, 'lost'));
  expect(failed(early.events)).toEqual(['tick-accounted']);
  const ranButMissed = replaceFinal(cleanSchedule(), 'tick-record', C, tickRecord(C, 0, 0, 'missed'));
  expect(failed(ranButMissed.events)).toEqual(['tick-accounted']);
  const doneByNobody = replaceFinal(cleanSchedule(), 'tick-record', C, tickRecord(C, 2, 9, 'done'));
  expect(failed(doneByNobody.events)).toContain('tick-accounted');
  // With retries 0 a first attempt may end failed, but not a second.
  expect(failed(cleanSchedule().events, { ...strict, retries: 0 })).toEqual(['tick-accounted']);
});

test('liveness: a run that never ended, its worker alive', () => {
  const run = cleanSchedule((r) => tickRun(r, 's2', D, 1, 20, 7000, undefined));
  expect(failed(run.events)).toEqual(expect.arrayContaining(['liveness', 'tick-accounted']));
});

// Semaphores, read-write locks and fair locks (issue 13).

/** Changes the first recorded event that `match` finds: a history made bad in one place. */
const edit = (events: TortureEvent[], match: (e: TortureEvent) => boolean, patch: Partial<TortureEvent>) =>
  Object.assign(events.find(match)!, patch);

/** A semaphore `sem` of limit 2, its counter read at the end. */
function semaphoreRun(final = 0) {
  const run = history().worker('w1').worker('w2').worker('w3');
  run.at('orchestrator', 1, { type: 'declare', kind: 'semaphore', name: 'sem', limit: 2 });
  run.at('orchestrator', 99_500, { type: 'counter', name: 'sem', value: final });
  return run;
}

/** A holder's entry and exit on the semaphore's counter, reading back `values`. */
function counted(
  run: ReturnType<typeof history>,
  worker: string,
  token: number,
  from: number,
  to: number,
  values: [number, number],
) {
  run.at(worker, from, { type: 'count', name: 'sem', token, delta: 1, phase: 'begin' });
  run.at(worker, from + 1, { type: 'count', name: 'sem', token, delta: 1, phase: 'ok', value: values[0] });
  run.at(worker, to, { type: 'count', name: 'sem', token, delta: -1, phase: 'begin' });
  run.at(worker, to + 1, { type: 'count', name: 'sem', token, delta: -1, phase: 'ok', value: values[1] });
}

/** Two permits overlapping, a third once one is back: clean. */
function cleanSemaphore() {
  const run = semaphoreRun();
  run.hold('w1', 'sem', 10, 1000, 2000, { kind: 'permit', asked: 990, ttl: 3000 });
  counted(run, 'w1', 10, 1001, 1990, [1, 1]);
  run.hold('w2', 'sem', 11, 1100, 1500, { kind: 'permit', asked: 1050 });
  counted(run, 'w2', 11, 1101, 1490, [2, 1]);
  run.hold('w3', 'sem', 12, 1510, 1800, { kind: 'permit', asked: 1200, granted: 1505 });
  counted(run, 'w3', 12, 1511, 1790, [2, 1]);
  return run;
}

test('semaphore: up to limit permits at once pass, and the summary counts them', () => {
  const report = checkHistory(cleanSemaphore().events, strict);
  expect(report.violations).toEqual([]);
  expect(report.stats.semaphore).toEqual({ permits: 3, maxLive: 2, counterMax: 2, counterFinal: 0, leaked: 0 });
  // Their overlap is no lock exclusion violation: permits are not exclusive.
  expect(report.stats.acquisitions).toBe(3);
});

test('semaphore: limit + 1 live holders on the monotonic clock, or a grant while limit earlier permits were live', () => {
  const run = semaphoreRun();
  run.hold('w1', 'sem', 10, 1000, 2000, { kind: 'permit', ttl: 3000 });
  run.hold('w2', 'sem', 11, 1100, 1500, { kind: 'permit' });
  run.hold('w3', 'sem', 12, 1400, 1800, { kind: 'permit' }); // w1 and w2 still hold
  const report = checkHistory(run.events, strict);
  expect(failed(run.events)).toEqual(['semaphore']);
  expect(report.violations.filter((v) => v.check === 'semaphore')).toHaveLength(2);
  // No local overlap (w1 was killed at 1200), but the server granted w3 while w1's permit was live until 1998.
  const server = semaphoreRun();
  server.at('orchestrator', 2, { type: 'spawn', worker: 'w4', pid: 4 });
  server.hold('w4', 'sem', 10, 1000, 0, { kind: 'permit', granted: 998, end: 'none' });
  server.at('orchestrator', 1200, { type: 'kill', worker: 'w4', pid: 4 });
  server.hold('w2', 'sem', 11, 1100, 1900, { kind: 'permit' });
  server.hold('w3', 'sem', 12, 1500, 1800, { kind: 'permit', granted: 1490 });
  expect(failed(server.events)).toEqual(['semaphore']);
});

test('grants: a permit asked for after another was granted, with a token that is not larger', () => {
  const run = semaphoreRun();
  run.hold('w1', 'sem', 10, 1000, 2000, { kind: 'permit', asked: 990, ttl: 3000 });
  run.hold('w2', 'sem', 9, 1100, 1500, { kind: 'permit', asked: 1050 });
  expect(failed(run.events)).toEqual(['grants']);
  // Asked for before the other's grant was known: either order is possible.
  const concurrent = semaphoreRun();
  concurrent.hold('w1', 'sem', 10, 1000, 2000, { kind: 'permit', asked: 990, ttl: 3000 });
  concurrent.hold('w2', 'sem', 9, 1100, 1500, { kind: 'permit', asked: 995 });
  expect(failed(concurrent.events)).toEqual([]);
});

test('counter: a value above the limit while every holder held, one below 0, a final count that is not 0', () => {
  const over = cleanSemaphore();
  edit(over.events, (e) => e.src === 'w3' && e.type === 'count' && e.phase === 'ok', { value: 3 });
  expect(failed(over.events)).toEqual(['counter']);
  const negative = cleanSemaphore();
  edit([...negative.events].reverse(), (e) => e.src === 'w3' && e.type === 'count', { value: -1 });
  expect(failed(negative.events)).toEqual(['counter']);
  const notZero = cleanSemaphore();
  edit(notZero.events, (e) => e.type === 'counter', { value: 1 });
  expect(failed(notZero.events)).toEqual(['counter']);
});

test('counter: the entry of a killed holder stays, and explains one more', () => {
  const run = semaphoreRun(1);
  run.at('orchestrator', 2, { type: 'spawn', worker: 'w4', pid: 4 });
  run.hold('w4', 'sem', 10, 1000, 0, { kind: 'permit', end: 'none', ttl: 300 });
  run.at('w4', 1001, { type: 'count', name: 'sem', token: 10, delta: 1, phase: 'begin' });
  run.at('w4', 1002, { type: 'count', name: 'sem', token: 10, delta: 1, phase: 'ok', value: 1 });
  run.at('orchestrator', 1100, { type: 'kill', worker: 'w4', pid: 4 });
  run.hold('w1', 'sem', 11, 1400, 1600, { kind: 'permit', granted: 1310 });
  counted(run, 'w1', 11, 1401, 1590, [2, 2]);
  run.hold('w2', 'sem', 12, 1410, 1700, { kind: 'permit', granted: 1320 });
  counted(run, 'w2', 12, 1411, 1690, [3, 1]); // 3: two holders and the dead one's entry
  const report = checkHistory(run.events, strict);
  expect(report.violations).toEqual([]);
  expect(report.stats.semaphore).toMatchObject({ counterMax: 3, counterFinal: 1, leaked: 1 });
  // The same 3 with the third holder alive is a violation.
  edit(run.events, (e) => e.type === 'kill', { mono: 1450, wall: 1450 + OFFSET });
  expect(failed(run.events)).toContain('counter');
});

/** A read-write lock `rw`: two readers together, then a writer alone. */
function rwRun() {
  const run = history().worker('w1').worker('w2').worker('w3');
  run.at('orchestrator', 1, { type: 'declare', kind: 'rwlock', name: 'rw' });
  run.hold('w1', 'rw', 10, 1000, 1500, { kind: 'read' });
  run.hold('w2', 'rw', 11, 1100, 1400, { kind: 'read' });
  run.hold('w3', 'rw', 12, 1510, 1800, { kind: 'write', granted: 1505 });
  run.writes('w3', 'rw', 12, 1600, 2);
  run.resource('rw', 12, 2, 2);
  return run;
}

test('rw-exclusion: readers together pass; a writer live with a reader, or with another writer, fails', () => {
  const report = checkHistory(rwRun().events, strict);
  expect(report.violations).toEqual([]);
  expect(report.stats.rwlock).toEqual({ reads: 2, writes: 1 });
  const withReader = rwRun().hold('w1', 'rw', 13, 1700, 1900, { kind: 'read', granted: 1650 });
  expect(failed(withReader.events)).toEqual(['rw-exclusion']);
  const withWriter = rwRun().hold('w2', 'rw', 13, 1700, 1900, { kind: 'write', granted: 1650 });
  expect(failed(withWriter.events)).toEqual(['rw-exclusion']);
});

test('grants: a hold that began after a write hold with a smaller token; fenced: a write count that does not match', () => {
  const stale = rwRun().hold('w1', 'rw', 11.5, 1900, 2000, { kind: 'read', granted: 1850 });
  expect(failed(stale.events)).toEqual(['grants']);
  const lost = rwRun();
  edit(lost.events, (e) => e.type === 'resource', { count: 1 });
  expect(failed(lost.events)).toEqual(['fenced']);
});

/** A fair lock `fair`: w1 known queued at 1100, w2's call at 1300; the holder w3 releases at 2000. */
function fairRun(
  second: { token: number; from: number },
  first: { outcome: 'held' | 'timeout'; token?: number; end: number; wait?: number },
) {
  const run = history().worker('w1').worker('w2').worker('w3');
  run.at('orchestrator', 1, { type: 'declare', kind: 'fair', name: 'fair' });
  run.hold('w3', 'fair', 10, 500, 2000, { ttl: 3000 });
  run.at('w1', 1000, {
    type: 'op',
    op: 1,
    name: 'fair',
    mode: 'fair-poll',
    ttl: 1000,
    heartbeat: 300,
    wait: first.wait ?? 5000,
  });
  run.at('w1', 1100, { type: 'queued', op: 1, name: 'fair' });
  if (first.outcome === 'held')
    run.hold('w1', 'fair', first.token!, first.end - 1, first.end + 100, { granted: first.end - 5 });
  run.at('w1', first.end, {
    type: 'op-end',
    op: 1,
    outcome: first.outcome,
    ...(first.token && { token: first.token }),
  });
  run.at('w2', 1300, { type: 'op', op: 1, name: 'fair', mode: 'fair-wait', ttl: 1000, heartbeat: 300, wait: 5000 });
  run.hold('w2', 'fair', second.token, second.from, second.from + 100, { granted: second.from - 5 });
  run.at('w2', second.from + 1, { type: 'op-end', op: 1, outcome: 'held', token: second.token });
  return run;
}

test('fair: the earlier waiter granted first passes; one passed over while it still waited fails', () => {
  const inOrder = fairRun({ token: 12, from: 2300 }, { outcome: 'held', token: 11, end: 2010 });
  const report = checkHistory(inOrder.events, strict);
  expect(report.violations).toEqual([]);
  expect(report.stats.fair).toEqual({ ops: 2, queued: 1, compared: 1, disrupted: 0 });
  const passedOver = fairRun({ token: 11, from: 2010 }, { outcome: 'held', token: 12, end: 2300 });
  expect(failed(passedOver.events)).toEqual(['fair']);
  const timedOut = fairRun({ token: 11, from: 2010 }, { outcome: 'timeout', end: 3000, wait: 2000 });
  expect(failed(timedOut.events)).toEqual(['fair']);
});

test('fair: a waiter that had given up, reached its deadline, or waited through a fault is not judged', () => {
  const gaveUp = fairRun({ token: 11, from: 2010 }, { outcome: 'timeout', end: 1990, wait: 800 });
  expect(failed(gaveUp.events)).toEqual([]);
  const deadline = fairRun({ token: 11, from: 2010 }, { outcome: 'timeout', end: 2100, wait: 990 });
  expect(failed(deadline.events)).toEqual([]);
  const paused = fairRun({ token: 11, from: 2010 }, { outcome: 'held', token: 12, end: 2300 });
  paused.at('orchestrator', 1500, { type: 'fault', kind: 'pause', detail: '200 ms' });
  paused.at('orchestrator', 1700, { type: 'fault-end', kind: 'pause', detail: 'SIGCONT' });
  const report = checkHistory(paused.events, strict);
  expect(report.violations).toEqual([]);
  expect(report.stats.fair).toMatchObject({ compared: 0, disrupted: 1 });
  // Known queued only 40 ms before the other call began: within the margin, not judged.
  const close = fairRun({ token: 11, from: 2010 }, { outcome: 'held', token: 12, end: 2300 });
  edit(close.events, (e) => e.type === 'queued', { mono: 1260, wall: 1260 + OFFSET });
  expect(failed(close.events)).toEqual([]);
});
