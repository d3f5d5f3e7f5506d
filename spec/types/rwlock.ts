// The read-write lock's public signatures: a read or write hold is a held lease, and calls that must not compile.
import { LockManager, type HeldLease, type ReadWriteLock, type ReadWriteLockOptions } from 'mongoose-distributed-lock';
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
