// The types of the CommonJS entry point (lib/main.cjs; both are copied to dist/cjs by the build):
// `require('mongoose-distributed-lock')` is the callable `Lock(name, options)` of the 0.0.1 API
// with every named export attached, so `import Lock = require('mongoose-distributed-lock')`
// gives `Lock('name')`, `new Lock.LockManager()` and `Lock.CompatLockOptions` (a function merged
// with a namespace), and `import { LockManager } from` and `const { LockManager } = require()`
// work too. Keep the namespace in step with lib/index.ts: spec/types.spec.ts checks every name.
import {
  LockManager,
  type LockManagerEvents,
  type ManagerAcquireOptions,
  type TryAcquireOptions,
  type HistoryQuery,
  Election,
  type ElectionOptions,
  type ElectionEvents,
  type ElectionLeader,
  type ResignOptions,
  type RevokedReason,
  Lease,
  type HeldLease,
  type AcquireOptions,
  type AcquiredEvent,
  type ReleasedEvent,
  type TimeoutEvent,
  type LeaseEvents,
  strategies,
  type PollStrategy,
  type BoundedOptions,
  type InfiniteOptions,
  type BackoffOptions,
  LockError,
  LockTimeoutError,
  LeaseLostError,
  LockStateError,
  LockErrorCode,
  type LostReason,
  type LockManagerOptions,
  type LeaseOptions,
  type HistoryOptions,
  type LockInfo,
  type HistoryRecord,
  type HoldOutcome,
  type Duration,
  default as _default,
  CompatLock,
  type CompatLockOptions,
  type LockCallback,
} from './index.js';

/**
 * `Lock(name, options)`: a lock of the mongoose-distributed-lock 0.0.1 API, what
 * `require('mongoose-distributed-lock')` returns, with the package's named exports as its
 * properties. See {@link CompatLock}.
 */
declare function Lock(name: string, options?: CompatLockOptions): CompatLock;

declare namespace Lock {
  export {
    LockManager,
    LockManagerEvents,
    ManagerAcquireOptions,
    TryAcquireOptions,
    HistoryQuery,
    Election,
    ElectionOptions,
    ElectionEvents,
    ElectionLeader,
    ResignOptions,
    RevokedReason,
    Lease,
    HeldLease,
    AcquireOptions,
    AcquiredEvent,
    ReleasedEvent,
    TimeoutEvent,
    LeaseEvents,
    strategies,
    PollStrategy,
    BoundedOptions,
    InfiniteOptions,
    BackoffOptions,
    LockError,
    LockTimeoutError,
    LeaseLostError,
    LockStateError,
    LockErrorCode,
    LostReason,
    LockManagerOptions,
    LeaseOptions,
    HistoryOptions,
    LockInfo,
    HistoryRecord,
    HoldOutcome,
    Duration,
    _default as default,
    CompatLock,
    CompatLockOptions,
    LockCallback,
  };
}

export = Lock;
