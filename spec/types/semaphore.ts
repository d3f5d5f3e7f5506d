// The semaphore's public signatures: a permit is a held lease, and calls that must not compile.
import {
  LockManager,
  type HeldLease,
  type Semaphore,
  type SemaphoreHolder,
  type SemaphoreInfo,
} from 'mongoose-distributed-lock';
import { assert, type Equal } from './assert';

declare const manager: LockManager;
declare const signal: AbortSignal;

const sem = manager.semaphore('ocr-api', { limit: 3, ttl: '30s', heartbeat: '10s' });
assert<Equal<typeof sem, Semaphore>>();
assert<Equal<ReturnType<typeof sem.acquire>, Promise<HeldLease>>>();
assert<Equal<ReturnType<typeof sem.tryAcquire>, Promise<HeldLease | null>>>();
assert<Equal<ReturnType<typeof sem.inspect>, Promise<SemaphoreInfo>>>();
assert<Equal<SemaphoreInfo['holders'], readonly SemaphoreHolder[]>>();
void sem.acquire({ wait: '10s', signal });
void sem.tryAcquire({ signal });
const _out = sem.withPermit((permit) => {
  assert<Equal<typeof permit, HeldLease>>();
  return permit.token;
});
assert<Equal<typeof _out, Promise<number>>>();

// @ts-expect-error -- a semaphore needs its limit
manager.semaphore('ocr-api', { ttl: '30s' });
// @ts-expect-error -- tryAcquire makes one attempt: no wait
void sem.tryAcquire({ wait: '1s' });
