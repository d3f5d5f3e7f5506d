// Checks a torture run from its recorded history alone (see ./history.ts for the two clocks).
//
// A hold is one acquisition by one worker: from its `acquired` event to its end, the first of
// `stop` (the worker is done and is about to release), `lost`, `hold-timeout`, or the worker's
// death by SIGKILL. The checks:
// - exclusion: on one name, no two holds overlap on the shared monotonic clock: nobody starts
//   working under a lock before the previous holder has stopped working under it;
// - tokens: on one name, fencing tokens strictly increase in the order the holds began;
// - expiry: every hold ended locally (lost, ran out, or stopped) before its server-side expiry
//   (wall clock against the server's `$$NOW`; the expiry is the latest the holder learned,
//   which is never later than the real one, so the check can only be stricter than needed);
// - steal: the server granted no hold on a name while the previous hold (by token) was live:
//   not before that hold's expiry, unless its holder had already stopped and could have freed it;
// - fenced: the fenced resource's final count lies between the writes acknowledged as accepted
//   and those plus the ones whose outcome is unknown (a killed writer, a cut connection);
// - unfenced: the same for a counter incremented without a fence. Only a violation when
//   `unfencedExact` is set (no fault that delays messages): a write delayed past the lease's
//   expiry can land after the next holder's, which is exactly why resources should check tokens;
// - liveness: every operation, release and write ended, and every worker exited by itself,
//   unless it was killed;
// A hold whose process was frozen (the `freeze` fault: a pause longer than the lease, as a long
// GC pause would be) is outside what a lease can promise; for exclusion and expiry it counts as
// ended when the freeze began. Its late write is what the fenced resource must reject.
// - block: a holder whose event loop was blocked (the `block` fault: a synchronous busy-wait) until
//   after its lease's server-side expiry found, at its first look right after, `lease.held` false
//   and `lease.signal.aborted` true, and the hold ended as lost (`expired`) or ran out. Such a
//   hold, which then writes nothing, counts as ended when the block began, as a frozen one does;
//   one whose look said "held" wrote after its lease expired, and the other checks judge it so;
// - close: every `manager.close()` returned within the manager's `commandTimeout` plus a slack
//   (the `close-stall` fault calls it while the lock server is stalled), and a lock that a closed
//   worker left held on the server lasts no longer than its ttl after the stall ended;
// - clock: the realtime clock was not stepped during the run (else the wall checks mean nothing).
//
// The scheduling workload (./scheduler.ts): a run is one attempt of one tick in one process, from
// its `tick-run` to its `tick-end` (or, as for holds, to when its process froze, or blocked and
// then saw it no longer held; or to its worker's SIGKILL). The checks:
// - tick-once: no tick was recorded done twice (two `tick-done` events, or a `done` record and a
//   `tick-done` with another token), and no run of a tick began after the run recorded done;
// - tick-overlap: no two runs of one tick overlapped on the monotonic clock;
// - tick-tokens: the runs of one tick, in the order they began, have strictly increasing tokens and attempts;
// - tick-fenced: each tick's counter holds between the writes acknowledged and those plus the ones
//   whose outcome is unknown; its token is the largest accepted, and, for a tick recorded done,
//   the done run's own (its write was the last);
// - tick-accounted: every tick of the window has a record, settled as the policy says: `done` by a
//   run that returned; `failed` or `lost` only at the last attempt (retries + 1); `missed` only if
//   no run of it ever began. A record still `running`, or none at all, is a violation;
// - liveness (as above): a run that never ended though its worker was not killed.
import type { HoldKind, Stamp, TortureEvent } from './history';

/** The name of a check. */
export type CheckName =
  | 'exclusion'
  | 'tokens'
  | 'expiry'
  | 'steal'
  | 'fenced'
  | 'unfenced'
  | 'block'
  | 'close'
  | 'liveness'
  | 'clock'
  | 'tick-once'
  | 'tick-overlap'
  | 'tick-tokens'
  | 'tick-fenced'
  | 'tick-accounted'
  | 'semaphore'
  | 'grants'
  | 'counter'
  | 'rw-exclusion'
  | 'fair'
  | 'history';

export const CHECKS: readonly CheckName[] = [
  'exclusion',
  'tokens',
  'expiry',
  'steal',
  'fenced',
  'unfenced',
  'block',
  'close',
  'liveness',
  'clock',
  'tick-once',
  'tick-overlap',
  'tick-tokens',
  'tick-fenced',
  'tick-accounted',
  'semaphore',
  'grants',
  'counter',
  'rw-exclusion',
  'fair',
  'history',
];

export interface Violation {
  readonly check: CheckName;
  readonly message: string;
}

/** How a hold ended, as far as the history tells. */
export interface HoldEnd extends Stamp {
  readonly kind: 'stop' | 'lost' | 'hold-timeout' | 'kill';
  readonly detail?: string;
}

/** One acquisition by one worker, reconstructed from the history. */
export interface Hold {
  readonly worker: string;
  readonly name: string;
  readonly token: number;
  /** A lock (plain or fair), a semaphore's permit, or a read-write lock's read or write hold. */
  readonly kind: HoldKind;
  /** When the worker's acquisition call began (its `op` event), if recorded. */
  readonly opStart?: Stamp;
  readonly acquired: Stamp;
  /** The server's `$$NOW` when it granted the hold: `expiresAt - ttl` of the `acquired` event. */
  readonly grantedAt: number;
  /** The latest server-side expiry the holder learned: a lower bound of the real one. */
  knownExpiry: number;
  end?: HoldEnd;
  /** When the holder's process was frozen, if it was (see the `freeze` fault). */
  frozen?: Stamp;
  /** When the holder's event loop was blocked, if it was (see the `block` fault), and what it saw after. */
  blocked?: Blocked;
}

/** A block of the holder's event loop: from `at`, with the server expiry it knew then, to its first look after. */
export interface Blocked {
  readonly at: Stamp;
  readonly expiresAt: number;
  /** Absent if the worker was killed during the block. */
  after?: Stamp & { readonly held: boolean; readonly aborted: boolean };
}

/**
 * When the holder last acted on a hold it may have outlived: when its process froze, or when its
 * event loop blocked if it never acted after (killed, or told at its first look that it no longer held).
 */
function stoppedActing(hold: Hold): Stamp | undefined {
  if (hold.frozen) return hold.frozen;
  const after = hold.blocked?.after;
  if (hold.blocked && (!after || !after.held || after.aborted)) return hold.blocked.at;
  return undefined;
}

/** Where a hold ends for the timing checks: when it ended, or when its holder stopped acting on it. */
function timedEnd(hold: Hold): Stamp | undefined {
  return stoppedActing(hold) ?? hold.end;
}

/** The slack close() gets beyond its `commandTimeout`, in ms, unless the options say otherwise. */
export const CLOSE_SLACK = 5000;
/** How long after a stall ends a command the server received during it may still run, in ms. */
const LATE_COMMAND = 1000;

/** Options of the check. */
export interface CheckOptions {
  /** The unfenced counter must be exact: true for runs without pauses, cut or stalled connections or restarts. */
  readonly unfencedExact: boolean;
  /**
   * The fair check's margin, in ms: a waiter counts as waiting before another only if it was known
   * queued this long before the other's call began, and as alive at a grant only if it still
   * waited this long after. @defaultValue 50
   */
  readonly fairMargin?: number;
  /** Largest tolerated change of `wall - mono` between nearby events, in ms. @defaultValue 25 */
  readonly clockTolerance?: number;
  /** How much longer than its `commandTimeout` a close() may take, in ms. @defaultValue {@link CLOSE_SLACK} */
  readonly closeSlack?: number;
  /** The schedule's `retries` (the scheduling workload): a tick ends failed or lost only at attempt retries + 1. @defaultValue 1 */
  readonly retries?: number;
}

export interface CheckReport {
  readonly violations: Violation[];
  readonly holds: Hold[];
  readonly stats: Stats;
}

export interface Stats {
  operations: number;
  outcomes: Record<string, number>;
  modes: Record<string, number>;
  acquisitions: number;
  acquisitionsByName: Record<string, number>;
  ends: Record<string, number>;
  lost: Record<string, number>;
  releases: { freed: number; alreadyEnded: number; failed: number };
  fenced: { accepted: number; rejected: number; unknown: number; final: number };
  unfenced: { increments: number; final: number; lostUpdates: number };
  faults: Record<string, number>;
  killedHolds: number;
  frozenHolds: number;
  /** Holds whose event loop was blocked until after their lease's server-side expiry. */
  blockedHolds: number;
  /** Calls of close() that returned, the slowest (ms), and locks left held by a closed worker. */
  closes: { count: number; slowest: number; leftovers: number };
  /**
   * A killed holder's lock (not frozen at the time): how long after the kill, and after the hold's
   * server-side expiry, the server granted it again (ms, server clock). The second must not be negative.
   */
  takeover: { count: number; afterKill: [number, number]; afterExpiry: [number, number] };
  /** The smallest gap between a hold's local end and its server-side expiry (ms). */
  closestEndBeforeExpiry: number;
  /** The smallest gap between one holder's end and the next holder's start, on one name (ms). */
  closestHandover: number;
  /** From the first to the last event (ms). */
  span: number;
  workers: number;
  schedule: ScheduleStats;
  /** The semaphore workload: permits granted, the most live at once (monotonic clock), the counter's largest value seen and final value, entries left by killed holders. */
  semaphore: { permits: number; maxLive: number; counterMax: number; counterFinal: number; leaked: number };
  /** The read-write lock workload: read and write holds. */
  rwlock: { reads: number; writes: number };
  /**
   * The fair workload: acquisitions, those known queued, pairs of waiters compared (one known
   * queued, still waiting when the other's call began, which was granted), pairs left out because
   * a fault could have dropped the earlier waiter from the queue.
   */
  fair: { ops: number; queued: number; compared: number; disrupted: number };
}

/** What the scheduling workload did. */
export interface ScheduleStats {
  /** Ticks with a record, and those in the window the accounting covers. */
  ticks: number;
  window: number;
  /** Runs begun, of which retries (attempt > 1). */
  runs: number;
  retries: number;
  /** The records' outcomes. */
  outcomes: Record<string, number>;
  /** How the runs' functions ended (`killed`: with their worker; `frozen`, `blocked`: past their lease). */
  runEnds: Record<string, number>;
  skipped: Record<string, number>;
  lost: Record<string, number>;
  writes: { accepted: number; rejected: number; unknown: number };
  /** The job's `error` events. */
  errors: number;
}

const count = (table: Record<string, number>, key: string, by = 1) => (table[key] = (table[key] ?? 0) + by);
const holdKey = (worker: string, name: string, token: number) => `${worker}\u0000${name}\u0000${token}`;
const describeHold = (h: Hold) => `${h.worker} (token ${h.token})`;

/** Events in recording order: per process by sequence number, processes in a stable order. */
function bySource(events: readonly TortureEvent[]): Map<string, TortureEvent[]> {
  const sources = new Map<string, TortureEvent[]>();
  for (const event of events) {
    let list = sources.get(event.src);
    if (!list) sources.set(event.src, (list = []));
    list.push(event);
  }
  for (const list of sources.values()) list.sort((a, b) => a.seq - b.seq);
  return sources;
}

/** Rebuilds the holds from the history; malformed histories are reported as `history` violations. */
export function buildHolds(events: readonly TortureEvent[]): { holds: Hold[]; violations: Violation[] } {
  const violations: Violation[] = [];
  const holds: Hold[] = [];
  const open = new Map<string, Hold>();
  const kills = new Map<string, TortureEvent>();
  for (const event of events) if (event.type === 'kill') kills.set(event.worker, event);

  for (const [worker, list] of bySource(events)) {
    let opStart: Stamp | undefined;
    for (const event of list) {
      switch (event.type) {
        case 'op':
          opStart = { mono: event.mono, wall: event.wall };
          break;
        case 'acquired': {
          const key = holdKey(worker, event.name, event.token);
          if (open.has(key)) {
            violations.push({
              check: 'history',
              message: `${worker} acquired "${event.name}" twice with token ${event.token}`,
            });
          }
          const hold: Hold = {
            worker,
            name: event.name,
            token: event.token,
            kind: event.kind ?? 'lock',
            ...(opStart && { opStart }),
            acquired: { mono: event.mono, wall: event.wall },
            grantedAt: event.expiresAt - event.ttl,
            knownExpiry: event.expiresAt,
          };
          open.set(key, hold);
          holds.push(hold);
          break;
        }
        case 'expiry':
        case 'freeze':
        case 'block':
        case 'block-end':
        case 'stop':
        case 'lost':
        case 'hold-timeout': {
          const hold = open.get(holdKey(worker, event.name, event.token));
          if (!hold) {
            violations.push({
              check: 'history',
              message: `${worker} recorded ${event.type} for "${event.name}" token ${event.token}, which it never acquired`,
            });
            break;
          }
          if (event.type === 'expiry') hold.knownExpiry = Math.max(hold.knownExpiry, event.expiresAt);
          else if (event.type === 'freeze') hold.frozen ??= { mono: event.mono, wall: event.wall };
          else if (event.type === 'block') {
            hold.blocked ??= { at: { mono: event.mono, wall: event.wall }, expiresAt: event.expiresAt };
            hold.knownExpiry = Math.max(hold.knownExpiry, event.expiresAt);
          } else if (event.type === 'block-end') {
            if (hold.blocked) {
              hold.blocked.after ??= { mono: event.mono, wall: event.wall, held: event.held, aborted: event.aborted };
            }
          } else if (!hold.end) {
            const detail = event.type === 'lost' ? event.reason : event.type === 'stop' ? event.why : undefined;
            hold.end = { kind: event.type, mono: event.mono, wall: event.wall, detail };
          }
          break;
        }
      }
    }
  }
  for (const hold of holds) {
    if (hold.end) continue;
    const kill = kills.get(hold.worker);
    if (kill) hold.end = { kind: 'kill', mono: kill.mono, wall: kill.wall };
    else {
      violations.push({
        check: 'liveness',
        message: `${describeHold(hold)} on "${hold.name}" never ended, and its worker was not killed`,
      });
    }
  }
  return { holds, violations };
}

function byName(holds: readonly Hold[], order: (a: Hold, b: Hold) => number): Map<string, Hold[]> {
  const names = new Map<string, Hold[]>();
  for (const hold of holds) {
    let list = names.get(hold.name);
    if (!list) names.set(hold.name, (list = []));
    list.push(hold);
  }
  for (const list of names.values()) list.sort(order);
  return names;
}

const byStart = (a: Hold, b: Hold) => a.acquired.mono - b.acquired.mono;

/** No two holds of one name overlap on the monotonic clock. Returns the closest handover seen. */
export function checkExclusion(holds: readonly Hold[], violations: Violation[]): number {
  let closest = Infinity;
  for (const [name, list] of byName(holds, byStart)) {
    let latest: Hold | undefined; // the hold that ends last among those started so far
    for (const hold of list) {
      if (latest) {
        const latestEnd = timedEnd(latest)?.mono ?? Infinity;
        const gap = hold.acquired.mono - latestEnd;
        if (gap < 0) {
          violations.push({
            check: 'exclusion',
            message:
              `"${name}": ${describeHold(hold)} acquired it while ${describeHold(latest)} still held it ` +
              `(${Number.isFinite(gap) ? `${(-gap).toFixed(1)} ms before that hold ended` : 'that hold never ended'})`,
          });
        } else closest = Math.min(closest, gap);
      }
      if (!latest || (timedEnd(hold)?.mono ?? Infinity) > (timedEnd(latest)?.mono ?? Infinity)) latest = hold;
    }
  }
  return closest;
}

/** On one name, tokens strictly increase in the order the holds began. */
export function checkTokens(holds: readonly Hold[], violations: Violation[]): void {
  for (const [name, list] of byName(holds, byStart)) {
    for (let i = 1; i < list.length; i++) {
      const [before, after] = [list[i - 1]!, list[i]!];
      if (after.token <= before.token) {
        violations.push({
          check: 'tokens',
          message: `"${name}": ${describeHold(after)} began after ${describeHold(before)} with a token that is not larger`,
        });
      }
    }
  }
}

/** Every hold that was not killed ended locally before its server-side expiry. Returns the closest call. */
export function checkEndsBeforeExpiry(holds: readonly Hold[], violations: Violation[]): number {
  let closest = Infinity;
  for (const hold of holds) {
    const stopped = stoppedActing(hold);
    if (!hold.end || (hold.end.kind === 'kill' && !stopped)) continue;
    const ahead = hold.knownExpiry - timedEnd(hold)!.wall;
    if (ahead <= 0) {
      const kind = hold.frozen ? 'freeze' : stopped ? 'block' : hold.end.kind;
      const how = hold.end.detail && !stopped ? `${kind} (${hold.end.detail})` : kind;
      violations.push({
        check: 'expiry',
        message: `"${hold.name}": ${describeHold(hold)} ended by ${how} ${-ahead} ms after its lease expired on the server`,
      });
    } else closest = Math.min(closest, ahead);
  }
  return closest;
}

/**
 * The earliest server time at which `hold` could have stopped being live: its expiry, or, if its
 * holder stopped before that, the moment it stopped (a release or a clean-up is sent only after).
 */
function liveUntilAtLeast(hold: Hold): number {
  if (!hold.end || hold.end.kind === 'kill') return hold.knownExpiry;
  return Math.min(hold.knownExpiry, hold.end.wall);
}

/** The server never granted a name while the previous hold on it was live. */
export function checkNoSteal(holds: readonly Hold[], violations: Violation[]): void {
  for (const [name, list] of byName(holds, (a, b) => a.token - b.token)) {
    for (let i = 1; i < list.length; i++) {
      const [before, after] = [list[i - 1]!, list[i]!];
      const early = liveUntilAtLeast(before) - after.grantedAt;
      if (early > 0) {
        violations.push({
          check: 'steal',
          message: `"${name}": the server granted it to ${describeHold(after)} ${early} ms before ${describeHold(before)} had expired or stopped`,
        });
      }
    }
  }
}

/**
 * A holder whose event loop was blocked past its lease's server-side expiry is told, at its first
 * look after, that it no longer holds, and the hold ends as expired (lost) or ran out.
 */
export function checkBlocked(holds: readonly Hold[], violations: Violation[], stats: Stats): void {
  for (const hold of holds) {
    const after = hold.blocked?.after;
    if (!after || after.wall <= hold.blocked!.expiresAt) continue;
    stats.blockedHolds++;
    const late = `its event loop was blocked until ${after.wall - hold.blocked!.expiresAt} ms after its lease expired on the server`;
    if (after.held || !after.aborted) {
      violations.push({
        check: 'block',
        message: `"${hold.name}": ${describeHold(hold)}: ${late}, and then lease.held was ${after.held}, signal.aborted ${after.aborted}`,
      });
    } else if (
      hold.end &&
      hold.end.kind !== 'hold-timeout' &&
      !(hold.end.kind === 'lost' && hold.end.detail === 'expired')
    ) {
      const how = hold.end.detail ? `${hold.end.kind} (${hold.end.detail})` : hold.end.kind;
      violations.push({
        check: 'block',
        message: `"${hold.name}": ${describeHold(hold)}: ${late}, and the hold ended by ${how}, not as expired`,
      });
    }
  }
}

/**
 * Every close() returned within its `commandTimeout` plus the slack, unless its worker was killed;
 * a lock a closed worker left held on the server lasts at most its ttl after the stall ended.
 */
export function checkClose(
  events: readonly TortureEvent[],
  options: CheckOptions,
  violations: Violation[],
  stats: Stats,
): void {
  const slack = options.closeSlack ?? CLOSE_SLACK;
  const killed = new Set(events.flatMap((e) => (e.type === 'kill' ? [e.worker] : [])));
  for (const [worker, list] of bySource(events)) {
    let open: Extract<TortureEvent, { type: 'close' }> | undefined;
    for (const event of list) {
      if (event.type === 'close') open = event;
      if (event.type === 'closed') {
        stats.closes.count++;
        stats.closes.slowest = Math.max(stats.closes.slowest, event.ms);
        const bound = (open?.commandTimeout ?? 0) + slack;
        if (!open) violations.push({ check: 'history', message: `${worker} recorded closed without close` });
        else if (event.ms > bound) {
          violations.push({
            check: 'close',
            message: `${worker}: close() took ${Math.round(event.ms)} ms, more than its commandTimeout (${open.commandTimeout} ms) + ${slack} ms`,
          });
        }
        open = undefined;
      }
    }
    if (open && !killed.has(worker)) {
      violations.push({ check: 'close', message: `${worker}: close() never returned` });
    }
  }
  for (const event of events) {
    if (event.type !== 'leftover') continue;
    stats.closes.leftovers++;
    const outlived = event.expiresAt - event.since;
    if (outlived > event.ttl + LATE_COMMAND) {
      violations.push({
        check: 'close',
        message:
          `"${event.name}": ${event.worker} closed its manager and exited, leaving token ${event.token} held ` +
          `on the server until ${outlived} ms after the stall ended, longer than its ttl (${event.ttl} ms)`,
      });
    }
  }
}

/** The fenced resource and the unfenced counter against the writes recorded. */
export function checkResources(
  events: readonly TortureEvent[],
  options: CheckOptions,
  violations: Violation[],
  stats: Stats,
): void {
  interface Tally {
    fenceBegun: number;
    accepted: number;
    rejected: number;
    maxAccepted: number;
    tokens: Set<number>;
    incBegun: number;
    done: number;
    skipped: number;
  }
  const tallies = new Map<string, Tally>();
  const tally = (name: string): Tally => {
    let t = tallies.get(name);
    if (!t) {
      t = {
        fenceBegun: 0,
        accepted: 0,
        rejected: 0,
        maxAccepted: 0,
        tokens: new Set([0]),
        incBegun: 0,
        done: 0,
        skipped: 0,
      };
      tallies.set(name, t);
    }
    return t;
  };
  const finals: Extract<TortureEvent, { type: 'resource' }>[] = [];
  for (const event of events) {
    if (event.type === 'resource') finals.push(event);
    if (event.type === 'fence') {
      const t = tally(event.name);
      if (event.phase === 'begin') {
        t.fenceBegun++;
        t.tokens.add(event.token);
      } else if (event.phase === 'ok') {
        t.accepted++;
        t.maxAccepted = Math.max(t.maxAccepted, event.token);
      } else if (event.phase === 'rejected') t.rejected++;
    }
    if (event.type === 'inc') {
      const t = tally(event.name);
      if (event.phase === 'begin') t.incBegun++;
      else if (event.phase === 'done') t.done++;
      else if (event.phase === 'skipped') t.skipped++;
    }
  }
  for (const final of finals) {
    const t = tally(final.name);
    const unknown = t.fenceBegun - t.accepted - t.rejected;
    stats.fenced.accepted += t.accepted;
    stats.fenced.rejected += t.rejected;
    stats.fenced.unknown += unknown;
    stats.fenced.final += final.count;
    if (final.count < t.accepted || final.count > t.accepted + unknown) {
      violations.push({
        check: 'fenced',
        message: `"${final.name}": the fenced count is ${final.count}, but ${t.accepted} writes were accepted and ${unknown} have an unknown outcome`,
      });
    }
    if (final.token < t.maxAccepted || !t.tokens.has(final.token)) {
      violations.push({
        check: 'fenced',
        message: `"${final.name}": the fenced resource ends with token ${final.token}, but the largest accepted write carried ${t.maxAccepted}`,
      });
    }
    const incUnknown = t.incBegun - t.done - t.skipped;
    const lostUpdates = Math.max(0, t.done - final.plain);
    stats.unfenced.increments += t.done;
    stats.unfenced.final += final.plain;
    stats.unfenced.lostUpdates += lostUpdates;
    const impossible = final.plain > t.done + incUnknown;
    if (impossible || (options.unfencedExact && lostUpdates > 0)) {
      violations.push({
        check: 'unfenced',
        message: `"${final.name}": the unfenced counter is ${final.plain} after ${t.done} acknowledged increments (${incUnknown} unknown)`,
      });
    }
  }
}

/** Every operation ended and every worker exited by itself, unless it was killed. */
export function checkLiveness(events: readonly TortureEvent[], violations: Violation[]): void {
  const killed = new Set(events.flatMap((e) => (e.type === 'kill' ? [e.worker] : [])));
  const spawned = events.flatMap((e) => (e.type === 'spawn' ? [e.worker] : []));
  const exits = new Map(events.flatMap((e) => (e.type === 'worker-exit' ? [[e.worker, e] as const] : [])));
  for (const worker of spawned) {
    if (killed.has(worker)) continue;
    const exit = exits.get(worker);
    if (!exit) violations.push({ check: 'liveness', message: `${worker} never exited` });
    else if (!exit.byItself || exit.code !== 0) {
      violations.push({
        check: 'liveness',
        message: `${worker} did not exit by itself after stopping (code ${exit.code}, signal ${exit.signal})`,
      });
    }
  }
  for (const [worker, list] of bySource(events)) {
    if (killed.has(worker)) continue;
    const pending = new Map<string, string>();
    for (const event of list) {
      if (event.type === 'crash')
        violations.push({ check: 'liveness', message: `${worker} crashed: ${event.message}` });
      if (event.type === 'op') pending.set(`op ${event.op}`, `operation ${event.op} (${event.mode} "${event.name}")`);
      if (event.type === 'op-end') pending.delete(`op ${event.op}`);
      if (event.type === 'stop' && event.why === 'release') {
        pending.set(`release ${event.name} ${event.token}`, `release of "${event.name}" token ${event.token}`);
      }
      if (event.type === 'release-end') pending.delete(`release ${event.name} ${event.token}`);
      if (event.type === 'fence' || event.type === 'inc' || event.type === 'count') {
        const key = `${event.type} ${event.name} ${event.token} ${event.type === 'count' ? event.delta : ''}`;
        if (event.phase === 'begin') pending.set(key, `${event.type} write on "${event.name}" token ${event.token}`);
        else pending.delete(key);
      }
    }
    for (const what of pending.values())
      violations.push({ check: 'liveness', message: `${worker}: ${what} never ended` });
  }
}

/** `wall - mono` stays put: the realtime clock, which the server's `$$NOW` reads, was not stepped. */
export function checkClock(events: readonly TortureEvent[], tolerance: number, violations: Violation[]): void {
  const sorted = [...events].sort((a, b) => a.mono - b.mono);
  for (let i = 1; i < sorted.length; i++) {
    const [a, b] = [sorted[i - 1]!, sorted[i]!];
    const drift = b.wall - b.mono - (a.wall - a.mono);
    if (b.mono - a.mono <= 1000 && Math.abs(drift) > tolerance) {
      violations.push({
        check: 'clock',
        message: `the realtime clock jumped by ${drift.toFixed(1)} ms between ${a.src}#${a.seq} and ${b.src}#${b.seq}`,
      });
      return; // one is enough: the wall-clock checks of this run cannot be trusted
    }
  }
}

/** The semaphores, read-write locks and fair locks the run declared. */
function declared(events: readonly TortureEvent[], kind: 'semaphore' | 'rwlock' | 'fair'): Map<string, number> {
  const found = new Map<string, number>();
  for (const event of events)
    if (event.type === 'declare' && event.kind === kind) found.set(event.name, event.limit ?? 1);
  return found;
}

const endMono = (hold: Hold) => timedEnd(hold)?.mono ?? Infinity;

/**
 * A semaphore never has more than `limit` live holders: on the monotonic clock (from `acquired`
 * to the hold's end, as for the exclusion of locks), and as the server granted them (at a grant,
 * fewer than `limit` earlier permits were still live: not expired, and not stopped by their holder).
 */
export function checkSemaphores(
  events: readonly TortureEvent[],
  holds: readonly Hold[],
  violations: Violation[],
  stats: Stats,
): void {
  const permits = holds.filter((hold) => hold.kind === 'permit');
  stats.semaphore.permits = permits.length;
  for (const [name, limit] of declared(events, 'semaphore')) {
    const list = permits.filter((hold) => hold.name === name);
    // A sweep over starts and ends; at one instant an end comes first (a hand-over, not an overlap).
    const edges = list.flatMap((hold) => [
      { at: hold.acquired.mono, hold, delta: 1 },
      { at: endMono(hold), hold, delta: -1 },
    ]);
    edges.sort((a, b) => a.at - b.at || a.delta - b.delta);
    const live = new Set<Hold>();
    let over = false; // report each stretch over the limit once
    for (const { hold, delta } of edges) {
      if (delta < 0) live.delete(hold);
      else live.add(hold);
      stats.semaphore.maxLive = Math.max(stats.semaphore.maxLive, live.size);
      if (live.size > limit && !over) {
        violations.push({
          check: 'semaphore',
          message: `"${name}" (limit ${limit}): ${live.size} live holders at once: ${[...live].map(describeHold).join(', ')}`,
        });
      }
      over = live.size > limit;
    }
    const byToken = [...list].sort((a, b) => a.token - b.token);
    for (const [i, hold] of byToken.entries()) {
      const earlier = byToken.slice(0, i).filter((before) => liveUntilAtLeast(before) > hold.grantedAt);
      if (earlier.length >= limit) {
        violations.push({
          check: 'semaphore',
          message:
            `"${name}" (limit ${limit}): the server granted ${describeHold(hold)} while ${earlier.length} earlier ` +
            `permits were live: ${earlier.map(describeHold).join(', ')}`,
        });
      }
    }
  }
}

/**
 * Tokens of semaphores and read-write locks grow with the grants: a hold whose acquisition began
 * after another hold of the name was granted (its `acquired` recorded) has a larger token; and a
 * write hold's token orders it with every other hold of its lock (they never overlap).
 */
export function checkGrants(holds: readonly Hold[], violations: Violation[]): void {
  const shared = holds.filter((hold) => hold.kind !== 'lock');
  for (const [name, list] of byName(shared, byStart)) {
    const begun = list.filter((hold) => hold.opStart).sort((a, b) => a.opStart!.mono - b.opStart!.mono);
    let largest: Hold | undefined;
    let next = 0;
    for (const hold of begun) {
      for (; next < list.length && list[next]!.acquired.mono < hold.opStart!.mono; next++) {
        if (!largest || list[next]!.token > largest.token) largest = list[next];
      }
      if (largest && hold.token <= largest.token) {
        violations.push({
          check: 'grants',
          message: `"${name}": ${describeHold(hold)} was asked for after ${describeHold(largest)} was granted, with a token that is not larger`,
        });
      }
    }
    for (const write of list.filter((hold) => hold.kind === 'write')) {
      for (const other of list) {
        if (other === write || other.acquired.mono === write.acquired.mono) continue;
        const later = other.acquired.mono > write.acquired.mono;
        if (later !== other.token > write.token) {
          violations.push({
            check: 'grants',
            message: `"${name}": ${describeHold(other)} began ${later ? 'after' : 'before'} the write hold ${describeHold(write)}, with a token that is ${later ? 'not larger' : 'larger'}`,
          });
        }
      }
    }
  }
}

/** A read-write lock's writer is never live together with anyone else (reader or writer), on the monotonic clock. */
export function checkReadWrite(holds: readonly Hold[], violations: Violation[], stats: Stats): void {
  const rw = holds.filter((hold) => hold.kind === 'read' || hold.kind === 'write');
  stats.rwlock.reads = rw.filter((hold) => hold.kind === 'read').length;
  stats.rwlock.writes = rw.length - stats.rwlock.reads;
  for (const [name, list] of byName(rw, byStart)) {
    list.forEach((write, i) => {
      if (write.kind !== 'write') return;
      for (const [j, other] of list.entries()) {
        if (j === i || (other.kind === 'write' && j < i)) continue; // two writers: reported once
        const overlap = Math.min(endMono(write), endMono(other)) - Math.max(write.acquired.mono, other.acquired.mono);
        if (overlap > 0) {
          violations.push({
            check: 'rw-exclusion',
            message: `"${name}": the write hold ${describeHold(write)} and the ${other.kind} hold ${describeHold(other)} were live together for ${Number.isFinite(overlap) ? `${overlap.toFixed(1)} ms` : 'ever (one never ended)'}`,
          });
        }
      }
    });
  }
}

/**
 * A semaphore's shared counter, `$inc`ed by each holder on entry and exit. Every value a holder
 * read back lies in [0, limit + the entries of holders who no longer held their permit and had not
 * exited yet] (a killed, frozen or blocked holder, or one that lost its permit, exits late or
 * never); the final value is what the acknowledged entries and exits make it (within those whose
 * outcome is unknown), and it is 0 but for the entries of holders that never exited (killed ones).
 */
export function checkCounters(
  events: readonly TortureEvent[],
  holds: readonly Hold[],
  violations: Violation[],
  stats: Stats,
): void {
  type Step = { begin?: Stamp; ok?: Stamp & { value: number }; error?: boolean };
  interface Use {
    hold?: Hold;
    worker: string;
    token: number;
    entry: Step;
    exit: Step;
  }
  const holdOf = new Map(holds.map((hold) => [holdKey(hold.worker, hold.name, hold.token), hold]));
  for (const [name, limit] of declared(events, 'semaphore')) {
    const uses = new Map<string, Use>();
    let final: number | undefined;
    for (const event of events) {
      if (event.type === 'counter' && event.name === name) final = event.value;
      if (event.type !== 'count' || event.name !== name) continue;
      const key = holdKey(event.src, name, event.token);
      let use = uses.get(key);
      if (!use) {
        use = { hold: holdOf.get(key), worker: event.src, token: event.token, entry: {}, exit: {} };
        uses.set(key, use);
      }
      const step = event.delta > 0 ? use.entry : use.exit;
      const at = { mono: event.mono, wall: event.wall };
      if (event.phase === 'begin') step.begin = at;
      else if (event.phase === 'ok') step.ok = { ...at, value: event.value ?? NaN };
      else step.error = true;
    }
    const all = [...uses.values()];
    const describe = (use: Use) => `${use.worker} (token ${use.token})`;
    for (const use of all) {
      for (const [step, delta] of [
        [use.entry, 1],
        [use.exit, -1],
      ] as const) {
        if (!step.ok) continue;
        const { value } = step.ok;
        stats.semaphore.counterMax = Math.max(stats.semaphore.counterMax, value);
        // Others (and itself) counted in, no longer holding: their entry began before this reply, their exit was not acknowledged before this step began.
        const stale = all.filter(
          (other) =>
            other.entry.begin &&
            other.entry.begin.mono < step.ok!.mono &&
            !(other.exit.ok && other.exit.ok.mono < step.begin!.mono) &&
            (other.hold ? endMono(other.hold) : -Infinity) < step.ok!.mono,
        ).length;
        const low = delta > 0 ? 1 : 0;
        if (value < low || value > limit + stale) {
          violations.push({
            check: 'counter',
            message:
              `"${name}" (limit ${limit}): ${describe(use)} read the counter as ${value} after its ${delta > 0 ? 'entry' : 'exit'}, ` +
              `outside [${low}, ${limit} + ${stale} entries of holders that no longer held]`,
          });
        }
      }
    }
    if (final === undefined) continue;
    const entered = all.filter((use) => use.entry.ok).length;
    const exited = all.filter((use) => use.exit.ok).length;
    const unknownIn = all.filter((use) => use.entry.begin && !use.entry.ok).length;
    const unknownOut = all.filter((use) => use.exit.begin && !use.exit.ok).length;
    const neverExited = all.filter((use) => use.entry.begin && !use.exit.ok).length;
    stats.semaphore.counterFinal += final;
    stats.semaphore.leaked += all.filter((use) => use.entry.ok && !use.exit.begin).length;
    if (final < entered - exited - unknownOut || final > entered + unknownIn - exited) {
      violations.push({
        check: 'counter',
        message: `"${name}": the counter ends at ${final} after ${entered} entries and ${exited} exits acknowledged (${unknownIn} and ${unknownOut} unknown)`,
      });
    }
    if (final < 0 || final > neverExited) {
      violations.push({
        check: 'counter',
        message: `"${name}": the counter ends at ${final}, but only ${neverExited} holders entered and never exited (killed, or unknown)`,
      });
    }
  }
}

/** When a fault could have kept a waiter from renewing its place in the queue: [from, to] on the monotonic clock. */
function disruptions(events: readonly TortureEvent[], slack: number): [number, number][] {
  const windows: [number, number][] = [];
  const open = new Map<string, number>();
  const kinds = new Set(['pause', 'proxy-stall', 'restart', 'close-stall']);
  for (const event of [...events].sort((a, b) => a.mono - b.mono)) {
    if (event.type === 'fault' && event.kind === 'proxy-cut') windows.push([event.mono, event.mono + slack]);
    else if (event.type === 'fault' && kinds.has(event.kind)) open.set(event.kind, event.mono);
    else if (event.type === 'fault-end' && open.has(event.kind)) {
      windows.push([open.get(event.kind)!, event.mono + slack]);
      open.delete(event.kind);
    }
  }
  for (const from of open.values()) windows.push([from, Infinity]);
  return windows;
}

/** One fair acquisition: when it began, its budget, when it was known queued, how and when it ended. */
interface FairWait {
  readonly worker: string;
  readonly name: string;
  readonly start: Stamp;
  readonly wait: number;
  readonly ttl: number;
  queued?: number;
  end?: { mono: number; outcome: string; token?: number };
  killed?: number;
}

/**
 * Fair locks grant in the order waits began, among waiters alive at the time. A waiter A that was
 * known queued (its first attempt answered "wait") more than the margin before another's call B
 * began, must not be passed over: B must not be granted while A still waited (A neither gave up
 * nor reached its deadline, nor was its process killed, until after B's grant was known, by the
 * margin), unless A was granted first (a smaller token). A waiter whose wait overlapped a fault
 * that could have stopped it renewing its place (a server pause, restart or stall, a cut or
 * stalled connection, and a ttl after) may have been dropped from the queue, as the library
 * promises for a dead waiter: such pairs are not judged.
 */
export function checkFair(
  events: readonly TortureEvent[],
  holds: readonly Hold[],
  options: CheckOptions,
  violations: Violation[],
  stats: Stats,
): void {
  const names = declared(events, 'fair');
  if (names.size === 0) return;
  const margin = options.fairMargin ?? 50;
  const kills = new Map<string, number>();
  for (const event of events) if (event.type === 'kill') kills.set(event.worker, event.mono);
  const waits: FairWait[] = [];
  for (const [worker, list] of bySource(events)) {
    const ops = new Map<number, FairWait>();
    for (const event of list) {
      if (event.type === 'op' && names.has(event.name)) {
        const wait: FairWait = {
          worker,
          name: event.name,
          start: { mono: event.mono, wall: event.wall },
          wait: event.wait ?? Infinity,
          ttl: event.ttl,
          killed: kills.get(worker),
        };
        ops.set(event.op, wait);
        waits.push(wait);
      } else if (event.type === 'queued') {
        const wait = ops.get(event.op);
        if (wait) wait.queued ??= event.mono;
      } else if (event.type === 'op-end') {
        const wait = ops.get(event.op);
        if (wait) wait.end ??= { mono: event.mono, outcome: event.outcome, token: event.token };
      }
    }
  }
  stats.fair.ops = waits.length;
  stats.fair.queued = waits.filter((wait) => wait.queued !== undefined).length;
  const slack = Math.max(0, ...waits.map((wait) => wait.ttl)) + 1000;
  const windows = disruptions(events, slack);
  const granted = new Map(holds.map((hold) => [holdKey(hold.worker, hold.name, hold.token), hold]));
  for (const b of waits) {
    if (b.end?.outcome !== 'held' || b.end.token === undefined) continue;
    const bHold = granted.get(holdKey(b.worker, b.name, b.end.token));
    if (!bHold) continue;
    const grantKnown = bHold.acquired.mono;
    for (const a of waits) {
      if (a === b || a.name !== b.name || a.queued === undefined || a.queued + margin >= b.start.mono) continue;
      if (Math.min(a.end?.mono ?? Infinity, a.killed ?? Infinity) <= b.start.mono) continue; // over before B began
      if (windows.some(([from, to]) => from < grantKnown && to > a.queued!)) {
        stats.fair.disrupted++;
        continue;
      }
      stats.fair.compared++;
      if (a.end?.outcome === 'held' && a.end.token !== undefined && a.end.token < b.end.token) continue;
      // Still waiting, by the margin, once B's grant was known: granted later, or gave up (or was killed) after.
      const gaveUp =
        a.end?.outcome === 'held'
          ? Infinity
          : a.end?.outcome === 'timeout' || a.end?.outcome === 'busy'
            ? Math.min(a.end.mono, a.start.mono + a.wait)
            : a.end
              ? -Infinity // aborted, or failed: not judged
              : (a.killed ?? -Infinity);
      if (grantKnown + margin >= Math.min(gaveUp, a.killed ?? Infinity)) continue;
      violations.push({
        check: 'fair',
        message:
          `"${b.name}": ${b.worker} (token ${b.end.token}), whose call began ${(b.start.mono - a.queued).toFixed(1)} ms after ` +
          `${a.worker} was known queued, was granted while ${a.worker} still waited (` +
          (a.end?.outcome === 'held'
            ? `and was granted later, with token ${a.end.token})`
            : `until its ${a.end ? a.end.outcome : 'kill'} ${(Math.min(gaveUp, a.killed ?? Infinity) - grantKnown).toFixed(1)} ms after that grant was known)`),
      });
    }
  }
}

function emptyStats(): Stats {
  return {
    operations: 0,
    outcomes: {},
    modes: {},
    acquisitions: 0,
    acquisitionsByName: {},
    ends: {},
    lost: {},
    releases: { freed: 0, alreadyEnded: 0, failed: 0 },
    fenced: { accepted: 0, rejected: 0, unknown: 0, final: 0 },
    unfenced: { increments: 0, final: 0, lostUpdates: 0 },
    faults: {},
    killedHolds: 0,
    frozenHolds: 0,
    blockedHolds: 0,
    closes: { count: 0, slowest: 0, leftovers: 0 },
    takeover: { count: 0, afterKill: [Infinity, -Infinity], afterExpiry: [Infinity, -Infinity] },
    closestEndBeforeExpiry: Infinity,
    closestHandover: Infinity,
    span: 0,
    workers: 0,
    semaphore: { permits: 0, maxLive: 0, counterMax: 0, counterFinal: 0, leaked: 0 },
    rwlock: { reads: 0, writes: 0 },
    fair: { ops: 0, queued: 0, compared: 0, disrupted: 0 },
    schedule: {
      ticks: 0,
      window: 0,
      runs: 0,
      retries: 0,
      outcomes: {},
      runEnds: {},
      skipped: {},
      lost: {},
      writes: { accepted: 0, rejected: 0, unknown: 0 },
      errors: 0,
    },
  };
}

function collectStats(events: readonly TortureEvent[], holds: readonly Hold[], stats: Stats): void {
  let first = Infinity;
  let last = -Infinity;
  for (const event of events) {
    first = Math.min(first, event.mono);
    last = Math.max(last, event.mono);
    if (event.type === 'op') {
      stats.operations++;
      count(stats.modes, event.mode);
    }
    if (event.type === 'op-end') count(stats.outcomes, event.code ? `${event.outcome} (${event.code})` : event.outcome);
    if (event.type === 'lost') count(stats.lost, event.reason);
    if (event.type === 'release-end') {
      if (event.result === true) stats.releases.freed++;
      else if (event.result === false) stats.releases.alreadyEnded++;
      else stats.releases.failed++;
    }
    if (event.type === 'fault') count(stats.faults, event.kind);
    if (event.type === 'kill' && event.why !== 'wedged') count(stats.faults, 'kill');
    if (event.type === 'spawn') stats.workers++;
  }
  stats.span = Number.isFinite(first) ? last - first : 0;
  stats.acquisitions = holds.length;
  for (const hold of holds) {
    count(stats.acquisitionsByName, hold.name);
    if (hold.end) count(stats.ends, hold.end.kind);
    if (hold.frozen) stats.frozenHolds++;
  }
  // Takeovers of a killed holder's lock (a permit or a read hold is no lock: others hold beside it).
  const locks = holds.filter((hold) => hold.kind === 'lock');
  for (const list of byName(locks, (a, b) => a.token - b.token).values()) {
    list.forEach((hold, i) => {
      if (hold.end?.kind !== 'kill') return;
      stats.killedHolds++;
      const next = list[i + 1];
      if (!next || hold.frozen) return;
      const t = stats.takeover;
      const widen = (range: [number, number], value: number) => {
        range[0] = Math.min(range[0], value);
        range[1] = Math.max(range[1], value);
      };
      t.count++;
      widen(t.afterKill, next.grantedAt - hold.end.wall);
      widen(t.afterExpiry, next.grantedAt - hold.knownExpiry);
    });
  }
}

/** Runs every check on a run's history (worker and orchestrator events, final resource states). */
export function checkHistory(events: readonly TortureEvent[], options: CheckOptions): CheckReport {
  const stats = emptyStats();
  const { holds, violations } = buildHolds(events);
  // Plain and fair locks are exclusive; permits and read holds are not (their own checks follow).
  const locks = holds.filter((hold) => hold.kind === 'lock');
  stats.closestHandover = checkExclusion(locks, violations);
  checkTokens(locks, violations);
  stats.closestEndBeforeExpiry = checkEndsBeforeExpiry(holds, violations);
  checkNoSteal(locks, violations);
  checkSemaphores(events, holds, violations, stats);
  checkGrants(holds, violations);
  checkCounters(events, holds, violations, stats);
  checkReadWrite(holds, violations, stats);
  checkFair(events, holds, options, violations, stats);
  checkResources(events, options, violations, stats);
  checkBlocked(holds, violations, stats);
  checkClose(events, options, violations, stats);
  checkLiveness(events, violations);
  checkClock(events, options.clockTolerance ?? 25, violations);
  checkSchedule(events, options, violations, stats.schedule);
  collectStats(events, holds, stats);
  return { violations, holds, stats };
}

/** One attempt of one tick in one process, reconstructed from the history. */
export interface TickRun {
  readonly worker: string;
  readonly tick: number;
  readonly attempt: number;
  readonly token: number;
  readonly start: Stamp;
  end?: Stamp & { readonly how: string };
  frozen?: Stamp;
  blocked?: { at: Stamp; after?: { held: boolean; aborted: boolean } };
  killed?: Stamp;
}

const iso = (tick: number) => new Date(tick).toISOString();
const describeRun = (run: TickRun) => `${run.worker} (attempt ${run.attempt}, token ${run.token})`;

/** Where a run ends for the overlap check: when its process froze, or blocked and then let go, or its function ended, or it was killed. */
function runEnd(run: TickRun): Stamp | undefined {
  if (run.frozen) return run.frozen;
  if (run.blocked && (!run.blocked.after || !run.blocked.after.held || run.blocked.after.aborted))
    return run.blocked.at;
  return run.end ?? run.killed;
}

/** The scheduling workload's checks (see the top of this file). */
export function checkSchedule(
  events: readonly TortureEvent[],
  options: CheckOptions,
  violations: Violation[],
  stats: ScheduleStats,
): void {
  const retries = options.retries ?? 1;
  const kills = new Map<string, Stamp>();
  for (const event of events)
    if (event.type === 'kill') kills.set(event.worker, { mono: event.mono, wall: event.wall });
  const runs: TickRun[] = [];
  const done = new Map<number, { worker: string; token: number }[]>();
  const records = new Map<number, Extract<TortureEvent, { type: 'tick-record' }>>();
  const counters = new Map<number, Extract<TortureEvent, { type: 'tick-resource' }>>();
  const writes = new Map<number, { accepted: number[]; begun: number; rejected: number; tokens: Set<number> }>();
  let window: Extract<TortureEvent, { type: 'tick-window' }> | undefined;
  const tally = (tick: number) => {
    let w = writes.get(tick);
    if (!w) writes.set(tick, (w = { accepted: [], begun: 0, rejected: 0, tokens: new Set() }));
    return w;
  };

  for (const [worker, list] of bySource(events)) {
    const open = new Map<string, TickRun>();
    const runOf = (event: { tick: number; token: number; type: string }): TickRun | undefined => {
      const run = open.get(`${event.tick}\u0000${event.token}`);
      if (!run) {
        violations.push({
          check: 'history',
          message: `${worker} recorded ${event.type} for tick ${iso(event.tick)} token ${event.token}, which it never ran`,
        });
      }
      return run;
    };
    /** The runs of this worker going on at `mono`: begun by then, and not ended before. */
    const openRuns = (mono: number) =>
      [...open.values()].filter((run) => run.start.mono <= mono && (!run.end || run.end.mono >= mono));
    for (const event of list) {
      switch (event.type) {
        case 'tick-run': {
          const run: TickRun = {
            worker,
            tick: event.tick,
            attempt: event.attempt,
            token: event.token,
            start: { mono: event.mono, wall: event.wall },
          };
          open.set(`${event.tick}\u0000${event.token}`, run);
          runs.push(run);
          break;
        }
        case 'tick-end': {
          const run = runOf(event);
          if (run && !run.end) run.end = { mono: event.mono, wall: event.wall, how: event.how };
          break;
        }
        case 'tick-freeze': {
          // The whole process stops: every run it has open stops with it, not only the one that froze.
          for (const run of openRuns(event.mono)) run.frozen ??= { mono: event.mono, wall: event.wall };
          break;
        }
        case 'tick-block': {
          const run = runOf(event);
          if (run) run.blocked ??= { at: { mono: event.mono, wall: event.wall } };
          // The event loop stops for every other run of the process too: they act again only after
          // the block, when their lease may have ended (they look before writing; fenced writes
          // catch any that did not), so each counts as ended when the block began, as a frozen one.
          for (const other of openRuns(event.mono))
            if (other !== run) other.frozen ??= { mono: event.mono, wall: event.wall };
          break;
        }
        case 'tick-block-end': {
          const run = runOf(event);
          if (run?.blocked) run.blocked.after ??= { held: event.held, aborted: event.aborted };
          break;
        }
        case 'tick-done': {
          let list = done.get(event.tick);
          if (!list) done.set(event.tick, (list = []));
          list.push({ worker, token: event.token });
          break;
        }
        case 'tick-write': {
          const w = tally(event.tick);
          if (event.phase === 'begin') {
            w.begun++;
            w.tokens.add(event.token);
          } else if (event.phase === 'ok') w.accepted.push(event.token);
          else if (event.phase === 'rejected') w.rejected++;
          break;
        }
        case 'tick-skipped':
          count(stats.skipped, event.reason);
          break;
        case 'tick-lost':
          count(stats.lost, event.reason);
          break;
        case 'sched-error':
          stats.errors++;
          break;
        case 'tick-record':
          records.set(event.tick, event);
          break;
        case 'tick-resource':
          counters.set(event.tick, event);
          break;
        case 'tick-window':
          window = event;
          break;
      }
    }
  }
  for (const run of runs) {
    if (!run.end && kills.has(run.worker)) run.killed = kills.get(run.worker);
    const ended = run.frozen ? 'frozen' : runEnd(run) === run.blocked?.at && run.blocked ? 'blocked' : undefined;
    count(stats.runEnds, ended ?? run.end?.how ?? (run.killed ? 'killed' : 'never'));
    if (!runEnd(run)) {
      violations.push({
        check: 'liveness',
        message: `tick ${iso(run.tick)}: the run of ${describeRun(run)} never ended, and its worker was not killed`,
      });
    }
  }
  stats.runs = runs.length;
  stats.retries = runs.filter((run) => run.attempt > 1).length;
  stats.ticks = records.size;
  for (const record of records.values()) count(stats.outcomes, record.outcome);

  const byTick = new Map<number, TickRun[]>();
  for (const run of runs) {
    let list = byTick.get(run.tick);
    if (!list) byTick.set(run.tick, (list = []));
    list.push(run);
  }
  for (const list of byTick.values()) list.sort((a, b) => a.start.mono - b.start.mono);

  // tick-overlap and tick-tokens
  for (const [tick, list] of byTick) {
    let latest: TickRun | undefined;
    for (const [i, run] of list.entries()) {
      if (latest) {
        const latestEnd = runEnd(latest)?.mono ?? Infinity;
        if (run.start.mono < latestEnd) {
          violations.push({
            check: 'tick-overlap',
            message:
              `tick ${iso(tick)}: ${describeRun(run)} began while ${describeRun(latest)} was still running ` +
              `(${Number.isFinite(latestEnd) ? `${(latestEnd - run.start.mono).toFixed(1)} ms before it ended` : 'it never ended'})`,
          });
        }
      }
      if (!latest || (runEnd(run)?.mono ?? Infinity) > (runEnd(latest)?.mono ?? Infinity)) latest = run;
      const before = list[i - 1];
      if (before && (run.token <= before.token || run.attempt <= before.attempt)) {
        violations.push({
          check: 'tick-tokens',
          message: `tick ${iso(tick)}: ${describeRun(run)} began after ${describeRun(before)} with a token or attempt that is not larger`,
        });
      }
    }
  }

  // tick-once
  for (const [tick, list] of done) {
    const record = records.get(tick);
    if (list.length > 1) {
      violations.push({
        check: 'tick-once',
        message: `tick ${iso(tick)} completed ${list.length} times: ${list.map((d) => `${d.worker} (token ${d.token})`).join(', ')}`,
      });
    }
    if (record && list.some((d) => record.outcome !== 'done' || d.token !== record.token)) {
      violations.push({
        check: 'tick-once',
        message: `tick ${iso(tick)}: a run with token ${list[0]!.token} completed, but the record says ${record.outcome} with token ${record.token}`,
      });
    }
  }
  for (const [tick, list] of byTick) {
    const record = records.get(tick);
    const doneToken = record?.outcome === 'done' ? record.token : done.get(tick)?.[0]?.token;
    if (doneToken === undefined) continue;
    for (const run of list) {
      if (run.token > doneToken) {
        violations.push({
          check: 'tick-once',
          message: `tick ${iso(tick)}: ${describeRun(run)} ran after the tick was done (token ${doneToken})`,
        });
      }
    }
  }

  // tick-fenced
  const ticksWritten = new Set([...writes.keys(), ...counters.keys()]);
  for (const tick of ticksWritten) {
    const w = tally(tick);
    const counter = counters.get(tick);
    const unknown = w.begun - w.accepted.length - w.rejected;
    stats.writes.accepted += w.accepted.length;
    stats.writes.rejected += w.rejected;
    stats.writes.unknown += unknown;
    const final = counter?.count ?? 0;
    if (final < w.accepted.length || final > w.accepted.length + unknown) {
      violations.push({
        check: 'tick-fenced',
        message: `tick ${iso(tick)}: the counter is ${final}, but ${w.accepted.length} writes were accepted and ${unknown} have an unknown outcome`,
      });
    }
    const largest = Math.max(0, ...w.accepted);
    if (counter && (counter.token < largest || !w.tokens.has(counter.token))) {
      violations.push({
        check: 'tick-fenced',
        message: `tick ${iso(tick)}: the counter ends with token ${counter.token}, but the largest accepted write carried ${largest}`,
      });
    }
    const record = records.get(tick);
    if (record?.outcome === 'done' && counter?.token !== record.token) {
      violations.push({
        check: 'tick-fenced',
        message: `tick ${iso(tick)} is done with token ${record.token}, but its counter's last write carried ${counter?.token ?? 'nothing'}`,
      });
    }
  }

  // tick-accounted
  if (window) {
    for (let tick = window.from; tick <= window.to; tick += window.every) {
      stats.window++;
      const record = records.get(tick);
      const list = byTick.get(tick) ?? [];
      const problem = !record
        ? 'has no record'
        : record.outcome === 'done'
          ? list.some((run) => run.token === record.token && run.end?.how === 'returned')
            ? undefined
            : `is done with token ${record.token}, which no run that returned held`
          : record.outcome === 'failed' || record.outcome === 'lost'
            ? record.attempt === retries + 1
              ? undefined
              : `is ${record.outcome} at attempt ${record.attempt}, though retries is ${retries}`
            : record.outcome === 'missed'
              ? list.length === 0
                ? undefined
                : `is missed, though ${list.length} run(s) of it began`
              : `is still ${record.outcome} (attempt ${record.attempt}, token ${record.token})`;
      if (problem) {
        const ran = list.map((run) => `${describeRun(run)}: ${run.end?.how ?? (run.killed ? 'killed' : 'no end')}`);
        violations.push({
          check: 'tick-accounted',
          message: `tick ${iso(tick)} ${problem}${ran.length > 0 ? `; runs: ${ran.join('; ')}` : '; no run began'}`,
        });
      }
    }
  }
}
