// What `manager.acquire()` and `manager.withLock()` promise about the lease they work with:
// held when handed over, and a result only for work that was exclusive to the end.
import { LockError, LockErrorCode, LockStateError, type LeaseLostError } from './errors.js';
import type { HeldLease, Lease } from './lease.js';
import type { WaitPlan } from './plan.js';
import { traceWith } from './telemetry.js';

/** Acquires `lease` as planned and resolves it only if it holds the lock when handed over. */
export async function acquireHeld(lease: Lease, plan: WaitPlan): Promise<HeldLease> {
  // With a wait, acquire() resolves only once held, or rejects; this keeps that a checked fact.
  if (!(await lease.acquirePlanned(plan)))
    throw new LockStateError(LockErrorCode.NotAcquired, `acquire("${lease.name}") ended without the lock`);
  // Held when acquirePlanned() resolved; a listener of `acquired` (or a close) may have ended it since.
  if (!lease.held) throw lease.signal.reason;
  return lease as HeldLease;
}

/**
 * Runs `fn` holding `lease` (acquired as planned) and releases it after. Resolves `fn`'s result
 * only if the hold lasted until then: rejects with the loss (or a close) otherwise, even if `fn`
 * resolved. `report`: where a release that failed for want of an answer goes.
 */
export function withExclusive<T>(
  lease: Lease,
  plan: WaitPlan,
  fn: (lease: HeldLease) => T | Promise<T>,
  report: (error: unknown) => void,
): Promise<T> {
  return traceWith(lease, plan.signal, () => exclusive(lease, plan, fn, report));
}

async function exclusive<T>(...[lease, plan, fn, report]: Parameters<typeof withExclusive<T>>): Promise<T> {
  const held = await acquireHeld(lease, plan);
  let lost: LeaseLostError | undefined;
  const onLost = (error: LeaseLostError) => void (lost ??= error);
  lease.on('lost', onLost);
  try {
    let result: T;
    try {
      result = await fn(held);
    } catch (error) {
      if (lease.held) await lease.release().catch(report);
      throw error;
    }
    if (!lease.held) {
      const reason: unknown = lease.signal.reason;
      // fn released the lease itself: its work was exclusive up to then.
      if (reason instanceof LockError && reason.code === LockErrorCode.Released) return result;
      throw reason;
    }
    let released: boolean;
    try {
      released = await lease.release();
    } catch (error) {
      if (error instanceof LockStateError) throw error; // the manager closed: the release did not happen here
      report(error); // the release's answer was lost: the lock expires at its ttl
      return result;
    }
    // The release found the lock taken or freed by someone else, or expired: not exclusive to the end.
    if (!released) throw lost ?? lease.signal.reason;
    return result;
  } finally {
    lease.off('lost', onLost);
  }
}
