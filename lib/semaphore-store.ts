// The commands of counting semaphores, sent through the lock store (its timeouts, its error
// mapping, its late answers) to the collection `<collection>.semaphores`.
import type { mongo } from 'mongoose';
import { DURABLE, serverBound } from './commands.js';
import {
  batches,
  type AcquireResult,
  type HoldKey,
  type HoldState,
  type ReleaseAnswer,
  type ReleaseResult,
} from './answers.js';
import { LockError, LockErrorCode } from './errors.js';
import { MONGODB_CODES, serverCode } from './mongo-errors.js';
import {
  acquirePermitCommand,
  fairReleasePermitCommand,
  readPermitsCommand,
  releasePermitCommand,
  renewPermitsCommand,
  semaphoreInfoProjection,
  type PermitRequest,
  type SemaphoreDocument,
} from './semaphore-commands.js';
import type { LockStore } from './store.js';

/** One live holder of a permit, as `inspect()` shows it. */
export interface SemaphoreHolder {
  readonly owner: string;
  /** The hold's fencing token. */
  readonly token: number;
  readonly acquiredAt: Date;
  /** When the hold ends unless renewed, by the server's clock. */
  readonly expiresAt: Date;
}

/** What an acquisition's answer holds (see permitProjection). */
interface PermitAnswer {
  limit?: number;
  /** Missing when a retried command was answered from the stored document. */
  mine?: { token: number; owner: string; expiresAt: Date; remaining: number }[];
  remaining?: number | null;
}

/** The answer of an attempt that found nothing (a racing creation): try again. */
const BUSY: AcquireResult = { acquired: false, token: 0, owner: '', expiresAt: new Date(0), remaining: 0 };

/** The store of counting semaphores: one document per semaphore, in `collection`. */
export class SemaphoreStore {
  readonly #store: LockStore;
  readonly #collection: string;
  readonly #timeout: number;
  readonly #fairRelease: typeof fairReleasePermitCommand;

  /** `fairRelease`: how a fair hold is released and handed over (a read-write lock's differs). */
  constructor(
    store: LockStore,
    collection: string,
    commandTimeout: number,
    fairRelease: typeof fairReleasePermitCommand = fairReleasePermitCommand,
  ) {
    this.#store = store;
    this.#collection = collection;
    this.#timeout = commandTimeout;
    this.#fairRelease = fairRelease;
  }

  /** The semaphores' collection name. */
  get collectionName(): string {
    return this.#collection;
  }

  #run<T>(
    what: string,
    command: (c: mongo.Collection<SemaphoreDocument>) => Promise<T>,
    options: { timeout?: number; late?: (value: T) => void } = {},
  ) {
    return this.#store.run<T, SemaphoreDocument>(what, command, { ...options, collection: this.#collection });
  }

  /**
   * One atomic attempt to take a permit (see acquirePermitCommand); rejects with a LockError if
   * the semaphore is stored with another limit. `late` gets an answer that came too late.
   */
  acquire(request: PermitRequest, late?: (result: AcquireResult) => void): Promise<AcquireResult> {
    const what = `semaphore("${request.name}").acquire`;
    return this.acquireBy(what, request, acquirePermitCommand({ ...request, maxTimeMS: this.#timeout }), late);
  }

  /**
   * Sends a built acquisition (an upsert answering as permitProjection does: `mine`, `remaining`,
   * and `limit` if the kind stores one) and reads its answer. @internal (the read-write locks' too)
   */
  acquireBy(
    what: string,
    request: { readonly name: string; readonly leaseId: string; readonly limit?: number },
    built: {
      filter: { _id: string };
      update: object[];
      options: { projection: object } & mongo.FindOneAndUpdateOptions;
    },
    late?: (result: AcquireResult) => void,
  ): Promise<AcquireResult> {
    const { filter, update, options } = built;
    const command = async (collection: mongo.Collection<SemaphoreDocument>): Promise<AcquireResult> => {
      let answer: PermitAnswer | null = null;
      // Two upserts raced to create the document: the loser tries once more, now that it exists.
      for (let attempt = 1; attempt <= 2 && !answer; attempt++) {
        try {
          answer = await collection.findOneAndUpdate(filter, update, options);
        } catch (error) {
          if (serverCode(error) !== MONGODB_CODES.DuplicateKey) throw error;
          if (attempt === 2) return BUSY;
        }
      }
      if (!answer) throw new LockError(LockErrorCode.Database, `${what}: the server returned no document`);
      // A retried findAndModify (replica sets) is answered without the computed fields
      // (SERVER-31242): read them, without changing anything (the write was applied).
      if (answer.mine === undefined) {
        answer = await collection.findOne(filter, { projection: options.projection, maxTimeMS: this.#timeout });
        if (!answer) return BUSY;
      }
      if (answer.limit !== undefined && answer.limit !== request.limit) {
        throw new LockError(
          LockErrorCode.Database,
          `${what}: semaphore "${request.name}" is stored with a limit of ${answer.limit}, and declared here with a limit of ${request.limit}: every declaration of a semaphore must use the same limit`,
        );
      }
      const mine = answer.mine?.[0];
      if (mine) {
        return {
          acquired: true,
          token: Number(mine.token),
          owner: mine.owner,
          expiresAt: mine.expiresAt,
          remaining: Number(mine.remaining),
        };
      }
      const remaining = typeof answer.remaining === 'number' ? answer.remaining : Number.POSITIVE_INFINITY;
      return { acquired: false, token: 0, owner: '', expiresAt: new Date(0), remaining };
    };
    return this.#run(what, command, late && { late });
  }

  /**
   * Frees the permit `leaseId` holds (only that one); says whether it was live, already expired,
   * or gone: `taken` if every permit is held by others now, `freed` if one is free.
   */
  async release(name: string, leaseId: string, timeout?: number, fair = false): Promise<ReleaseResult> {
    const what = `semaphore("${name}").release`;
    const build = fair ? this.#fairRelease : releasePermitCommand;
    const { filter, update, options } = build(name, leaseId, timeout ?? this.#timeout);
    const send = (c: mongo.Collection<SemaphoreDocument>) => c.findOneAndUpdate(filter, update, options);
    const before = (await this.#run(what, send, timeout === undefined ? {} : { timeout })) as ReleaseAnswer | null;
    // A retried release is answered without `live` (SERVER-31242): it matched our id, so it was ours.
    if (before) {
      // Fair: other live waiters, one of which may have been handed the permit: signal them.
      const contended = before.contended === true || (before.waiters ?? 0) > 0;
      if (before.held === false) return { outcome: 'freed', contended }; // a fair waiter left the queue
      return { outcome: before.live === false ? 'expired' : 'released', contended };
    }
    const now = await this.#run(what, (c) =>
      c.findOne({ _id: name }, { projection: readPermitsCommand([]).options.projection, maxTimeMS: this.#timeout }),
    );
    const full = now !== null && (now as { live?: number }).live! >= (now as { limit?: number }).limit!;
    return { outcome: full ? 'taken' : 'freed', contended: false };
  }

  /** Extends every given permit that is still held and unexpired by its own ttl from `$$NOW`. */
  async renew(holds: readonly HoldKey[], timeout: number): Promise<void> {
    await this.#run(
      'renew permits',
      (collection) =>
        Promise.all(
          batches(holds, keyBytes).map((group) => {
            const { filter, update } = renewPermitsCommand(group);
            return collection.updateMany(filter, update, serverBound(timeout, DURABLE.writeConcern));
          }),
        ),
      { timeout },
    );
  }

  /** Renews fair waiters' queue entries (see renewQueueCommand). */
  renewQueued(waits: readonly HoldKey[], timeout: number): Promise<void> {
    return this.#store.renewQueued(waits, timeout, this.#collection);
  }

  /**
   * Reads back the given permits, by lease id: a hold still listed has its server-side time left;
   * one no longer listed is reported with no lease id if a permit is free (`freed`), or another's
   * (`taken`) if every permit is held. A semaphore without a document has no entry (`deleted`).
   */
  async read(holds: readonly HoldKey[], timeout: number): Promise<Map<string, HoldState>> {
    const { found, confirmed } = await this.#store.readBack<SemaphoreDocument[][], SemaphoreDocument>(
      'read permits',
      (collection, local) =>
        Promise.all(
          batches(holds, keyBytes).map((group) => {
            const { filter, options } = readPermitsCommand(group);
            return collection.find(filter, { ...options, ...local, ...serverBound(timeout, { w: 1 }) }).toArray();
          }),
        ),
      timeout,
      this.#collection,
    );
    const docs = new Map<string, PermitRead>();
    for (const doc of found.flat() as unknown as PermitRead[]) docs.set(doc._id, doc);
    const states = new Map<string, HoldState>();
    for (const { name, leaseId } of holds) {
      const doc = docs.get(name);
      if (!doc) continue;
      const hold = doc.mine.find((h) => h.leaseId === leaseId);
      const now = doc.now instanceof Date ? { now: doc.now } : {};
      if (hold) {
        const remaining = Number(hold.remaining);
        states.set(leaseId, { leaseId, expiresAt: hold.expiresAt, remaining, confirmed, ...now });
      } else {
        // Gone: nobody's lease id can be ours again; '' stands for "another holder's".
        const other = doc.live >= doc.limit ? '' : null;
        states.set(leaseId, { leaseId: other, expiresAt: new Date(0), remaining: 0, confirmed, ...now });
      }
    }
    return states;
  }

  /**
   * Read-write locks: takes away the `writerWaiting` marker of `name` if one of `leaseIds` set it
   * (a writer that stopped waiting). @internal
   */
  async clearMarker(name: string, leaseIds: readonly string[]): Promise<void> {
    const filter = { _id: name, 'writerWaiting.leaseId': { $in: [...leaseIds] } };
    await this.#run(`readWriteLock("${name}").write`, (c) =>
      c.updateOne(filter, { $set: { writerWaiting: null } }, { maxTimeMS: this.#timeout }),
    );
  }

  /** The stored limit and live holders of `name` (by the server's clock), or null without a document. */
  async inspect(name: string): Promise<{ limit: number; holders: SemaphoreHolder[]; waiting: number } | null> {
    const doc = await this.#run(`semaphore("${name}").inspect`, (c) =>
      c.findOne({ _id: name }, { projection: semaphoreInfoProjection, maxTimeMS: this.#timeout }),
    );
    if (!doc) return null;
    const { limit, holders, waiting } = doc as unknown as {
      limit: number;
      holders: SemaphoreHolder[];
      waiting: number;
    };
    const listed = holders.map((h) => ({ ...h, token: Number(h.token) })).sort((a, b) => a.token - b.token);
    return { limit, holders: listed, waiting };
  }
}

/** A permit as the watchdog's read-back answers it. */
interface PermitRead {
  _id: string;
  limit: number;
  live: number;
  mine: { leaseId: string; expiresAt: Date; remaining: number }[];
  now?: Date;
}

const keyBytes = (h: HoldKey) => Buffer.byteLength(h.name) + h.leaseId.length + 16;
