// The library's typed emit path (internal): emitting checks the event's arguments against the
// emitter's event map, and the manager's events are the lease's with the lease put first.
import { EventEmitter } from 'eventemitter3';
import { prepend, safeEmit, type ListenerArgs, type Listeners, type Prepended } from '../../lib/emit';
import type { Lease, LeaseEventArgs } from '../../lib/lease';
import type { LeaseLostError } from '../../lib/errors';
import { assert, type Equal } from './assert';

declare const lease: Lease;
declare const lost: LeaseLostError;
const report = (_error: unknown) => {};

assert<Equal<LeaseEventArgs['lost'], [error: LeaseLostError]>>();
assert<Equal<Prepended<LeaseEventArgs, Lease>['lost'], [lead: Lease, error: LeaseLostError]>>();

safeEmit<LeaseEventArgs, 'lost'>(lease, 'lost', [lost], report);
// @ts-expect-error -- the wrong payload for the event
safeEmit<LeaseEventArgs, 'lost'>(lease, 'lost', [{ name: 'x', token: 1 }], report);
// @ts-expect-error -- no such event
safeEmit<LeaseEventArgs, 'elected'>(lease, 'elected', [], report);

// An emitter whose event map does not match the argument lists is refused.
interface Other {
  lost: (reason: string) => void;
}
const other = new EventEmitter<Other>();
safeEmit<ListenerArgs<Other>, 'lost'>(other, 'lost', ['gone'], report);
// @ts-expect-error -- this emitter's `lost` takes a string
safeEmit<LeaseEventArgs, 'lost'>(other, 'lost', [lost], report);

// prepend() keeps the per-event argument list, for a generic event too.
function forward<E extends keyof LeaseEventArgs>(
  emitter: EventEmitter<Listeners<Prepended<LeaseEventArgs, Lease>>>,
  event: E,
  args: LeaseEventArgs[E],
) {
  safeEmit<Prepended<LeaseEventArgs, Lease>, E>(emitter, event, prepend<LeaseEventArgs, E, Lease>(lease, args), report);
  // @ts-expect-error -- the lease must come first
  safeEmit<Prepended<LeaseEventArgs, Lease>, E>(emitter, event, args, report);
}
void forward;
