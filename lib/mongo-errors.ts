// How MongoDB's and the driver's errors map onto the library's error codes.
import { LockError, LockErrorCode } from './errors.js';

/** The server error codes the library looks at, by name (as in the driver's `MONGODB_ERROR_CODES`). */
export const MONGODB_CODES = Object.freeze({
  HostUnreachable: 6,
  HostNotFound: 7,
  NamespaceNotFound: 26,
  IndexNotFound: 27,
  NamespaceExists: 48,
  MaxTimeMSExpired: 50,
  WriteConcernTimeout: 64,
  NetworkTimeout: 89,
  ShutdownInProgress: 91,
  ReadConcernMajorityNotAvailableYet: 134,
  ReadConcernMajorityNotEnabled: 148,
  PrimarySteppedDown: 189,
  ExceededTimeLimit: 262,
  SocketException: 9001,
  NotWritablePrimary: 10107,
  DuplicateKey: 11000,
  InterruptedAtShutdown: 11600,
  InterruptedDueToReplStateChange: 11602,
  NotPrimaryNoSecondaryOk: 13435,
  NotPrimaryOrSecondary: 13436,
} as const);

/**
 * Server errors that pass by themselves, as during a replica-set election: not (or no longer) the
 * primary, shutting down, interrupted by a state change, unreachable hosts, majority reads not
 * available yet. The driver's retryable read and write codes: waits ride these out.
 */
export const RETRYABLE_CODES: ReadonlySet<number> = new Set([
  MONGODB_CODES.HostUnreachable,
  MONGODB_CODES.HostNotFound,
  MONGODB_CODES.NetworkTimeout,
  MONGODB_CODES.ShutdownInProgress,
  MONGODB_CODES.ReadConcernMajorityNotAvailableYet,
  MONGODB_CODES.PrimarySteppedDown,
  MONGODB_CODES.ExceededTimeLimit,
  MONGODB_CODES.SocketException,
  MONGODB_CODES.NotWritablePrimary,
  MONGODB_CODES.InterruptedAtShutdown,
  MONGODB_CODES.InterruptedDueToReplStateChange,
  MONGODB_CODES.NotPrimaryNoSecondaryOk,
  MONGODB_CODES.NotPrimaryOrSecondary,
]);

/** Driver errors of a connection that may come back by itself. */
const TRANSIENT = /^Mongo(Network|NetworkTimeout|ServerSelection|PoolClosed|PoolCleared|OperationTimeout)Error$/;
/** The application closed its client (or never connected it): nothing a wait can ride out. */
const CLIENT_CLOSED = /^Mongo(NotConnected|ClientClosed|TopologyClosed)Error$/;

/** The server error code of a driver error, if it has one. */
export function serverCode(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/**
 * The server gave up on the command within its own bounds (`maxTimeMS`, or a write concern that
 * was not acknowledged within `wtimeoutMS`): the outcome is unknown, like a client-side timeout.
 */
const SERVER_TIMEOUTS: ReadonlySet<number> = new Set([
  MONGODB_CODES.MaxTimeMSExpired,
  MONGODB_CODES.WriteConcernTimeout,
]);

function isTransient(error: unknown): boolean {
  const e = error as { name?: unknown; hasErrorLabel?: (label: string) => boolean } | null;
  if (typeof e?.name === 'string' && TRANSIENT.test(e.name)) return true;
  const code = serverCode(error);
  if (code !== undefined && (RETRYABLE_CODES.has(code) || SERVER_TIMEOUTS.has(code))) return true;
  return typeof e?.hasErrorLabel === 'function' && e.hasErrorLabel('RetryableWriteError');
}

/** The error for a connection the application closed or never opened (`connectionClosed`). */
export function connectionClosed(message: string, cause?: unknown): LockError {
  return new LockError(LockErrorCode.Connection, message, { cause, connectionClosed: true });
}

/** A driver error as a LockError: `connection` if it may pass by itself, else `database`. @internal */
export function toLockError(error: unknown, what: string): LockError {
  if (error instanceof LockError) return error;
  const name = (error as Error | undefined)?.name ?? '';
  const message = (error as Error | undefined)?.message ?? String(error);
  if (CLIENT_CLOSED.test(name)) return connectionClosed(`${what}: the mongoose connection is closed`, error);
  const code = isTransient(error) ? LockErrorCode.Connection : LockErrorCode.Database;
  return new LockError(code, `${what}: ${message}`, { cause: error });
}

/** True for errors that mean "MongoDB could not be reached or did not answer in time". */
export function isConnectionError(error: unknown): boolean {
  return error instanceof LockError && error.code === LockErrorCode.Connection;
}

/** True for a connection error that will not pass by itself: the connection was closed, or never opened. */
export function isClosedConnection(error: unknown): boolean {
  return error instanceof LockError && error.connectionClosed;
}
