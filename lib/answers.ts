// What the store's commands answer, as the lease, the watchdog and the store itself read it.
import type { EndedHold, HistoryRecord, HoldOutcome } from './types.js';

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
  /** A fair release (or leave) handed the lock to the next waiter, durably: what its signal tells it. */
  readonly grant?: Grant;
}

/** A fair hand-over: who the lock went to, with which token, until when (by the server's clock). */
export interface Grant {
  /** The new holder's lease id (private: only a digest of it leaves the process, see lib/wakeups.ts). */
  readonly leaseId: string;
  readonly token: number;
  readonly expiresAt: Date;
}

/** What the acquire command answers (its projection). */
export interface AcquireAnswer {
  /** Missing when a retry was answered from the stored document (which then has `leaseId`). */
  mine?: boolean;
  leaseId?: string | null;
  token: number;
  owner: string;
  expiresAt: Date;
  remaining?: number;
  previous?: EndedHold;
}

/** What the release command answers of the hold as it was (with history on, also a {@link HoldRead}). */
export interface ReleaseAnswer {
  /** Missing when a retry was answered from the stored document. */
  live?: boolean;
  contended?: boolean;
  /** A fair release or leave: whether the lease id held the lock (else it was only queued). */
  held?: boolean;
  /** A fair release or leave: the live waiters queued but this one (a release hands over to the first). */
  waiters?: number;
  /** A fair release that handed the lock over: to whom, with which token, until when. */
  grantTo?: string;
  grantToken?: number;
  grantExpiresAt?: Date;
}

/** A hold's state as the watchdog reads it back. */
export interface HoldState {
  readonly leaseId: string | null;
  /** Milliseconds the hold has left by the server's clock (0 or less: expired). */
  readonly remaining: number;
  readonly expiresAt: Date;
  /** The server's `$$NOW` when it answered, if the answer carried it. */
  readonly now?: Date;
  /**
   * False when the read could not use read concern `majority` (a set where it is off): it may
   * show a renewal that was never acknowledged, so the holder's deadline must not rest on it.
   */
  readonly confirmed?: boolean;
}

/** One held lease, as the batch commands need it. */
export interface HoldKey {
  readonly name: string;
  readonly leaseId: string;
}

/** Past this many bytes of names and ids, batch commands are split, well inside MongoDB's 16 MB. */
const BATCH_BYTES = 4 * 1024 * 1024;

/** Splits keys into batches whose names and ids stay under BATCH_BYTES. */
export function batches<T extends { name: string }>(items: readonly T[], bytes: (item: T) => number): T[][] {
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
