import mongoose, { type Connection, type mongo } from 'mongoose';
import { MAX_TIMER } from './duration.js';
import { LockError, LockErrorCode } from './errors.js';

/**
 * A lock document: one per lock name, kept (not deleted) when the lock is released so that the
 * fencing token only ever grows. All times are the server's (`$$NOW`).
 */
export interface LockDocument {
  /** The lock's name. */
  _id: string;
  /** Fencing token of the current or last hold. */
  token: number;
  /** Private id of the current hold, the only key that renews or releases it; null when free. */
  leaseId: string | null;
  /** Who holds (or last held) the lock; informational. */
  owner: string;
  acquiredAt: Date;
  /** When the current hold ends unless renewed; for a free lock, when the last hold ended. */
  expiresAt: Date;
  /** The hold's lease duration in ms: each renewal sets expiresAt to $$NOW + ttl. */
  ttl: number;
  /** Set only while the lock is free: the clean-up TTL index removes long-free documents by it. */
  freedAt?: Date;
  /** Someone waited for this hold to end: its release sends a signal to waiters in other processes. */
  contended?: boolean;
  /** The hold this one took over, if it took over one that was never released (expired, or forced). */
  previous?: EndedHold;
}
/** How a hold ended: released by its holder, ran out (expired), or ended by someone else (taken). */
export type HoldOutcome = 'released' | 'expired' | 'taken';

/** A hold that has ended, as the acquire pipeline stashes it. */
interface EndedHold {
  /** The hold's fencing token. */
  readonly token: number;
  /** Who held it. */
  readonly owner: string;
  /** When it began, by the server's clock. */
  readonly acquiredAt: Date;
  /** When it ended, by the server's clock: when it was released or taken, or when it expired. */
  readonly endedAt: Date;
  /** How it ended. */
  readonly outcome: HoldOutcome;
}

/** One ended hold, as `manager.history()` returns it. */
export interface HistoryRecord extends EndedHold {
  /** The lock's name. */
  readonly name: string;
}

/** An index the library needs, as `createIndex` takes it. */
export interface IndexSpec {
  readonly key: Readonly<Record<string, 1 | -1>>;
  readonly expireAfterSeconds?: number;
}

/** An index as `listIndexes` describes it. */
export interface ExistingIndex extends IndexSpec {
  readonly name: string;
}

/** What one acquisition attempt found. */
export interface AcquireResult {
  readonly acquired: boolean;
  /** When the (now or still) current hold ends, on the server's clock. */
  readonly expiresAt: Date;
  /** Milliseconds from the server's `$$NOW` to `expiresAt`: how long the hold has left. */
  readonly remaining: number;
  /** The current hold's token and owner (ours, if acquired). */
  readonly token: number;
  readonly owner: string;
  /** The hold this acquisition took over, if it was never released (it expired, or was forced). */
  readonly took?: HistoryRecord;
}

/**
 * How a release ended: freed while ours and live, found already expired (freed anyway), found
 * taken by another hold, or found freed by someone else (nobody holds it).
 */
export type ReleaseOutcome = HoldOutcome | 'freed';

/** What a release did, and whether anyone was waiting for the lock (who should be told). */
export interface ReleaseResult {
  readonly outcome: ReleaseOutcome;
  readonly contended: boolean;
}

/** A hold's state as the watchdog reads it back. */
export interface HoldState {
  readonly leaseId: string | null;
  /** Milliseconds the hold has left by the server's clock (0 or less: expired). */
  readonly remaining: number;
  readonly expiresAt: Date;
}

/** A lock as `inspect()` and `list()` describe it. */
export interface LockInfo {
  readonly name: string;
  /** The holder, or the last holder of a free lock. */
  readonly owner: string;
  /** Fencing token of the current or last hold. */
  readonly token: number;
  readonly acquiredAt: Date;
  /** When the current hold ends unless renewed (for a free lock: when the last hold ended). */
  readonly expiresAt: Date;
  /** Held right now, judged by the server's clock. */
  readonly held: boolean;
}

/** One held lease, as the batch commands need it. */
export interface HoldKey {
  readonly name: string;
  readonly leaseId: string;
}

const DUPLICATE_KEY = 11000;
const NAMESPACE_NOT_FOUND = 26;
const INDEX_NOT_FOUND = 27;
/** Past this many bytes of names and ids, batch commands are split, well inside MongoDB's 16 MB. */
const BATCH_BYTES = 4 * 1024 * 1024;
const TRANSIENT = /^Mongo(Network|NetworkTimeout|ServerSelection|PoolClosed|PoolCleared|OperationTimeout)Error$/;
/** The application closed its client (or never connected it): nothing a wait can ride out. */
const CLIENT_CLOSED = /^Mongo(NotConnected|ClientClosed|TopologyClosed)Error$/;
/**
 * Server errors that pass by themselves, as during a replica-set election: not (or no longer) the
 * primary, shutting down, interrupted by a state change, unreachable hosts. The drivers' list of
 * retryable errors: waits ride these out instead of giving up.
 */
const RETRYABLE_CODES = new Set([6, 7, 89, 91, 134, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436]);

function isTransient(error: unknown): boolean {
  const e = error as { name?: unknown; code?: unknown; hasErrorLabel?: (label: string) => boolean };
  if (typeof e?.name === 'string' && TRANSIENT.test(e.name)) return true;
  if (typeof e?.code === 'number' && RETRYABLE_CODES.has(e.code)) return true;
  return typeof e?.hasErrorLabel === 'function' && e.hasErrorLabel('RetryableWriteError');
}

const isFree = {
  $or: [{ $eq: [{ $ifNull: ['$leaseId', null] }, null] }, { $lte: ['$expiresAt', '$$NOW'] }],
};
const heldNow = {
  $and: [{ $ne: [{ $ifNull: ['$leaseId', null] }, null] }, { $gt: ['$expiresAt', '$$NOW'] }],
};
const remainingMs = { $subtract: ['$expiresAt', '$$NOW'] };
const infoProjection = { _id: 1, owner: 1, token: 1, acquiredAt: 1, expiresAt: 1, held: heldNow };
/**
 * When a freed document's clean-up clock starts: now, or the hold's token read as a time if that
 * is later (a burst of holds can run the token a little ahead of the clock). The clean-up index
 * removes the document only once the server's clock has passed it, so a later first acquisition,
 * whose token is at least the server's time in ms, still gets a larger token.
 */
const freedFrom = (ended: unknown) => ({ $max: [ended, { $toDate: '$token' }] });
/** Frees a lock: the hold's id goes, the end time is no later than now, and the clean-up clock starts. */
const freeIt = {
  leaseId: null,
  expiresAt: { $min: ['$expiresAt', '$$NOW'] },
  freedAt: freedFrom('$$NOW'),
  contended: '$$REMOVE',
};
/** What history needs of a hold, read as it was before it ended. */
const holdProjection = { _id: 0, token: 1, owner: 1, acquiredAt: 1, expiresAt: 1, now: '$$NOW' };
/** The hold a successful acquisition ends, if one was never released: stashed as `previous`. */
const endedHold = {
  $cond: [
    { $ne: [{ $ifNull: ['$leaseId', null] }, null] },
    {
      token: '$token',
      owner: '$owner',
      acquiredAt: '$acquiredAt',
      endedAt: { $min: ['$expiresAt', '$$NOW'] },
      outcome: { $cond: [{ $lte: ['$expiresAt', '$$NOW'] }, 'expired', 'taken'] },
    },
    '$$REMOVE',
  ],
};

/** One attempt to take a lock, as {@link acquireCommand} sends it. */
export interface AcquireRequest {
  readonly name: string;
  /** The new hold's private id. */
  readonly leaseId: string;
  readonly owner: string;
  readonly ttl: number;
  /** Take it whatever its state. */
  readonly force?: boolean;
  /** The contender will wait if it is busy: mark the lock `contended`. */
  readonly waiting?: boolean;
}

/**
 * One atomic attempt to take the lock `name`: one `findOneAndUpdate` with upsert, whose update
 * pipeline takes the lock only if it is free or its expiry is not after the server's `$$NOW`
 * (or, with `force`, whatever its state). The fencing token becomes max(previous + 1, server
 * time in ms), so it grows across releases, expiries and the document's later removal. A
 * `waiting` contender that finds the lock busy marks it `contended` (a write only the first
 * time), so that its release will signal waiters in other processes.
 *
 * An attempt whose answer was lost (a timeout, a reset connection) is retried with the same
 * `leaseId`: if the lost one had taken the lock, the retry finds its own live hold and keeps it
 * (same token, expiry extended) instead of finding the lock busy until it expires.
 *
 * Every value that comes from the caller enters the pipeline as a `$literal`: an owner such as
 * `'$$NOW'` or `'$token'` is stored as written, never evaluated.
 */
export function acquireCommand(request: AcquireRequest) {
  const { name, leaseId, owner, ttl, force = false, waiting = false } = request;
  const take = (value: unknown, field: string) => ({ $cond: ['$_take', value, `$${field}`] });
  const fresh = (value: unknown, field: string) => take({ $cond: ['$_mine', `$${field}`, value] }, field);
  const update = [
    {
      $set: {
        _mine: { $and: [{ $eq: ['$leaseId', { $literal: leaseId }] }, { $gt: ['$expiresAt', '$$NOW'] }] },
        _take: force ? true : isFree,
      },
    },
    { $set: { _take: { $or: ['$_take', '$_mine'] } } },
    {
      $set: {
        leaseId: take({ $literal: leaseId }, 'leaseId'),
        owner: take({ $literal: owner }, 'owner'),
        token: fresh({ $max: [{ $add: [{ $ifNull: ['$token', 0] }, 1] }, { $toLong: '$$NOW' }] }, 'token'),
        acquiredAt: fresh('$$NOW', 'acquiredAt'),
        expiresAt: take({ $add: ['$$NOW', ttl] }, 'expiresAt'),
        ttl: take({ $literal: ttl }, 'ttl'),
        freedAt: take('$$REMOVE', 'freedAt'),
        previous: fresh(endedHold, 'previous'),
        contended: { $cond: ['$_take', '$$REMOVE', waiting ? true : '$contended'] },
      },
    },
    { $unset: ['_take', '_mine'] },
  ];
  const options = {
    upsert: true,
    returnDocument: 'after',
    projection: {
      _id: 0,
      mine: { $eq: ['$leaseId', { $literal: leaseId }] },
      token: 1,
      owner: 1,
      expiresAt: 1,
      remaining: remainingMs,
      previous: 1,
    },
  } as const;
  return { filter: { _id: name }, update, options };
}

/** The release command: frees the lock if `leaseId` still holds it, answering from the document as it was. */
export function releaseCommand(name: string, leaseId: string) {
  const options = {
    returnDocument: 'before',
    projection: { ...holdProjection, live: { $gt: ['$expiresAt', '$$NOW'] }, contended: 1 },
  } as const;
  return { filter: { _id: name, leaseId }, update: [{ $set: freeIt }], options };
}

/** True for errors that mean "MongoDB could not be reached or did not answer in time". */
export function isConnectionError(error: unknown): boolean {
  return error instanceof LockError && error.code === LockErrorCode.Connection;
}

/** The application closed its connection, or never opened it: unlike an outage, nothing a wait can ride out. */
class ConnectionClosedError extends LockError {}

/** True for a connection error that will not pass by itself (see ConnectionClosedError). */
export function isClosedConnection(error: unknown): boolean {
  return error instanceof ConnectionClosedError;
}

/**
 * Every write that changes who holds a lock, or until when, is acknowledged only once it is
 * journaled (it survives a crash of the server) and, on a replica set, on a majority (it survives
 * a failover). Set on the collection, not inherited from the connection: a `w: 1` connection would
 * otherwise let an acknowledged acquisition vanish and the lock be handed out twice.
 */
const DURABLE = { writeConcern: { w: 'majority', j: true } } as const;

/**
 * The collection options of every lock command: durable writes (above), and majority reads. A
 * primary cut off from the rest of a replica set still applies a renewal locally; a `local` read
 * would show it, and the holder would trust a lease the new primary lets expire. A majority read
 * shows only what survives a failover.
 */
export const COLLECTION = { ...DURABLE, readConcern: { level: 'majority' }, readPreference: 'primary' } as const;

/** A driver error as a LockError: `connection` if it may pass by itself, else `database`. @internal */
export function toLockError(error: unknown, what: string): LockError {
  if (error instanceof LockError) return error;
  const name = (error as Error | undefined)?.name ?? '';
  const message = (error as Error | undefined)?.message ?? String(error);
  if (CLIENT_CLOSED.test(name)) {
    return new ConnectionClosedError(LockErrorCode.Connection, `${what}: the mongoose connection is closed`, {
      cause: error,
    });
  }
  const code = isTransient(error) ? LockErrorCode.Connection : LockErrorCode.Database;
  return new LockError(code, `${what}: ${message}`, { cause: error });
}

/** Splits keys into batches whose names and ids stay under BATCH_BYTES. */
function batches<T extends { name: string }>(items: readonly T[], bytes: (item: T) => number): T[][] {
  const out: T[][] = [];
  let current: T[] = [];
  let size = 0;
  for (const item of items) {
    const itemBytes = bytes(item);
    if (current.length > 0 && size + itemBytes > BATCH_BYTES) {
      out.push(current);
      current = [];
      size = 0;
    }
    current.push(item);
    size += itemBytes;
  }
  if (current.length > 0) out.push(current);
  return out;
}

/** Optional duties of a {@link LockStore}. */
export interface StoreOptions {
  /** Record every ended hold in this collection. */
  readonly history?: string;
  /** Where the failure of a best-effort command (a history record) goes. */
  readonly report?: (error: unknown) => void;
  /** Told of every best-effort command in flight (history records), so that a close can wait for them. */
  readonly track?: (work: Promise<unknown>) => void;
}

/**
 * Every MongoDB command of the library, each one round trip on the native driver's collection
 * (not a mongoose model, so nothing is buffered while disconnected), each bounded by a timeout:
 * a paused or unreachable server makes a command fail, never hang.
 */
export class LockStore {
  readonly #connection: Connection;
  readonly #collectionName: string;
  readonly #timeout: number;
  /** The driver's collection handle, made once per database handle (the hot path runs through it). */
  #cached: { db: mongo.Db; collection: mongo.Collection<LockDocument> } | undefined;

  readonly #history: string | undefined;
  readonly #report: (error: unknown) => void;
  readonly #track: (work: Promise<unknown>) => void;

  constructor(connection: Connection, collection: string, commandTimeout: number, options: StoreOptions = {}) {
    this.#connection = connection;
    this.#collectionName = collection;
    this.#timeout = commandTimeout;
    this.#history = options.history;
    this.#report = options.report ?? (() => {});
    this.#track = options.track ?? (() => {});
  }

  /** The native driver's database handle, waiting (bounded) for a connection that is still opening. */
  async db(what: string, timeout = this.#timeout): Promise<mongo.Db> {
    const connection = this.#connection;
    const { connected, connecting } = mongoose.ConnectionStates;
    if (connection.db && connection.readyState !== connecting) {
      if (connection.readyState === connected) return connection.db;
      // Fail now: a command on a closed client would reopen it (driver 6) and keep the process
      // alive; on a cut-off one it would only hang. Mongoose (8 and 9) marks a connection the
      // application closed; without that mark, it is an outage, which waits ride out.
      if ((connection as { _closeCalled?: unknown })._closeCalled === true) {
        throw new ConnectionClosedError(LockErrorCode.Connection, `${what}: the mongoose connection is closed`);
      }
      throw new LockError(LockErrorCode.Connection, `${what}: the mongoose connection is disconnected`);
    }
    if (connection.readyState !== connecting) {
      throw new ConnectionClosedError(
        LockErrorCode.Connection,
        `${what}: the mongoose connection is not open (call mongoose.connect() or connection.openUri() first)`,
      );
    }
    await this.#bounded(connection.asPromise(), what, timeout);
    if (!connection.db) throw new LockError(LockErrorCode.Connection, `${what}: the mongoose connection did not open`);
    return connection.db;
  }

  /** The lock collection (or another one of the library's, by `name`), with durable writes and majority reads. */
  async collection<D extends mongo.Document = LockDocument>(
    what: string,
    timeout = this.#timeout,
    name = this.#collectionName,
  ): Promise<mongo.Collection<D>> {
    const db = await this.db(what, timeout);
    if (name !== this.#collectionName) return db.collection<D>(name, COLLECTION);
    if (this.#cached?.db !== db) this.#cached = { db, collection: db.collection<LockDocument>(name, COLLECTION) };
    return this.#cached.collection as unknown as mongo.Collection<D>;
  }

  /**
   * Runs `command`, failing with code `connection` if it does not settle within `timeout` ms. A
   * command that lost the race still runs to its end; `late` sees what it returned.
   */
  async run<T, D extends mongo.Document = LockDocument>(
    what: string,
    command: (collection: mongo.Collection<D>) => Promise<T>,
    options: { timeout?: number; late?: (value: T) => void; collection?: string } = {},
  ): Promise<T> {
    const timeout = options.timeout ?? this.#timeout;
    const started = performance.now();
    const collection = await this.collection<D>(what, timeout, options.collection);
    const pending = command(collection);
    try {
      return await this.#bounded(pending, what, timeout - (performance.now() - started));
    } catch (error) {
      if (isConnectionError(error) && options.late) pending.then(options.late, () => {});
      throw toLockError(error, what);
    }
  }

  #bounded<T>(pending: Promise<T>, what: string, timeout: number): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new LockError(LockErrorCode.Connection, `${what}: MongoDB did not answer within ${Math.round(timeout)} ms`),
          ),
        Math.min(Math.max(0, timeout), MAX_TIMER),
      );
    });
    pending.catch(() => {}); // a late failure of a command that timed out is nobody's to handle
    return Promise.race([pending, expired]).finally(() => clearTimeout(timer));
  }

  /**
   * One atomic attempt to take a lock: one round trip, see {@link acquireCommand}. Taking over a
   * hold that was never released records it in the history (if on): its holder no longer can.
   */
  acquire(request: AcquireRequest, late?: (result: AcquireResult) => void): Promise<AcquireResult> {
    const { name } = request;
    const what = `acquire("${name}")`;
    const { filter, update, options } = acquireCommand(request);
    const command = async (collection: mongo.Collection<LockDocument>): Promise<AcquireResult> => {
      try {
        const doc = await collection.findOneAndUpdate(filter, update, options);
        if (!doc) throw new LockError(LockErrorCode.Database, `${what}: the server returned no document`);
        const result = doc as unknown as {
          mine: boolean;
          token: number;
          owner: string;
          expiresAt: Date;
          remaining: number;
          previous?: EndedHold;
        };
        return {
          acquired: result.mine,
          token: Number(result.token),
          owner: result.owner,
          expiresAt: result.expiresAt,
          remaining: Number(result.remaining),
          ...(result.mine && result.previous && { took: { name, ...result.previous } }),
        };
      } catch (error) {
        // Two upserts raced to create the document; the loser finds it busy, and simply tries again.
        if ((error as { code?: unknown }).code === DUPLICATE_KEY) {
          return { acquired: false, token: 0, owner: '', expiresAt: new Date(0), remaining: 0 };
        }
        throw error;
      }
    };
    const record = async (result: AcquireResult) => {
      if (result.took) await this.#record([result.took]);
      return result;
    };
    const onLate = (result: AcquireResult) => {
      void record(result);
      late?.(result);
    };
    // History is a second write, off the acquisition's path: the hold begins without waiting for it.
    return this.run(what, command, { late: onLate }).then((result) => {
      void record(result);
      return result;
    });
  }

  /**
   * Frees the lock if `leaseId` still holds it; says whether it was live, already expired, or
   * taken, and whether anyone waited for it. `lapsed`: the holder gives it up because its time
   * ran out locally (history then records the hold as expired, not released).
   */
  async release(name: string, leaseId: string, timeout?: number, lapsed = false): Promise<ReleaseResult> {
    const outcome = (before: unknown): HoldOutcome => ((before as { live: boolean }).live ? 'released' : 'expired');
    // The hold ended: record it, also if the answer comes too late for the caller.
    const record = (before: unknown) =>
      before ? this.#record([ended(name, before as HoldRead, lapsed ? 'expired' : outcome(before))]) : undefined;
    const { filter, update, options } = releaseCommand(name, leaseId);
    const before = await this.run(`release("${name}")`, (c) => c.findOneAndUpdate(filter, update, options), {
      timeout,
      late: (late) => void record(late),
    });
    await record(before);
    const contended = (before as { contended?: boolean } | null)?.contended === true;
    if (before) return { outcome: outcome(before), contended };
    // Not ours any more: one more read (only on this rare path) tells "taken" from "freed".
    const now = await this.run(`release("${name}")`, (c) =>
      c.findOne({ _id: name }, { projection: { _id: 0, leaseId: 1, live: heldNow } }),
    );
    const taken = now !== null && (now as { live?: boolean }).live === true;
    return { outcome: taken ? 'taken' : 'freed', contended };
  }

  /**
   * Frees a lock whoever holds it (operators: `mdlock release --force`); `outcome` is `released`
   * if it was held (history records that hold as `taken`).
   */
  async forceRelease(name: string): Promise<ReleaseResult> {
    const record = (before: unknown) => (before ? this.#record([ended(name, before as HoldRead, 'taken')]) : undefined);
    const before = await this.run(
      `forceRelease("${name}")`,
      (collection) =>
        collection.findOneAndUpdate({ _id: name, $expr: heldNow }, [{ $set: freeIt }], {
          returnDocument: 'before',
          projection: { ...holdProjection, contended: 1 },
        }),
      { late: (late) => void record(late) },
    );
    await record(before);
    return { outcome: before ? 'released' : 'expired', contended: before?.contended === true };
  }

  /**
   * Extends every given hold that is still ours and unexpired by its own ttl from `$$NOW`, in
   * one command per ~4 MB of keys. A hold that expired on the server's clock is never revived.
   */
  async renew(holds: readonly HoldKey[], timeout: number): Promise<void> {
    const groups = batches(holds, (h) => Buffer.byteLength(h.name) + h.leaseId.length + 16);
    await this.run(
      'renew',
      (collection) =>
        Promise.all(
          groups.map((group) =>
            collection.updateMany(
              {
                _id: { $in: group.map((h) => h.name) },
                leaseId: { $in: group.map((h) => h.leaseId) },
                $expr: { $gt: ['$expiresAt', '$$NOW'] },
              },
              [{ $set: { expiresAt: { $add: ['$$NOW', '$ttl'] } } }],
            ),
          ),
        ),
      { timeout },
    );
  }

  /** Reads back the holds on `names` (with the server's view of their remaining time), in one find per ~4 MB of names. */
  async read(names: readonly string[], timeout: number): Promise<Map<string, HoldState>> {
    const groups = batches(
      names.map((name) => ({ name })),
      (n) => Buffer.byteLength(n.name) + 16,
    );
    const found = await this.run(
      'read',
      (collection) =>
        Promise.all(
          groups.map((group) =>
            collection
              .find(
                { _id: { $in: group.map((n) => n.name) } },
                // One more than can match, so that the first batch also closes the cursor (no getMore).
                { projection: { leaseId: 1, expiresAt: 1, remaining: remainingMs }, batchSize: group.length + 1 },
              )
              .toArray(),
          ),
        ),
      { timeout },
    );
    const states = new Map<string, HoldState>();
    for (const doc of found.flat()) {
      const state = doc as unknown as { _id: string; leaseId: string | null; expiresAt: Date; remaining: number };
      states.set(state._id, {
        leaseId: state.leaseId ?? null,
        expiresAt: state.expiresAt,
        remaining: Number(state.remaining),
      });
    }
    return states;
  }

  /** One lock's state, or null if there is no document for it. */
  async inspect(name: string): Promise<LockInfo | null> {
    const doc = await this.run(`inspect("${name}")`, (collection) =>
      collection.findOne({ _id: name }, { projection: infoProjection }),
    );
    return doc ? toInfo(doc) : null;
  }

  /** Every lock document, by name. */
  async list(): Promise<LockInfo[]> {
    const docs = await this.run('list', (collection) =>
      collection.find({}, { projection: infoProjection }).sort({ _id: 1 }).toArray(),
    );
    return docs.map(toInfo);
  }

  // Set-up, clean-up and history.

  /** The indexes of `collection` (none if it does not exist yet). */
  indexes(collection: string): Promise<ExistingIndex[]> {
    return this.run(
      `listIndexes("${collection}")`,
      async (c) => {
        try {
          return (await c.listIndexes().toArray()) as ExistingIndex[];
        } catch (error) {
          if ((error as { code?: unknown }).code === NAMESPACE_NOT_FOUND) return [];
          throw error;
        }
      },
      { collection },
    );
  }

  /** Creates one index (a no-op if the same one exists). */
  async createIndex(collection: string, spec: IndexSpec): Promise<void> {
    const options = spec.expireAfterSeconds === undefined ? {} : { expireAfterSeconds: spec.expireAfterSeconds };
    await this.run(
      `createIndex("${collection}", ${JSON.stringify(spec.key)})`,
      (c) => c.createIndex(spec.key, options),
      { collection },
    );
  }

  /** Drops the index `name` of `collection`; one already gone is fine. */
  async dropIndex(collection: string, name: string): Promise<void> {
    await this.run(
      `dropIndex("${collection}", "${name}")`,
      async (c) => {
        await c.dropIndex(name).catch((error: unknown) => {
          if ((error as { code?: unknown }).code !== INDEX_NOT_FOUND) throw error;
        });
      },
      { collection },
    );
  }

  /**
   * Frees holds that expired more than `olderThan` ms ago and were never released (their holder
   * crashed), so that the clean-up index can remove them: their `freedAt` becomes the time they
   * expired (or their token's time, if later). Each is freed by a conditional update of its own,
   * so that of several managers sweeping at once exactly one frees (and records) each hold.
   * Resolves the number freed. `stop`: checked before the updates, to send no more commands.
   */
  async sweep(olderThan: number, stop: () => boolean = () => false, limit = 1000): Promise<number> {
    const long = { $lt: ['$expiresAt', { $subtract: ['$$NOW', olderThan] }] };
    const stale = await this.run('sweep', (c) =>
      c
        .find({ leaseId: { $ne: null }, $expr: long }, { projection: { _id: 1, leaseId: 1 } })
        .limit(limit)
        .toArray(),
    );
    if (stop()) return 0;
    // Each hold freed is recorded, also if its update answers too late or another one fails.
    const free = async ({ _id: name, leaseId }: { _id: string; leaseId: string | null }) => {
      const toRecord = (before: unknown) => (before ? [ended(name, before as HoldRead, 'expired')] : []);
      const before = await this.run(
        `sweep("${name}")`,
        (c) =>
          c.findOneAndUpdate(
            { _id: name, leaseId, $expr: long },
            [{ $set: { leaseId: null, freedAt: freedFrom('$expiresAt') } }],
            { returnDocument: 'before', projection: holdProjection },
          ),
        { late: (late) => void this.#record(toRecord(late)) },
      );
      return toRecord(before);
    };
    const settled = await Promise.allSettled(stale.map(free));
    const records = settled.flatMap((result) => (result.status === 'fulfilled' ? result.value : []));
    await this.#record(records);
    const failure = settled.find((result) => result.status === 'rejected');
    if (failure) throw failure.reason;
    return records.length;
  }

  /** The last `limit` ended holds of `name` recorded in `collection`, newest first. */
  history(collection: string, name: string, limit: number): Promise<HistoryRecord[]> {
    return this.run<HistoryRecord[], HistoryRecord>(
      `history("${name}")`,
      (c) =>
        c
          .find(
            { name },
            { projection: { _id: 0, name: 1, token: 1, owner: 1, acquiredAt: 1, endedAt: 1, outcome: 1 } },
          )
          .sort({ endedAt: -1, token: -1 })
          .limit(limit)
          .toArray(),
      { collection },
    ).then((records) => records.map((r) => ({ ...r, token: Number(r.token) })));
  }

  /**
   * Writes history records, if history is on: a second command, best effort. A failure goes to
   * the manager's `error` event; the lock command it follows has succeeded and stays so.
   */
  async #record(records: HistoryRecord[]): Promise<void> {
    const collection = this.#history;
    if (collection === undefined || records.length === 0) return;
    const work = this.run<unknown, HistoryRecord>('history', (c) => c.insertMany(records.map((r) => ({ ...r }))), {
      collection,
    }).catch((error: unknown) => this.#report(error));
    this.#track(work);
    await work;
  }
}

/** A hold as `holdProjection` reads it. */
interface HoldRead {
  token: number;
  owner: string;
  acquiredAt: Date;
  expiresAt: Date;
  now: Date;
}

/** The history record of a hold read just before it ended. */
function ended(name: string, hold: HoldRead, outcome: HoldOutcome): HistoryRecord {
  const endedAt = hold.expiresAt < hold.now ? hold.expiresAt : hold.now;
  return { name, token: hold.token, owner: hold.owner, acquiredAt: hold.acquiredAt, endedAt, outcome };
}

function toInfo(doc: unknown): LockInfo {
  const d = doc as LockDocument & { held: boolean };
  return {
    name: d._id,
    owner: d.owner,
    token: Number(d.token),
    acquiredAt: d.acquiredAt,
    expiresAt: d.expiresAt,
    held: d.held,
  };
}
