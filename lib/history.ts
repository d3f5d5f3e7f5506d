// The history of ended holds: written (best effort, off the lock's path) by managers that have
// the `history` option on, read by any manager.
import { historyProjection } from './commands.js';
import type { LockStore, StoreOptions } from './store.js';
import type { HistoryRecord, HoldOutcome } from './types.js';

/** A hold as `holdProjection` (lib/commands.ts) reads it. */
export interface HoldRead {
  token: number;
  owner: string;
  acquiredAt: Date;
  expiresAt: Date;
  now: Date;
}

/** The history record of a hold read just before it ended. */
export function ended(name: string, hold: HoldRead, outcome: HoldOutcome): HistoryRecord {
  // A retried command's answer lacks the projected `now` (SERVER-31242): this process's clock then.
  const now = hold.now instanceof Date ? hold.now : new Date();
  const endedAt = hold.expiresAt < now ? hold.expiresAt : now;
  return { name, token: hold.token, owner: hold.owner, acquiredAt: hold.acquiredAt, endedAt, outcome };
}

/** Writes and reads history records through a store. */
export class HistoryLog {
  readonly #store: LockStore;
  readonly #collection: string | undefined;
  readonly #report: (error: unknown) => void;
  readonly #track: (work: Promise<unknown>) => void;

  constructor(store: LockStore, options: StoreOptions) {
    this.#store = store;
    this.#collection = options.history;
    this.#report = options.report ?? (() => {});
    this.#track = options.track ?? (() => {});
  }

  /**
   * Writes history records, if history is on: a second command, best effort. A failure goes to
   * the manager's `error` event; the lock command it follows has succeeded and stays so.
   */
  async record(records: HistoryRecord[]): Promise<void> {
    const collection = this.#collection;
    if (collection === undefined || records.length === 0) return;
    const work = this.#store
      .run<unknown, HistoryRecord>('history', (c) => c.insertMany(records.map((r) => ({ ...r }))), { collection })
      .catch((error: unknown) => this.#report(error));
    this.#track(work);
    await work;
  }

  /** The last `limit` ended holds of `name` recorded in `collection`, newest first. */
  async query(collection: string, name: string, limit: number): Promise<HistoryRecord[]> {
    const records = await this.#store.run<HistoryRecord[], HistoryRecord>(
      `history("${name}")`,
      (c) =>
        c.find({ name }, { projection: historyProjection }).sort({ endedAt: -1, token: -1 }).limit(limit).toArray(),
      { collection },
    );
    return records.map((r) => ({ ...r, token: Number(r.token) }));
  }
}
