import mongoose, { type Connection, type mongo } from 'mongoose';
import {
  COLLECTION,
  DURABLE,
  acquireCommand,
  fairReleaseCommand,
  forceReleaseCommand,
  infoProjection,
  liveQueue,
  heldNow,
  readCommand,
  releaseCommand,
  renewCommand,
  renewQueueCommand,
  serverBound,
  staleCommand,
  sweepCommand,
  type AcquireRequest,
  type LockDocument,
} from './commands.js';
import { LockError, LockErrorCode } from './errors.js';
import { MONGODB_CODES, connectionClosed, isConnectionError, serverCode, toLockError } from './mongo-errors.js';
import {
  batches,
  type AcquireAnswer,
  type AcquireResult,
  type HoldKey,
  type HoldState,
  type Grant,
  type ReleaseAnswer,
  type ReleaseResult,
} from './answers.js';
import { bounded } from './timeout.js';
import { HistoryLog, ended, type HoldRead } from './history.js';
import type { HistoryRecord, LockInfo } from './types.js';

/** The error of a command that did not settle in time. */
/**
 * The native driver's database handle of `connection`, waiting (bounded by `timeout`) for one that
 * is still opening. @internal
 */
export async function openDb(connection: Connection, what: string, timeout: number): Promise<mongo.Db> {
  const { connected, connecting } = mongoose.ConnectionStates;
  if (connection.db && connection.readyState !== connecting) {
    if (connection.readyState === connected) return connection.db;
    // Fail now: a command on a closed client would reopen it (driver 6) and keep the process
    // alive. Mongoose (8 and 9) marks a connection the application closed.
    if ((connection as { _closeCalled?: unknown })._closeCalled === true) {
      throw connectionClosed(`${what}: the mongoose connection is closed`);
    }
    // Otherwise an outage, or one that has ended without mongoose hearing of it yet (it learns of
    // it from the driver's monitor, which may look again only much later; after an engine
    // restart in the torture test, connections stayed "disconnected" for minutes). The command
    // goes to the driver, whose server selection looks at once; the caller bounds its wait.
    return connection.db;
  }
  if (connection.readyState !== connecting) {
    throw connectionClosed(
      `${what}: the mongoose connection is not open (call mongoose.connect() or connection.openUri() first)`,
    );
  }
  await bounded(connection.asPromise(), timeout, () => noAnswer(what, timeout));
  if (!connection.db) throw new LockError(LockErrorCode.Connection, `${what}: the mongoose connection did not open`);
  return connection.db;
}

function noAnswer(what: string, timeout: number): LockError {
  return new LockError(LockErrorCode.Connection, `${what}: MongoDB did not answer within ${Math.round(timeout)} ms`);
}

/** Optional duties of a {@link LockStore}. */
export type { AcquireResult, Grant, HoldKey, HoldState, ReleaseOutcome, ReleaseResult } from './answers.js';

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

  readonly #history: HistoryLog;
  readonly #report: (error: unknown) => void;
  /** The server-side bound of a command: the client's own timeout, in whole ms. */
  get #maxTimeMS(): number {
    return Math.max(1, Math.ceil(this.#timeout));
  }
  /** False once the deployment refused a majority read (see read()). */
  #majorityReads = true;
  /** History is on: acquisitions stash the hold they take over, releases read what its record needs. */
  readonly #recording: boolean;

  constructor(connection: Connection, collection: string, commandTimeout: number, options: StoreOptions = {}) {
    this.#connection = connection;
    this.#collectionName = collection;
    this.#timeout = commandTimeout;
    this.#history = new HistoryLog(this, options);
    this.#report = options.report ?? (() => {});
    this.#recording = options.history !== undefined;
  }

  /** The native driver's database handle, waiting (bounded) for a connection that is still opening. */
  db(what: string, timeout = this.#timeout): Promise<mongo.Db> {
    return openDb(this.#connection, what, timeout);
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
      const left = timeout - (performance.now() - started);
      return await bounded(pending, left, () => noAnswer(what, left));
    } catch (error) {
      if (isConnectionError(error) && options.late) pending.then(options.late, () => {});
      throw toLockError(error, what);
    }
  }

  /**
   * One atomic attempt to take a lock: one round trip, see {@link acquireCommand}. With history on,
   * taking over a hold that was never released records it: its holder no longer can. That record
   * is a second write, off the acquisition's path: the hold begins without waiting for it.
   */
  acquire(request: AcquireRequest, late?: (result: AcquireResult) => void): Promise<AcquireResult> {
    const { name } = request;
    const what = `acquire("${name}")`;
    const history = this.#recording;
    const bounded = { ...request, maxTimeMS: this.#timeout };
    const { filter, update, options } = acquireCommand(history ? { ...bounded, history } : bounded);
    const command = async (collection: mongo.Collection<LockDocument>): Promise<AcquireResult> => {
      let doc;
      try {
        doc = (await collection.findOneAndUpdate(filter, update, options)) as AcquireAnswer | null;
      } catch (error) {
        // Two upserts raced to create the document; the loser finds it busy, and simply tries again.
        if (serverCode(error) === MONGODB_CODES.DuplicateKey) {
          return { acquired: false, token: 0, owner: '', expiresAt: new Date(0), remaining: 0 };
        }
        throw error;
      }
      if (!doc) throw new LockError(LockErrorCode.Database, `${what}: the server returned no document`);
      // A retried findAndModify (replica sets) is answered from the stored document, without the
      // projection's computed fields (SERVER-31242): then "mine" comes from the stored lease id, and
      // a grant has a whole ttl left (expiresAt is the grant's $$NOW + ttl); a busy answer's time
      // left is unknown (the wait keeps to its poll).
      const acquired = typeof doc.mine === 'boolean' ? doc.mine : doc.leaseId === request.leaseId;
      const remaining =
        typeof doc.remaining === 'number' ? doc.remaining : acquired ? request.ttl : Number.POSITIVE_INFINITY;
      const result = {
        acquired,
        token: Number(doc.token),
        owner: doc.owner,
        expiresAt: doc.expiresAt,
        remaining: Number(remaining),
      };
      return acquired && doc.previous ? { ...result, took: { name, ...doc.previous } } : result;
    };
    if (!history) return this.run(what, command, late && { late });
    const record = (result: AcquireResult) => {
      if (result.took) void this.#history.record([result.took]);
    };
    const onLate = (result: AcquireResult) => {
      record(result);
      late?.(result);
    };
    return this.run(what, command, { late: onLate }).then((result) => {
      record(result);
      return result;
    });
  }

  /**
   * Frees the lock if `leaseId` still holds it; says whether it was live, already expired, or
   * taken, and whether anyone waited for it. `lapsed`: the holder gives it up because its time
   * ran out locally (history then records the hold as expired, not released). Not durable: a
   * release lost in a crash or failover leaves the lock held until its ttl (see RELAXED).
   */
  async release(name: string, leaseId: string, timeout?: number, lapsed = false, fair = false): Promise<ReleaseResult> {
    const what = `release("${name}")`;
    const history = this.#recording;
    const build = fair ? fairReleaseCommand : releaseCommand;
    const { filter, update, options } = build(name, leaseId, history, timeout ?? this.#timeout);
    const send = (c: mongo.Collection<LockDocument>) =>
      c.findOneAndUpdate(filter, update, options) as Promise<ReleaseAnswer | null>;
    // The hold ended: record it, also if the answer comes too late for the caller (a fair
    // waiter that only left the queue ended no hold).
    const record = (before: ReleaseAnswer | null) =>
      before && before.held !== false
        ? this.#history.record([
            ended(name, before as ReleaseAnswer & HoldRead, lapsed || before.live === false ? 'expired' : 'released'),
          ])
        : undefined;
    const before = history
      ? await this.run(what, send, { timeout, late: (answer) => void record(answer) })
      : await this.run(what, send, timeout === undefined ? undefined : { timeout });
    if (history) await record(before);
    // A retried release is answered from the stored document, without `live` (SERVER-31242): it
    // matched our lease id, so it was ours; call it released rather than report a loss it was not.
    if (before) {
      // Fair: waiters other than this lease: a hand-over (or a queue moved on) to signal.
      const contended = before.contended === true || (before.waiters ?? 0) > 0;
      // A fair waiter that was only queued left the queue: it ended no hold of its own.
      const grant = grantOf(before);
      if (before.held === false) return { outcome: 'freed', contended, ...(grant && { grant }) };
      return { outcome: before.live === false ? 'expired' : 'released', contended, ...(grant && { grant }) };
    }
    // Not ours any more: one more read (only on this rare path) tells "taken" from "freed".
    const now = await this.run(what, (c) =>
      c.findOne({ _id: name }, { projection: { _id: 0, leaseId: 1, live: heldNow }, maxTimeMS: this.#maxTimeMS }),
    );
    const taken = now !== null && (now as { live?: boolean }).live === true;
    return { outcome: taken ? 'taken' : 'freed', contended: false };
  }

  /**
   * Frees a lock whoever holds it (operators: `mdlock release --force`); `outcome` is `released`
   * if it was held (history records that hold as `taken`).
   */
  async forceRelease(name: string): Promise<ReleaseResult> {
    const record = (before: unknown) =>
      before ? this.#history.record([ended(name, before as HoldRead, 'taken')]) : undefined;
    const { filter, update, options } = forceReleaseCommand(name);
    const before = await this.run(
      `forceRelease("${name}")`,
      (collection) => collection.findOneAndUpdate(filter, update, { ...options, maxTimeMS: this.#maxTimeMS }),
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
          groups.map((group) => {
            const { filter, update } = renewCommand(group);
            return collection.updateMany(filter, update, serverBound(timeout, DURABLE.writeConcern));
          }),
        ),
      { timeout },
    );
  }

  /**
   * Extends every given fair waiter's queue entry that is still there and unexpired by its own
   * ttl from `$$NOW` (see renewQueueCommand), in one command per ~4 MB of keys.
   */
  async renewQueued(waits: readonly HoldKey[], timeout: number, collection?: string): Promise<void> {
    const groups = batches(waits, (h) => Buffer.byteLength(h.name) + h.leaseId.length + 16);
    await this.run(
      'renew queued waits',
      (c) =>
        Promise.all(
          groups.map((group) => {
            const { filter, update } = renewQueueCommand(group);
            return c.updateMany(filter, update, serverBound(timeout, DURABLE.writeConcern));
          }),
        ),
      { timeout, ...(collection !== undefined && { collection }) },
    );
  }

  /** Reads back the holds on `names` (with the server's view of their remaining time), in one find per ~4 MB of names. */
  async read(names: readonly string[], timeout: number): Promise<Map<string, HoldState>> {
    const groups = batches(
      names.map((name) => ({ name })),
      (n) => Buffer.byteLength(n.name) + 16,
    );
    const { found, confirmed } = await this.readBack<LockDocument[][], LockDocument>(
      'read',
      (collection, local) =>
        Promise.all(
          groups.map((group) => {
            const { filter, options } = readCommand(group.map((n) => n.name));
            return collection.find(filter, { ...options, ...local, ...serverBound(timeout, { w: 1 }) }).toArray();
          }),
        ),
      timeout,
    );
    const states = new Map<string, HoldState>();
    for (const doc of found.flat()) {
      const state = doc as unknown as {
        _id: string;
        leaseId: string | null;
        expiresAt: Date;
        remaining: number;
        now?: Date;
      };
      states.set(state._id, {
        leaseId: state.leaseId ?? null,
        expiresAt: state.expiresAt,
        remaining: Number(state.remaining),
        ...(state.now instanceof Date && { now: state.now }),
        confirmed,
      });
    }
    return states;
  }

  /**
   * Runs one of the watchdog's read-backs (`find` adds `local` to its options): with read concern
   * majority, or `local` once the deployment has refused majority reads. `confirmed`: it was a
   * majority read. `collection`: another collection of the library's (the semaphores').
   */
  async readBack<T, D extends mongo.Document = LockDocument>(
    what: string,
    find: (collection: mongo.Collection<D>, local: { readConcern?: { level: 'local' } }) => Promise<T>,
    timeout: number,
    collection?: string,
  ): Promise<{ found: T; confirmed: boolean }> {
    const majority = this.#majorityReads;
    const send = () =>
      this.run<T, D>(what, (c) => find(c, this.#majorityReads ? {} : { readConcern: { level: 'local' } }), {
        timeout,
        ...(collection !== undefined && { collection }),
      });
    try {
      return { found: await send(), confirmed: this.#majorityReads };
    } catch (error) {
      // A set that has majority reads turned off (MongoDB 4.4 PSA with enableMajorityReadConcern:
      // false) refuses them: read `local` from now on, and say so once. The watchdog then rests
      // deadlines only on renewals that were acknowledged by a majority (HoldState.confirmed).
      if (!majority || serverCode((error as { cause?: unknown }).cause) !== MONGODB_CODES.ReadConcernMajorityNotEnabled)
        throw error;
      if (this.#majorityReads) {
        this.#majorityReads = false;
        this.#report(
          new LockError(
            LockErrorCode.Database,
            'majority reads are turned off on this deployment: the watchdog reads `local`, and a lease lasts only as long as its last acknowledged renewal allows',
            { cause: error },
          ),
        );
      }
      return { found: await send(), confirmed: false };
    }
  }

  /** One lock's state, or null if there is no document for it. */
  async inspect(name: string): Promise<LockInfo | null> {
    const doc = await this.run(`inspect("${name}")`, (collection) =>
      collection.findOne({ _id: name }, { projection: infoProjection, maxTimeMS: this.#maxTimeMS }),
    );
    return doc ? toInfo(doc) : null;
  }

  /** Every lock document, by name. */
  /** Every lock, by name; with `queued`, each with the number of live fair waiters in its queue. */
  async list(options: { queued?: boolean } = {}): Promise<(LockInfo & { queued?: number })[]> {
    const projection = options.queued ? { ...infoProjection, queued: { $size: liveQueue } } : infoProjection;
    const docs = await this.run('list', (collection) =>
      collection.find({}, { projection, maxTimeMS: this.#maxTimeMS }).sort({ _id: 1 }).toArray(),
    );
    return docs.map((doc) =>
      options.queued ? { ...toInfo(doc), queued: (doc as { queued?: number }).queued ?? 0 } : toInfo(doc),
    );
  }

  // Set-up, clean-up and history.

  /**
   * Frees holds that expired more than `olderThan` ms ago and were never released (their holder
   * crashed), so that the clean-up index can remove them: their `freedAt` becomes the time they
   * expired (or their token's time, if later). Each is freed by a conditional update of its own,
   * so that of several managers sweeping at once exactly one frees (and records) each hold.
   * Resolves the number freed. `stop`: checked before the updates, to send no more commands.
   */
  async sweep(olderThan: number, stop: () => boolean = () => false, limit = 1000): Promise<number> {
    const stale = await this.run('sweep', (c) =>
      c
        .find(staleCommand(olderThan), { projection: { _id: 1, leaseId: 1 }, maxTimeMS: this.#maxTimeMS })
        .limit(limit)
        .toArray(),
    );
    if (stop()) return 0;
    // Each hold freed is recorded, also if its update answers too late or another one fails.
    const free = async ({ _id: name, leaseId }: { _id: string; leaseId: string | null }) => {
      const toRecord = (before: unknown) => (before ? [ended(name, before as HoldRead, 'expired')] : []);
      const { filter, update, options } = sweepCommand(name, leaseId, olderThan);
      const bounded = { ...options, maxTimeMS: this.#maxTimeMS };
      const before = await this.run(`sweep("${name}")`, (c) => c.findOneAndUpdate(filter, update, bounded), {
        late: (late) => void this.#history.record(toRecord(late)),
      });
      return toRecord(before);
    };
    const settled = await Promise.allSettled(stale.map(free));
    const records = settled.flatMap((result) => (result.status === 'fulfilled' ? result.value : []));
    await this.#history.record(records);
    const failure = settled.find((result) => result.status === 'rejected');
    if (failure) throw failure.reason;
    return records.length;
  }

  /** The last `limit` ended holds of `name` recorded in `collection`, newest first. */
  history(collection: string, name: string, limit: number): Promise<HistoryRecord[]> {
    return this.#history.query(collection, name, limit);
  }
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

/**
 * The hand-over a fair release's answer reports, if it made one. A retried release answered from
 * the stored document (without the computed fields) reports none: the waiter then confirms by an
 * attempt of its own, as it does when the signal never comes.
 */
function grantOf(answer: ReleaseAnswer): Grant | undefined {
  const { grantTo, grantToken, grantExpiresAt } = answer;
  if (typeof grantTo !== 'string' || typeof grantToken !== 'number' || !(grantExpiresAt instanceof Date)) return;
  return { leaseId: grantTo, token: grantToken, expiresAt: grantExpiresAt };
}
