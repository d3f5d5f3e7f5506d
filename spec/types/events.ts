// The event maps: what listeners of a lease, a manager and an election receive.
import type {
  AcquiredEvent,
  Election,
  Lease,
  LeaseEvents,
  LeaseLostError,
  LockManager,
  LockManagerEvents,
  LostReason,
  ReleasedEvent,
  RevokedReason,
  TimeoutEvent,
} from 'mongoose-distributed-lock';
import { assert, type Equal } from './assert';

declare const lease: Lease;
declare const manager: LockManager;
declare const election: Election;

// A lease's listeners get the event's payload.
lease.on('acquired', (_event) => {
  assert<Equal<typeof _event, AcquiredEvent>>();
  assert<Equal<typeof _event.token, number>>();
  assert<Equal<typeof _event.expiresAt, Date>>();
});
lease.on('released', (_event) => assert<Equal<typeof _event, ReleasedEvent>>());
lease.on('timeout', (_event) => {
  assert<Equal<typeof _event.phase, 'acquire' | 'hold'>>();
  assert<Equal<typeof _event.token, number | undefined>>();
});
lease.on('lost', (_error) => {
  assert<Equal<typeof _error, LeaseLostError>>();
  assert<Equal<typeof _error.reason, LostReason>>();
  assert<Equal<LostReason, 'taken' | 'freed' | 'deleted' | 'expired'>>();
});
lease.once('lost', (error) => error.reason satisfies LostReason);
// @ts-expect-error -- `lost` carries a LeaseLostError, not a string
lease.on('lost', (error: string) => error);
// @ts-expect-error -- a lease has no `error` event: background errors go to its manager
lease.on('error', () => {});
// @ts-expect-error -- a lease's listener does not get the lease first (the manager's does)
lease.on('acquired', (_lease: Lease, _event: AcquiredEvent) => {});
// @ts-expect-error -- emitting checks the payload too
lease.emit('acquired', { name: 'x' });

// The manager's listeners get the lease first, then the lease's payload.
manager.on('acquired', (_lease, _event) => {
  assert<Equal<typeof _lease, Lease>>();
  assert<Equal<typeof _event, AcquiredEvent>>();
});
manager.on('released', (_lease, _event) => assert<Equal<typeof _event, ReleasedEvent>>());
manager.on('timeout', (_lease, _event) => assert<Equal<typeof _event, TimeoutEvent>>());
manager.on('lost', (_lease, _error) => assert<Equal<typeof _error.reason, LostReason>>());
manager.on('error', (_error, _lease) => {
  assert<Equal<typeof _error, Error>>();
  assert<Equal<typeof _lease, Lease | undefined>>();
});
// @ts-expect-error -- the first argument is the lease, not the event
manager.on('acquired', (event: AcquiredEvent) => event.token);
// @ts-expect-error -- no such event
manager.on('elected', () => {});

// The manager's events are the lease's, each with the lease put first, plus `error`.
assert<Equal<keyof LockManagerEvents, keyof LeaseEvents | 'error'>>();
assert<Equal<Parameters<LockManagerEvents['acquired']>, [Lease, AcquiredEvent]>>();
assert<Equal<Parameters<LockManagerEvents['released']>, [Lease, ReleasedEvent]>>();
assert<Equal<Parameters<LockManagerEvents['timeout']>, [Lease, TimeoutEvent]>>();
assert<Equal<Parameters<LockManagerEvents['lost']>, [Lease, LeaseLostError]>>();

// An election's listeners.
election.on('elected', (_leader) => {
  assert<Equal<typeof _leader, Lease>>();
  assert<Equal<typeof _leader.signal, AbortSignal>>();
});
election.on('revoked', (_reason, _token) => {
  assert<Equal<typeof _reason, RevokedReason>>();
  assert<Equal<RevokedReason, 'lost' | 'resigned' | 'closed'>>();
  assert<Equal<typeof _token, number>>();
});
// @ts-expect-error -- `revoked` gives the reason first, then the token
election.on('revoked', (token: number) => token);
