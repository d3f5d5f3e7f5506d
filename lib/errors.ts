/**
 * Stable error codes: compare `error.code` against these rather than messages.
 * @public
 */
export const LockErrorCode = Object.freeze({
  /** A bounded wait for a lock ran out ({@link LockTimeoutError}). */
  Timeout: 'timeout',
  /** A held lease stopped being ours ({@link LeaseLostError}). */
  Lost: 'lost',
  /** `acquire()` on a lease that holds the lock or is already acquiring it. */
  AlreadyAcquired: 'already_acquired',
  /** `release()` on a lease that does not hold the lock. */
  NotAcquired: 'not_acquired',
  /** The manager was closed. */
  Closed: 'closed',
  /** The hold was ended by `release()`: the reason of an aborted `lease.signal`. */
  Released: 'released',
  /** MongoDB could not be reached, or did not answer within the command timeout. */
  Connection: 'connection',
  /** MongoDB rejected a command (for example an invalid collection name). */
  Database: 'database',
  /**
   * The server's clock, which judges every expiry, jumped against this process's clock (a step of
   * the server's clock, or a failover to a member whose clock differs): reported on the `error`
   * event; held leases already follow the server's new view from that read on.
   */
  Clock: 'clock',
  /**
   * A bad argument: carried by the `TypeError` or `RangeError` thrown before anything is sent,
   * whose `argument` names what was wrong (`'options.ttl'`) and `option` the key (`'ttl'`).
   */
  InvalidArgument: 'invalid_argument',
} as const);

/** One of {@link LockErrorCode}'s values. */
export type LockErrorCode = (typeof LockErrorCode)[keyof typeof LockErrorCode];

/** Options of {@link LockError}'s constructor. */
export interface LockErrorOptions {
  readonly cause?: unknown;
  /** See {@link LockError.connectionClosed}. */
  readonly connectionClosed?: boolean;
}

/**
 * The root of every error this library raises once arguments are checked; `code` says which case
 * it is. Classes and codes are stable across versions; messages are for people and may change.
 */
export class LockError extends Error {
  /** A stable machine-readable code from {@link LockErrorCode}. */
  readonly code: LockErrorCode;
  /**
   * Code `connection` only: the application closed its connection, or never opened it. Unlike an
   * outage this does not pass by itself, so waits do not ride it out.
   */
  readonly connectionClosed: boolean;

  constructor(code: LockErrorCode, message: string, options?: LockErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.connectionClosed = options?.connectionClosed === true;
  }
}
LockError.prototype.name = 'LockError';

/**
 * A bounded wait for a lock ran out (code `timeout`). `acquire({ wait })` rejects with it.
 */
export class LockTimeoutError extends LockError {
  /** The lock's name. */
  readonly lock: string;
  /** `'acquire'`: a wait gave up; `'hold'`: a lease without heartbeat reached its ttl. */
  readonly phase: 'acquire' | 'hold';

  constructor(lock: string, phase: 'acquire' | 'hold', message: string, options?: { cause?: unknown }) {
    super(LockErrorCode.Timeout, message, options);
    this.lock = lock;
    this.phase = phase;
  }
}
LockTimeoutError.prototype.name = 'LockTimeoutError';

/** Why a held lease was lost. */
export type LostReason =
  /** Another holder has the lock now (it expired and was taken, or was taken by force). */
  | 'taken'
  /** Nobody holds the lock: it was freed by someone else (`forceRelease()`, `mdlock release --force`). */
  | 'freed'
  /** The lock document is gone. */
  | 'deleted'
  /** No renewal landed before the local deadline, or the server says the lease expired. */
  | 'expired';

/**
 * A held lease stopped being ours (code `lost`): the payload of the `lost` event and the
 * reason of the aborted `lease.signal`. `error.lock` is the lock's name.
 */
export class LeaseLostError extends LockError {
  /** The lock's name, as on {@link LockTimeoutError}. */
  readonly lock: string;
  /** The fencing token of the hold that was lost. */
  readonly token: number;
  /** Why it was lost. */
  readonly reason: LostReason;

  constructor(lock: string, token: number, reason: LostReason, message: string, options?: { cause?: unknown }) {
    super(LockErrorCode.Lost, message, options);
    this.lock = lock;
    this.token = token;
    this.reason = reason;
  }
}
LeaseLostError.prototype.name = 'LeaseLostError';

/**
 * A call that does not fit the lease's or manager's state (codes `already_acquired`,
 * `not_acquired`, `closed`).
 */
export class LockStateError extends LockError {}
LockStateError.prototype.name = 'LockStateError';

/** Renders a received value for an error message: short, and never the whole of a huge string. */
export function describe(value: unknown): string {
  if (typeof value === 'string') {
    return value.length > 60 ? `a string of ${value.length} characters` : JSON.stringify(value);
  }
  if (typeof value === 'bigint') return `${value}n`;
  if (value === null || typeof value !== 'object') return String(value);
  if (Array.isArray(value)) return 'an array';
  try {
    const json = JSON.stringify(value);
    return json.length > 60 ? 'an object' : json;
  } catch {
    return 'an object';
  }
}

/**
 * What an argument error carries besides its message: `code` is always `invalid_argument`,
 * `argument` the path named in the message (`'lease options.heartbeat'`), `option` its last key
 * (`'heartbeat'`), so that a caller such as the CLI can map it without reading the message.
 */
export interface ArgumentErrorFields {
  readonly code: typeof LockErrorCode.InvalidArgument;
  readonly argument: string;
  readonly option: string;
}

/** The last key of an argument path: `'options.ttl'` → `'ttl'`, `'withLock(name, fn): fn'` → `'fn'`. */
function optionOf(what: string): string {
  return /([A-Za-z_$][\w$]*)\W*$/.exec(what)?.[1] ?? what;
}

/** Marks `error` as an argument error about `what`. */
export function argumentError<E extends Error>(error: E, what: string): E & ArgumentErrorFields {
  return Object.assign(error, { code: LockErrorCode.InvalidArgument, argument: what, option: optionOf(what) });
}

/** A TypeError naming the argument, what it should be, and what it was. */
export function invalidType(what: string, expected: string, received: unknown): TypeError & ArgumentErrorFields {
  return argumentError(new TypeError(`${what} must be ${expected}, received ${describe(received)}`), what);
}

/** A RangeError naming the argument, the bound it broke, and the value. */
export function outOfRange(what: string, requirement: string, received: unknown): RangeError & ArgumentErrorFields {
  return argumentError(new RangeError(`${what} must be ${requirement}, received ${describe(received)}`), what);
}
