// The commands of counting semaphores, as pure values (lib/semaphore-store.ts sends them). Like
// the lock's (lib/commands.ts): one update pipeline per change, every caller value a `$literal`,
// every expiry judged by the server's `$$NOW`.
import {
  DURABLE,
  releaseOptions,
  aheadOf,
  nextToken,
  joinQueue,
  liveQueue,
  queueWithout,
  serverBound,
  upsertOptions,
  type QueueEntry,
} from './commands.js';

/**
 * One semaphore: one document, in `<collection>.semaphores`, kept (never removed by the library)
 * so that its fencing token only ever grows. All times are the server's (`$$NOW`).
 */
export interface SemaphoreDocument {
  /** The semaphore's name. */
  _id: string;
  /** How many holders it admits at once: set by the first acquisition, checked by every other. */
  limit: number;
  /** Fencing token of the latest grant: every grant takes the next one. */
  token: number;
  /** The holds, live or not yet dropped (an expired one goes at the next acquisition), in grant order. */
  holders: PermitHolder[];
  /** A contender found every permit taken and waits: a release signals waiters in other processes. */
  contended?: boolean;
  /** Fair waiters, in the order they began to wait (see docs/fairness.md). */
  queue?: QueueEntry[];
}

/** One hold of a permit. */
export interface PermitHolder {
  /** Private id of the hold, the only key that renews or releases it. */
  leaseId: string;
  owner: string;
  token: number;
  acquiredAt: Date;
  /** When the hold ends unless renewed. */
  expiresAt: Date;
  /** The hold's lease duration in ms: each renewal sets expiresAt to $$NOW + ttl. */
  ttl: number;
}

/** One attempt to take a permit. */
export interface PermitRequest {
  readonly name: string;
  readonly limit: number;
  readonly leaseId: string;
  readonly owner: string;
  readonly ttl: number;
  /** The contender will wait if every permit is taken: mark the semaphore `contended`. */
  readonly waiting?: boolean;
  /** Fair waiting: no permit while live waiters queued ahead would be left without one. */
  readonly fair?: boolean;
  readonly maxTimeMS?: number;
}

const holders = { $ifNull: ['$holders', []] };

/** The variables of an acquisition: the live holders, the stored limit, the next token. */
const permitVars = (limit: number) => ({
  live: { $filter: { input: holders, as: 'h', cond: liveHolder('$$h') } },
  stored: { $ifNull: ['$limit', { $literal: limit }] },
  next: nextToken,
});
const liveHolder = (h: string) => ({ $gt: [`${h}.expiresAt`, '$$NOW'] });

/** An acquisition's answer of the hold of `leaseId`, if it has one (shared with read-write locks). */
export function mineProjection(leaseId: string) {
  const mine = { $filter: { input: holders, as: 'h', cond: { $eq: ['$$h.leaseId', { $literal: leaseId }] } } };
  return {
    $map: {
      input: mine,
      as: 'h',
      in: {
        token: '$$h.token',
        owner: '$$h.owner',
        expiresAt: '$$h.expiresAt',
        remaining: { $subtract: ['$$h.expiresAt', '$$NOW'] },
      },
    },
  };
}

/**
 * The pieces of an acquisition pipeline shared with read-write locks: the new hold (token
 * `$$next`), and the live holders (`$$live`) with the hold of `leaseId` extended by `ttl`.
 */
export function grantParts(leaseId: string, owner: string, ttl: number) {
  const id = { $literal: leaseId };
  const expiresAt = { $add: ['$$NOW', { $literal: ttl }] };
  const grant = {
    leaseId: id,
    owner: { $literal: owner },
    token: '$$next',
    acquiredAt: '$$NOW',
    expiresAt,
    ttl: { $literal: ttl },
  };
  const renewMine = {
    $map: {
      input: '$$live',
      as: 'h',
      in: { $cond: [{ $eq: ['$$h.leaseId', id] }, { $mergeObjects: ['$$h', { expiresAt }] }, '$$h'] },
    },
  };
  return { id, expiresAt, grant, renewMine };
}

/**
 * What an acquisition answers (and, on the rare retried path, the read that stands in for it):
 * the stored limit, this lease's hold if it has one, and when the earliest hold ends.
 */
export function permitProjection(leaseId: string) {
  return {
    _id: 0,
    limit: 1,
    mine: mineProjection(leaseId),
    // When the earliest hold ends (a permit frees up then at the latest): when to try again.
    remaining: { $subtract: [{ $min: '$holders.expiresAt' }, '$$NOW'] },
  };
}

/**
 * One atomic attempt to take a permit of `name`: one `findOneAndUpdate` with upsert, whose update
 * (a single `$replaceWith` stage) drops the holders whose expiry is not after `$$NOW` and grants a
 * permit if fewer than `limit` remain. A grant takes the next fencing token: max(previous + 1,
 * server time in ms), as a lock's does, so it grows across every hold of the semaphore (and
 * across the document's removal by an operator).
 *
 * The limit is stored by the first acquisition; a request whose limit is another changes nothing
 * and the answer says which limit is stored. A retried attempt (same `leaseId`, its answer lost)
 * that finds its own live hold keeps it (same token and acquisition time; expiry extended). A
 * `waiting` contender that finds every permit taken marks the document `contended`.
 */
export function acquirePermitCommand(request: PermitRequest) {
  if (request.fair === true) return fairPermitCommand(request);
  const { name, limit, leaseId, owner, ttl, waiting = false, maxTimeMS } = request;
  const { id, grant, renewMine } = grantParts(leaseId, owner, ttl);
  const busy = waiting ? { $mergeObjects: ['$$ROOT', { contended: true }] } : '$$ROOT';
  const update = [
    {
      $replaceWith: {
        $let: {
          vars: permitVars(limit),
          in: {
            $switch: {
              branches: [
                { case: { $ne: ['$$stored', { $literal: limit }] }, then: '$$ROOT' },
                { case: { $in: [id, '$$live.leaseId'] }, then: { $mergeObjects: ['$$ROOT', { holders: renewMine }] } },
                {
                  case: { $lt: [{ $size: '$$live' }, { $literal: limit }] },
                  then: {
                    $mergeObjects: [
                      '$$ROOT',
                      { limit: { $literal: limit }, token: '$$next', holders: { $concatArrays: ['$$live', [grant]] } },
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
  const options = {
    upsert: true,
    returnDocument: 'after',
    projection: permitProjection(leaseId),
    ...serverBound(maxTimeMS, DURABLE.writeConcern),
  } as const;
  return { filter: { _id: name }, update, options };
}

/**
 * A fair attempt to take a permit: as {@link acquirePermitCommand}, but a permit is granted only
 * if there are enough free ones for every live waiter queued ahead of this one, and this one;
 * the grant takes it out of the queue. Otherwise a `waiting` contender joins the queue at the
 * back (or, already queued, renews its entry, keeping its place). Dead entries go with any write.
 */
function fairPermitCommand(request: PermitRequest) {
  const { name, limit, leaseId, owner, ttl, waiting = false, maxTimeMS } = request;
  const { id, grant, renewMine } = grantParts(leaseId, owner, ttl);
  const busy = waiting
    ? { $mergeObjects: ['$$ROOT', { contended: true, queue: joinQueue(id, owner, ttl) }] }
    : '$$ROOT';
  const left = { $filter: { input: '$$queue', as: 'e', cond: { $ne: ['$$e.leaseId', id] } } };
  const granted = {
    limit: { $literal: limit },
    token: '$$next',
    holders: { $concatArrays: ['$$live', [grant]] },
    queue: left,
  };
  const update = [
    {
      $replaceWith: {
        $let: {
          vars: { ...permitVars(limit), queue: liveQueue },
          in: {
            $switch: {
              branches: [
                { case: { $ne: ['$$stored', { $literal: limit }] }, then: '$$ROOT' },
                { case: { $in: [id, '$$live.leaseId'] }, then: { $mergeObjects: ['$$ROOT', { holders: renewMine }] } },
                {
                  case: { $lt: [{ $add: [{ $size: '$$live' }, aheadOf(id)] }, { $literal: limit }] },
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
  const options = upsertOptions({ ...permitProjection(leaseId), remaining: fairRemaining(ttl) }, maxTimeMS);
  return { filter: { _id: name }, update, options };
}

/**
 * A fair busy answer's time to wait: until the earliest live hold ends, or the ttl if none is live
 * (the permits are free but waiters ahead will take them: keep to the poll and the wake-up signal).
 */
export function fairRemaining(ttl: number) {
  const ends = { $filter: { input: holders, as: 'h', cond: liveHolder('$$h') } };
  return {
    $ifNull: [
      { $subtract: [{ $min: { $map: { input: ends, as: 'h', in: '$$h.expiresAt' } } }, '$$NOW'] },
      { $literal: ttl },
    ],
  };
}

/**
 * The release of a fair permit, and the leave of a fair waiter (one command for both, so that a
 * waiter that gives up also gives back a permit handed to it meanwhile): `leaseId`'s hold or
 * queue entry goes, and dead holds and entries with it; then, in this same update, the first live
 * waiters get the permits now free (each the next token, its own ttl from $$NOW), and leave the
 * queue. Answers from the document as it was: `held`, `live`, `contended`, and `waiters` (the live
 * ones but `leaseId`), so that a hand-over is signalled. Not durable, as every release.
 */
export function fairReleasePermitCommand(name: string, leaseId: string, maxTimeMS?: number) {
  return fairHandOverCommand(name, leaseId, { $subtract: ['$limit', { $size: '$_live' }] }, {}, maxTimeMS);
}

/**
 * The fair release and leave of {@link fairReleasePermitCommand}, for documents of the holders
 * shape (semaphores, read-write locks): `grants` is how many of the first live waiters may be
 * handed a hold, an expression over `$_live` (the live holds that stay) and `$_rest` (the live
 * queue without `leaseId`); `extra` are more fields of each handed hold, over the entry `$$e`.
 * @internal
 */
export function fairHandOverCommand(
  name: string,
  leaseId: string,
  grants: unknown,
  extra: Record<string, unknown>,
  maxTimeMS?: number,
) {
  const id = { $literal: leaseId };
  const ours = { $eq: ['$$h.leaseId', id] };
  const handed = {
    $map: {
      input: { $range: [0, '$_k'] },
      as: 'i',
      in: {
        $let: {
          vars: { e: { $arrayElemAt: ['$_rest', '$$i'] } },
          in: {
            leaseId: '$$e.leaseId',
            owner: '$$e.owner',
            token: { $add: ['$_base', '$$i'] },
            acquiredAt: '$$NOW',
            expiresAt: { $add: ['$$NOW', '$$e.ttl'] },
            ttl: '$$e.ttl',
            ...extra,
          },
        },
      },
    },
  };
  const queue = { $slice: ['$_rest', '$_k', { $add: [{ $size: '$_rest' }, 1] }] };
  const update = [
    {
      $set: {
        _live: { $filter: { input: holders, as: 'h', cond: { $and: [liveHolder('$$h'), { $not: [ours] }] } } },
        _rest: queueWithout(id),
        _base: nextToken,
      },
    },
    {
      $set: {
        _k: { $toInt: { $max: [0, { $min: [grants, { $size: '$_rest' }] }] } },
      },
    },
    {
      $set: {
        holders: { $concatArrays: ['$_live', handed] },
        token: { $cond: [{ $gt: ['$_k', 0] }, { $add: ['$_base', '$_k', -1] }, '$token'] },
        queue,
        contended: { $cond: [{ $gt: [{ $size: queue }, 0] }, true, '$$REMOVE'] },
      },
    },
    { $unset: ['_live', '_rest', '_base', '_k'] },
  ];
  const held = { $anyElementTrue: [{ $map: { input: holders, as: 'h', in: ours } }] };
  const live = { $anyElementTrue: [{ $map: { input: holders, as: 'h', in: { $and: [ours, liveHolder('$$h')] } } }] };
  const options = releaseOptions({ _id: 0, live, held, contended: 1, waiters: { $size: queueWithout(id) } }, maxTimeMS);
  return {
    filter: { _id: name, $or: [{ 'holders.leaseId': leaseId }, { 'queue.leaseId': leaseId }] },
    update,
    options,
  };
}

/**
 * Frees the permit `leaseId` holds, and only that one, answering from the document as it was:
 * whether the hold was still live, and whether anyone waited. Not durable (RELAXED, as a lock's
 * release): a release lost in a crash leaves the permit taken until its ttl.
 */
export function releasePermitCommand(name: string, leaseId: string, maxTimeMS?: number) {
  const id = { $literal: leaseId };
  const live = {
    $anyElementTrue: [
      { $map: { input: holders, as: 'h', in: { $and: [{ $eq: ['$$h.leaseId', id] }, liveHolder('$$h')] } } },
    ],
  };
  const options = releaseOptions({ _id: 0, live, contended: 1 }, maxTimeMS);
  const others = { $filter: { input: holders, as: 'h', cond: { $ne: ['$$h.leaseId', id] } } };
  return {
    filter: { _id: name, 'holders.leaseId': leaseId },
    update: [{ $set: { holders: others, contended: '$$REMOVE' } }],
    options,
  };
}

/** The renewal of a batch of permits: each one still held and unexpired gets its own ttl from `$$NOW`. */
export function renewPermitsCommand(holds: readonly { readonly name: string; readonly leaseId: string }[]) {
  const ids = { $literal: holds.map((h) => h.leaseId) };
  const renewed = {
    $cond: [
      { $and: [{ $in: ['$$h.leaseId', ids] }, liveHolder('$$h')] },
      { $mergeObjects: ['$$h', { expiresAt: { $add: ['$$NOW', '$$h.ttl'] } }] },
      '$$h',
    ],
  };
  return {
    filter: {
      _id: { $in: [...new Set(holds.map((h) => h.name))] },
      'holders.leaseId': { $in: holds.map((h) => h.leaseId) },
    },
    // A hold that expired on the server's clock is never revived.
    update: [{ $set: { holders: { $map: { input: '$holders', as: 'h', in: renewed } } } }],
  };
}

/**
 * The watchdog's read-back of a batch of permits: per semaphore, how many holds are live, and
 * the given ones with the server's view of the time each has left.
 */
export function readPermitsCommand(holds: readonly { readonly name: string; readonly leaseId: string }[]) {
  const names = [...new Set(holds.map((h) => h.name))];
  const ids = { $literal: holds.map((h) => h.leaseId) };
  const ours = { $filter: { input: holders, as: 'h', cond: { $in: ['$$h.leaseId', ids] } } };
  return {
    filter: { _id: { $in: names } },
    options: {
      projection: {
        limit: 1,
        live: { $size: { $filter: { input: holders, as: 'h', cond: liveHolder('$$h') } } },
        mine: {
          $map: {
            input: ours,
            as: 'h',
            in: {
              leaseId: '$$h.leaseId',
              expiresAt: '$$h.expiresAt',
              remaining: { $subtract: ['$$h.expiresAt', '$$NOW'] },
            },
          },
        },
        now: '$$NOW',
      },
      batchSize: names.length + 1,
    },
  };
}

/** What `inspect()` shows of a semaphore: its limit and live holders, judged by `$$NOW`. */
export const semaphoreInfoProjection = {
  _id: 0,
  limit: 1,
  /** Fair waiters queued now (live entries), from every process. */
  waiting: { $size: liveQueue },
  holders: {
    $map: {
      input: { $filter: { input: holders, as: 'h', cond: liveHolder('$$h') } },
      as: 'h',
      in: { owner: '$$h.owner', token: '$$h.token', acquiredAt: '$$h.acquiredAt', expiresAt: '$$h.expiresAt' },
    },
  },
};
