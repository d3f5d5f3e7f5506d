// One typed path for emitting events: the listener's argument list is checked against the
// emitter's event map, and a listener that throws is reported instead of breaking the emitter.

/** An event map's listener argument lists, by event: `{ lost: [error: LeaseLostError], ... }`. */
export type ListenerArgs<Events> = {
  [E in keyof Events]: Events[E] extends (...args: infer A) => void ? A : never;
};

/** What argument lists look like, by event. */
export type ArgLists<Args> = { [E in keyof Args]: unknown[] };

/** An event map whose listeners take these argument lists. */
export type Listeners<Args extends ArgLists<Args>> = { [E in keyof Args]: (...args: Args[E]) => void };

/** The argument lists with `lead` put first: a lease's events as its manager re-emits them. */
export type Prepended<Args extends ArgLists<Args>, Lead> = { [E in keyof Args]: [lead: Lead, ...args: Args[E]] };

/**
 * Something that emits events with these argument lists: an eventemitter3 `EventEmitter` of the
 * matching event map (`EventEmitter<Listeners<Args>>`, or an event map with the same listeners).
 */
export interface Emitter<Args extends ArgLists<Args>> {
  emit<E extends keyof Args>(event: E, ...args: Args[E]): boolean;
}

/** `args` with `lead` put first, typed per event (`Prepended<Args, Lead>[E]`). */
export function prepend<Args extends ArgLists<Args>, E extends keyof Args, Lead>(
  lead: Lead,
  args: Args[E],
): Prepended<Args, Lead>[E] {
  return [lead, ...args];
}

/** Emits `event` with `args`; a listener that throws goes to `onError` (the other listeners may not run). */
export function safeEmit<Args extends ArgLists<Args>, E extends keyof Args>(
  emitter: Emitter<Args>,
  event: E,
  args: Args[E],
  onError: (error: unknown) => void,
): void {
  try {
    emitter.emit(event, ...args);
  } catch (error) {
    onError(error);
  }
}
