// The records of scheduled runs, in `<collection>.runs`: one per tick, claimed atomically.
import type { Connection, mongo } from 'mongoose';
import { LockError, LockErrorCode } from './errors.js';
import { MONGODB_CODES, serverCode, toLockError } from './mongo-errors.js';
import type { RunDocument, RunRecord } from './runs.js';
import { openDb } from './store.js';
import { bounded } from './timeout.js';

/** The records' collection options: acknowledged by a majority, read from the primary. */
const RECORDS: mongo.CollectionOptions = { writeConcern: { w: 'majority' }, readPreference: 'primary' };

/** Pipeline values: literal, so that a name beginning with `$` is not read as a field path. */
function literal(value: unknown): { $literal: unknown } {
  return { $literal: value };
}

/** The run records of one manager's collection. @internal */
export class RunStore {
  readonly #connection: Connection;
  readonly #name: string;
  readonly #timeout: number;
  readonly #report: (error: unknown) => void;
  #indexes: Promise<void> | undefined;

  constructor(connection: Connection, name: string, timeout: number, report: (error: unknown) => void) {
    this.#connection = connection;
    this.#name = name;
    this.#timeout = timeout;
    this.#report = report;
  }

  get collectionName(): string {
    return this.#name;
  }

  async #collection(what: string): Promise<mongo.Collection<RunDocument>> {
    const db = await openDb(this.#connection, what, this.#timeout);
    return db.collection<RunDocument>(this.#name, RECORDS);
  }

  #noAnswer(what: string): LockError {
    return new LockError(LockErrorCode.Connection, `${what}: no answer from MongoDB within ${this.#timeout} ms`);
  }

  /** Runs one command, bounded by the command timeout, with the driver's errors as LockErrors. */
  async #run<T>(what: string, command: (records: mongo.Collection<RunDocument>) => Promise<T>): Promise<T> {
    this.#indexes ??= this.#ensureIndexes();
    await this.#indexes;
    try {
      const records = await this.#collection(what);
      return await bounded(command(records), this.#timeout, () => this.#noAnswer(what));
    } catch (error) {
      throw toLockError(error, what);
    }
  }

  /** The indexes of runs() and of the clean-up: made once, on first use; a failure is reported, not fatal. */
  async #ensureIndexes(): Promise<void> {
    try {
      const records = await this.#collection('run records indexes');
      await bounded(
        Promise.all([
          records.createIndex({ name: 1, scheduledAt: -1 }, { name: 'name_scheduledAt' }),
          records.createIndex({ expireAt: 1 }, { name: 'expireAt_ttl', expireAfterSeconds: 0 }),
        ]),
        this.#timeout,
        () => this.#noAnswer('run records indexes'),
      );
    } catch (error) {
      this.#indexes = undefined; // tried again at the next use
      this.#report(toLockError(error, `creating the indexes of "${this.#name}"`));
    }
  }

  async read(id: string): Promise<RunDocument | null> {
    return this.#run(`reading the run "${id}"`, (records) => records.findOne({ _id: id }));
  }

  async newest(name: string): Promise<RunDocument | null> {
    return this.#run(`reading the runs of "${name}"`, (records) =>
      records.find({ name }).sort({ scheduledAt: -1 }).limit(1).next(),
    );
  }

  /**
   * The ticks of `name` claimed but not settled (`running` or `failed`) from `since` on, oldest
   * first, at most `limit`: a process starting takes them up, since their runners may all be gone.
   */
  async unsettled(name: string, since: Date, limit: number): Promise<RunDocument[]> {
    return this.#run(`reading the unsettled runs of "${name}"`, (records) =>
      records
        .find({ name, scheduledAt: { $gte: since }, outcome: { $in: ['running', 'failed'] } })
        .sort({ scheduledAt: 1 })
        .limit(limit)
        .toArray(),
    );
  }

  async list(name: string, limit: number): Promise<RunRecord[]> {
    const docs = await this.#run(`reading the runs of "${name}"`, (records) =>
      records.find({ name }).sort({ scheduledAt: -1 }).limit(limit).toArray(),
    );
    return docs.map(toRecord);
  }

  /**
   * Claims the tick for attempt `attempt` under `token`: inserts its record if `previous` is null,
   * or replaces `previous` if it is still exactly what was read. False if someone got there first.
   */
  async claim(
    tick: { name: string; scheduledAt: Date; id: string },
    previous: RunDocument | null,
    claim: { attempt: number; token: number; owner: string; retain: number },
  ): Promise<boolean> {
    const fields = {
      name: literal(tick.name),
      scheduledAt: literal(tick.scheduledAt),
      attempt: literal(claim.attempt),
      token: literal(claim.token),
      owner: literal(claim.owner),
      startedAt: '$$NOW',
      outcome: literal('running'),
      // No expireAt while running: the clean-up must not remove a record under its run (it would
      // then run again). Its settlement sets it from here.
      retainUntil: literal(expiry(tick.scheduledAt, claim.retain)),
    };
    const filter: mongo.Filter<RunDocument> = previous
      ? { _id: tick.id, outcome: previous.outcome, token: previous.token, attempt: previous.attempt }
      : { _id: tick.id, outcome: { $exists: false } };
    try {
      const result = await this.#run(`claiming the run "${tick.id}"`, (records) =>
        records.updateOne(filter, [{ $set: fields }, { $unset: ['finishedAt', 'error', 'expireAt'] }], {
          upsert: !previous,
        }),
      );
      return result.matchedCount + result.upsertedCount === 1;
    } catch (error) {
      if (serverCode((error as LockError).cause) === MONGODB_CODES.DuplicateKey) return false;
      throw error;
    }
  }

  /** Ends the attempt holding `token` as `outcome`; false if the record is no longer that attempt's. */
  async finish(id: string, token: number, outcome: 'done' | 'failed' | 'lost', error?: Error): Promise<boolean> {
    // Settled: from now on the clean-up may remove it, `retain` after its tick.
    const set: Record<string, unknown> = {
      outcome: literal(outcome),
      finishedAt: '$$NOW',
      expireAt: { $ifNull: ['$retainUntil', '$expireAt'] },
    };
    if (error !== undefined) set.error = literal(error.message);
    const result = await this.#run(`recording the run "${id}" ${outcome}`, (records) =>
      records.updateOne({ _id: id, token, outcome: 'running' }, [{ $set: set }, { $unset: 'retainUntil' }]),
    );
    return result.matchedCount === 1;
  }

  /** Records a tick nobody ran as `missed`, unless it has a record already. True if this call recorded it. */
  async missed(tick: { name: string; scheduledAt: Date; id: string }, owner: string, retain: number): Promise<boolean> {
    const fields = {
      name: literal(tick.name),
      scheduledAt: literal(tick.scheduledAt),
      attempt: literal(0),
      token: literal(0),
      owner: literal(owner),
      startedAt: '$$NOW',
      finishedAt: '$$NOW',
      outcome: literal('missed'),
      expireAt: literal(expiry(tick.scheduledAt, retain)),
    };
    try {
      const result = await this.#run(`recording the run "${tick.id}" missed`, (records) =>
        records.updateOne({ _id: tick.id, outcome: { $exists: false } }, [{ $set: fields }], { upsert: true }),
      );
      return result.upsertedCount === 1;
    } catch (error) {
      if (serverCode((error as LockError).cause) === MONGODB_CODES.DuplicateKey) return false;
      throw error;
    }
  }
}

function toRecord(doc: RunDocument): RunRecord {
  const record: { -readonly [K in keyof RunRecord]: RunRecord[K] } = {
    name: doc.name,
    scheduledAt: doc.scheduledAt,
    attempt: doc.attempt,
    token: doc.token,
    owner: doc.owner,
    startedAt: doc.startedAt,
    outcome: doc.outcome,
  };
  if (doc.finishedAt) record.finishedAt = doc.finishedAt;
  if (doc.error !== undefined) record.error = doc.error;
  return record;
}

/** What to do with a tick, given its record, read while holding its lease with `token`. */

/** The largest time a Date can hold. */
const MAX_DATE = 8.64e15;

/**
 * When a tick's record may be removed: `retain` after the tick, and never past the largest Date (an
 * invalid Date would be stored as 1970, and the record of a done tick removed at once).
 */
function expiry(scheduledAt: Date, retain: number): Date {
  return new Date(Math.min(MAX_DATE, scheduledAt.getTime() + retain));
}
