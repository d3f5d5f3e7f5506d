import { LockError } from '../../lib/errors';
import { isClosedConnection, toLockError } from '../../lib/mongo-errors';

function driverError(name: string, fields: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(`${name} happened`), { name, ...fields });
}

test.each([
  ['a network error', 'connection', driverError('MongoNetworkError')],
  ['no server to select', 'connection', driverError('MongoServerSelectionError')],
  ['not the primary (an election)', 'connection', driverError('MongoServerError', { code: 10107 })],
  ['the primary stepped down', 'connection', driverError('MongoServerError', { code: 189 })],
  ['interrupted by a state change', 'connection', driverError('MongoServerError', { code: 11602 })],
  ['majority reads not available yet (134)', 'connection', driverError('MongoServerError', { code: 134 })],
  [
    'a write the driver labels retryable',
    'connection',
    driverError('MongoServerError', { code: 1, hasErrorLabel: (l: string) => l === 'RetryableWriteError' }),
  ],
  ['a duplicate key', 'database', driverError('MongoServerError', { code: 11000 })],
  ['an invalid namespace', 'database', driverError('MongoServerError', { code: 73 })],
  ['something unknown', 'database', new Error('surprise')],
])('%s is a LockError with code %s, keeping the cause', (_, code, cause) => {
  const error = toLockError(cause, 'acquire("x")');
  expect(error).toBeInstanceOf(LockError);
  expect(error).toMatchObject({ code, message: `acquire("x"): ${cause.message}`, cause });
  expect(isClosedConnection(error)).toBe(false);
});

test.each(['MongoNotConnectedError', 'MongoClientClosedError', 'MongoTopologyClosedError'])(
  'a closed client (%s) is a connection error that waits do not ride out',
  (name) => {
    const error = toLockError(driverError(name), 'renew');
    expect(error).toMatchObject({ code: 'connection', message: 'renew: the mongoose connection is closed' });
    expect(isClosedConnection(error)).toBe(true);
  },
);
