import type { mongo } from 'mongoose';
import { LockError, LockErrorCode } from './errors.js';
import { COLLECTION, RELAXED } from './commands.js';
import { MONGODB_CODES, isConnectionError, serverCode, toLockError } from './mongo-errors.js';
import type { LockStore } from './store.js';
import type { GrantSignal } from './wakeups.js';

/**
 * A release signal: "the lock `name` was just freed while someone waited for it", or, with
 * `grant`, "handed to the waiter whose lease id has this digest" (a fair hand-over).
 */
interface SignalDocument {
  name: string | null;
  grant?: GrantSignal;
}

/** A signal's grant, if it is well formed (anything else is a plain wake-up). */
function grantIn(signal: SignalDocument): GrantSignal | undefined {
  const grant = signal.grant;
  if (typeof grant !== 'object' || grant === null) return;
  const { to, token, expiresAt } = grant;
  if (typeof to !== 'string' || typeof token !== 'number' || !(expiresAt instanceof Date)) return;
  return { to, token, expiresAt };
}

/** Small: a signal matters only for the round trip it saves. */
const CAPPED = { capped: true, size: 256 * 1024, max: 1000 } as const;
/** How long one getMore waits on the server for a signal: at most one command per second when idle. */
const AWAIT_MS = 1000;
/** Before reopening a cursor that died (empty or rolled-over collection) or failed. */
const REOPEN_MS = 250;
/** The cursor stays open this long after the last wait ends: workers that wait again soon keep it. */
const LINGER_MS = 5000;
/** Consecutive failures of the cursor, other than a connection's, after which wake-ups are turned off. */
const MAX_FAILURES = 3;
const CLIENT_CLOSED = /^Mongo(ClientClosed|NotConnected|TopologyClosed)Error$/;

/**
 * Cross-process wake-ups that work on standalone servers and replica sets alike (change streams
 * need a replica set). A release of a lock that someone was waiting for inserts a signal into a
 * small capped collection; each manager tails that collection with one awaiting cursor, shared
 * by all its waiters, and only while at least one of its waits is in progress. Polling remains
 * the safety net: a holder that crashes sends no signal.
 */
export class ReleaseSignals {
  readonly #store: LockStore;
  readonly #name: string;
  readonly #onSignal: (name: string, grant?: GrantSignal) => void;
  readonly #onError: (error: unknown) => void;
  #ready: Promise<mongo.Collection<SignalDocument>> | undefined;
  #wanted = false;
  #loop: Promise<void> | undefined;
  #cursor: mongo.FindCursor<SignalDocument> | undefined;
  #linger: NodeJS.Timeout | undefined;
  /** Ends the pause before a cursor is reopened (on stop: close() must never wait on an unref'ed timer). */
  #wakeRest: (() => void) | undefined;
  /** Set when the capped collection cannot be had: waits then rely on polling alone. */
  #disabled = false;

  constructor(
    store: LockStore,
    collection: string,
    onSignal: (name: string, grant?: GrantSignal) => void,
    onError: (error: unknown) => void,
  ) {
    this.#store = store;
    this.#name = `${collection}.signals`;
    this.#onSignal = onSignal;
    this.#onError = onError;
  }

  /**
   * Tells other processes that `name` is free, or with `grant` whom it was handed to (best effort:
   * their polling covers a loss).
   */
  async publish(name: string, grant?: GrantSignal): Promise<void> {
    if (this.#disabled) return;
    const collection = await this.#collection();
    // Not durable (RELAXED): a signal lost in a crash or failover only leaves waiters to their next
    // poll. A grant is sent only once the hand-over it tells of is durable.
    const signal = grant ? { name, grant: { to: grant.to, token: grant.token, expiresAt: grant.expiresAt } } : { name };
    await this.#store.run(`signal("${name}")`, () => collection.insertOne(signal, RELAXED));
  }

  /** Starts listening when a wait first sleeps; stops a while after the last one ends. */
  demand(watching: boolean): void {
    if (!watching) {
      this.#linger ??= setTimeout(() => this.#stop(), LINGER_MS).unref();
      return;
    }
    clearTimeout(this.#linger);
    this.#linger = undefined;
    this.#wanted = true;
    if (!this.#loop && !this.#disabled) this.#loop = this.#listen().finally(() => (this.#loop = undefined));
  }

  /** Resolves once the listener is not running (at once if it is not). */
  idle(): Promise<void> {
    return this.#loop ?? Promise.resolve();
  }

  /** Stops listening and waits for the listener to end. */
  async close(): Promise<void> {
    this.#stop();
    await this.#loop;
  }

  #stop(): void {
    clearTimeout(this.#linger);
    this.#linger = undefined;
    this.#wanted = false;
    this.#wakeRest?.();
    void this.#cursor?.close().catch(() => {});
  }

  async #listen(): Promise<void> {
    let failures = 0;
    while (this.#wanted) {
      try {
        await this.#store.db('release signals'); // fails at once on a closed connection: never reopen it
        const collection = await this.#collection();
        if (!this.#wanted) return;
        const cursor = collection.find(
          {},
          { tailable: true, awaitData: true, maxAwaitTimeMS: AWAIT_MS, projection: { _id: 0, name: 1, grant: 1 } },
        );
        this.#cursor = cursor;
        try {
          // The first batch holds the signals still in the collection: a few spurious wake-ups,
          // each costing one early attempt, and no signal sent since the wait began is missed.
          for await (const signal of cursor) {
            failures = 0; // the cursor works
            if (signal.name) this.#onSignal(signal.name, grantIn(signal));
            if (!this.#wanted) break;
          }
        } finally {
          this.#cursor = undefined;
          await cursor.close().catch(() => {});
        }
      } catch (error) {
        if (!this.#wanted) return;
        // A closed or cut-off connection: try again quietly while waits last (they see it themselves).
        const closed = isConnectionError(error) || CLIENT_CLOSED.test((error as Error).name);
        if (!closed) {
          // A cursor that keeps failing for another reason (a service without tailable cursors, a
          // read concern it refuses, a capped collection rolled over) is not retried forever.
          if (++failures >= MAX_FAILURES) {
            this.#disabled = true;
            const cause = toLockError(error, 'release signals');
            this.#onError(
              new LockError(
                LockErrorCode.Database,
                `cross-process wake-ups are off, waits rely on polling: the signal cursor failed ${failures} times in a row (${cause.message})`,
                { cause },
              ),
            );
            return;
          }
          this.#onError(toLockError(error, 'release signals'));
        }
        if (this.#disabled) return;
      }
      if (this.#wanted) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, REOPEN_MS).unref();
          this.#wakeRest = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.#wakeRest = undefined;
      }
    }
  }

  /** The capped signal collection, created once (by whichever process comes first). */
  #collection(): Promise<mongo.Collection<SignalDocument>> {
    this.#ready ??= this.#create().catch((error: unknown) => {
      this.#ready = undefined;
      throw error;
    });
    return this.#ready;
  }

  async #create(): Promise<mongo.Collection<SignalDocument>> {
    const db = await this.#store.db('release signals');
    try {
      await this.#store.run('create release signals', () => db.createCollection(this.#name, CAPPED));
      // A tailable cursor on an empty capped collection dies at once: start it with one entry.
      await this.#store.run('seed release signals', () =>
        db.collection<SignalDocument>(this.#name, COLLECTION).insertOne({ name: null }),
      );
    } catch (error) {
      if (isConnectionError(error)) throw error; // a passing outage: the listener tries again
      if (serverCode((error as { cause?: unknown }).cause) !== MONGODB_CODES.NamespaceExists) {
        this.#disabled = true;
        throw new LockError(
          LockErrorCode.Database,
          `cross-process wake-ups are off, waits rely on polling: cannot create the capped collection ${this.#name}`,
          { cause: error },
        );
      }
    }
    // Read from the primary, with `local` reads: a tailable cursor follows what was just written.
    const collection = db.collection<SignalDocument>(this.#name, {
      ...COLLECTION,
      readConcern: { level: 'local' },
    });
    const options = await this.#store.run('check release signals', () => collection.options());
    if (!options.capped) {
      this.#disabled = true;
      throw new LockError(
        LockErrorCode.Database,
        `cross-process wake-ups are off, waits rely on polling: ${this.#name} exists and is not a capped collection`,
      );
    }
    return collection;
  }
}
