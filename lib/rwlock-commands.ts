// The acquisition command of read-write locks, as a pure value (lib/rwlock.ts sends it through the
// semaphore store). A read-write lock's document has the shape of a semaphore's (so the semaphore's
// release, batched renewal and read-back serve it unchanged), in its own collection
// `<collection>.rwlocks`, with a mode per holder and a waiting writer's marker. Every caller value
// is a `$literal`; every expiry is judged by the server's `$$NOW`.
import {
  aheadOf,
  DURABLE,
  joinQueue,
  liveQueue,
  nextToken,
  RELAXED,
  serverBound,
  upsertOptions,
  type QueueEntry,
} from './commands.js';
import {
  fairHandOverCommand,
  fairRemaining,
  grantParts,
  mineProjection,
  type PermitHolder,
  type PermitRequest,
} from './semaphore-commands.js';

/** Shared (many readers) or exclusive (one writer). */
export type RwMode = 'read' | 'write';

/** One read-write lock: one document, kept (never removed by the library) so that its token only grows. */
export interface RwLockDocument {
  /** The lock's name. */
  _id: string;
  /** Fencing token of the latest grant, read or write: every grant takes the next one. */
  token: number;
  /** The holds, live or not yet dropped (an expired one goes at the next acquisition), in grant order. */
  holders: (PermitHolder & { mode: RwMode })[];
  /**
   * A writer that found the lock busy and waits: while its `expiresAt` is after `$$NOW`, new
   * readers are refused. Renewed at each of the writer's attempts; null once it got the lock.
   */
  writerWaiting?: { leaseId: string; expiresAt: Date } | null;
  /** A contender found the lock busy and waits: a release signals waiters in other processes. */
  contended?: boolean;
  /** Fair waiters, readers and writers, in the order they began to wait (see docs/fairness.md). */
  queue?: (QueueEntry & { mode: RwMode })[];
}

/** One attempt to take a read-write lock in `mode` (`waiting`: a writer also sets its marker). */
export interface RwRequest extends Omit<PermitRequest, 'limit'> {
  readonly mode: RwMode;
}

const holders = { $ifNull: ['$holders', []] };
const live = (path: string) => ({ $gt: [path, '$$NOW'] });

/**
 * One atomic attempt to take `name` in `mode`: a single `$replaceWith` upsert that drops expired
 * holders and grants the hold if
 * - read: no live writer holds it and no live `writerWaiting` marker is set (writer preference);
 * - write: nobody holds it (live).
 * A grant takes the next fencing token: max(previous + 1, server time in ms), across reads and
 * writes. A retried attempt that finds its own live hold keeps it (expiry extended). A waiting
 * writer that finds the lock busy sets (or renews) the marker `writerWaiting` unless another
 * waiting writer's marker is live; a writer's grant clears the marker.
 *
 * Answers as permitProjection does: `mine` (this lease's hold) and `remaining` (when to try again:
 * the earliest expiry of a holder or of the marker; for a waiting writer at most half its ttl, so
 * that it renews its marker in time).
 */
export function acquireRwCommand(request: RwRequest) {
  if (request.fair === true) return fairAcquireRwCommand(request);
  const { name, mode, leaseId, owner, ttl, waiting = false, maxTimeMS } = request;
  const parts = grantParts(leaseId, owner, ttl);
  const { id, expiresAt, renewMine } = parts;
  const grant = { ...parts.grant, mode: { $literal: mode } };
  const markerIsMine = { $eq: ['$$marker.leaseId', id] };
  const free =
    mode === 'write'
      ? { $eq: [{ $size: '$$live' }, 0] }
      : {
          $and: [{ $not: [{ $in: ['write', '$$live.mode'] }] }, { $or: [{ $eq: ['$$marker', null] }, markerIsMine] }],
        };
  // A writer's grant clears the marker (its own, or another waiting writer's: that one sets it
  // again at its next attempt), so that a marker never outlives the writers' turn.
  const markerAfterGrant = mode === 'write' ? null : '$$marker';
  const setsMarker = mode === 'write' && waiting;
  const busy = {
    $mergeObjects: [
      '$$ROOT',
      {
        holders: '$$live',
        ...(waiting ? { contended: true } : {}),
        writerWaiting: setsMarker
          ? {
              $cond: [{ $or: [{ $eq: ['$$marker', null] }, markerIsMine] }, { leaseId: id, expiresAt }, '$$marker'],
            }
          : '$$marker',
      },
    ],
  };
  const update = [
    {
      $replaceWith: {
        $let: {
          vars: {
            live: { $filter: { input: holders, as: 'h', cond: live('$$h.expiresAt') } },
            marker: {
              $cond: [{ $and: ['$writerWaiting', live('$writerWaiting.expiresAt')] }, '$writerWaiting', null],
            },
            next: nextToken,
          },
          in: {
            $switch: {
              branches: [
                {
                  case: { $in: [id, '$$live.leaseId'] },
                  then: { $mergeObjects: ['$$ROOT', { holders: renewMine }] },
                },
                {
                  case: free,
                  then: {
                    $mergeObjects: [
                      '$$ROOT',
                      {
                        token: '$$next',
                        holders: { $concatArrays: ['$$live', [grant]] },
                        writerWaiting: markerAfterGrant,
                      },
                    ],
                  },
                },
              ],
              default: busy,
            },
          },
        },
      },
    },
  ];
  const earliest = { $min: [{ $min: '$holders.expiresAt' }, '$writerWaiting.expiresAt'] };
  const wait = { $subtract: [earliest, '$$NOW'] };
  const projection = {
    _id: 0,
    mine: mineProjection(leaseId),
    remaining: setsMarker ? { $min: [wait, { $literal: Math.floor(ttl / 2) }] } : wait,
  };
  const options = {
    upsert: true,
    returnDocument: 'after',
    projection,
    ...serverBound(maxTimeMS, DURABLE.writeConcern),
  } as const;
  return { filter: { _id: name }, update, options };
}

/**
 * A fair attempt (`fair: true`): first come, first served among fair readers and writers alike.
 * The hold is granted only if `mode` goes with the live holds (a reader: no live writer; a writer:
 * no live holder) AND no live waiter is queued ahead of this one; the grant takes it out of the
 * queue. Otherwise a `waiting` contender joins the queue with its mode (or refreshes its entry,
 * keeping its place) and marks the lock contended. The `writerWaiting` marker plays no part: the
 * queue keeps a writer's turn. A retried attempt that finds its own live hold keeps it. A busy
 * answer's `remaining` is the earliest live hold's time left, or the ttl when none is live (the
 * waiters ahead take their turn; this one keeps to its poll and its wake-up signal).
 */
function fairAcquireRwCommand(request: RwRequest) {
  const { name, mode, leaseId, owner, ttl, waiting = false, maxTimeMS } = request;
  const parts = grantParts(leaseId, owner, ttl);
  const { id, renewMine } = parts;
  const grant = { ...parts.grant, mode: { $literal: mode } };
  const goesWith = mode === 'write' ? { $eq: [{ $size: '$$live' }, 0] } : { $not: [{ $in: ['write', '$$live.mode'] }] };
  const left = { $filter: { input: '$$queue', as: 'e', cond: { $ne: ['$$e.leaseId', id] } } };
  const granted = { token: '$$next', holders: { $concatArrays: ['$$live', [grant]] }, queue: left };
  const busy = waiting
    ? { $mergeObjects: ['$$ROOT', { contended: true, queue: joinQueue(id, owner, ttl, { mode: { $literal: mode } }) }] }
    : '$$ROOT';
  const update = [
    {
      $replaceWith: {
        $let: {
          vars: {
            live: { $filter: { input: holders, as: 'h', cond: live('$$h.expiresAt') } },
            queue: liveQueue,
            next: nextToken,
          },
          in: {
            $switch: {
              branches: [
                { case: { $in: [id, '$$live.leaseId'] }, then: { $mergeObjects: ['$$ROOT', { holders: renewMine }] } },
                {
                  case: { $and: [goesWith, { $eq: [aheadOf(id), 0] }] },
                  then: { $mergeObjects: ['$$ROOT', granted] },
                },
              ],
              default: busy,
            },
          },
        },
      },
    },
  ];
  const options = upsertOptions({ _id: 0, mine: mineProjection(leaseId), remaining: fairRemaining(ttl) }, maxTimeMS);
  return { filter: { _id: name }, update, options };
}

/**
 * The release of a fair read or write hold, and the leave of a fair waiter (one command for both,
 * as for semaphores): `leaseId`'s hold or queue entry goes, and in the same update the first live
 * waiters are handed what they wait for, in queue order: a writer at the head if no live hold is
 * left; else the readers at the head, up to the first writer, if no live writer holds it. Each
 * handed hold takes the next token, its own ttl from $$NOW, and its mode. Answers as the
 * semaphore's fair release does, so that a hand-over is signalled.
 */
export function fairReleaseRwCommand(name: string, leaseId: string, maxTimeMS?: number) {
  const rest = '$_rest';
  const head = { $arrayElemAt: [`${rest}.mode`, 0] };
  const readersAtHead = {
    $let: {
      vars: { w: { $indexOfArray: [`${rest}.mode`, 'write'] } },
      in: { $cond: [{ $lt: ['$$w', 0] }, { $size: rest }, '$$w'] },
    },
  };
  const grants = {
    $switch: {
      branches: [
        { case: { $eq: [{ $size: rest }, 0] }, then: 0 },
        { case: { $eq: [head, 'write'] }, then: { $cond: [{ $eq: [{ $size: '$_live' }, 0] }, 1, 0] } },
        { case: { $in: ['write', '$_live.mode'] }, then: 0 },
      ],
      default: readersAtHead,
    },
  };
  return fairHandOverCommand(name, leaseId, grants, { mode: '$$e.mode' }, maxTimeMS);
}

/** A live holder's public fields (the lease id stays private). */
const publicHolder = {
  owner: '$$h.owner',
  token: '$$h.token',
  acquiredAt: '$$h.acquiredAt',
  expiresAt: '$$h.expiresAt',
};
const liveOf = (mode: RwMode) => ({
  $filter: { input: holders, as: 'h', cond: { $and: [live('$$h.expiresAt'), { $eq: ['$$h.mode', mode] }] } },
});

/**
 * What `inspect()` and `list()` show of a read-write lock, judged by `$$NOW`: the live readers,
 * the live writer (at most one, as a list), and the expiry of a live `writerWaiting` marker.
 */
export const rwInfoProjection = {
  readers: { $map: { input: liveOf('read'), as: 'h', in: publicHolder } },
  writers: { $map: { input: liveOf('write'), as: 'h', in: publicHolder } },
  writerWaiting: {
    $cond: [
      { $and: ['$writerWaiting', live('$writerWaiting.expiresAt')] },
      { expiresAt: '$writerWaiting.expiresAt' },
      null,
    ],
  },
  /** Fair waiters queued now (live entries), from every process. */
  queued: { $size: liveQueue },
};

/**
 * An operator's forced release (`manager.forceRelease(name, { kind, token })`) of a semaphore's
 * permits or a read-write lock's holds (both documents have this `holders` shape): removes the
 * holder whose token is `token`, or every holder without one, whoever holds it. Answers from the
 * document as it was: the live holds it ended, and whether anyone waited. Not durable, as every
 * release (RELAXED); a holder's watchdog then reports its hold lost.
 */
export function forceReleaseHoldersCommand(name: string, token: number | undefined, maxTimeMS: number) {
  const chosen = (h: string) => (token === undefined ? true : { $eq: [`${h}.token`, { $literal: token }] });
  const ended = {
    $map: {
      input: { $filter: { input: holders, as: 'h', cond: { $and: [live('$$h.expiresAt'), chosen('$$h')] } } },
      as: 'h',
      in: { owner: '$$h.owner', token: '$$h.token' },
    },
  };
  const kept = { $filter: { input: holders, as: 'h', cond: { $not: [chosen('$$h')] } } };
  return {
    filter: { _id: name },
    update: [{ $set: { holders: kept, contended: '$$REMOVE' } }],
    options: {
      returnDocument: 'before',
      projection: { _id: 0, ended, contended: 1 },
      ...RELAXED,
      ...serverBound(maxTimeMS, RELAXED.writeConcern),
    } as const,
  };
}
