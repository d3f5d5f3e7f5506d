// Every MongoDB command of the library, as pure values: filters, update pipelines, projections
// and collection options. Nothing here talks to a server; lib/store.ts sends them.
import type { EndedHold } from './types.js';

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
  /** The hold is an election's leadership (informational: `mdlock top` shows it as a leader). */
  election?: true;
  /** The hold this one took over, if it took over one that was never released (expired, or forced). */
  previous?: EndedHold;
}

export const isFree = {
  $or: [{ $eq: [{ $ifNull: ['$leaseId', null] }, null] }, { $lte: ['$expiresAt', '$$NOW'] }],
};
export const heldNow = {
  $and: [{ $ne: [{ $ifNull: ['$leaseId', null] }, null] }, { $gt: ['$expiresAt', '$$NOW'] }],
};
export const remainingMs = { $subtract: ['$expiresAt', '$$NOW'] };
export const infoProjection = { _id: 1, owner: 1, token: 1, acquiredAt: 1, expiresAt: 1, held: heldNow };
/**
 * When a freed document's clean-up clock starts: now, or the hold's token read as a time if that
 * is later (a burst of holds can run the token a little ahead of the clock). The clean-up index
 * removes the document only once the server's clock has passed it, so a later first acquisition,
 * whose token is at least the server's time in ms, still gets a larger token.
 */
export const freedFrom = (ended: unknown) => ({ $max: [ended, { $toDate: '$token' }] });
/** Frees a lock: the hold's id goes, the end time is no later than now, and the clean-up clock starts. */
export const freeIt = {
  leaseId: null,
  expiresAt: { $min: ['$expiresAt', '$$NOW'] },
  freedAt: freedFrom('$$NOW'),
  contended: '$$REMOVE',
};
/** What history needs of a hold, read as it was before it ended. */
export const holdProjection = { _id: 0, token: 1, owner: 1, acquiredAt: 1, expiresAt: 1, now: '$$NOW' };
/** The hold a successful acquisition ends, if one was never released: stashed as `previous`. */
export const endedHold = {
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

/**
 * Every write that gives a lock to a holder, or extends a hold, is acknowledged only once it is
 * journaled (it survives a crash of the server) and, on a replica set, on a majority (it survives
 * a failover). Set on the collection, not inherited from the connection: a `w: 1` connection would
 * otherwise let an acknowledged acquisition vanish and the lock be handed out twice.
 */
export const DURABLE = { writeConcern: { w: 'majority', j: true } } as const;

/**
 * The write concern of the writes whose loss is harmless: releases (the holder's, a forced one, a
 * give-back; not a fair one, which may hand the lock over: see {@link fairReleaseCommand}) and
 * wake-up signals. A release lost in a crash or a failover leaves the lock held
 * until its ttl, as if its holder had crashed; a lost signal leaves a waiter to its next poll.
 * Neither can hand a lock out twice: whoever takes the lock next does so with a durable write,
 * and the journal and the oplog are ordered, so that write being durable makes the release it saw
 * durable too. `w: 1` rather than `'majority'` without `j`: a majority write is journaled anyway
 * (`writeConcernMajorityJournalDefault`), so only `w: 1` saves the wait. See docs/guarantees.md.
 */
export const RELAXED = { writeConcern: { w: 1 } } as const;

/**
 * The collection options of every lock command: durable writes (above), and majority reads. A
 * primary cut off from the rest of a replica set still applies a renewal locally; a `local` read
 * would show it, and the holder would trust a lease the new primary lets expire. A majority read
 * shows only what survives a failover.
 */
export const COLLECTION = { ...DURABLE, readConcern: { level: 'majority' }, readPreference: 'primary' } as const;

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
  /** The hold is an election's: marked `election: true`, for operators' views (`mdlock top`). */
  readonly election?: boolean;
  /** History is on: stash the hold this one takes over as `previous`, and answer with it. */
  readonly history?: boolean;
  /** Fair waiting: queue behind the live waiters that came first (see {@link fairAcquireCommand}). */
  readonly fair?: boolean;
  /**
   * The server gives up on the command after this many ms (`maxTimeMS`, and `wtimeoutMS` for the
   * majority acknowledgement), so that it abandons what the client gave up on.
   */
  readonly maxTimeMS?: number;
}

/** The server-side bound of a command: its time limit, and how long its write concern may wait. */
export function serverBound(maxTimeMS: number | undefined, writeConcern: { readonly w: number | 'majority' }) {
  if (maxTimeMS === undefined) return {};
  // Whole milliseconds, as the server takes them, and never 0 (which means "no limit").
  const ms = Math.min(2 ** 31 - 1, Math.max(1, Math.ceil(maxTimeMS)));
  const wait = writeConcern.w === 'majority' ? { writeConcern: { ...writeConcern, wtimeoutMS: ms } } : {};
  return { maxTimeMS: ms, ...wait };
}

/** The next fencing token: max(previous + 1, the server's time in ms). */
export const nextToken = { $max: [{ $add: [{ $ifNull: ['$token', 0] }, 1] }, { $toLong: '$$NOW' }] };

/** The hold an acquisition writes (a retried one that finds its own keeps token, acquiredAt, previous). */
function newHold(id: { $literal: string }, owner: string, ttl: number, election = false) {
  /** A field of the hold that a retried attempt finds already its own keeps its value. */
  const kept = (field: string, value: unknown) => ({ $cond: ['$$mine', `$${field}`, value] });
  const hold: Record<string, unknown> = {
    _id: '$_id',
    token: kept('token', nextToken),
    leaseId: id,
    owner: { $literal: owner },
    acquiredAt: kept('acquiredAt', '$$NOW'),
    expiresAt: { $add: ['$$NOW', { $literal: ttl }] },
    ttl: { $literal: ttl },
  };
  if (election) hold.election = true;
  return { hold, previous: kept('previous', endedHold) };
}

/** An acquisition's answer: whether it is ours, and the hold's state; `remaining` as given. */
function acquireAnswer(id: { $literal: string }, remaining: unknown, history: boolean) {
  const projection: Record<string, unknown> = {
    _id: 0,
    mine: { $eq: ['$leaseId', id] },
    token: 1,
    owner: 1,
    expiresAt: 1,
    remaining,
  };
  if (history) projection.previous = 1;
  return projection;
}

/** The options of an acquisition: an upsert answering with the document after, bounded on the server. */
export function upsertOptions<P extends object>(projection: P, maxTimeMS: number | undefined) {
  return {
    upsert: true,
    returnDocument: 'after',
    projection,
    ...serverBound(maxTimeMS, DURABLE.writeConcern),
  } as const;
}

/**
 * One atomic attempt to take the lock `name`: one `findOneAndUpdate` with upsert, whose update
 * (a single `$replaceWith` stage) takes the lock only if it is free or its expiry is not after the
 * server's `$$NOW` (or, with `force`, whatever its state). The fencing token becomes
 * max(previous + 1, server time in ms), so it grows across releases, expiries and the document's
 * later removal. A `waiting` contender that finds the lock busy marks it `contended` (a write only
 * the first time), so that its release will signal waiters in other processes.
 *
 * Taking the lock writes the whole document anew: whatever the last hold left (`freedAt`,
 * `contended`, an old `previous`) goes. With `history`, the hold it took over, if that one was never
 * released (it expired, or is forced out), is stashed as `previous` for the history record.
 *
 * An attempt whose answer was lost (a timeout, a reset connection) is retried with the same
 * `leaseId`: if the lost one had taken the lock, the retry finds its own live hold (`$$mine`) and
 * keeps it (same token, acquisition time and `previous`; expiry extended) instead of finding the
 * lock busy until it expires.
 *
 * Every value that comes from the caller enters the pipeline as a `$literal`: an owner such as
 * `'$$NOW'` or `'$token'` is stored as written, never evaluated.
 */
export function acquireCommand(request: AcquireRequest) {
  // A forced attempt takes the lock whatever its state, a fair queue included.
  if (request.fair === true && request.force !== true) return fairAcquireCommand(request);
  const { name, leaseId, owner, ttl, force = false, waiting = false, history = false, maxTimeMS } = request;
  const id = { $literal: leaseId };
  const ours = { $eq: ['$leaseId', id] };
  const { hold, previous } = newHold(id, owner, ttl, request.election === true);
  if (history) hold.previous = previous;
  // Busy: left as it is, but for the contended mark. Free, expired or our own: the new hold.
  const busy = waiting ? { $mergeObjects: ['$$ROOT', { contended: true }] } : '$$ROOT';
  const taken = force ? hold : { $cond: [{ $or: [...isFree.$or, ours] }, hold, busy] };
  const update: Record<string, unknown>[] = [
    {
      $replaceWith: {
        $let: { vars: { mine: { $and: [ours, { $gt: ['$expiresAt', '$$NOW'] }] } }, in: taken },
      },
    },
  ];
  const options = upsertOptions(acquireAnswer(id, remainingMs, history), maxTimeMS);
  return { filter: { _id: name }, update, options };
}

/** The options of a release: answered from the document as it was, not durable, bounded on the server. */
export function releaseOptions<P extends object>(projection: P, maxTimeMS: number | undefined) {
  return {
    returnDocument: 'before',
    projection,
    ...RELAXED,
    ...serverBound(maxTimeMS, RELAXED.writeConcern),
  } as const;
}

/**
 * The release command: frees the lock if `leaseId` still holds it, answering from the document as
 * it was: whether the hold was still live, whether anyone waited, and, with `history`, what its
 * record needs. Not durable ({@link RELAXED}).
 */
export function releaseCommand(name: string, leaseId: string, history = false, maxTimeMS?: number) {
  const live = { $gt: ['$expiresAt', '$$NOW'] };
  const projection = history ? { ...holdProjection, live, contended: 1 } : { _id: 0, live, contended: 1 };
  const options = releaseOptions(projection, maxTimeMS);
  return { filter: { _id: name, leaseId }, update: [{ $set: freeIt }], options };
}

/**
 * The forced release: frees the lock whoever holds it, if it is held now, answering from the
 * document as it was. Not durable ({@link RELAXED}).
 */
export function forceReleaseCommand(name: string) {
  const options = { returnDocument: 'before', projection: { ...holdProjection, contended: 1 }, ...RELAXED } as const;
  return { filter: { _id: name, $expr: heldNow }, update: [{ $set: freeIt }], options };
}

/** The renewal of a batch of holds: each one still ours and unexpired gets its own ttl from `$$NOW`. */
export function renewCommand(holds: readonly { readonly name: string; readonly leaseId: string }[]) {
  return {
    filter: {
      _id: { $in: holds.map((h) => h.name) },
      leaseId: { $in: holds.map((h) => h.leaseId) },
      $expr: { $gt: ['$expiresAt', '$$NOW'] },
    },
    // A hold that expired on the server's clock is never revived.
    update: [{ $set: { expiresAt: { $add: ['$$NOW', '$ttl'] } } }],
  };
}

/** The watchdog's read-back of a batch of locks, with the server's view of the time each has left. */
export function readCommand(names: readonly string[]) {
  return {
    filter: { _id: { $in: [...names] } },
    // One more than can match, so that the first batch also closes the cursor (no getMore).
    // `now`: the server's clock, the judge of the expiry, which the watchdog follows for jumps.
    options: {
      projection: { leaseId: 1, expiresAt: 1, remaining: remainingMs, now: '$$NOW' },
      batchSize: names.length + 1,
    },
  };
}

/** Holds that expired more than `olderThan` ms ago and were never released (their holder crashed). */
export function staleCommand(olderThan: number) {
  return { leaseId: { $ne: null }, $expr: { $lt: ['$expiresAt', { $subtract: ['$$NOW', olderThan] }] } };
}

/** Frees one stale hold for clean-up: its `freedAt` is when it expired (or its token's time, if later). */
export function sweepCommand(name: string, leaseId: string | null, olderThan: number) {
  const options = { returnDocument: 'before', projection: holdProjection } as const;
  return {
    filter: { ...staleCommand(olderThan), _id: name, leaseId },
    update: [{ $set: { leaseId: null, freedAt: freedFrom('$expiresAt') } }],
    options,
  };
}

/** The fields `history()` returns of a record. */
export const historyProjection = {
  _id: 0,
  name: 1,
  token: 1,
  owner: 1,
  acquiredAt: 1,
  endedAt: 1,
  outcome: 1,
} as const;

// Fair waiting (`fair: true`, see docs/fairness.md). The waiters of a lock queue in its document,
// in `queue`, in the order the server appended them: the order waits began, by no client's clock.
// An entry expires like a hold (its `expiresAt` is $$NOW + its ttl, renewed by each attempt and by
// the watchdog), so a waiter that died stops blocking the queue after its ttl.

/** One fair waiter, queued in a lock's or a semaphore's document. */
export interface QueueEntry {
  /** The id the waiter's hold will have: the hand-over makes it the holder under this id. */
  leaseId: string;
  owner: string;
  /** The lease duration of the waiter's hold (and of its entry). */
  ttl: number;
  /** When the entry ends unless renewed: after that the waiter counts as gone. */
  expiresAt: Date;
}

/** The live entries of the queue (an expired one is dropped by the next write). */
export const liveQueue = {
  $filter: { input: { $ifNull: ['$queue', []] }, as: 'e', cond: { $gt: ['$$e.expiresAt', '$$NOW'] } },
};

/** The live entries but `id`'s own ($literal): what is left of the queue once that waiter leaves it. */
export const queueWithout = (id: { $literal: string }) => ({
  $filter: {
    input: { $ifNull: ['$queue', []] },
    as: 'e',
    cond: { $and: [{ $gt: ['$$e.expiresAt', '$$NOW'] }, { $ne: ['$$e.leaseId', id] }] },
  },
});

/**
 * How many live entries are ahead of `id` in `$$queue` (the live queue): its place, or the
 * whole queue if it is not queued yet (it would join at the back).
 */
export const aheadOf = (id: { $literal: string }) => ({
  $let: {
    vars: { at: { $indexOfArray: ['$$queue.leaseId', id] } },
    in: { $cond: [{ $lt: ['$$at', 0] }, { $size: '$$queue' }, '$$at'] },
  },
});

/**
 * The queue after a busy fair attempt: `id` joins at the back, or, already queued, has its
 * entry's expiry pushed to $$NOW + ttl (its place kept) once less than half the ttl is left.
 * Not before: then the attempt changes nothing, and the server skips the write (and its journal
 * flush), as it does for a busy unfair attempt on a lock already marked contended. Waiters try
 * again at each release that frees the lock and at each poll, so this saves a durable write per
 * waiter each time. `extra`: more fields of a new entry (a read-write lock's waiter's mode).
 */
export function joinQueue(id: { $literal: string }, owner: string, ttl: number, extra: Record<string, unknown> = {}) {
  const expiresAt = { $add: ['$$NOW', { $literal: ttl }] };
  const entry = { leaseId: id, owner: { $literal: owner }, ttl: { $literal: ttl }, expiresAt, ...extra };
  const due = { $lt: ['$$e.expiresAt', { $add: ['$$NOW', { $literal: ttl / 2 }] }] };
  return {
    $cond: [
      { $in: [id, '$$queue.leaseId'] },
      {
        $map: {
          input: '$$queue',
          as: 'e',
          in: {
            $cond: [{ $and: [{ $eq: ['$$e.leaseId', id] }, due] }, { $mergeObjects: ['$$e', { expiresAt }] }, '$$e'],
          },
        },
      },
      { $concatArrays: ['$$queue', [entry]] },
    ],
  };
}

/**
 * A fair attempt (see {@link acquireCommand}, which sends this for `fair` requests). It takes the
 * lock only if it is free (or its own, the retried path) AND no live waiter is queued ahead of it;
 * the grant takes it out of the queue. Otherwise a `waiting` contender joins the queue (or
 * refreshes its entry) and marks the lock contended; one attempt alone (`tryAcquire`) changes
 * nothing. Dead entries go with any write. A busy answer's `remaining` is the holder's time left,
 * or the ttl when the lock is free but others are ahead (they take it on their own attempts or
 * are handed it by a release; this waiter keeps to its poll and its wake-up signal).
 */
function fairAcquireCommand(request: AcquireRequest) {
  const { name, leaseId, owner, ttl, waiting = false, history = false, maxTimeMS } = request;
  const id = { $literal: leaseId };
  const ours = { $eq: ['$leaseId', id] };
  const left = { $filter: { input: '$$queue', as: 'e', cond: { $ne: ['$$e.leaseId', id] } } };
  const { hold, previous } = newHold(id, owner, ttl, request.election === true);
  hold.queue = left;
  // Others still wait: this hold's release must hand over and signal.
  hold.contended = { $cond: [{ $gt: [{ $size: left }, 0] }, true, '$$REMOVE'] };
  if (history) hold.previous = previous;
  const busy = waiting
    ? { $mergeObjects: ['$$ROOT', { contended: true, queue: joinQueue(id, owner, ttl) }] }
    : '$$ROOT';
  const mayTake = { $or: ['$$mine', { $and: [isFree, { $eq: [aheadOf(id), 0] }] }] };
  const update = [
    {
      $replaceWith: {
        $let: {
          vars: { mine: { $and: [ours, { $gt: ['$expiresAt', '$$NOW'] }] }, queue: liveQueue },
          in: { $cond: [mayTake, hold, busy] },
        },
      },
    },
  ];
  const remaining = { $cond: [{ $gt: ['$expiresAt', '$$NOW'] }, remainingMs, { $literal: ttl }] };
  const options = upsertOptions(acquireAnswer(id, remaining, history), maxTimeMS);
  return { filter: { _id: name }, update, options };
}

/**
 * The release of a fair lease, and the leave of a fair waiter (one command for both, so that a
 * waiter that gives up also gives back a lock handed to it meanwhile). If `leaseId` holds the
 * lock (live or not), or the lock is free, and a live waiter is queued, the first one becomes the
 * holder in this same update: new token, its own ttl from $$NOW, out of the queue. Otherwise a
 * hold of `leaseId` is freed as {@link releaseCommand} frees it. Either way `leaseId` leaves the
 * queue, and dead entries go. Answers from the document as it was: `held` (leaseId held it),
 * `live`, `contended`, `waiters` (live ones but `leaseId`), so that a hand-over is signalled, and,
 * if this update hands the lock over, the grant: `grantTo` (the new holder's lease id), `grantToken`
 * and `grantExpiresAt`, which the release signal carries to the waiter (see docs/fairness.md).
 *
 * A hand-over's token is the last one plus 1 (not {@link nextToken}'s server time): the answer
 * computes it from the document as it was, so it is the token written even if the answer comes
 * from a retry (answered from the stored document, where `$$NOW` would be another time). Tokens
 * still grow, and the clean-up clock already allows for a token ahead of the time (`freedFrom`).
 *
 * Durable, like an acquisition ({@link DURABLE}): the waiter handed the lock takes the signal's
 * word for it, without a write of its own that would have made the hand-over durable.
 */
export function fairReleaseCommand(name: string, leaseId: string, history = false, maxTimeMS?: number) {
  const id = { $literal: leaseId };
  const next = { $ne: ['$_next', null] };
  const held = '$_held';
  const stay = (field: string, freed: unknown) => ({ $cond: [held, freed, `$${field}`] });
  const update = [
    { $set: { _rest: queueWithout(id), _held: { $eq: ['$leaseId', id] } } },
    {
      $set: {
        _next: {
          $cond: [
            { $and: [{ $or: [held, isFree] }, { $gt: [{ $size: '$_rest' }, 0] }] },
            { $arrayElemAt: ['$_rest', 0] },
            null,
          ],
        },
      },
    },
    {
      $set: {
        token: { $cond: [next, handedToken, '$token'] },
        leaseId: { $cond: [next, '$_next.leaseId', stay('leaseId', null)] },
        owner: { $cond: [next, '$_next.owner', '$owner'] },
        ttl: { $cond: [next, '$_next.ttl', '$ttl'] },
        acquiredAt: { $cond: [next, '$$NOW', '$acquiredAt'] },
        expiresAt: { $cond: [next, { $add: ['$$NOW', '$_next.ttl'] }, stay('expiresAt', freeIt.expiresAt)] },
        freedAt: { $cond: [next, '$$REMOVE', stay('freedAt', freeIt.freedAt)] },
        contended: {
          $cond: [
            next,
            { $cond: [{ $gt: [{ $size: '$_rest' }, 1] }, true, '$$REMOVE'] },
            stay('contended', '$$REMOVE'),
          ],
        },
        previous: { $cond: [next, '$$REMOVE', '$previous'] },
        queue: { $cond: [next, { $slice: ['$_rest', 1, { $add: [{ $size: '$_rest' }, 1] }] }, '$_rest'] },
      },
    },
    { $unset: ['_rest', '_held', '_next'] },
  ];
  const live = { $gt: ['$expiresAt', '$$NOW'] };
  const answer = {
    held: { $eq: ['$leaseId', id] },
    contended: 1,
    waiters: { $size: queueWithout(id) },
    ...grantAnswer(id),
  };
  const projection = history
    ? { ...holdProjection, live: { $and: [answer.held, live] }, ...answer }
    : { _id: 0, live: { $and: [answer.held, live] }, ...answer };
  const options = {
    returnDocument: 'before',
    projection,
    ...DURABLE,
    ...serverBound(maxTimeMS, DURABLE.writeConcern),
  } as const;
  return { filter: { _id: name, $or: [{ leaseId }, { 'queue.leaseId': leaseId }] }, update, options };
}

/** A fair hand-over's token: the last one plus 1, computed alike in the update and in the answer. */
const handedToken = { $add: [{ $ifNull: ['$token', 0] }, 1] };

/**
 * The grant a fair release makes, read from the document as it was (the same conditions as the
 * update's `_next`): the first live waiter but `id`, if `id` held the lock or it is free.
 */
function grantAnswer(id: { $literal: string }) {
  const first = { $arrayElemAt: [queueWithout(id), 0] };
  const next = { $cond: [{ $or: [{ $eq: ['$leaseId', id] }, isFree] }, first, null] };
  // Each field is left out of the answer when there is no hand-over.
  const of = (value: unknown) => ({
    $let: { vars: { n: next }, in: { $cond: [{ $eq: [{ $ifNull: ['$$n', null] }, null] }, '$$REMOVE', value] } },
  });
  return {
    grantTo: of('$$n.leaseId'),
    grantToken: of(handedToken),
    grantExpiresAt: of({ $add: ['$$NOW', '$$n.ttl'] }),
  };
}

/**
 * The watchdog's renewal of a batch of fair waiters' queue entries (in a lock's or a semaphore's
 * document: the same shape): each one still queued and unexpired gets its own ttl from $$NOW. An
 * entry that expired on the server's clock is never revived: its waiter has left the queue.
 */
export function renewQueueCommand(waits: readonly { readonly name: string; readonly leaseId: string }[]) {
  const ids = { $literal: waits.map((w) => w.leaseId) };
  const renewed = {
    $cond: [
      { $and: [{ $in: ['$$e.leaseId', ids] }, { $gt: ['$$e.expiresAt', '$$NOW'] }] },
      { $mergeObjects: ['$$e', { expiresAt: { $add: ['$$NOW', '$$e.ttl'] } }] },
      '$$e',
    ],
  };
  return {
    filter: {
      _id: { $in: [...new Set(waits.map((w) => w.name))] },
      'queue.leaseId': { $in: waits.map((w) => w.leaseId) },
    },
    update: [{ $set: { queue: { $map: { input: '$queue', as: 'e', in: renewed } } } }],
  };
}
