// The public signatures: what acquiring resolves, what withLock's function gets, and calls that
// must not compile.
import { LockManager, strategies, type Election, type HeldLease, type Lease } from 'mongoose-distributed-lock';
import { assert, type Equal } from './assert';

declare const manager: LockManager;
declare const lease: Lease;
declare const signal: AbortSignal;

// acquire() resolves a held lease: its token and expiry are always there.
assert<Equal<ReturnType<typeof manager.acquire>, Promise<HeldLease>>>();
assert<Equal<ReturnType<typeof manager.tryAcquire>, Promise<HeldLease | null>>>();
void manager.acquire('job', { wait: '10s', ttl: '30s', heartbeat: false, signal });
void manager.acquire('job', { wait: Infinity, strategy: strategies.backoff({ initial: 10, max: 1000 }) });
void manager.acquire('job', { wait: undefined });
void manager.tryAcquire('job', { ttl: 5000, signal });

async function held() {
  const lease = await manager.acquire('job');
  const token: number = lease.token;
  const expiresAt: Date = lease.expiresAt;
  const maybe = await manager.tryAcquire('job');
  // @ts-expect-error -- tryAcquire may resolve null
  void maybe.token;
  if (maybe) assert<Equal<typeof maybe.token, number>>();
  return [token, expiresAt];
}
void held;

// withLock's function gets the held lease and its result is withLock's.
const _result = manager.withLock('job', (lease) => {
  assert<Equal<typeof lease, HeldLease>>();
  assert<Equal<typeof lease.token, number>>();
  assert<Equal<typeof lease.expiresAt, Date>>();
  assert<Equal<typeof lease.signal, AbortSignal>>();
  return lease.token;
});
assert<Equal<typeof _result, Promise<number>>>();
const _fromAsync = manager.withLock('job', () => Promise.resolve('done'), { wait: '1m' });
assert<Equal<typeof _fromAsync, Promise<string>>>();

// A lease that may not hold its lock: token and expiry may be missing.
assert<Equal<typeof lease.token, number | undefined>>();
assert<Equal<typeof lease.expiresAt, Date | undefined>>();
assert<Equal<ReturnType<typeof lease.acquire>, Promise<boolean>>>();
assert<Equal<ReturnType<typeof lease.forceAcquire>, Promise<true>>>();
assert<Equal<ReturnType<typeof lease.release>, Promise<boolean>>>();
assert<Equal<ReturnType<typeof manager.elect>, Election>>();

// Wrong calls.
// @ts-expect-error -- a lock's name is a string
void manager.acquire(42);
// @ts-expect-error -- withLock needs the function
void manager.withLock('job');
// @ts-expect-error -- the function comes before the options
void manager.withLock('job', { wait: '1s' }, () => {});
// @ts-expect-error -- tryAcquire makes one attempt: no wait
void manager.tryAcquire('job', { wait: '1s' });
// @ts-expect-error -- tryAcquire makes one attempt: no strategy
void manager.tryAcquire('job', { strategy: strategies.infinite({ interval: 100 }) });
// @ts-expect-error -- a wait is a duration, not a boolean
void manager.acquire('job', { wait: true });
// @ts-expect-error -- a signal is an AbortSignal
void manager.acquire('job', { signal: new AbortController() });
// @ts-expect-error -- a lease that may not hold its lock has no certain token
const token: number = lease.token;
// @ts-expect-error -- forceAcquire takes no options
void lease.forceAcquire({ wait: '1s' });
// @ts-expect-error -- a strategy needs its interval
strategies.bounded({ attempts: 3 });
void token;
