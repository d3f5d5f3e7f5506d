export {
  LockManager,
  type LockManagerEvents,
  type ManagerAcquireOptions,
  type TryAcquireOptions,
  type HistoryQuery,
  type ListOptions,
  type ListedInfo,
  type ForceReleaseOptions,
} from './manager.js';
export {
  Election,
  type ElectionOptions,
  type ElectionEvents,
  type ElectionLeader,
  type ResignOptions,
  type RevokedReason,
} from './election.js';
export {
  Lease,
  type HeldLease,
  type AcquiredEvent,
  type ReleasedEvent,
  type TimeoutEvent,
  type LeaseEvents,
} from './lease.js';
export type { AcquireOptions } from './plan.js';
export {
  Semaphore,
  type SemaphoreOptions,
  type SemaphoreInfo,
  type SemaphoreHolder,
  type TryPermitOptions,
} from './semaphore.js';
export {
  ReadWriteLock,
  type ReadWriteLockHolder,
  type ReadWriteLockInfo,
  type ReadWriteLockOptions,
} from './rwlock.js';
export {
  CHANNELS,
  TRACING_CHANNELS,
  type HoldKind,
  type AcquiredMessage,
  type ReleasedMessage,
  type LostMessage,
  type TimeoutMessage,
  type AcquireOutcome,
  type AcquireContext,
  type WithOutcome,
  type WithContext,
  type HeartbeatMessage,
  type ElectedMessage,
  type RevokedMessage,
  type RunMessage,
  type RunEndOutcome,
} from './telemetry.js';
export {
  ScheduledJob,
  type ScheduleOptions,
  type ScheduledJobEvents,
  type ScheduledFunction,
  type SkippedTick,
  type MisfirePolicy,
  type RunCoordinator,
} from './schedule.js';
export type { Run, RunRecord, RunOutcome, RunOnceOptions, RunOnceResult, RunsQuery } from './runs.js';
export {
  strategies,
  type PollStrategy,
  type BoundedOptions,
  type InfiniteOptions,
  type BackoffOptions,
} from './strategies.js';
export {
  LockError,
  LockTimeoutError,
  LeaseLostError,
  LockStateError,
  LockErrorCode,
  type LostReason,
} from './errors.js';
export type { LockManagerOptions, LeaseOptions, HistoryOptions } from './options.js';
export type { LockInfo, HistoryRecord, HoldOutcome } from './types.js';
export type { Duration } from './duration.js';
// The API of mongoose-distributed-lock 0.0.1: `Lock(name, options)` is the default export.
export { default, CompatLock, type CompatLockOptions, type LockCallback } from './compat.js';
