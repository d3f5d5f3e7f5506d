// The read-write lock's public signatures: a read or write hold is a held lease, and calls that must not compile.
import {
  LockManager,
  type HeldLease,
  type ListedInfo,
  type LockInfo,
  type ReadWriteLock,
  type ReadWriteLockInfo,
  type ReadWriteLockOptions,
} from 'mongoose-distributed-lock';
import { assert, type Equal } from './assert';

declare const manager: LockManager;
declare const signal: AbortSignal;

const options: ReadWriteLockOptions = { ttl: '30s', heartbeat: '10s' };
const rw = manager.readWriteLock('catalog', options);
assert<Equal<typeof rw, ReadWriteLock>>();
assert<Equal<ReturnType<typeof rw.read>, Promise<HeldLease>>>();
assert<Equal<ReturnType<typeof rw.write>, Promise<HeldLease>>>();
void manager.readWriteLock('catalog');
void rw.read({ wait: '5s', signal });
void rw.write({ wait: 5000 });
const _read = rw.withRead((lease) => {
  assert<Equal<typeof lease, HeldLease>>();
  return lease.token;
});
assert<Equal<typeof _read, Promise<number>>>();
const _write = rw.withWrite((lease) => Promise.resolve(lease.signal.aborted), { wait: '1m' });
assert<Equal<typeof _write, Promise<boolean>>>();

// @ts-expect-error -- a read-write lock has no limit
manager.readWriteLock('catalog', { limit: 3 });
// @ts-expect-error -- withWrite needs a function
void rw.withWrite('rebuild');

// inspect(), list() and forceRelease(): list() keeps its old type; list({ all: true }) tells kinds apart.
assert<Equal<ReturnType<typeof rw.inspect>, Promise<ReadWriteLockInfo>>>();
const _locks = manager.list();
assert<Equal<typeof _locks, Promise<LockInfo[]>>>();
const _all = manager.list({ all: true });
assert<Equal<typeof _all, Promise<ListedInfo[]>>>();
declare const entry: ListedInfo;
if (entry.kind === 'rwlock') assert<Equal<typeof entry.writerWaiting, { readonly expiresAt: Date } | null>>();
if (entry.kind === 'semaphore') assert<Equal<typeof entry.limit, number>>();
void manager.forceRelease('pool', { kind: 'semaphore', token: 42 });
// @ts-expect-error -- no such kind
void manager.forceRelease('pool', { kind: 'queue' });
