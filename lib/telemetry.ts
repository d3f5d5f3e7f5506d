// Diagnostics channels (node:diagnostics_channel) and debug logs (NODE_DEBUG=mongoose-distributed-lock)
// for what leases do: a message per `acquired`, `released`, `lost` and `timeout`, published only
// when someone subscribes, and printed only when the debug log is on. The channel names and their
// messages' fields are a public contract, kept stable like the error codes: docs/telemetry.md.
import diagnosticsChannel from 'node:diagnostics_channel';
import { debuglog, inspect } from 'node:util';
import type { LeaseLostError, LostReason } from './errors.js';
import type { AcquiredEvent, LeaseEventArgs, ReleasedEvent, TimeoutEvent } from './lease-types.js';

/** What a lease holds: a lock, a semaphore's permit, or a read-write lock's read or write hold. */
export type HoldKind = 'lock' | 'permit' | 'read' | 'write';

/** Message of `mongoose-distributed-lock:acquired`. */
export interface AcquiredMessage {
  readonly name: string;
  readonly kind: HoldKind;
  readonly owner: string;
  readonly token: number;
  readonly expiresAt: Date;
}

/** Message of `mongoose-distributed-lock:released`. */
export interface ReleasedMessage {
  readonly name: string;
  readonly kind: HoldKind;
  readonly token: number;
}

/** Message of `mongoose-distributed-lock:lost`. */
export interface LostMessage {
  readonly name: string;
  readonly kind: HoldKind;
  readonly token: number;
  readonly reason: LostReason;
  readonly error: LeaseLostError;
}

/** Message of `mongoose-distributed-lock:timeout`. */
export interface TimeoutMessage {
  readonly name: string;
  readonly kind: HoldKind;
  readonly phase: 'acquire' | 'hold';
  /** The token of the hold that ran out (phase `hold` only). */
  readonly token?: number;
}

/** The channels' names: subscribe with `diagnostics_channel.subscribe(CHANNELS.acquired, fn)`. */
export const CHANNELS = Object.freeze({
  acquired: 'mongoose-distributed-lock:acquired',
  released: 'mongoose-distributed-lock:released',
  lost: 'mongoose-distributed-lock:lost',
  timeout: 'mongoose-distributed-lock:timeout',
});

type LeaseEvent = keyof typeof CHANNELS;

const channels = {
  acquired: diagnosticsChannel.channel(CHANNELS.acquired),
  released: diagnosticsChannel.channel(CHANNELS.released),
  lost: diagnosticsChannel.channel(CHANNELS.lost),
  timeout: diagnosticsChannel.channel(CHANNELS.timeout),
};

const debug = debuglog('mongoose-distributed-lock');

/** The message of one lease event. */
function message<E extends LeaseEvent>(event: E, kind: HoldKind, args: LeaseEventArgs[E]): object {
  switch (event) {
    case 'acquired': {
      const { name, owner, token, expiresAt } = args[0] as AcquiredEvent;
      return { name, kind, owner, token, expiresAt } satisfies AcquiredMessage;
    }
    case 'released': {
      const { name, token } = args[0] as ReleasedEvent;
      return { name, kind, token } satisfies ReleasedMessage;
    }
    case 'lost': {
      const error = args[0] as LeaseLostError;
      return { name: error.lock, kind, token: error.token, reason: error.reason, error } satisfies LostMessage;
    }
    default: {
      const { name, phase, token } = args[0] as TimeoutEvent;
      return { name, kind, phase, ...(token !== undefined && { token }) } satisfies TimeoutMessage;
    }
  }
}

/** Publishes a lease event on its channel and to the debug log, if anyone listens: nothing is built otherwise. @internal */
export function publish<E extends keyof LeaseEventArgs>(event: E, kind: HoldKind, args: LeaseEventArgs[E]): void {
  const channel = channels[event];
  const logging = debug.enabled;
  if (!channel.hasSubscribers && !logging) return;
  const payload = message(event, kind, args);
  if (channel.hasSubscribers) channel.publish(payload);
  if (logging) {
    const { error: _error, ...fields } = payload as { error?: unknown }; // the reason says it; no stack trace
    debug('%s %s %s', event, kind, inspect(fields, { breakLength: Infinity }));
  }
}
