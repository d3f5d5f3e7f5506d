// Options fuzzer: every public entry point given generated option bags (and names) made of valid
// values and odd ones (undefined, null, NaN, -0, ±Infinity, huge numbers, odd ms strings,
// Symbols, BigInt, frozen, null-prototype and inheriting objects, extra keys, throwing getters,
// arrays, functions). An oracle written from the documented contract says, for each input,
// whether it is valid (and what it means) or which keys are wrong. The property:
//   - invalid: a TypeError or RangeError with code 'invalid_argument' naming a wrong key, thrown
//     (or, for a promise-returning call, rejected) before anything is sent to MongoDB;
//   - valid: the call behaves as documented (parsed values as expected, a lock taken is really
//     held by the database's account, released again), and every promise settles;
//   - an option whose value is `undefined` behaves as if the key were absent (the oracle treats
//     both alike), and no unhandled rejection happens anywhere.
// Sizes: FUZZ_RUNS / FUZZ_MINUTES (see support.ts); FUZZ_SEED and FUZZ_PATH replay a failure.
import os from 'node:os';
import fc from 'fast-check';
import ms from 'ms';
import { Cron } from 'croner';
import type { Connection } from 'mongoose';
import Lock, {
  LockManager,
  strategies,
  type Election,
  type Lease,
  type Run,
  type RunRecord,
  type ScheduledJob,
} from '../../lib/index';
import { lockFixture } from '../helpers/locks';
import { waitFor } from '../helpers/wait';
import {
  claimOf,
  claimProblem,
  commandCounter,
  describeError,
  fuzzParameters,
  invalidArgumentProblem,
  propertyTimeout,
  readLocks,
  recordCounts,
  rejectionRecorder,
  within,
} from './support';

const COLLECTION = 'prop_options';
const locks = lockFixture({ collection: COLLECTION });
const MAX_TIMER = 2 ** 31 - 1;
const SETTLE = 15_000; // no call here should take nearly this long
/** The base manager's settings, against which lease options are judged. */
const BASE = { ttl: 3000, heartbeat: 1000, margin: 0.1, poll: 50 } as const;

// ---------------------------------------------------------------------------------------------
// The oracle: what the documented contract says an input means.

interface Verdict {
  readonly ok: boolean;
  readonly value?: unknown;
}
const ok = (value: unknown): Verdict => ({ ok: true, value });
const bad: Verdict = { ok: false };

/** A duration: milliseconds, or an `ms` string; above 0 (or 0 with allowZero), at most `max`. */
function duration(v: unknown, { allowZero = false, max = MAX_TIMER } = {}): Verdict {
  let millis: number | undefined;
  if (typeof v === 'number') millis = v;
  else if (typeof v === 'string' && v.trim() !== '') millis = (ms as (s: string) => number | undefined)(v);
  if (typeof millis !== 'number' || !Number.isFinite(millis)) return bad;
  if (millis < 0 || (!allowZero && millis === 0) || millis > max) return bad;
  return ok(millis === 0 ? 0 : millis);
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** A lock name (also an owner): a non-empty, well-formed string of at most 512 bytes. */
function lockName(v: unknown): Verdict {
  return typeof v === 'string' && v.length > 0 && !LONE_SURROGATE.test(v) && Buffer.byteLength(v) <= 512 ? ok(v) : bad;
}

function collectionName(v: unknown): Verdict {
  if (typeof v !== 'string' || v.length === 0 || /[$\0]/.test(v)) return bad;
  if (v.startsWith('system.') || v.startsWith('.') || v.endsWith('.') || Buffer.byteLength(v) > 200) return bad;
  return ok(v);
}

const isBag = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The verdict of a whole option bag: every key's, or the keys that are wrong. */
interface Judgement {
  readonly wrong: string[];
  readonly value: Record<string, unknown>;
}

function judge(view: Record<string, unknown>, rules: Record<string, (v: unknown) => Verdict>): Judgement {
  const wrong: string[] = [];
  const value: Record<string, unknown> = {};
  for (const [key, rule] of Object.entries(rules)) {
    const verdict = rule(view[key]);
    if (verdict.ok) value[key] = verdict.value;
    else wrong.push(key);
  }
  return { wrong, value };
}

const optional =
  (rule: (v: unknown) => Verdict, fallback?: unknown) =>
  (v: unknown): Verdict =>
    v === undefined ? ok(fallback) : rule(v);
const orFalse = (rule: (v: unknown) => Verdict) => (v: unknown) => (v === false ? ok(false) : rule(v));

/**
 * The longest heartbeat a lease of `ttl` can have: a renewal sent then must land and be read back
 * before the local deadline (the ttl less the margin), so at most the ttl less twice the margin.
 */
function latestHeartbeat(ttl: number, margin: number): number {
  return ttl - 2 * (ttl * margin);
}

/** A lease's timing given its own ttl/heartbeat, on a manager with `base` settings. */
function leaseTiming(
  view: Record<string, unknown>,
  base: { ttl: number; heartbeat: number | false; margin: number },
): { wrong: string[]; ttl?: number; heartbeat?: number | false } {
  const ttlV = optional(duration)(view.ttl);
  const hbV = optional(orFalse(duration))(view.heartbeat);
  const wrong = [...(ttlV.ok ? [] : ['ttl']), ...(hbV.ok ? [] : ['heartbeat'])];
  if (wrong.length) return { wrong };
  const ownTtl = view.ttl !== undefined;
  const ttl = ownTtl ? (ttlV.value as number) : base.ttl;
  const heartbeat =
    view.heartbeat !== undefined
      ? (hbV.value as number | false)
      : ownTtl
        ? base.heartbeat === false
          ? false
          : Math.min(ttl / 3, latestHeartbeat(ttl, base.margin))
        : base.heartbeat;
  if (heartbeat !== false && heartbeat > latestHeartbeat(ttl, base.margin)) return { wrong: ['heartbeat'] };
  return { wrong, ttl, heartbeat };
}

// ---------------------------------------------------------------------------------------------
// Generated values.

class Thrower {
  toString(): string {
    throw new Error('toString was called');
  }
}
const GETTER_ERROR = new Error('getter says no');

/** Values that are wrong (or only odd) for almost any option. */
const odd: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom<unknown>(
    undefined,
    null,
    NaN,
    -0,
    0,
    Infinity,
    -Infinity,
    1e20,
    Number.MAX_VALUE,
    2 ** 31,
    -1,
    '1 y',
    '  ',
    '',
    '1e3',
    '-5s',
    '0',
    'soon',
    true,
    false,
    10n,
    Symbol('odd'),
    [],
    [1000],
    () => 1000,
    Object.freeze({}),
    Object.create(null),
    { $gt: 0 },
    new Thrower(),
    new Date(0),
  ),
  fc.integer({ min: -5, max: 5 }),
  fc.string({ maxLength: 6 }),
);

/** A valid duration that is cheap to use where a lock is taken (1 to 3 s), and the boundaries. */
const cheapTtl = fc.oneof(
  fc.integer({ min: 1000, max: 3000 }),
  fc.constantFrom('1s', '2s', '2.5s', '1500ms', '3 seconds', 2 ** 31 - 1),
);
/** Durations never too small to hold a lock with (a 1 ms ttl can never be held: the reply comes too late). */
const notTiny = (v: unknown) => {
  const d = duration(v);
  return !d.ok || (d.value as number) >= 1000;
};
const ttlArb = fc.oneof(cheapTtl, odd.filter(notTiny));
const heartbeatArb = fc.oneof(
  fc.integer({ min: 100, max: 900 }),
  fc.constantFrom<unknown>(false, '300ms', '2s', 3000, 2999),
  odd.filter((v) => {
    const d = duration(v);
    return !d.ok || (d.value as number) >= 100;
  }),
);
const waitArb = fc.oneof(fc.constantFrom<unknown>(0, -0, Infinity, '0ms', '1s', 100, Number.MAX_SAFE_INTEGER), odd);
const signalArb = fc.oneof(
  fc.constantFrom<() => unknown>(
    () => new AbortController().signal,
    () => AbortSignal.abort(new Error('aborted by the test')),
    () => ({ aborted: true }),
    () => 'stop',
  ),
  odd.map((v) => () => v),
);
const strategyArb = fc.oneof(
  fc.constantFrom<() => unknown>(
    () => strategies.bounded({ interval: 20, attempts: 2 }),
    () => ({ next: () => 10 }),
    () => ({ next: () => null }),
    () => Object.create({ next: () => 5 }) as unknown,
    () => ({}),
    () => 'backoff',
    () => ({ next: 100 }),
  ),
  odd.map((v) => () => v),
);
const durationOf = (arb: fc.Arbitrary<unknown>) => fc.oneof(arb, odd);
const ownerArb = fc.oneof(
  fc.constantFrom('$$NOW', '$token', '$leaseId', '$$REMOVE', '{"$ne":1}', 'é'.repeat(256), 'x'.repeat(512), 'o-1'),
  fc.constantFrom('', 'x'.repeat(513), '\uD800', 'a\uDC00b'),
  fc.string({ minLength: 1, maxLength: 8, unit: 'binary' }),
  odd,
);
const nameArb = fc.oneof(
  fc.string({ minLength: 1, maxLength: 12 }),
  fc.string({ minLength: 1, maxLength: 6, unit: 'binary' }),
  fc.constantFrom('$ne', 'a.b$c', ' ', 'x'.repeat(512), 'x'.repeat(513), 'é'.repeat(256), 'é'.repeat(257)),
  fc.constantFrom('\uD800', 'a\uDBFFb', '\uDC00z', ''),
  odd,
);
const collectionArb = fc.oneof(
  fc.constantFrom<unknown>('prop_mgr', 'prop.mgr', undefined),
  fc.constantFrom<unknown>('', 'a$b', 'system.x', '.a', 'a.', 'c'.repeat(201), 'x\0y'),
  odd,
);
const retentionArb = fc.oneof(fc.constantFrom<unknown>(false, '1d', 0, 3600, '30d', 2 ** 31 * 1000), odd);
const historyArb = fc.oneof(
  fc.constantFrom<unknown>(true, false),
  fc
    .record(
      { collection: fc.constantFrom<unknown>(undefined, 'prop_hist', '', 'h$', 'prop_mgr'), retain: retentionArb },
      { requiredKeys: [] },
    )
    .map((v) => v as unknown),
  odd,
);

/** How an option bag is built around its entries. */
type Shape =
  | 'plain'
  | 'frozen'
  | 'nullProto'
  | 'inherited'
  | 'getter'
  | 'absent'
  | 'array'
  | 'function'
  | 'string'
  | 'null'
  | 'bigint';
const WHOLE_BAD: readonly Shape[] = ['array', 'function', 'string', 'null', 'bigint'];

interface BagSpec {
  readonly shape: Shape;
  /** Present keys, with values (values may be undefined: present but undefined). */
  readonly entries: Record<string, unknown>;
  /** Keys no entry point knows, with values: ignored. */
  readonly extra: Record<string, unknown>;
}

const EXTRA_KEYS = ['foo', 'TTL', 'ttl ', 'Wait', 'extra', 'constructor_'];

function bagArb(
  keys: Record<string, fc.Arbitrary<unknown>>,
  { required = [], absent = true }: { required?: string[]; absent?: boolean } = {},
): fc.Arbitrary<BagSpec> {
  const shapes: Shape[] = ['plain', 'plain', 'plain', 'plain', 'frozen', 'nullProto', 'inherited', 'getter'];
  if (absent) shapes.push('absent');
  shapes.push(...WHOLE_BAD);
  return fc.record({
    shape: fc.constantFrom(...shapes),
    entries: fc.record(keys, { requiredKeys: required }),
    extra: fc.dictionary(fc.constantFrom(...EXTRA_KEYS), odd, { maxKeys: 2 }),
  });
}

/** The bag itself (with `fixed` entries, a connection, always its own), and its printable form. */
function build(spec: BagSpec, fixed: Record<string, unknown> = {}): unknown {
  const all = { ...spec.extra, ...spec.entries };
  switch (spec.shape) {
    case 'absent':
      return undefined;
    case 'array':
      return Object.assign([], fixed);
    case 'function':
      return Object.assign(() => 0, fixed);
    case 'string':
      return 'fast';
    case 'null':
      return null;
    case 'bigint':
      return 5n;
    case 'plain':
      return { ...all, ...fixed };
    case 'frozen':
      return Object.freeze({ ...all, ...fixed });
    case 'nullProto':
      return Object.assign(Object.create(null) as object, all, fixed);
    case 'inherited':
      return Object.assign(Object.create(all) as object, fixed);
    case 'getter': {
      const bag = { ...all, ...fixed };
      const key = Object.keys(spec.entries)[0];
      if (key === undefined) return bag; // nothing to put a getter on: a plain bag
      Object.defineProperty(bag, key, {
        enumerable: true,
        get() {
          throw GETTER_ERROR;
        },
      });
      return bag;
    }
  }
}

/** What the oracle expects of a bag. */
type Expectation =
  | { readonly kind: 'valid'; readonly value: Record<string, unknown> }
  | { readonly kind: 'invalid'; readonly keys: readonly string[] }
  /** A throwing getter on `key`: an error (the getter's, or one naming a wrong key), never success. */
  | { readonly kind: 'getter'; readonly keys: readonly string[] };

/**
 * The expectations a bag allows: one, or two for a bag whose keys are inherited (honouring them
 * and ignoring them are both fine, as long as it is one or the other).
 */
function expectations(
  spec: BagSpec,
  judgeView: (view: Record<string, unknown>) => Judgement,
  required: readonly string[] = [],
): Expectation[] {
  if (WHOLE_BAD.includes(spec.shape)) return [{ kind: 'invalid', keys: ['options', ...required] }];
  const of = (view: Record<string, unknown>): Expectation => {
    const j = judgeView(view);
    return j.wrong.length ? { kind: 'invalid', keys: j.wrong } : { kind: 'valid', value: j.value };
  };
  if (spec.shape === 'absent') {
    const e = of({});
    // No options at all where some are required: an error naming the options will do.
    return e.kind === 'invalid' ? [{ kind: 'invalid', keys: ['options', ...e.keys] }] : [e];
  }
  if (spec.shape === 'inherited') return [of(spec.entries), of({})];
  if (spec.shape === 'getter') {
    const key = Object.keys(spec.entries)[0];
    if (key === undefined) return [of(spec.entries)]; // nothing to put a getter on: a plain bag
    const others = judgeView(spec.entries).wrong;
    return [{ kind: 'getter', keys: [key, ...others] }];
  }
  return [of(spec.entries)];
}

// ---------------------------------------------------------------------------------------------
// The harness: call, classify, check.

let connection: Connection; // monitored: every command the base manager sends is counted
let raw: Connection; // the test's own reads
let base: LockManager;
let sent: ReturnType<typeof commandCounter>;
let idleElection: Election;
const rejections = rejectionRecorder();
let runs = 0;
let serial = 0;
const fresh = (prefix: string) => `${prefix}-${process.pid}-${++serial}`;

beforeAll(async () => {
  rejections.install();
  connection = await locks.db.connect({ monitorCommands: true });
  raw = await locks.db.connect();
  sent = commandCounter(connection);
  base = await locks.manager({ connection, ttl: BASE.ttl, poll: BASE.poll });
  base.on('error', () => {}); // background errors are not this suite's subject
  await base.ready;
  const closedManager = new LockManager({ connection: raw, collection: COLLECTION });
  idleElection = closedManager.elect('idle-election');
  await closedManager.close();
});

afterAll(() => {
  rejections.remove();
  recordCounts({ suite: 'options', runs });
  expect(rejections.since(0)).toBe('');
});

interface Outcome {
  readonly thrown?: unknown;
  readonly rejected?: unknown;
  readonly resolved?: unknown;
  readonly returned?: unknown;
  readonly settled: boolean;
  readonly commands: readonly string[];
}

/** Calls `call` and lets whatever it returned settle, counting the commands sent meanwhile. */
async function observe(call: () => unknown): Promise<Outcome> {
  const before = sent.count;
  let returned: unknown;
  try {
    returned = call();
  } catch (thrown) {
    await new Promise((resolve) => setImmediate(resolve));
    return { thrown, settled: true, commands: sent.since(before) };
  }
  if (returned instanceof Promise) {
    const settled = await within(
      returned.then(
        (resolved: unknown) => ({ resolved }),
        (rejected: unknown) => ({ rejected }),
      ),
      SETTLE,
      'the promise the call returned',
    );
    return { ...settled, returned, settled: true, commands: sent.since(before) };
  }
  return { returned, settled: true, commands: sent.since(before) };
}

const failure = (o: Outcome) => ('thrown' in o ? o.thrown : 'rejected' in o ? o.rejected : undefined);
const failed = (o: Outcome) => 'thrown' in o || 'rejected' in o;

/** '' if `outcome` is what `expectation` allows (before the behaviour check of valid input), else why not. */
function classify(
  outcome: Outcome,
  expectation: Expectation,
  { async, fields = false }: { async: boolean; fields?: boolean },
): string {
  if (expectation.kind === 'valid') {
    if ('thrown' in outcome) return `valid input threw ${describeError(outcome.thrown)}`;
    if ('rejected' in outcome && invalidArgumentProblem(outcome.rejected, ['']) === '') {
      return `valid input was refused: ${describeError(outcome.rejected)}`;
    }
    return '';
  }
  if (!failed(outcome)) return `expected an error naming ${expectation.keys.join(' or ')}, but the call succeeded`;
  if (!async && 'rejected' in outcome) return `a synchronous entry point rejected instead of throwing`;
  const error = failure(outcome);
  if (outcome.commands.length) {
    return `commands were sent before the input was refused: ${outcome.commands.join(', ')} (${describeError(error)})`;
  }
  if (expectation.kind === 'getter' && error === GETTER_ERROR) return '';
  return invalidArgumentProblem(error, expectation.keys) || (fields ? fieldsProblem(error, expectation.keys) : '');
}

/** The word that names `key` in a message of this entry point. */
type Namer = (key: string) => string;
const BARE = ['options', 'name', 'fn', 'pattern', 'scheduledAt', 'key'];
const optionNamer: Namer = (key) => (BARE.includes(key) ? key : `options.${key}`);

/** Runs one generated call: the oracle's expectations, the call, and (valid input) its behaviour check. */
/**
 * The case in progress. The time limit of FUZZ_MINUTES interrupts a property while a case runs, and
 * fast-check moves on without waiting for it: it goes on in the background (an acquisition can still
 * be granted), so the next case first lets it end.
 */
let caseInFlight: Promise<void> = Promise.resolve();

/** Resolves once the case the time limit interrupted (if any) has ended, or after 4 × SETTLE. */
function afterInterrupted(): Promise<void> {
  return within(caseInFlight, 4 * SETTLE, 'the case the time limit interrupted').catch(() => {});
}

async function runCase(...args: Parameters<typeof runOneCase>): Promise<void> {
  await afterInterrupted();
  const current = runOneCase(...args);
  caseInFlight = current.then(
    () => {},
    () => {},
  );
  return current;
}

async function runOneCase(
  expected: Expectation[],
  call: () => unknown,
  behaves: (outcome: Outcome, value: Record<string, unknown>) => void | Promise<void>,
  {
    async = true,
    namer = optionNamer,
    allowHeld = [],
    fields = false,
  }: { async?: boolean; namer?: Namer; allowHeld?: readonly Lease[]; fields?: boolean } = {},
): Promise<void> {
  runs++;
  const from = rejections.seen.length;
  // A case the time limit of FUZZ_MINUTES cut short may have left its lease held: not this case's.
  const heldBefore = base.heldLeases.filter((l) => !allowHeld.includes(l));
  await Promise.all(heldBefore.map((l) => l.release().catch(() => {})));
  const named = expected.map((e) => (e.kind === 'valid' ? e : { ...e, keys: e.keys.map(namer) }));
  let failure: Error | undefined;
  try {
    const outcome = await observe(call);
    const problems = named.map((e) => classify(outcome, e, { async, fields }));
    if (!problems.includes('')) throw new Error(problems.join(' | or | '));
    // Valid input: its behaviour must fit one of the readings that allow it (an inherited key honoured, or ignored).
    const behaviours: string[] = [];
    for (const [i, e] of named.entries()) {
      if (problems[i] !== '' || e.kind !== 'valid') continue;
      try {
        await behaves(outcome, e.value);
        behaviours.length = 0;
        break;
      } catch (error) {
        behaviours.push(error instanceof Error ? error.message : String(error));
      }
    }
    if (behaviours.length) throw new Error(behaviours.join(' | or | '));
  } catch (error) {
    failure = error instanceof Error ? error : new Error(String(error));
  }
  // Whatever happened, leave nothing held for the next case.
  const leftHeld = base.heldLeases.filter((l) => !allowHeld.includes(l) && !heldBefore.includes(l));
  await Promise.all(leftHeld.map((l) => l.release().catch(() => {})));
  if (failure) throw failure;
  await new Promise((resolve) => setImmediate(resolve));
  const unhandled = rejections.since(from);
  if (unhandled) throw new Error(`unhandled rejection: ${unhandled}`);
  if (leftHeld.length) throw new Error(`leases left held after the case: ${leftHeld.map((l) => l.name).join(', ')}`);
}

/** The lease must hold its lock by the database's account; then it is released (true). */
async function holdsThenRelease(lease: Lease): Promise<void> {
  const claim = claimOf(lease);
  if (!claim) throw new Error(`lease "${lease.name}" does not say it is held`);
  const stored = await readLocks(raw, COLLECTION, [lease.name]);
  const problem = claimProblem(claim, stored.get(lease.name));
  if (problem) throw new Error(problem);
  const released = await within(lease.release(), SETTLE, 'lease.release()');
  if (released !== true) throw new Error(`release() resolved ${String(released)}, expected true`);
}

const resolvedValue = (o: Outcome) => {
  if ('rejected' in o) throw new Error(`valid input rejected: ${describeError(o.rejected)}`);
  return 'resolved' in o ? o.resolved : o.returned;
};
const show = (v: unknown): string => {
  try {
    return typeof v === 'symbol' || typeof v === 'bigint' ? String(v) : (JSON.stringify(v) ?? String(v));
  } catch {
    return String(v);
  }
};
function expectEqual(actual: unknown, expected: unknown, what: string): void {
  if (!Object.is(actual, expected) && !(actual === 0 && expected === 0)) {
    throw new Error(`${what} is ${show(actual)}, expected ${show(expected)}`);
  }
}

/**
 * A property whose body first lets a case the time limit interrupted end (see runCase): that case's
 * clean-up releases every lease of `base` it did not see before, so a body that takes a lease
 * before its own runCase (an election, a tick) would lose it to the clean-up.
 */
const property = <T>(arb: fc.Arbitrary<T>, body: (t: T) => Promise<void>) =>
  fc.asyncProperty(arb, async (t) => {
    await afterInterrupted();
    return body(t);
  });
const check = async <T>(runsByDefault: number, prop: fc.IAsyncProperty<T>, share: number) =>
  fc.assert(prop, fuzzParameters<T>(runsByDefault, share));
/** Each test's share of FUZZ_MINUTES. */
const SHARE = 1 / 21;
jest.setTimeout(propertyTimeout(60_000, SHARE));

// ---------------------------------------------------------------------------------------------
// Option rules of each entry point, from the documented contract.

const acquireRules = {
  wait: (v: unknown) =>
    v === undefined || v === Infinity ? ok(v) : duration(v, { allowZero: true, max: Number.MAX_SAFE_INTEGER }),
  strategy: (v: unknown) =>
    v === undefined || (typeof v === 'object' && v !== null && typeof (v as { next?: unknown }).next === 'function')
      ? ok(v)
      : bad,
  signal: (v: unknown) => (v === undefined || v instanceof AbortSignal ? ok(v) : bad),
};

/** `fair`: true or false; undefined is absent. */
const fairRule = (v: unknown) => (v === undefined || typeof v === 'boolean' ? ok(v ?? false) : bad);

function leaseJudge(view: Record<string, unknown>, extra: Record<string, (v: unknown) => Verdict> = {}): Judgement {
  const timing = leaseTiming(view, BASE);
  const rest = judge(view, { fair: fairRule, ...extra });
  return {
    wrong: [...timing.wrong, ...rest.wrong],
    value: { ...rest.value, ttl: timing.ttl, heartbeat: timing.heartbeat },
  };
}

const managerRules = {
  collection: optional(collectionName, 'locks'),
  ttl: optional(duration, 60_000),
  poll: optional(duration, 500),
  owner: optional(lockName, `${os.hostname()}:${process.pid}`),
  margin: (v: unknown) => (v === undefined ? ok(0.1) : typeof v === 'number' && v > 0 && v < 0.5 ? ok(v) : bad),
  commandTimeout: optional(duration, 10_000),
  wakeups: (v: unknown) => (v === undefined || typeof v === 'boolean' ? ok(v ?? true) : bad),
  fair: fairRule,
  cleanupAfter: optional(orFalse((v) => duration(v, { allowZero: true, max: MAX_TIMER * 1000 }))),
};

function historyJudge(v: unknown, collection: unknown): Verdict {
  if (v === undefined || typeof v === 'boolean') return ok(v);
  if (!isBag(v)) return bad;
  const h = v as Record<string, unknown>;
  const name = h.collection === undefined ? undefined : collectionName(h.collection);
  if (name && (!name.ok || name.value === (collection ?? 'locks'))) return bad;
  if (h.retain !== undefined && !orFalse((x) => duration(x, { allowZero: true, max: MAX_TIMER * 1000 }))(h.retain).ok)
    return bad;
  return ok(v);
}

function managerJudge(view: Record<string, unknown>): Judgement {
  const j = judge(view, managerRules);
  const wrong = [...j.wrong];
  const hb = optional(orFalse(duration))(view.heartbeat);
  if (!hb.ok) wrong.push('heartbeat');
  if (!historyJudge(view.history, view.collection).ok) wrong.push('history');
  if (wrong.length === 0) {
    const ttl = j.value.ttl as number;
    const margin = j.value.margin as number;
    // The default heartbeat is a third of the ttl, less when a margin above 1/3 leaves no room for it.
    const heartbeat =
      view.heartbeat === undefined ? Math.min(ttl / 3, latestHeartbeat(ttl, margin)) : (hb.value as number | false);
    if (heartbeat !== false && heartbeat > latestHeartbeat(ttl, margin)) wrong.push('heartbeat');
    j.value.heartbeat = heartbeat;
  }
  return { wrong, value: j.value };
}

/** The manager's options under test, with values that keep a run cheap. */
const managerKeys = {
  collection: collectionArb,
  ttl: fc.oneof(cheapTtl, fc.constantFrom<unknown>(1, 999, '1 y'), odd),
  heartbeat: heartbeatArb,
  poll: durationOf(fc.constantFrom<unknown>(50, '100ms', 1)),
  owner: ownerArb,
  margin: fc.oneof(fc.constantFrom<unknown>(0.1, 0.5, 0.25, 1e-9, 0.5000001), odd),
  commandTimeout: durationOf(fc.constantFrom<unknown>('5s', 5000, 10_000, 1)),
  wakeups: fc.oneof(fc.boolean(), odd),
  fair: fc.oneof(fc.boolean(), odd),
  cleanupAfter: retentionArb,
  history: historyArb,
};

// ---------------------------------------------------------------------------------------------

describe('options fuzzer', () => {
  test(
    'new LockManager(options)',
    () =>
      check(
        8,
        property(bagArb(managerKeys, { absent: false }), async (spec) => {
          // Each case's manager gets a monitored connection of its own, closed with the case: a
          // manager closed with a tiny commandTimeout may still retry its release after the lock
          // reads as free, and nothing it sends must land in a later case's count.
          const own = await locks.db.connect({ monitorCommands: true });
          const baseSent = sent;
          sent = commandCounter(own);
          let manager: LockManager | undefined;
          let taken: { name: string; collection: string } | undefined;
          try {
            await runCase(
              expectations(spec, managerJudge),
              () => (manager = new LockManager(build(spec, { connection: own }) as never)),
              async (_, v) => {
                const m = manager!;
                m.on('error', () => {});
                expectEqual(m.owner, v.owner, 'manager.owner');
                expectEqual(m.collectionName, v.collection, 'manager.collectionName');
                const lease = m.lease('probe');
                expectEqual(lease.ttl, v.ttl, 'lease.ttl');
                expectEqual(lease.heartbeat, v.heartbeat, 'lease.heartbeat');
                await within(m.ready, SETTLE, 'manager.ready');
                if ((v.ttl as number) >= 1000 && (v.commandTimeout as number) >= 1000) {
                  const name = fresh('ctor');
                  taken = { name, collection: v.collection as string };
                  const held = await within(m.tryAcquire(name), SETTLE, 'tryAcquire');
                  if (!held) throw new Error('tryAcquire of a free lock resolved null');
                  const [doc] = await raw
                    .db!.collection(v.collection as string)
                    .find({ _id: name as never })
                    .toArray();
                  expectEqual(doc?.owner, v.owner, 'the stored owner');
                  expectEqual(Number(doc?.token), held.token, 'the stored token');
                  expectEqual(await within(held.release(), SETTLE, 'release'), true, 'release()');
                }
              },
              { async: false },
            );
          } finally {
            try {
              if (manager) {
                await within(manager.close(), SETTLE, 'manager.close()');
                // close() returns within commandTimeout (1 ms in some cases); its set-up's last
                // commands may still be on their way: let them land before the next case counts.
                await within(manager.ready, SETTLE, 'manager.ready');
                // So may the release of its lock (close() gives up waiting after commandTimeout):
                // the lock is free (or expired) once it landed.
                if (taken) {
                  const { name, collection } = taken;
                  const free = async () => !(await readLocks(raw, collection, [name])).get(name)!.live;
                  await waitFor(free, { timeout: SETTLE, what: `the release of ${name}` });
                }
                await within(sent.idle(), SETTLE, 'the commands in flight');
              }
            } finally {
              sent = baseSent;
              await within(own.close(true), SETTLE, "the case's connection closing");
            }
          }
        }),
        SHARE,
      ),
    propertyTimeout(50_000, SHARE),
  );

  const leaseKeys = { ttl: ttlArb, heartbeat: heartbeatArb, fair: fc.oneof(fc.boolean(), odd) };

  test('manager.lease(name, options)', () =>
    check(
      40,
      property(bagArb(leaseKeys), async (spec) =>
        runCase(
          expectations(spec, (view) => leaseJudge(view)),
          () => base.lease('lease-options', build(spec) as never),
          (o, v) => {
            const lease = resolvedValue(o) as Lease;
            expectEqual(lease.ttl, v.ttl, 'lease.ttl');
            expectEqual(lease.heartbeat, v.heartbeat, 'lease.heartbeat');
            expectEqual(lease.held, false, 'lease.held');
          },
          { async: false },
        ),
      ),
      SHARE,
    ));

  const acquireKeys = { wait: waitArb, strategy: strategyArb, signal: signalArb };
  /** Turns the generated factories (strategy, signal) into values. */
  const realise = (spec: BagSpec): BagSpec => ({
    ...spec,
    entries: Object.fromEntries(
      Object.entries(spec.entries).map(([k, v]) => [
        k,
        (k === 'strategy' || k === 'signal') && typeof v === 'function' ? (v as () => unknown)() : v,
      ]),
    ),
  });
  /** Resolved a held lease, or rejected with the aborted signal's reason (documented for an aborted signal). */
  async function heldOrAborted(o: Outcome, v: Record<string, unknown>, lease: () => Lease | undefined) {
    const signal = v.signal as AbortSignal | undefined;
    if (signal?.aborted) {
      if (!('rejected' in o) || o.rejected !== signal.reason) {
        throw new Error(`an aborted signal: expected a rejection with its reason, got ${show(o.resolved)}`);
      }
      return;
    }
    const l = lease();
    if (!l) throw new Error('no lease');
    await holdsThenRelease(l);
  }

  test('lease.acquire(options)', () =>
    check(
      25,
      property(bagArb(acquireKeys).map(realise), async (spec) => {
        const lease = base.lease(fresh('acq'));
        await runCase(
          expectations(spec, (view) => judge(view, acquireRules)),
          () => lease.acquire(build(spec) as never),
          (o, v) =>
            heldOrAborted(o, v, () => {
              if (resolvedValue(o) !== true) throw new Error(`acquire() of a free lock resolved ${show(o.resolved)}`);
              return lease;
            }),
        );
      }),
      SHARE,
    ));

  test('manager.acquire(name, options)', () =>
    check(
      20,
      property(bagArb({ ...leaseKeys, ...acquireKeys }).map(realise), async (spec) => {
        const name = fresh('mgr-acq');
        await runCase(
          expectations(spec, (view) => leaseJudge(view, acquireRules)),
          () => base.acquire(name, build(spec) as never),
          (o, v) =>
            heldOrAborted(o, v, () => {
              const lease = resolvedValue(o) as Lease;
              expectEqual(lease.ttl, v.ttl, 'lease.ttl');
              expectEqual(lease.heartbeat, v.heartbeat, 'lease.heartbeat');
              return lease;
            }),
        );
      }),
      SHARE,
    ));

  test('manager.withLock(name, fn, options)', () =>
    check(
      20,
      property(bagArb({ ...leaseKeys, ...acquireKeys }).map(realise), async (spec) => {
        const name = fresh('with');
        let calls = 0;
        await runCase(
          expectations(spec, (view) => leaseJudge(view, acquireRules)),
          () =>
            base.withLock(
              name,
              async (lease) => {
                calls++;
                // fn runs only while the database says this lease holds the lock.
                const claim = claimOf(lease);
                if (!claim) throw new Error('fn was called without a held lease');
                const problem = claimProblem(claim, (await readLocks(raw, COLLECTION, [name])).get(name));
                if (problem) throw new Error(`inside fn: ${problem}`);
                return { lease, token: claim.token };
              },
              build(spec) as never,
            ),
          async (o, v) => {
            const signal = v.signal as AbortSignal | undefined;
            if (signal?.aborted) {
              if (!('rejected' in o) || o.rejected !== signal.reason)
                throw new Error(`an aborted signal: expected a rejection with its reason, got ${show(o.resolved)}`);
              expectEqual(calls, 0, 'fn calls with an aborted signal');
              return;
            }
            const { lease, token } = resolvedValue(o) as { lease: Lease; token: number };
            expectEqual(calls, 1, 'fn calls');
            expectEqual(lease.ttl, v.ttl, 'lease.ttl');
            expectEqual(lease.heartbeat, v.heartbeat, 'lease.heartbeat');
            expectEqual(lease.held, false, 'lease.held after withLock');
            const after = (await readLocks(raw, COLLECTION, [name])).get(name)!;
            if (after.live && after.token === token) throw new Error('withLock resolved but its hold is still live');
          },
        );
        if (calls > 1) throw new Error(`fn was called ${calls} times`);
      }),
      SHARE,
    ));

  test('manager.tryAcquire(name, options): one attempt, wait and strategy refused', () =>
    check(
      25,
      property(bagArb({ ...leaseKeys, ...acquireKeys }).map(realise), async (spec) => {
        const name = fresh('try');
        await runCase(
          expectations(spec, (view) =>
            leaseJudge(view, {
              signal: acquireRules.signal,
              wait: (v) => (v === undefined ? ok(v) : bad),
              strategy: (v) => (v === undefined ? ok(v) : bad),
            }),
          ),
          () => base.tryAcquire(name, build(spec) as never),
          (o, v) =>
            heldOrAborted(o, v, () => {
              const lease = resolvedValue(o) as Lease | null;
              if (!lease) throw new Error('tryAcquire of a free lock resolved null');
              expectEqual(lease.ttl, v.ttl, 'lease.ttl');
              return lease;
            }),
        );
      }),
      SHARE,
    ));

  test('lock names, through every entry point that takes one', () =>
    check(
      40,
      fc.asyncProperty(
        nameArb,
        fc.constantFrom(
          'lease',
          'acquire',
          'tryAcquire',
          'withLock',
          'forceAcquire',
          'forceRelease',
          'inspect',
          'history',
          'elect',
          'Lock',
        ),
        fc.constantFrom('list', 'none'),
        async (name, entry, extraCall) => {
          let election: Election | undefined;
          let lock: ReturnType<typeof Lock> | undefined;
          const calls: Record<string, () => unknown> = {
            lease: () => base.lease(name as string),
            acquire: () => base.acquire(name as string, { wait: 0 }),
            tryAcquire: () => base.tryAcquire(name as string),
            withLock: () => base.withLock(name as string, (l) => l.token, { wait: 0 }),
            forceAcquire: () => base.lease(name as string).forceAcquire(),
            forceRelease: () => base.forceRelease(name as string),
            inspect: () => base.inspect(name as string),
            history: () => base.history(name as string),
            elect: () => (election = base.elect(name as string)),
            Lock: () => (lock = Lock(name as string, { connection, collection: COLLECTION, timeout: '3s' })),
          };
          const valid = lockName(name);
          try {
            await runCase(
              [valid.ok ? { kind: 'valid', value: { name } } : { kind: 'invalid', keys: ['name'] }],
              calls[entry]!,
              async (o) => {
                const result = resolvedValue(o);
                if (entry === 'lease') expectEqual((result as Lease).name, name, 'lease.name');
                if (entry === 'acquire' || entry === 'tryAcquire') {
                  if (!result) throw new Error(`${entry} of a free lock resolved null`);
                  await holdsThenRelease(result as Lease);
                }
                if (entry === 'forceAcquire') {
                  expectEqual(result, true, 'forceAcquire()');
                  const lease = base.heldLeases.find((l) => l.name === name);
                  if (!lease) throw new Error('forceAcquire resolved but no lease is held');
                  await holdsThenRelease(lease);
                }
                if (entry === 'forceRelease') expectEqual(typeof result, 'boolean', 'forceRelease() result type');
                if (entry === 'inspect' && result !== null)
                  expectEqual((result as { name: string }).name, name, 'inspect().name');
                if (entry === 'history' && !Array.isArray(result)) throw new Error('history() is not an array');
                if (entry === 'Lock') expectEqual(lock!.name, name, 'lock.name');
                if (entry === 'elect') expectEqual(election!.name, name, 'election.name');
              },
              {
                async: !['lease', 'elect', 'Lock'].includes(entry),
                namer: (key) => key,
              },
            );
            if (extraCall === 'list') {
              const all = await within(base.list(), SETTLE, 'list()');
              if (!Array.isArray(all)) throw new Error('list() is not an array');
            }
          } finally {
            if (election) await within(election.close(), SETTLE, 'election.close()');
            if (lock) await within(lock.manager.close(), SETTLE, 'the Lock manager close()');
          }
        },
      ),
      SHARE,
    ));

  test('manager.history(name, options)', () =>
    check(
      25,
      property(
        bagArb({
          limit: fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.constantFrom<unknown>(2 ** 31, 2 ** 53 - 1, 1e20), odd),
        }),
        async (spec) =>
          runCase(
            expectations(spec, (view) =>
              judge(view, {
                limit: (v) =>
                  v === undefined || (typeof v === 'number' && Number.isInteger(v) && v >= 1) ? ok(v) : bad,
              }),
            ),
            () => base.history('history-name', build(spec) as never),
            (o) => {
              const records = resolvedValue(o);
              if (!Array.isArray(records)) throw new Error(`history() resolved ${show(records)}`);
            },
          ),
      ),
      SHARE,
    ));

  test('manager.elect(name, options)', () =>
    check(
      12,
      property(bagArb(leaseKeys), async (spec) => {
        const name = fresh('elect');
        let election: Election | undefined;
        let elected: Promise<[Lease]> | undefined;
        try {
          await runCase(
            expectations(spec, (view) => {
              const j = leaseJudge(view);
              return view.heartbeat === false ? { wrong: [...j.wrong, 'heartbeat'], value: j.value } : j;
            }),
            () => {
              const e = (election = base.elect(name, build(spec) as never));
              elected = new Promise<[Lease]>((resolve) => e.once('elected', (l) => resolve([l])));
              return e;
            },
            async (_, v) => {
              const e = election!;
              const [lease] = await within(elected!, SETTLE, 'elected (the lock is free)');
              expectEqual(lease.ttl, v.ttl, 'leadership lease ttl');
              const claim = claimOf(lease);
              if (!claim) throw new Error('elected with a lease that is not held');
              const problem = claimProblem(claim, (await readLocks(raw, COLLECTION, [name])).get(name));
              if (problem) throw new Error(problem);
              await within(e.close(), SETTLE, 'election.close()');
              const after = (await readLocks(raw, COLLECTION, [name])).get(name)!;
              if (after.live) throw new Error('the lock is still held after election.close()');
            },
            { async: false },
          );
        } finally {
          if (election) await within(election.close(), SETTLE, 'election.close()');
        }
      }),
      SHARE,
    ));

  test('election.resign(options)', () =>
    check(
      10,
      property(
        bagArb({ rejoinAfter: fc.oneof(fc.constantFrom<unknown>(0, '1s', 60_000, 2 ** 31 - 1), odd) }),
        async (spec) => {
          const name = fresh('resign');
          const election = base.elect(name);
          try {
            const [lease] = await within(
              new Promise<[Lease]>((resolve) => election.once('elected', (l) => resolve([l]))),
              SETTLE,
              'elected',
            );
            const token = lease.token;
            // A 3 s lease can lapse on a loaded machine before resign() runs: then resign() is
            // right to answer false, and the election must have said so (`revoked`, 'lost') first.
            let lost = false;
            const seen: string[] = [];
            election.on('revoked', (reason, t) => {
              lost ||= reason === 'lost';
              seen.push(`revoked ${reason} ${t}`);
            });
            lease.on('lost', (error) => seen.push(`lease lost: ${error.message}`));
            lease.on('released', (event) => seen.push(`lease released: ${JSON.stringify(event)}`));
            await runCase(
              expectations(spec, (view) =>
                judge(view, { rejoinAfter: optional((v) => duration(v, { allowZero: true })) }),
              ),
              () => election.resign(build(spec) as never),
              async (o) => {
                expectEqual(resolvedValue(o), !lost, `resign() of the leader (seen: ${seen.join('; ') || 'nothing'})`);
                const after = (await readLocks(raw, COLLECTION, [name])).get(name)!;
                if (after.live && after.token === token) throw new Error('the resigned term still holds the lock');
              },
              { allowHeld: [lease] }, // the election's lease: it leads until resign() or close()
            );
          } finally {
            await within(election.close(), SETTLE, 'election.close()');
          }
        },
      ),
      SHARE,
    ));

  test('election.leading(fn)', () =>
    check(
      30,
      property(
        fc.oneof(
          fc.constantFrom<unknown>(
            () => {},
            async () => {},
          ),
          odd,
        ),
        async (fn) =>
          runCase(
            [typeof fn === 'function' ? { kind: 'valid', value: {} } : { kind: 'invalid', keys: ['fn'] }],
            () => idleElection.leading(fn as never),
            (o) => {
              const stop = resolvedValue(o);
              if (typeof stop !== 'function') throw new Error('leading() did not return a function');
              (stop as () => void)();
            },
            { async: false, namer: (key) => key },
          ),
      ),
      SHARE,
    ));

  const bounded = {
    interval: durationOf(fc.constantFrom<unknown>(10, '1s', 2 ** 31 - 1)),
    attempts: fc.oneof(fc.constantFrom<unknown>(1, 3, 1000), odd),
    within: fc.oneof(fc.constantFrom<unknown>(0, '1s', Number.MAX_SAFE_INTEGER), odd),
  };
  const backoff = {
    initial: durationOf(fc.constantFrom<unknown>(10, '100ms')),
    max: durationOf(fc.constantFrom<unknown>(10, '1s', 5)),
    factor: fc.oneof(fc.constantFrom<unknown>(1, 2, 1.5, 0.5), odd),
    jitter: fc.oneof(fc.constantFrom<unknown>(0, 0.2, 1, 1.0001), odd),
    within: bounded.within,
    random: fc.oneof(
      fc.constantFrom<unknown>(
        () => 0.5,
        Math.random,
        () => 0,
      ),
      odd,
    ),
  };
  const withinRule = optional((v) => duration(v, { allowZero: true, max: Number.MAX_SAFE_INTEGER }));
  const strategyCases = [
    [
      'bounded',
      bounded,
      ['interval'],
      (view: Record<string, unknown>) => {
        const j = judge(view, {
          interval: duration,
          attempts: (v) => (v === undefined || (typeof v === 'number' && Number.isInteger(v) && v >= 1) ? ok(v) : bad),
          within: withinRule,
        });
        if (j.wrong.length === 0 && view.attempts === undefined && view.within === undefined)
          return { wrong: ['attempts', 'within'], value: j.value };
        return j;
      },
      (o: unknown) => strategies.bounded(o as never),
    ],
    [
      'infinite',
      { interval: bounded.interval },
      ['interval'],
      (view: Record<string, unknown>) => judge(view, { interval: duration }),
      (o: unknown) => strategies.infinite(o as never),
    ],
    [
      'backoff',
      backoff,
      ['initial', 'max'],
      (view: Record<string, unknown>) => {
        const j = judge(view, {
          initial: duration,
          max: duration,
          factor: (v) =>
            v === undefined ? ok(2) : typeof v === 'number' && Number.isFinite(v) && v >= 1 ? ok(v) : bad,
          jitter: (v) => (v === undefined ? ok(0.2) : typeof v === 'number' && v >= 0 && v <= 1 ? ok(v) : bad),
          within: withinRule,
          random: (v) => (v === undefined || typeof v === 'function' ? ok(v) : bad),
        });
        if (
          !j.wrong.includes('initial') &&
          !j.wrong.includes('max') &&
          (j.value.max as number) < (j.value.initial as number)
        )
          return { wrong: [...j.wrong, 'max'], value: j.value };
        return j;
      },
      (o: unknown) => strategies.backoff(o as never),
    ],
  ] as const;
  for (const [kind, keys, required, judgeView, make] of strategyCases) {
    test(`strategies.${kind}(options)`, () =>
      check(
        60,
        property(bagArb(keys as Record<string, fc.Arbitrary<unknown>>, { absent: true }), async (spec) =>
          runCase(
            expectations(spec, judgeView, required),
            () => make(build(spec)),
            (o, v) => {
              const strategy = resolvedValue(o) as { next(a: number, e: number): number | null };
              const delay = strategy.next(1, 0);
              if (delay !== null && !(typeof delay === 'number' && delay >= 0))
                throw new Error(`next(1, 0) returned ${show(delay)}`);
              if (kind === 'infinite') expectEqual(delay, v.interval, 'infinite next()');
            },
            // strategies name the option after a colon ("strategies.bounded: interval") or in the call.
            { async: false, namer: (key) => (key === 'options' ? `${kind}(options)` : key) },
          ),
        ),
        SHARE,
      ));
  }

  const compatKeys = {
    timeout: fc.oneof(cheapTtl, fc.constantFrom<unknown>(1, '1 y'), odd),
    pollInterval: durationOf(fc.constantFrom<unknown>(50, '100ms')),
    probeMaxAttempts: fc.oneof(fc.constantFrom<unknown>(1, 2.5, Infinity, 100), odd),
    collection: collectionArb,
    owner: ownerArb,
    commandTimeout: managerKeys.commandTimeout,
    cleanupAfter: retentionArb,
    history: historyArb,
  };
  test(
    'Lock(name, options) (0.0.1)',
    () =>
      check(
        12,
        property(bagArb(compatKeys, { absent: false }), async (spec) => {
          let lock: ReturnType<typeof Lock> | undefined;
          const name = fresh('compat');
          try {
            await runCase(
              expectations(spec, (view) => {
                const j = judge(view, {
                  timeout: optional(duration, 60_000),
                  pollInterval: optional(duration, 500),
                  probeMaxAttempts: (v) => (v === undefined || (typeof v === 'number' && v > 0) ? ok(v) : bad),
                  collection: managerRules.collection,
                  owner: managerRules.owner,
                  commandTimeout: managerRules.commandTimeout,
                  cleanupAfter: managerRules.cleanupAfter,
                });
                if (!historyJudge(view.history, view.collection).ok) j.wrong.push('history');
                return j;
              }),
              () => (lock = Lock(name, build(spec, { connection }) as never)),
              async (_, v) => {
                const l = lock!;
                l.manager.on('error', () => {});
                expectEqual(l.timeout, v.timeout, 'lock.timeout');
                expectEqual(l.pollInterval, v.pollInterval, 'lock.pollInterval');
                if (v.probeMaxAttempts !== undefined)
                  expectEqual(l.probeMaxAttempts, v.probeMaxAttempts, 'lock.probeMaxAttempts');
                expectEqual(l.manager.owner, v.owner, 'the manager owner');
                if ((v.timeout as number) >= 1000 && (v.commandTimeout as number) >= 1000) {
                  expectEqual(await within(l.acquire(), SETTLE, 'lock.acquire()'), true, 'lock.acquire()');
                  const [doc] = await raw
                    .db!.collection(v.collection as string)
                    .find({ _id: name as never })
                    .toArray();
                  expectEqual(doc?.owner, v.owner, 'the stored owner');
                  expectEqual(String(doc?.token), l.lockId, 'the stored token');
                  expectEqual(
                    await within(l.release(), SETTLE, 'lock.release()'),
                    false,
                    'lock.release() (timed out?)',
                  );
                }
              },
              { async: false },
            );
          } finally {
            if (lock) await within(lock.manager.close(), SETTLE, 'the Lock manager close()');
          }
        }),
        SHARE,
      ),
    propertyTimeout(50_000, SHARE),
  );
});

// ---------------------------------------------------------------------------------------------
// Scheduled jobs: schedule, runOnce, runs, runCoordinator().shouldRun (docs/scheduling.md).

const RUNS = `${COLLECTION}.runs`;
const MAX_DATE = 8.64e15;
const DAY = 24 * 3600 * 1000;
/** A schedule name: a lock name leaving room for `@` and an ISO date (24 characters) in its tick's lock name. */
const SCHEDULE_NAME_BYTES = 512 - 25;
function scheduleName(v: unknown): Verdict {
  return lockName(v).ok && Buffer.byteLength(v as string) <= SCHEDULE_NAME_BYTES ? ok(v) : bad;
}
const retriesRule = (v: unknown) =>
  v === undefined ? ok(0) : typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 1000 ? ok(v) : bad;
const retainRule = optional((v) => duration(v, { max: MAX_TIMER * 1000 }), 7 * DAY);
/** croner accepts the pattern in the time zone, and finds a tick to come (schedule() refuses a job that never fires). */
const cronAccepts = (pattern: string, timezone?: string): boolean => {
  try {
    return new Cron(pattern, { timezone, paused: true }).nextRun() !== null;
  } catch {
    return false;
  }
};
/** A time zone: a non-empty string croner (and so Intl) accepts. */
const timezoneRule = (v: unknown) =>
  v === undefined ? ok(v) : typeof v === 'string' && v !== '' && cronAccepts('0 0 * * *', v) ? ok(v) : bad;
const scheduleRules = {
  timezone: timezoneRule,
  ttl: optional(duration),
  retries: retriesRule,
  misfire: (v: unknown) => (v === undefined || v === 'skip' || v === 'once' || v === 'all' ? ok(v ?? 'skip') : bad),
  catchUp: optional((v) => duration(v, { allowZero: true }), 3600_000),
  tolerance: optional((v) => duration(v, { allowZero: true }), 5000),
  retain: retainRule,
};
const runOnceRules = {
  ttl: optional(duration),
  retries: retriesRule,
  wait: optional((v) => duration(v, { allowZero: true })),
  retain: retainRule,
};
const retriesArb = fc.oneof(fc.constantFrom<unknown>(0, 1, 3, 1000, 1001, 0.5, -1, '1'), odd);
const scheduleKeys = {
  timezone: fc.oneof(
    fc.constantFrom<unknown>('UTC', 'utc', 'Europe/Berlin', 'Asia/Kolkata', 'Etc/GMT-14', 'US/Pacific', 'EST'),
    fc.constantFrom<unknown>('', ' UTC', '+01:00', 'Z', 'Mars/Olympus', 'Etc/GMT+14', 'Europe/Berlin '),
    odd,
  ),
  ttl: ttlArb,
  retries: retriesArb,
  misfire: fc.oneof(fc.constantFrom<unknown>('skip', 'once', 'all', 'SKIP', 'none', ' once'), odd),
  catchUp: durationOf(fc.constantFrom<unknown>(0, '1h', '30m', 2 ** 31 - 1, 2 ** 31)),
  tolerance: durationOf(fc.constantFrom<unknown>(0, '5s', 100, 2 ** 31 - 1, 2 ** 31)),
  retain: durationOf(fc.constantFrom<unknown>('7d', '1h', 2 ** 31 * 1000, (2 ** 31 - 1) * 1000, 1)),
};
/** Patterns: rare ticks (none fires during a case), and bad ones. */
const patternArb = fc.oneof(
  fc.constantFrom<unknown>('0 3 * * *', '0 0 1 1 *', '@yearly', '0 0 29 2 *', '0 0 12 * * MON'),
  fc.constantFrom<unknown>('', '  ', 'not a cron', '61 * * * *', '* * *', 5),
  odd,
);
const patternRule = (v: unknown) => (typeof v === 'string' && v.trim() !== '' && cronAccepts(v) ? ok(v) : bad);

/** A retention long enough for the TTL monitor to leave a record alone during a case. */
const durableRetainArb = durationOf(fc.constantFrom<unknown>('7d', '1h', 2 ** 31 * 1000, (2 ** 31 - 1) * 1000));
const runOnceKeys = {
  ttl: ttlArb,
  retries: retriesArb,
  wait: durationOf(fc.constantFrom<unknown>(0, '0ms', '1s', 5000, 2 ** 31 - 1, 2 ** 31, Infinity)),
  retain: durableRetainArb.filter((v) => {
    const d = duration(v, { max: MAX_TIMER * 1000 });
    return !d.ok || (d.value as number) >= 3600_000;
  }),
};
/** Ticks: ordinary dates, the extremes of Date, years beyond 9999, and values that are not dates. */
const scheduledAtArb = fc.oneof(
  fc.date({
    min: new Date('2000-01-01T00:00:00.000Z'),
    max: new Date('2200-01-01T00:00:00.000Z'),
    noInvalidDate: true,
  }),
  fc.constantFrom<unknown>(
    new Date(MAX_DATE),
    new Date(-MAX_DATE),
    new Date(253402300800000), // +010000-01-01
    new Date(-1),
    new Date(NaN),
    '2030-01-01T00:00:00.000Z',
    1_900_000_000_000,
  ),
  odd,
);
const dateRule = (v: unknown) => (v instanceof Date && !Number.isNaN(v.getTime()) ? ok(v) : bad);

/** An error that names `key` must also say so in its fields (`argument` contains it). */
function fieldsProblem(error: unknown, keys: readonly string[]): string {
  const argument = (error as { argument?: unknown }).argument;
  if (typeof argument !== 'string') return `the error has no argument field: ${describeError(error)}`;
  if (!keys.some((key) => argument.includes(key)))
    return `error.argument is "${argument}", expected one of ${keys.join(', ')}`;
  return '';
}

let runnerA: LockManager;
let runnerB: LockManager;
/** Ticks no other case uses: a date of its own per case. */
const tickBase = Date.UTC(2150, 0, 1) + (process.pid % 1000) * 1e9;
const freshTick = () => new Date(tickBase + ++serial * 60_000);
/** A name of exactly the longest a schedule name may be, unique to the case. */
const longestName = (prefix: string) => {
  const head = `${fresh(prefix)}-`;
  return head + 'é'.repeat(Math.floor((SCHEDULE_NAME_BYTES - head.length) / 2)) + (head.length % 2 ? '' : 'x');
};

async function storedRun(id: string): Promise<Record<string, unknown> | null> {
  return raw.db!.collection(RUNS).findOne({ _id: id as never });
}

describe('options fuzzer: scheduled jobs', () => {
  beforeAll(async () => {
    runnerA = await locks.manager({ ttl: BASE.ttl, poll: BASE.poll });
    runnerB = await locks.manager({ ttl: BASE.ttl, poll: BASE.poll });
    for (const m of [runnerA, runnerB]) m.on('error', () => {});
  });

  test('manager.schedule(name, pattern, fn, options)', () =>
    check(
      15,
      property(fc.record({ bag: bagArb(scheduleKeys), pattern: patternArb }), async ({ bag, pattern }) => {
        const name = fresh('sched');
        let job: ScheduledJob | undefined;
        let calls = 0;
        const expected = expectations(bag, (view) => judge(view, scheduleRules)).map((e): Expectation => {
          if (patternRule(pattern).ok) return e;
          return { kind: 'invalid', keys: ['pattern', ...(e.kind === 'valid' ? [] : e.keys)] };
        });
        try {
          await runCase(
            expected,
            () =>
              (job = base.schedule(
                name,
                pattern as string,
                () => {
                  calls++;
                },
                build(bag) as never,
              )),
            async (o, v) => {
              const j = resolvedValue(o) as ScheduledJob;
              expectEqual(j.name, name, 'job.name');
              const next = j.nextRun();
              const now = Date.now();
              if (!(next instanceof Date) || !(next.getTime() > now - 1000))
                throw new Error(`job.nextRun() is ${show(next)}, expected a Date in the future`);
              const cronNext = new Cron(pattern as string, {
                timezone: v.timezone as string | undefined,
                paused: true,
              }).nextRun();
              expectEqual(next.getTime(), cronNext?.getTime(), `job.nextRun() (time zone ${show(v.timezone)})`);
              await within(j.stop(), SETTLE, 'job.stop()');
              expectEqual(j.stopped, true, 'job.stopped after stop()');
              expectEqual(j.nextRun(), null, 'job.nextRun() after stop()');
              expectEqual(calls, 0, 'runs of a pattern with no tick due');
              const records = await within(base.runs(name), SETTLE, 'runs()');
              expectEqual(records.length, 0, 'run records of a schedule with no tick due');
            },
            { async: false, fields: true },
          );
        } finally {
          if (job) await within(job.stop(), SETTLE, 'job.stop()');
        }
      }),
      SHARE,
    ));

  test('manager.runOnce(name, scheduledAt, fn, options): runs once, attempt 1, recorded; then done', () =>
    check(
      20,
      property(
        fc.record({ bag: bagArb(runOnceKeys), at: scheduledAtArb, longest: fc.boolean() }),
        async ({ bag, at, longest }) => {
          const name = longest ? longestName('once') : fresh('once');
          const seen: Run[] = [];
          const expected = expectations(bag, (view) => judge(view, runOnceRules)).map((e): Expectation => {
            if (dateRule(at).ok) return e;
            return { kind: 'invalid', keys: ['scheduledAt', ...(e.kind === 'valid' ? [] : e.keys)] };
          });
          const fn = async (run: Run) => {
            seen.push(run);
            const claim = claimOf(run.lease);
            if (!claim) throw new Error('fn was called without a held lease');
            const problem = claimProblem(
              claim,
              (await readLocks(raw, COLLECTION, [run.lease.name])).get(run.lease.name),
            );
            if (problem) throw new Error(`inside fn: ${problem}`);
            return run.token;
          };
          await runCase(
            expected,
            () => base.runOnce(name, at as Date, fn, build(bag) as never),
            async (o, v) => {
              const result = resolvedValue(o) as { ran: boolean; result?: unknown; outcome?: unknown };
              const tick = (at as Date).getTime();
              if (result?.ran !== true) throw new Error(`runOnce of a new tick resolved ${show(result)}`);
              expectEqual(seen.length, 1, 'fn calls');
              const run = seen[0]!;
              expectEqual(run.attempt, 1, 'run.attempt');
              expectEqual(run.name, name, 'run.name');
              expectEqual(run.scheduledAt.getTime(), tick, 'run.scheduledAt');
              expectEqual(result.result, run.token, 'the result');
              const records = await within(base.runs(name), SETTLE, 'runs()');
              // A tick older than `retain` is recorded already past its expiry: the server's TTL
              // monitor may remove it at any moment (documented), and then nothing more to check.
              if (records.length === 0 && tick + (v.retain as number) <= Date.now()) return;
              expectEqual(records.length, 1, 'records of the tick');
              const record = records[0]!;
              expectEqual(record.outcome, 'done', 'record.outcome');
              expectEqual(record.attempt, 1, 'record.attempt');
              expectEqual(record.token, run.token, 'record.token');
              expectEqual(record.owner, base.owner, 'record.owner');
              expectEqual(record.scheduledAt.getTime(), tick, 'record.scheduledAt');
              // Kept for `retain` (documented: expireAt = scheduledAt + retain).
              const doc = await storedRun(run.lease.name);
              const expireAt = doc?.expireAt as Date | undefined;
              const keepUntil = Math.min(tick + (v.retain as number), MAX_DATE);
              // As above: past its retention, the record may go between the two reads.
              if (doc === null && keepUntil <= Date.now()) return;
              if (!(expireAt instanceof Date) || !(expireAt.getTime() >= keepUntil))
                throw new Error(
                  `the record's expireAt is ${show(expireAt)}, expected at least ${new Date(keepUntil).toISOString()}`,
                );
              if (keepUntil <= Date.now()) return; // as above: the record may go before the second call
              const again = await within(
                base.runOnce(name, at as Date, fn, build(bag) as never),
                SETTLE,
                'a second runOnce of the tick',
              );
              expectEqual(show(again), show({ ran: false, outcome: 'done' }), 'a second runOnce of a done tick');
              expectEqual(seen.length, 1, 'fn calls after a second runOnce');
            },
            { namer: optionNamer, fields: true },
          );
        },
      ),
      SHARE,
    ));

  test('manager.runs(name, options): newest first, at most limit', () => {
    const name = fresh('runs');
    const ticks = [5, 1, 4, 2, 3].map((m) => new Date(Date.UTC(2150, 5, 1, 0, m)));
    return (async () => {
      // Five done records, written by a manager of their own (so that nothing this file did to
      // `base` before can reach them). A long ttl: a lease that lapsed on a loaded machine would
      // leave its tick `lost` (rightly), and this property is about the listing, not lapses. Should
      // a tick still not run, the failure says how its lease ended.
      const writer = await locks.manager({ connection: raw, collection: COLLECTION, ttl: '5m' });
      const ended: string[] = [];
      writer.on('lost', (lease, error) => ended.push(`${lease.name} lost (${error.reason}: ${error.message})`));
      writer.on('error', (error) => ended.push(`error: ${error.message}`));
      try {
        for (const tick of ticks) {
          const result = await writer.runOnce(name, tick, () => 0);
          expectEqual(
            show(result),
            show({ ran: true, result: 0 }),
            `runOnce of ${tick.toISOString()} (${ended.join('; ') || 'no lease lost, no error'})`,
          );
        }
      } finally {
        await writer.close();
      }
      await check(
        20,
        property(
          bagArb({
            limit: fc.oneof(
              fc.integer({ min: 1, max: 7 }),
              fc.constantFrom<unknown>(2 ** 31, 2 ** 53 - 1, 1e20, 0, 1.5, '3'),
              odd,
            ),
          }),
          async (spec) =>
            runCase(
              expectations(spec, (view) =>
                judge(view, {
                  limit: (v) =>
                    v === undefined ? ok(100) : typeof v === 'number' && Number.isInteger(v) && v >= 1 ? ok(v) : bad,
                }),
              ),
              () => base.runs(name, build(spec) as never),
              (o, v) => {
                const records = resolvedValue(o) as RunRecord[];
                if (!Array.isArray(records)) throw new Error(`runs() resolved ${show(records)}`);
                expectEqual(records.length, Math.min(v.limit as number, ticks.length), 'the number of records');
                const times = records.map((r) => r.scheduledAt.getTime());
                const newestFirst = ticks
                  .map((t) => t.getTime())
                  .sort((a, b) => b - a)
                  .slice(0, records.length);
                expectEqual(show(times), show(newestFirst), 'scheduledAt of the records (newest first)');
                for (const r of records) {
                  expectEqual(r.name, name, 'record.name');
                  expectEqual(r.outcome, 'done', 'record.outcome');
                }
              },
              { fields: true },
            ),
        ),
        SHARE,
      );
    })();
  });

  const isoArb = fc.oneof(
    fc.constantFrom<unknown>('valid', 'valid', 'valid'),
    fc.constantFrom<unknown>(
      '2024-02-30T00:00:00.000Z',
      '2024-01-01T24:00:00.000Z',
      '2024-13-01T00:00:00.000Z',
      '2024-01-01T00:00:00Z',
      '2024-01-01T00:00:00.000+00:00',
      '+275760-09-13T00:00:00.000Z',
      '',
    ),
  );
  const keyNameArb = fc.constantFrom<unknown>('fresh', 'fresh', 'longest', 'tooLong', '', '\uD800', 'a:b');
  test('runCoordinator().shouldRun(key, ttlMs), then onComplete(key)', () =>
    check(
      20,
      property(
        fc.record({
          keyName: keyNameArb,
          iso: isoArb,
          whole: fc.oneof(fc.constant<unknown>('built'), fc.constant<unknown>('built'), odd),
          ttl: ttlArb,
        }),
        async ({ keyName, iso, whole, ttl }) => {
          const coordinator = base.runCoordinator();
          const stamp = iso === 'valid' ? freshTick().toISOString() : (iso as string);
          const taskName =
            keyName === 'fresh'
              ? fresh('coord')
              : keyName === 'longest'
                ? longestName('coord')
                : keyName === 'tooLong'
                  ? `${longestName('coord')}x`
                  : keyName === 'a:b'
                    ? `${fresh('co')}:b`
                    : (keyName as string);
          const key = whole === 'built' ? `${taskName}:${stamp}` : whole;
          const date = new Date(stamp);
          const keyOk =
            typeof key === 'string' &&
            scheduleName(taskName).ok &&
            !Number.isNaN(date.getTime()) &&
            date.toISOString() === stamp &&
            whole === 'built';
          // An undefined ttlMs is absent, as every undefined option is: the manager's ttl.
          const ttlOk = ttl === undefined || duration(ttl).ok;
          const wrong = [...(keyOk ? [] : ['key']), ...(ttlOk ? [] : ['ttl'])];
          await runCase(
            [wrong.length ? { kind: 'invalid', keys: wrong } : { kind: 'valid', value: {} }],
            () => coordinator.shouldRun(key as string, ttl as number),
            async (o) => {
              expectEqual(resolvedValue(o), true, 'shouldRun() of a new tick');
              const [record] = await within(base.runs(taskName), SETTLE, 'runs()');
              expectEqual(record?.outcome, 'running', 'the record while claimed');
              expectEqual(record?.attempt, 1, 'record.attempt');
              expectEqual(record?.scheduledAt.getTime(), date.getTime(), 'record.scheduledAt');
              await within(coordinator.onComplete(key as string), SETTLE, 'onComplete()');
              const [after] = await within(base.runs(taskName), SETTLE, 'runs()');
              expectEqual(after?.outcome, 'done', 'the record after onComplete()');
              expectEqual(after?.token, record?.token, 'record.token after onComplete()');
              expectEqual(
                await within(coordinator.shouldRun(key as string, ttl as number), SETTLE, 'shouldRun() again'),
                false,
                'shouldRun() of a done tick',
              );
            },
            { namer: (k) => k, fields: true },
          );
        },
      ),
      SHARE,
    ));

  /** What a value becomes inside node-cron's key string (String() of it; a value without one: its tag). */
  const asKeyPart = (value: unknown): string => {
    try {
      return String(value);
    } catch {
      return Object.prototype.toString.call(value); // a null-prototype object has no toString
    }
  };
  test('schedule names, through schedule, runOnce, runs and shouldRun', () =>
    check(
      30,
      fc.asyncProperty(
        fc.oneof(
          nameArb,
          fc.constantFrom<unknown>(
            'x'.repeat(SCHEDULE_NAME_BYTES),
            'x'.repeat(SCHEDULE_NAME_BYTES + 1),
            'é'.repeat(244),
          ),
        ),
        fc.constantFrom('schedule', 'runOnce', 'runs', 'shouldRun'),
        async (name, entry) => {
          const tick = freshTick();
          let job: ScheduledJob | undefined;
          const calls: Record<string, () => unknown> = {
            schedule: () => (job = base.schedule(name as string, '0 0 1 1 *', () => {})),
            runOnce: () => base.runOnce(name as string, tick, (run) => run.token, { wait: 0 }),
            runs: () => base.runs(name as string, { limit: 1 }),
            shouldRun: () => base.runCoordinator().shouldRun(`${asKeyPart(name)}:${tick.toISOString()}`, 2000),
          };
          // shouldRun() takes the name inside node-cron's key string: there it is what the key says.
          const valid = scheduleName(entry === 'shouldRun' ? asKeyPart(name) : name).ok;
          try {
            await runCase(
              [valid ? { kind: 'valid', value: {} } : { kind: 'invalid', keys: ['name', 'key'] }],
              calls[entry]!,
              async (o) => {
                const result = resolvedValue(o);
                if (entry === 'schedule') expectEqual((result as ScheduledJob).name, name, 'job.name');
                if (entry === 'runOnce')
                  expectEqual((result as { ran: boolean }).ran, true, 'runOnce of a new tick: ran');
                if (entry === 'runs' && !Array.isArray(result)) throw new Error('runs() is not an array');
                if (entry === 'shouldRun') {
                  expectEqual(result, true, 'shouldRun() of a new tick');
                  await within(
                    base.runCoordinator().onComplete(`${asKeyPart(name)}:${tick.toISOString()}`),
                    SETTLE,
                    'onComplete',
                  );
                }
              },
              { async: entry !== 'schedule', namer: (key) => key, fields: true },
            );
          } finally {
            if (job) await within(job.stop(), SETTLE, 'job.stop()');
          }
        },
      ),
      SHARE,
    ));

  test('one tick, runOnce from 2 or 3 managers at once: exactly one runs, attempt 1, recorded done', () =>
    check(
      5,
      property(
        fc.record({
          managers: fc.integer({ min: 2, max: 3 }),
          wait: fc.constantFrom<unknown>(undefined, 0),
          yields: fc.integer({ min: 0, max: 3 }),
        }),
        async ({ managers, wait, yields }) => {
          runs++;
          const name = fresh('race');
          const tick = freshTick();
          const ran: Run[] = [];
          const fn = async (run: Run) => {
            ran.push(run);
            for (let i = 0; i < yields; i++) await new Promise((resolve) => setImmediate(resolve));
            return run.token;
          };
          const callers = [base, runnerA, runnerB].slice(0, managers);
          const results = await within(
            Promise.all(callers.map((m) => m.runOnce(name, tick, fn, { wait: wait as number | undefined }))),
            SETTLE,
            'the runOnce calls',
          );
          expectEqual(ran.length, 1, 'fn calls across the managers');
          const winners = results.filter((r) => r.ran);
          expectEqual(winners.length, 1, 'results with ran: true');
          for (const r of results.filter((x) => !x.ran)) {
            const outcome = (r as { outcome: string }).outcome;
            if (outcome !== 'done' && outcome !== 'running') throw new Error(`a loser's outcome is ${outcome}`);
            if (wait === undefined && outcome !== 'done')
              throw new Error(`with the default wait a loser's outcome is ${outcome}, expected done`);
          }
          const [record, ...more] = await base.runs(name);
          expectEqual(more.length, 0, 'extra records');
          expectEqual(record?.outcome, 'done', 'record.outcome');
          expectEqual(record?.attempt, 1, 'record.attempt');
          expectEqual(record?.token, ran[0]!.token, 'record.token');
          expectEqual(show((winners[0] as { result: unknown }).result), show(ran[0]!.token), 'the winner result');
        },
      ),
      SHARE,
    ));
});
