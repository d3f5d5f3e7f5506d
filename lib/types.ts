// The public result types: what `inspect()`, `list()` and `history()` resolve.

/** How a hold ended: released by its holder, ran out (expired), or ended by someone else (taken). */
export type HoldOutcome = 'released' | 'expired' | 'taken';

/** A hold that has ended, as the acquire pipeline stashes it. */
export interface EndedHold {
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
