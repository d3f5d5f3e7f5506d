// Shared pieces of the property suites: run sizes from the environment, promise bounds, the
// unhandled-rejection recorder, the contract's error check, and run counters for `npm run fuzz`.
import { appendFileSync } from 'node:fs';
import type { Parameters as FcParameters } from 'fast-check';
import type { Connection } from 'mongoose';
import type { Lease } from '../../lib/index';

/**
 * fast-check parameters of one property. `FUZZ_RUNS` sets the number of runs of every property
 * (default: `runs`, small, for `npm test`); `FUZZ_MINUTES` instead runs each property for its
 * share (`share`, a fraction) of that many minutes. `FUZZ_SEED` (and `FUZZ_PATH`) replay a failure.
 */
export function fuzzParameters<T>(runs: number, share = 1): FcParameters<T> {
  const minutes = Number(process.env.FUZZ_MINUTES ?? 0);
  const fixedRuns = Number(process.env.FUZZ_RUNS ?? 0);
  const seed = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
  return {
    numRuns: minutes > 0 ? 1_000_000 : fixedRuns > 0 ? fixedRuns : runs,
    ...(minutes > 0 ? { interruptAfterTimeLimit: minutes * 60_000 * share } : {}),
    ...(seed === undefined ? {} : { seed, path: process.env.FUZZ_PATH }),
    verbose: 1,
    endOnFailure: false,
  };
}

/** The Jest timeout a property needs: generous for its default size, and its share of FUZZ_MINUTES. */
export function propertyTimeout(defaultMs: number, share = 1): number {
  const minutes = Number(process.env.FUZZ_MINUTES ?? 0);
  const runs = Number(process.env.FUZZ_RUNS ?? 0);
  if (minutes > 0) return minutes * 60_000 * share + 120_000;
  if (runs > 0) return defaultMs * Math.max(1, runs / 5);
  return defaultMs;
}

/** Counts, for the summary line of `npm run fuzz` (appended as JSON lines to FUZZ_COUNTS_FILE). */
export function recordCounts(counts: { suite: string; runs: number; sequences?: number; commands?: number }): void {
  const file = process.env.FUZZ_COUNTS_FILE;
  if (file) appendFileSync(file, `${JSON.stringify(counts)}\n`);
}

/** Rejects with a clear error if `promise` has not settled within `ms`: every promise must settle. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`did not settle within ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, bound]).finally(() => clearTimeout(timer));
}

/** How a call ended: the value it resolved, or the error it threw or rejected with. */
export type Outcome = { value: unknown } | { error: unknown };

/** Waits for `promise` to settle (failing after `ms`, as {@link within}) and says how it ended, without throwing. */
export function settle(promise: Promise<unknown>, ms: number, what: string): Promise<Outcome> {
  return within(
    promise.then(
      (value: unknown) => ({ value }),
      (error: unknown) => ({ error }),
    ),
    ms,
    what,
  );
}

/** Records unhandled rejections from the moment it is installed (in a beforeAll) until removed. */
export function rejectionRecorder() {
  const seen: unknown[] = [];
  const listener = (reason: unknown) => void seen.push(reason);
  return {
    seen,
    install: () => void process.on('unhandledRejection', listener),
    remove: () => void process.off('unhandledRejection', listener),
    /** Describes what was recorded since `from`, or '' if nothing was. */
    since(from: number): string {
      return seen
        .slice(from)
        .map((r) => (r instanceof Error ? `${r.name}: ${r.message}` : String(r)))
        .join('; ');
    },
  };
}

/**
 * Whether `error` is what the contract asks of invalid input: a TypeError or RangeError with
 * `code: 'invalid_argument'` whose message names one of `keys`. '' if so, else why not.
 */
export function invalidArgumentProblem(error: unknown, keys: readonly string[]): string {
  if (!(error instanceof TypeError) && !(error instanceof RangeError)) {
    return `expected a TypeError or RangeError, got ${describeError(error)}`;
  }
  if ((error as { code?: unknown }).code !== 'invalid_argument') {
    return `expected code 'invalid_argument', got ${String((error as { code?: unknown }).code)} (${describeError(error)})`;
  }
  if (!keys.some((key) => error.message.includes(key))) {
    return `expected the message to name one of ${JSON.stringify(keys)}: ${error.message}`;
  }
  return '';
}

export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code: unknown = (error as { code?: unknown }).code;
    const tag = typeof code === 'string' || typeof code === 'number' ? `[${code}]` : '';
    return `${error.constructor.name}${tag}: ${error.message}`;
  }
  return `a thrown ${typeof error}: ${String(error)}`;
}

/**
 * Counts the commands a connection sends (it must be opened with `monitorCommands: true`), leaving
 * out the driver's own housekeeping (handshakes, session ends) and the wake-up signals' cursor.
 */
/** A find or update of the watchdog: its filter selects holds by a list of names (`_id: { $in }`). */
function isWatchdogBatch(name: string, command: Record<string, unknown>): boolean {
  type ByNames = { _id?: { $in?: unknown } } | undefined;
  if (name === 'find') return (command.filter as ByNames)?._id?.$in !== undefined;
  if (name === 'update') return (command.updates as { q?: ByNames }[] | undefined)?.[0]?.q?._id?.$in !== undefined;
  return false;
}

export function commandCounter(connection: Connection) {
  let count = 0;
  const sent: string[] = [];
  const housekeeping = new Set([
    'hello',
    'isMaster',
    'ismaster',
    'ping',
    'endSessions',
    'saslStart',
    'saslContinue',
    // a cursor's continuation (the wake-up signals' tailing cursor), not a new command
    'getMore',
    'killCursors',
    // a metadata read (the signals' capped collection being looked for), never a change
    'listCollections',
  ]);
  const inFlight = new Set<number>();
  const onIdle: (() => void)[] = [];
  const ended = (event: { requestId: number }) => {
    if (!inFlight.delete(event.requestId) || inFlight.size) return;
    for (const resolve of onIdle.splice(0)) resolve();
  };
  connection.getClient().on('commandSucceeded', ended);
  connection.getClient().on('commandFailed', ended);
  connection.getClient().on('commandStarted', (event) => {
    if (housekeeping.has(event.commandName)) return;
    // The wake-up signals' cursor starts and stops in the background, after waits that ended
    // earlier; a call that really started something also sends its own command on the locks.
    const target = (event.command as Record<string, unknown>)[event.commandName];
    if (typeof target === 'string' && target.endsWith('.signals')) return;
    // A watchdog tick's batch (renewals or read-back by a list of names): background work of holds
    // taken earlier, never sent by a call; a tick in flight when a case begins lands in its window.
    if (isWatchdogBatch(event.commandName, event.command)) return;
    count++;
    inFlight.add(event.requestId);
    const command = event.command as Record<string, unknown>;
    sent.push(
      `${event.commandName} ${String(command[event.commandName])} ${JSON.stringify(command.documents ?? command.query ?? command.updates ?? '').slice(0, 200)}`,
    );
  });
  return {
    get count() {
      return count;
    },
    /** Command names sent since `from`. */
    since: (from: number) => sent.slice(from),
    /** Resolves once every counted command sent so far has been answered. */
    idle: (): Promise<void> =>
      inFlight.size ? new Promise<void>((resolve) => void onIdle.push(resolve)) : Promise.resolve(),
  };
}

/** The lock document of `name` and the server's clock, in one read. */
export interface StoredLock {
  readonly exists: boolean;
  readonly token: number | undefined;
  readonly leaseId: string | null | undefined;
  readonly owner: string | undefined;
  readonly expiresAt: Date | undefined;
  /** The server's $$NOW when it was read. */
  readonly now: Date;
  /** Held right now by the server's clock: a leaseId and an expiry after $$NOW. */
  readonly live: boolean;
}

/** Reads the lock documents of `names` with the server's clock, through `connection` (not a manager's). */
export async function readLocks(
  connection: Connection,
  collection: string,
  names: readonly string[],
): Promise<Map<string, StoredLock>> {
  const docs = await connection
    .db!.collection(collection)
    .aggregate<{
      _id: string;
      token?: number;
      leaseId?: string | null;
      owner?: string;
      expiresAt?: Date;
      now: Date;
    }>([
      { $match: { _id: { $in: names } } },
      { $project: { token: 1, leaseId: 1, owner: 1, expiresAt: 1, now: '$$NOW' } },
    ])
    .toArray();
  // A clock reading even when no document exists: the server's localTime.
  const clock =
    docs.length === names.length ? undefined : ((await connection.db!.command({ hello: 1 })) as { localTime?: Date });
  const result = new Map<string, StoredLock>();
  for (const name of names) {
    const doc = docs.find((d) => d._id === name);
    const now = doc?.now ?? clock?.localTime ?? new Date();
    const token = doc?.token === undefined ? undefined : Number(doc.token);
    result.set(name, {
      exists: doc !== undefined,
      token,
      leaseId: doc?.leaseId,
      owner: doc?.owner,
      expiresAt: doc?.expiresAt,
      now,
      live: doc !== undefined && doc.leaseId != null && doc.expiresAt !== undefined && doc.expiresAt > now,
    });
  }
  return result;
}

/** What a lease claims at one moment. */
export interface Claim {
  readonly lease: Lease;
  readonly token: number;
  readonly expiresAt: Date;
}

/** The lease's claim now, if it says it holds its lock. */
export function claimOf(lease: Lease): Claim | undefined {
  if (!lease.held) return undefined;
  return { lease, token: lease.token!, expiresAt: lease.expiresAt! };
}

/**
 * Checks a claim taken before `stored` was read against it: while the server's clock is before
 * the expiry the lease itself reported, the document must say this hold has the lock. '' if
 * consistent (or not decidable: the claim's own expiry had passed by the read), else why not.
 */
export function claimProblem(claim: Claim, stored: StoredLock | undefined): string {
  if (!stored) return `no read of "${claim.lease.name}"`;
  if (stored.now >= claim.expiresAt) return ''; // the hold may have ended by itself in between
  const where = `lease "${claim.lease.name}" says held with token ${claim.token} until ${claim.expiresAt.toISOString()}`;
  if (!stored.exists) return `${where}, but there is no lock document (server time ${stored.now.toISOString()})`;
  if (stored.token !== claim.token || !stored.live) {
    return `${where}, but the document has token ${stored.token}, leaseId ${stored.leaseId === null ? 'null' : 'set'}, expiresAt ${stored.expiresAt?.toISOString()} (server time ${stored.now.toISOString()})`;
  }
  return '';
}
