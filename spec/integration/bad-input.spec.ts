// Bad input, table-driven: every public entry point given wrong types, empty and huge strings,
// objects shaped like query operators, impossible durations, calls in the wrong state, and
// connections or collections MongoDB cannot use. Each row must fail cleanly: a synchronous
// TypeError or RangeError before anything is sent, or a rejected promise carrying a LockError
// code. And after each row: no lock document changed or appeared that should not have, no timer
// is left behind, nothing was left holding. An unhandled rejection anywhere fails the row it
// happens in (Jest reports it as that test's failure).
//
// To cover a new entry point, add rows to `rows` (or a table of your own passed to `table`).
import { createHook } from 'node:async_hooks';
import path from 'node:path';
import mongoose, { type Connection } from 'mongoose';
import Lock, {
  LockError,
  LockManager,
  strategies,
  type CompatLock,
  type Election,
  type Lease,
  type LockErrorCode,
} from '../../lib/index';
import { lockFixture } from '../helpers/locks';
import { waitFor } from '../helpers/wait';

const locks = lockFixture({ collection: 'bad_input' });

/** What a row must do. */
type Outcome =
  /** Throw this synchronously, before anything is sent. */
  | { readonly throws: typeof TypeError | typeof RangeError; readonly message?: RegExp }
  /** Return a promise that rejects with a LockError of this code; with `sync`, throw it at once (synchronous APIs). */
  | { readonly code: LockErrorCode; readonly sync?: true }
  /** Return a promise that rejects with this (a runtime check of something only known then). */
  | { readonly rejects: typeof TypeError | typeof RangeError | typeof Error }
  /** Return a promise that resolves like this (inputs that look odd but are valid). */
  | { readonly resolves: (value: unknown) => boolean };

/** What a row can use; `prepare` may set up more (awaited before the call, so the call itself stays synchronous). */
interface Tools {
  /** The test database's connection. */
  readonly connection: Connection;
  /** Open, on the test database. */
  readonly manager: LockManager;
  /** Closed with `close()`. */
  readonly closed: LockManager;
  /** On a mongoose connection that was never opened. */
  readonly neverOpened: LockManager;
  /** On a mongoose connection that was opened, then closed. */
  readonly shut: LockManager;
  /** A contender of `manager` that has not acquired yet. */
  readonly idle: Lease;
}

interface Row<P = unknown> {
  /** The entry point, as users call it. */
  readonly entry: string;
  /** The bad input or state. */
  readonly input: string;
  readonly prepare?: (tools: Tools) => Promise<P>;
  readonly call: (tools: Tools, prepared: P) => unknown;
  readonly outcome: Outcome;
  /** Names of lock documents the row may legitimately create (valid odd names). */
  readonly creates?: readonly string[];
}

const row = <P>(r: Row<P>) => r as Row;
/** Managers rows make for themselves, closed after the file. */
const extras: LockManager[] = [];
const extra = (manager: LockManager) => (extras.push(manager), manager);
/** A lease (held, or not yet acquired) of a manager that has since been closed. */
async function leaseOfClosedManager(t: Tools, name: string, { acquired }: { acquired: boolean }): Promise<Lease> {
  const manager = extra(new LockManager({ connection: t.connection, collection: 'bad_input' }));
  const lease = acquired ? await manager.acquire(name) : manager.lease(name);
  await manager.close();
  return lease;
}
/** A row calling a lease that `prepare` brought into some state, which must fail with `code`. */
const onLease = (
  entry: string,
  input: string,
  prepare: (t: Tools) => Promise<Lease>,
  call: (lease: Lease) => unknown,
  code: LockErrorCode,
) => row({ entry, input, prepare, call: (_, lease) => call(lease), outcome: { code } });
const HUGE = 'n'.repeat(16 * 1024 * 1024); // a 16 MB name: over every MongoDB key and document limit
const OPERATOR = { $ne: null };
const type = { throws: TypeError } as const;
const range = { throws: RangeError } as const;
const closed = { code: 'closed' } as const;
const connection = { code: 'connection' } as const;
const newManager = (options: unknown) => new LockManager(options as never);

/** Every bad value a duration option can receive, with the error it must give. */
const badDurations: [string, unknown, Outcome][] = [
  ['NaN', NaN, range],
  ['negative', -1, range],
  ['zero', 0, range],
  ['Infinity', Infinity, range],
  ['absurd (1e20 ms)', 1e20, range],
  ["absurd ('1000y')", '1000y', range],
  ['a negative string', '-5s', range],
  ['an unparsable string', 'soon', type],
  ['an empty string', '', type],
  ['an operator object', { $gt: 0 }, type],
  ['null', null, type],
  ['a boolean', true, type],
  ['a bigint', 10n, type],
];

/** Every bad lock name, with the error it must give. */
const badNames: [string, unknown, Outcome][] = [
  ['undefined', undefined, type],
  ['null', null, type],
  ['a number', 42, type],
  ['an empty string', '', type],
  ['an operator object', OPERATOR, type],
  ['an array', ['a'], type],
  ['a symbol', Symbol('lock'), type],
  ['over 512 bytes', 'x'.repeat(513), range],
  ['over 512 bytes in UTF-8 only', 'é'.repeat(300), range],
  [
    '16 MB',
    HUGE,
    {
      throws: RangeError,
      message: /name must be at most 512 bytes long \(it was 16777216\), received a string of 16777216 characters$/,
    },
  ],
];

/** Calls that take a lock name, each a way to reach the same check. */
const nameTakers: [string, (t: Tools, name: unknown) => unknown][] = [
  ['manager.lease(name)', (t, name) => t.manager.lease(name as string)],
  ['manager.acquire(name)', (t, name) => t.manager.acquire(name as string)],
  ['manager.tryAcquire(name)', (t, name) => t.manager.tryAcquire(name as string)],
  ['manager.withLock(name, fn)', (t, name) => t.manager.withLock(name as string, () => 1)],
  ['manager.inspect(name)', (t, name) => t.manager.inspect(name as string)],
  ['manager.forceRelease(name)', (t, name) => t.manager.forceRelease(name as string)],
  ['manager.history(name)', (t, name) => t.manager.history(name as string)],
  ['manager.elect(name)', (t, name) => t.manager.elect(name as string)],
  ['Lock(name)', (t, name) => Lock(name as string, { connection: t.connection, collection: 'bad_input' })],
];

/** Calls that take acquire options. */
const optionTakers: [string, (t: Tools, options: unknown) => unknown][] = [
  ['manager.acquire(name, options)', (t, options) => t.manager.acquire('bad-options', options as never)],
  ['manager.tryAcquire(name, options)', (t, options) => t.manager.tryAcquire('bad-options', options as never)],
  ['manager.withLock(name, fn, options)', (t, options) => t.manager.withLock('bad-options', () => 1, options as never)],
  ['lease.acquire(options)', (t, options) => t.idle.acquire(options as never)],
];

const rows: Row[] = [
  // new LockManager(options)
  ...(
    [
      ['a string', 'fast'],
      ['a number', 5],
      ['null', null],
      ['an array', []],
    ] as [string, unknown][]
  ).map(([input, options]) =>
    row({
      entry: 'new LockManager(options)',
      input: `options: ${input}`,
      call: () => newManager(options),
      outcome: type,
    }),
  ),
  ...(['ttl', 'poll', 'commandTimeout'] as const).flatMap((option) =>
    badDurations.map(([input, value, outcome]) =>
      row({
        entry: 'new LockManager(options)',
        input: `${option}: ${input}`,
        call: (t) => newManager({ connection: t.connection, [option]: value }),
        outcome,
      }),
    ),
  ),
  ...badDurations.map(([input, value, outcome]) =>
    row({
      entry: 'new LockManager(options)',
      input: `heartbeat: ${input}`,
      call: () => newManager({ heartbeat: value }),
      outcome,
    }),
  ),
  ...[
    ['heartbeat equal to the ttl', { ttl: 1000, heartbeat: 1000 }, range],
    ['heartbeat above the ttl', { ttl: 1000, heartbeat: '2s' }, range],
    ['heartbeat inside the safety margin', { ttl: 1000, heartbeat: 950 }, range],
    ['margin: NaN', { margin: NaN }, range],
    ['margin: 0', { margin: 0 }, range],
    ['margin: negative', { margin: -0.1 }, range],
    ['margin: above 0.5', { margin: 0.9 }, range],
    ['margin: a string', { margin: '0.1' }, type],
    ['owner: empty', { owner: '' }, type],
    ['owner: a number', { owner: 7 }, type],
    ['owner: an operator object', { owner: OPERATOR }, type],
    ['owner: over 512 bytes', { owner: 'o'.repeat(600) }, range],
    ['collection: empty', { collection: '' }, type],
    ['collection: a number', { collection: 3 }, type],
    ['collection: an operator object', { collection: OPERATOR }, type],
    ['collection: with "$"', { collection: 'locks$' }, range],
    ['collection: with NUL', { collection: 'lo\0cks' }, range],
    ['collection: "system.*"', { collection: 'system.locks' }, range],
    ['collection: starts with "."', { collection: '.locks' }, range],
    ['collection: over 200 bytes', { collection: 'c'.repeat(201) }, range],
    ['collection: 16 MB', { collection: HUGE }, range],
    ['connection: a plain object', { connection: {} }, type],
    ['connection: a URI string', { connection: 'mongodb://127.0.0.1' }, type],
    ['connection: an operator object', { connection: OPERATOR }, type],
  ].map(([input, options, outcome]) =>
    row({
      entry: 'new LockManager(options)',
      input: input as string,
      call: () => newManager(options),
      outcome: outcome as Outcome,
    }),
  ),

  // Lock names, through every call that takes one
  ...nameTakers.flatMap(([entry, call]) =>
    badNames.map(([input, name, outcome]) =>
      row({ entry, input: `name: ${input}`, call: (t) => call(t, name), outcome }),
    ),
  ),
  // Names that look odd are still just strings: valid, stored as they are, and nothing else is touched.
  ...['$ne', '{"$ne":null}', 'a.b$c', ' ', 'x'.repeat(512)].map((name) =>
    row({
      entry: 'manager.tryAcquire(name)',
      input: `name ${JSON.stringify(name.length > 20 ? `${name.slice(0, 8)}... (${name.length})` : name)} (valid)`,
      call: (t) => t.manager.tryAcquire(name).then(async (lease) => lease && (await lease.release())),
      outcome: { resolves: (released) => released === true },
      creates: [name],
    }),
  ),

  // Lease options: manager.lease(name, options), acquire/tryAcquire/withLock(name, options)
  ...[
    ['options: a string', 'fast', type],
    ['ttl: NaN', { ttl: NaN }, range],
    ['ttl: negative', { ttl: -1 }, range],
    ['ttl: an operator object', { ttl: { $gt: 0 } }, type],
    ['heartbeat: equal to the ttl', { ttl: 1000, heartbeat: 1000 }, range],
    ['heartbeat: a string', { heartbeat: 'often' }, type],
  ].flatMap(([input, options, outcome]) =>
    [
      ['manager.lease(name, options)', (t: Tools) => t.manager.lease('bad-options', options as never)] as const,
      ...optionTakers
        .filter(([entry]) => entry.startsWith('manager.'))
        .map(([entry, call]) => [entry, (t: Tools) => call(t, options)] as const),
    ].map(([entry, call]) => row({ entry, input: input as string, call, outcome: outcome as Outcome })),
  ),

  // Acquire options: wait, strategy, signal
  ...[
    ['options: a number', 5, type],
    ['wait: NaN', { wait: NaN }, range],
    ['wait: negative', { wait: -1 }, range],
    ['wait: an unparsable string', { wait: 'a while' }, type],
    ['wait: an operator object', { wait: { $gt: 0 } }, type],
    ['strategy: an empty object', { strategy: {} }, type],
    ['strategy: a string', { strategy: 'backoff' }, type],
    ['strategy: next is not a function', { strategy: { next: 100 } }, type],
    ['signal: a plain object', { signal: { aborted: true } }, type],
    ['signal: a string', { signal: 'stop' }, type],
  ].flatMap(([input, options, outcome]) =>
    optionTakers.map(([entry, call]) => {
      // tryAcquire() makes one attempt: any wait or strategy is refused, whatever its value.
      const oneAttempt = entry.startsWith('manager.tryAcquire') && /^(wait|strategy)/.test(input as string);
      return row({
        entry,
        input: input as string,
        call: (t) => call(t, options),
        outcome: oneAttempt ? type : (outcome as Outcome),
      });
    }),
  ),
  row({
    entry: 'manager.tryAcquire(name, options)',
    input: 'wait: Infinity (one attempt: refused, not a wait forever)',
    call: (t) => t.manager.tryAcquire('bad-options', { wait: Infinity } as never),
    outcome: { ...type, message: /tryAcquire\(\) options.wait must be absent/ },
  }),
  ...[
    ['returns NaN', () => NaN],
    ['returns a negative delay', () => -5],
    ['returns a string', () => '100'],
  ].map(([input, next]) =>
    row({
      entry: 'lease.acquire({ strategy })',
      input: `strategy.next() ${input as string} (the lock busy)`,
      prepare: (t) => t.manager.acquire('strategy-busy', { ttl: '10s' }),
      call: (t) => t.manager.lease('strategy-busy').acquire({ strategy: { next: next as () => number } }),
      outcome: { rejects: RangeError },
    }),
  ),
  row({
    entry: 'lease.acquire({ strategy })',
    input: 'strategy.next() throws (the lock busy)',
    prepare: (t) => t.manager.acquire('strategy-throws', { ttl: '10s' }),
    call: (t) =>
      t.manager.lease('strategy-throws').acquire({
        strategy: {
          next: () => {
            throw new Error('strategy bug');
          },
        },
      }),
    outcome: { rejects: Error },
  }),
  row({
    entry: 'manager.withLock(name, fn)',
    input: 'fn: not a function',
    call: (t) => t.manager.withLock('bad-fn', 'run' as never),
    outcome: type,
  }),

  // strategies
  ...[
    ['bounded(undefined)', () => strategies.bounded(undefined as never), type],
    ['bounded({}): no interval', () => strategies.bounded({} as never), type],
    ['bounded: neither attempts nor within', () => strategies.bounded({ interval: 10 }), type],
    ['bounded: attempts 0', () => strategies.bounded({ interval: 10, attempts: 0 }), range],
    ['bounded: attempts 1.5', () => strategies.bounded({ interval: 10, attempts: 1.5 }), range],
    ['bounded: attempts NaN', () => strategies.bounded({ interval: 10, attempts: NaN }), range],
    ['bounded: attempts a string', () => strategies.bounded({ interval: 10, attempts: '3' as never }), type],
    ['bounded: within negative', () => strategies.bounded({ interval: 10, within: -1 }), range],
    [
      'bounded: interval an operator object',
      () => strategies.bounded({ interval: { $gt: 1 } as never, attempts: 2 }),
      type,
    ],
    ['infinite(null)', () => strategies.infinite(null as never), type],
    ['infinite: interval negative', () => strategies.infinite({ interval: -1 }), range],
    ['infinite: interval NaN', () => strategies.infinite({ interval: NaN }), range],
    ['backoff: max below initial', () => strategies.backoff({ initial: 100, max: 10 }), range],
    ['backoff: factor below 1', () => strategies.backoff({ initial: 10, max: 100, factor: 0.5 }), range],
    ['backoff: factor NaN', () => strategies.backoff({ initial: 10, max: 100, factor: NaN }), range],
    ['backoff: jitter above 1', () => strategies.backoff({ initial: 10, max: 100, jitter: 2 }), range],
    ['backoff: jitter a string', () => strategies.backoff({ initial: 10, max: 100, jitter: '0.1' as never }), type],
    ['backoff: random not a function', () => strategies.backoff({ initial: 10, max: 100, random: 0.5 as never }), type],
    ['backoff: initial absurd', () => strategies.backoff({ initial: '1000y', max: '2000y' }), range],
  ].map(([input, call, outcome]) =>
    row({ entry: 'strategies', input: input as string, call: call as () => unknown, outcome: outcome as Outcome }),
  ),

  // Calls in the wrong state
  row({
    entry: 'lease.release()',
    input: 'never acquired',
    call: (t) => t.idle.release(),
    outcome: { code: 'not_acquired' },
  }),
  onLease(
    'lease.release()',
    'twice',
    async (t) => {
      const lease = await t.manager.acquire('twice');
      await lease.release();
      return lease;
    },
    (lease) => lease.release(),
    'not_acquired',
  ),
  onLease(
    'lease.acquire()',
    'while held',
    (t) => t.manager.acquire('held-twice'),
    (l) => l.acquire(),
    'already_acquired',
  ),
  onLease(
    'lease.forceAcquire()',
    'while held',
    (t) => t.manager.acquire('forced-twice'),
    (l) => l.forceAcquire(),
    'already_acquired',
  ),
  onLease(
    'lease.release()',
    'after the manager closed',
    (t) => leaseOfClosedManager(t, 'released-by-close', { acquired: true }),
    (lease) => lease.release(),
    'closed',
  ),
  onLease(
    'lease.acquire()',
    'after close()',
    (t) => leaseOfClosedManager(t, 'acquired-after-close', { acquired: false }),
    (lease) => lease.acquire(),
    'closed',
  ),
  ...(
    [
      ['manager.acquire(name)', (t) => t.closed.acquire('x')],
      ['manager.tryAcquire(name)', (t) => t.closed.tryAcquire('x')],
      ['manager.withLock(name, fn)', (t) => t.closed.withLock('x', () => 1)],
      ['manager.inspect(name)', (t) => t.closed.inspect('x')],
      ['manager.list()', (t) => t.closed.list()],
      ['manager.forceRelease(name)', (t) => t.closed.forceRelease('x')],
    ] as [string, (t: Tools) => unknown][]
  ).map(([entry, call]) => row({ entry, input: 'after close()', call, outcome: closed })),
  row({
    entry: 'manager.lease(name)',
    input: 'after close()',
    call: (t) => t.closed.lease('x'),
    outcome: { code: 'closed', sync: true },
  }),
  row({
    entry: 'manager.close()',
    input: 'twice',
    call: (t) => t.closed.close(),
    outcome: { resolves: (v) => v === undefined },
  }),

  // Connections MongoDB cannot be reached through, and collections it rejects
  ...(['neverOpened', 'shut'] as const).flatMap((which) =>
    (
      [
        ['manager.tryAcquire(name)', (m) => m.tryAcquire('x')],
        ['manager.acquire(name)', (m) => m.acquire('x')],
        ['manager.acquire(name, { wait })', (m) => m.acquire('x', { wait: '5s' })],
        ['manager.withLock(name, fn)', (m) => m.withLock('x', () => 1)],
        ['manager.inspect(name)', (m) => m.inspect('x')],
        ['manager.list()', (m) => m.list()],
        ['manager.forceRelease(name)', (m) => m.forceRelease('x')],
        ['lease.acquire({ wait: Infinity })', (m) => m.lease('x').acquire({ wait: Infinity })],
      ] as [string, (m: LockManager) => unknown][]
    ).map(([entry, call]) =>
      row({
        entry,
        input: which === 'neverOpened' ? 'a connection never opened' : 'a connection closed by the application',
        call: (t) => call(t[which]),
        outcome: connection,
      }),
    ),
  ),
  ...[
    ['a collection name MongoDB rejects ("locks.system.x")', 'locks.system.x'],
    ['a namespace MongoDB finds too long', 'c'.repeat(199)],
  ].map(([input, collection]) =>
    row({
      entry: 'manager.tryAcquire(name)',
      input: input!,
      prepare: (t) => {
        // A database name long enough that this collection name overflows MongoDB's 255-byte namespaces.
        const db = t.connection.useDb(`bad_input_${'d'.repeat(50)}`);
        return Promise.resolve(extra(new LockManager({ connection: db, collection: collection! })));
      },
      call: (_, manager) => manager.tryAcquire('x'),
      outcome: { code: 'database' },
    }),
  ),
];

// ---------------------------------------------------------------------------------------------

let tools: Tools;
const CANARY = 'canary';
let canary: Lease;
let shutConnection: Connection;
const neverOpenedConnection = mongoose.createConnection();

beforeAll(async () => {
  timerHook.enable();
  const connection = await locks.db.connect();
  const manager = await locks.manager({ connection, ttl: '10m', heartbeat: false }); // no renewals: no timers firing during rows
  const closedManager = await locks.manager();
  await closedManager.close();
  shutConnection = await locks.db.connect();
  await shutConnection.close();
  canary = await manager.acquire(CANARY);
  tools = {
    connection,
    manager,
    closed: closedManager,
    neverOpened: new LockManager({ connection: neverOpenedConnection }),
    shut: new LockManager({ connection: shutConnection }),
    get idle() {
      return manager.lease('bad-input-idle');
    },
  };
  for (const m of [tools.neverOpened, tools.shut]) m.on('error', () => {});
});

afterAll(async () => {
  timerHook.disable();
  await Promise.all([tools.neverOpened, tools.shut, ...extras].map((m) => m.close()));
  await neverOpenedConnection.close();
});

/** Timers the library created that are still pending, by async id. */
const libraryTimers = new Map<number, NodeJS.Timeout>();
const LIB = `${path.sep}lib${path.sep}`;
const timerHook = createHook({
  init(id, type, _trigger, resource) {
    if (type !== 'Timeout') return;
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 30;
    const stack = new Error().stack ?? '';
    Error.stackTraceLimit = limit;
    if (stack.includes(LIB)) libraryTimers.set(id, resource as NodeJS.Timeout);
  },
  destroy(id) {
    libraryTimers.delete(id);
  },
});
/** Library timers still pending that keep the process alive (unref'ed ones are meant to stay: the watchdog's). */
const leakedTimers = () => [...libraryTimers.values()].filter((timer) => timer.hasRef()).length;
/** Lets a command that a row sent in the background (a clean-up) come back. */
const settle = () => new Promise((resolve) => setImmediate(resolve)).then(() => new Promise((r) => setTimeout(r, 20)));

/**
 * The lock documents as stored. `contended` is left out: a wait that found a lock busy marks it
 * so (to be told when it is freed), which changes nothing about who holds it.
 */
async function snapshot() {
  const docs = await (
    await locks.documents('bad_input')
  )
    .find({}, { projection: { contended: 0 } })
    .sort({ _id: 1 })
    .toArray();
  return new Map(docs.map((d) => [d._id, d]));
}

function verdict(error: unknown): string {
  if (error instanceof LockError) return `LockError ${error.code}: ${error.message}`;
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** Runs rows as tests; other tables (new entry points) can use it too. */
export function table(name: string, entries: readonly Row[]): void {
  describe(name, () => {
    test.each(entries.map((r) => [`${r.entry} — ${r.input}`, r] as const))('%s', async (_, r) => {
      const prepared = r.prepare ? await r.prepare(tools) : undefined;
      const heldBefore = new Set(tools.manager.heldLeases);
      const before = await snapshot();
      await settle();
      // Commands an earlier row left in flight (each with its timeout timer) end first, however loaded the machine.
      await waitFor(() => leakedTimers() === 0, { timeout: 10_000 }).catch(() => undefined);
      const timers = leakedTimers();

      let thrown: unknown;
      let returned: unknown;
      try {
        returned = r.call(tools, prepared);
      } catch (error) {
        thrown = error;
      }
      const settled =
        returned instanceof Promise
          ? await returned.then(
              (value: unknown) => ({ value }),
              (error: unknown) => ({ error }),
            )
          : undefined;

      const outcome = r.outcome;
      if ('throws' in outcome) {
        expect(returned).toBeUndefined(); // nothing started
        expect(thrown).toBeInstanceOf(outcome.throws);
        const message = (thrown as Error).message;
        expect(message.length).toBeLessThan(400); // names the option and a short form of the value
        if (outcome.message) expect(message).toMatch(outcome.message);
      } else if ('code' in outcome) {
        if (outcome.sync) expect(returned).toBeUndefined();
        else expect(thrown).toBeUndefined(); // a promise-returning call rejects, it does not throw
        const error = thrown ?? (settled && 'error' in settled ? settled.error : undefined);
        expect(error).toBeInstanceOf(LockError);
        expect(verdict(error)).toMatch(new RegExp(`^LockError ${outcome.code}:`));
      } else if ('rejects' in outcome) {
        expect(thrown).toBeUndefined();
        expect(settled && 'error' in settled ? settled.error : settled).toBeInstanceOf(outcome.rejects);
      } else {
        expect(thrown).toBeUndefined();
        expect(settled && 'value' in settled && outcome.resolves(settled.value)).toBe(true);
      }

      await settle();
      // No timer left behind: a command the row sent in the background may take a while to come back.
      await waitFor(() => leakedTimers() <= timers, { timeout: 10_000, what: 'the library timers of the row to end' });
      expect(leakedTimers()).toBeLessThanOrEqual(timers);
      const after = await snapshot();
      for (const [id, doc] of before) expect(after.get(id)).toEqual(doc); // nothing changed
      const added = [...after.keys()].filter((id) => !before.has(id));
      expect(added.filter((id) => !(r.creates ?? []).includes(id))).toEqual([]); // nothing unexpected stored
      expect(tools.manager.heldLeases.filter((lease) => !heldBefore.has(lease))).toEqual([]); // nothing new held
      expect(canary.held).toBe(true);
      for (const lease of tools.manager.heldLeases) if (lease !== canary) await lease.release();
    });
  });
}

table('bad input', rows);

// ---------------------------------------------------------------------------------------------
// The entry points built on the manager: elect(), the 0.0.1 API's Lock(), history, and the
// manager options that came with them. Rows that need a held lock or a live election use
// collections of their own, so the table's checks on `bad_input` still see nothing change.

/** An election whose manager has since closed: its methods still check their arguments first. */
async function closedElection(t: Tools): Promise<Election> {
  const manager = extra(new LockManager({ connection: t.connection, collection: 'bad_input_elections' }));
  const election = manager.elect('closed-election');
  await manager.close();
  return election;
}

/** A 0.0.1-style lock on a collection of its own; `held`: acquired first. */
async function compatLock(t: Tools, { held }: { held: boolean }): Promise<CompatLock> {
  const lock = Lock('compat-row', { connection: t.connection, collection: 'bad_input_compat', timeout: '10m' });
  if (held) await lock.acquire();
  return lock;
}

const retentions: [string, unknown, Outcome][] = [
  ['NaN', NaN, range],
  ['negative', -1, range],
  ["absurd ('1000y')", '1000y', range],
  ['an unparsable string', 'soon', type],
  ['an operator object', { $gt: 0 }, type],
  ['true', true, type],
];

const newerRows: Row[] = [
  // new LockManager(options): wakeups, cleanupAfter, history
  ...[
    ['wakeups: a string', { wakeups: 'yes' }, type],
    ['wakeups: a number', { wakeups: 1 }, type],
    ...retentions.map(([input, value, outcome]) => [`cleanupAfter: ${input}`, { cleanupAfter: value }, outcome]),
    ...retentions.map(([input, value, outcome]) => [
      `history.retain: ${input}`,
      { history: { retain: value } },
      outcome,
    ]),
    ['history: a string', { history: 'yes' }, type],
    ['history: a number', { history: 5 }, type],
    ['history.collection: empty', { history: { collection: '' } }, type],
    ['history.collection: with "$"', { history: { collection: 'h$' } }, range],
    [
      'history.collection: the lock collection itself',
      { collection: 'bad_input', history: { collection: 'bad_input' } },
      range,
    ],
  ].map(([input, options, outcome]) =>
    row({
      entry: 'new LockManager(options)',
      input: input as string,
      call: (t) => newManager({ connection: t.connection, ...(options as object) }),
      outcome: outcome as Outcome,
    }),
  ),

  // manager.history(name, { limit })
  ...[
    ['options: a string', 'ten', type],
    ['limit: 0', { limit: 0 }, range],
    ['limit: negative', { limit: -5 }, range],
    ['limit: a fraction', { limit: 1.5 }, range],
    ['limit: NaN', { limit: NaN }, range],
    ['limit: a string', { limit: 'ten' }, type],
  ].map(([input, options, outcome]) =>
    row({
      entry: 'manager.history(name, options)',
      input: input as string,
      call: (t) => t.manager.history('x', options as never),
      outcome: outcome as Outcome,
    }),
  ),
  row({
    entry: 'manager.history(name)',
    input: 'a closed manager',
    call: (t) => t.closed.history('x'),
    outcome: closed,
  }),

  // manager.elect(name, options) and the Election's methods
  ...[
    ['options: a string', 'fast', type],
    ['heartbeat: false (a leader must renew)', { heartbeat: false }, type],
    ...badDurations.map(([input, value, outcome]) => [`ttl: ${input}`, { ttl: value }, outcome]),
    ['heartbeat equal to the ttl', { ttl: 1000, heartbeat: 1000 }, range],
  ].map(([input, options, outcome]) =>
    row({
      entry: 'manager.elect(name, options)',
      input: input as string,
      call: (t) => t.manager.elect('bad-election', options as never),
      outcome: outcome as Outcome,
    }),
  ),
  row({
    entry: 'manager.elect(name)',
    input: 'a closed manager',
    call: (t) => t.closed.elect('x'),
    outcome: { code: 'closed', sync: true },
  }),
  ...[
    ['election.resign(options)', 'options: a string', (e: Election) => e.resign('now' as never), type],
    ['election.resign(options)', 'rejoinAfter: negative', (e: Election) => e.resign({ rejoinAfter: -1 }), range],
    ['election.resign(options)', 'rejoinAfter: unparsable', (e: Election) => e.resign({ rejoinAfter: 'later' }), type],
    ['election.leading(fn)', 'fn: a string', (e: Election) => e.leading('run' as never), type],
    ['election.leading(fn)', 'fn: undefined', (e: Election) => e.leading(undefined as never), type],
    ['election.resign()', 'its manager closed', (e: Election) => e.resign(), closed],
    ['election.current()', 'its manager closed', (e: Election) => e.current(), closed],
  ].map(([entry, input, call, outcome]) =>
    row({
      entry: entry as string,
      input: input as string,
      prepare: closedElection,
      call: (_, election) => (call as (e: Election) => unknown)(election),
      outcome: outcome as Outcome,
    }),
  ),

  // Lock(name, options) of the 0.0.1 API, its methods and its properties
  ...[
    ['options: a string', 'fast', type],
    ...badDurations.map(([input, value, outcome]) => [`timeout: ${input}`, { timeout: value }, outcome]),
    ...badDurations.map(([input, value, outcome]) => [`pollInterval: ${input}`, { pollInterval: value }, outcome]),
    ['probeMaxAttempts: 0', { probeMaxAttempts: 0 }, range],
    ['probeMaxAttempts: negative', { probeMaxAttempts: -3 }, range],
    ['probeMaxAttempts: NaN', { probeMaxAttempts: NaN }, range],
    ['probeMaxAttempts: a string', { probeMaxAttempts: 'ten' }, type],
    ['collection: with "$"', { collection: 'locks$' }, range],
  ].map(([input, options, outcome]) =>
    row({
      entry: 'Lock(name, options)',
      input: input as string,
      call: (t) =>
        Lock(
          'x',
          typeof options === 'object' ? { connection: t.connection, ...(options as object) } : (options as never),
        ),
      outcome: outcome as Outcome,
    }),
  ),
  ...[
    ['lock.acquire(callback)', 'callback: a string', (l: CompatLock) => l.acquire('cb' as never), type],
    ['lock.pollAcquire(callback)', 'callback: an object', (l: CompatLock) => l.pollAcquire({} as never), type],
    ['lock.release(callback)', 'callback: a number', (l: CompatLock) => l.release(1 as never), type],
    [
      'lock.release()',
      'never acquired (releasing_not_aquired_lock)',
      (l: CompatLock) => l.release(),
      { code: 'not_acquired' },
    ],
    ['lock.timeout = value', 'negative', (l: CompatLock) => void (l.timeout = -1), range],
    ['lock.pollInterval = value', 'unparsable', (l: CompatLock) => void (l.pollInterval = 'soon'), type],
    ['lock.probeMaxAttempts = value', '0', (l: CompatLock) => void (l.probeMaxAttempts = 0), range],
    ['lock.name = value', 'an operator object', (l: CompatLock) => void (l.name = OPERATOR as never), type],
    ['lock.lockId = value', 'a number', (l: CompatLock) => void (l.lockId = 5 as never), type],
  ].map(([entry, input, call, outcome]) =>
    row({
      entry: entry as string,
      input: input as string,
      prepare: (t) => compatLock(t, { held: false }),
      call: (_, lock) => (call as (l: CompatLock) => unknown)(lock),
      outcome: outcome as Outcome,
    }),
  ),
  row({
    entry: 'lock.acquire()',
    input: 'already held (lock_already_aquired)',
    prepare: (t) => compatLock(t, { held: true }),
    call: (_, lock) => lock.acquire().finally(() => lock.release()),
    outcome: { code: 'already_acquired' },
  }),
];

table('bad input: election, the 0.0.1 API, history', newerRows);
