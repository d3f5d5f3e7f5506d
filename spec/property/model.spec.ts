// Model-based sequences: generated runs of acquire / tryAcquire / withLock / release /
// forceAcquire / forceRelease / close / elect / resign across three managers (each on its own
// connection, as three processes would be) on two lock names. A small model says who should hold
// each name, and so what each call must return, wherever that is decidable (not while an election
// campaigns on the name). After every step the run is checked against the model and against the
// lock collection as stored (read directly, with the server's clock):
//   - a lease that says it is held (lease.held, or an `acquired` event) holds it by the
//     database's account: the document's token is the lease's and its expiry is in the future;
//   - so at most one live holder per name; fencing tokens never repeat and the stored one never
//     goes down; a lease displaced by force stops saying it holds within its watchdog interval;
//   - every promise settles (each is bounded, and a call that hangs fails the run);
//   - with `fair` managers (drawn per run) all of the above alike: the steps run one at a time,
//     so a wait that ended has left the queue and the model's answers are the unfair ones;
//   - no unhandled rejection; close() resolves; after a close no lock is left held by nobody
//     (no document owned by a closed manager still has a leaseId).
// Sizes: FUZZ_RUNS (sequences), FUZZ_COMMANDS (longest sequence), FUZZ_MINUTES (see support.ts).
// Replay: FUZZ_SEED, FUZZ_PATH and FUZZ_REPLAY_PATH (the counterexample's replayPath), with the
// same FUZZ_COMMANDS as the failing run (`npm run fuzz` uses 25, `npm test` 12).
import fc from 'fast-check';
import type { Connection } from 'mongoose';
import { LockError, LockManager, LockTimeoutError, type Election, type Lease } from '../../lib/index';
import { lockFixture } from '../helpers/locks';
import {
  claimOf,
  claimProblem,
  describeError,
  fuzzParameters,
  propertyTimeout,
  readLocks,
  recordCounts,
  rejectionRecorder,
  settle as settleWithin,
  within,
  type Claim,
  type StoredLock,
} from './support';

const COLLECTION = 'prop_model';
const locks = lockFixture({ collection: COLLECTION });
const SLOTS = 3;
/** How far a lease's local deadline may be ahead of the server's, plus timer lateness, in ms. */
const CLOCK_SLACK = 100;
const TTL = 5000; // heartbeat ttl / 3: a stall of over three seconds would be needed to lose a lease
const INTERVAL = TTL / 3; // the watchdog's interval: how often a holder re-reads its lock
const STEP = 20_000; // no step should take nearly this long: a call that does has hung
/** How long a lease displaced by force may go on saying it holds: its watchdog's next look, and slack for a busy machine. */
const DISPLACED_GRACE = INTERVAL + 4000;
const MAX_COMMANDS = Number(process.env.FUZZ_COMMANDS ?? 12);

const rejections = rejectionRecorder();
const connections: Connection[] = [];
let raw: Connection;
let sequences = 0;
let commands = 0;
let runSerial = 0;

beforeAll(async () => {
  rejections.install();
  for (let i = 0; i < SLOTS; i++) connections.push(await locks.db.connect());
  raw = await locks.db.connect();
});

afterAll(() => {
  rejections.remove();
  recordCounts({ suite: 'model', runs: sequences, sequences, commands });
  expect(rejections.since(0)).toBe('');
});

// ---------------------------------------------------------------------------------------------
// The system under test, and the model.

interface Slot {
  manager: LockManager;
  owner: string;
  generation: number;
}

interface Real {
  readonly run: number;
  /** Every manager of the run is `fair` (FIFO waiting): drawn per run. */
  readonly fair: boolean;
  readonly names: readonly [string, string];
  readonly slots: Slot[];
  /** Every lease a command made (held or not), in order. */
  readonly leases: Lease[];
  /** Open elections (closed ones are removed). */
  readonly elections: { election: Election; slot: number; name: string }[];
  /** Leases whose hold was ended by someone else's force, and when. */
  readonly displaced: Map<Lease, number>;
  /** Per name: when the last force (forceRelease or forceAcquire) on it ended. */
  readonly forceEnds: Map<string, number>;
  /** Per name: forces begun (a force in flight may displace a hold an `acquired` check is looking at). */
  readonly forces: Map<string, number>;
  /** Names a force is in flight on. */
  readonly forcing: Set<string>;
  /** Leases that emitted `lost`, with the reason. */
  readonly lost: Map<Lease, string>;
  /** Tokens of every `acquired` event, per name. */
  readonly tokens: Map<string, Set<number>>;
  /** The stored token per name at the last check. */
  readonly stored: Map<string, number>;
  /** Owners of managers that were closed. */
  readonly closedOwners: Set<string>;
  /** Checks started by `acquired` events, awaited at the next step's check. */
  readonly pending: Promise<string>[];
  readonly problems: string[];
  /** Background errors of the managers (reported, not failures). */
  readonly errors: string[];
  readonly log: string[];
  /** Unhandled rejections recorded before this run began. */
  readonly rejectionsFrom: number;
}

interface Model {
  /** Per name: the lease that should hold it (a command's), or null; undefined: unknown (resync pending). */
  readonly holder: Map<string, Lease | null | undefined>;
}

function newManager(real: Real, slot: number, generation: number): Slot {
  const owner = `r${real.run}-s${slot}-g${generation}`;
  const manager = new LockManager({
    connection: connections[slot]!,
    collection: COLLECTION,
    ttl: TTL,
    poll: 50,
    owner,
    fair: real.fair,
  });
  manager.on('error', (error) => void real.errors.push(`${owner}: ${describeError(error)}`));
  manager.on('lost', (lease, error) => void real.lost.set(lease, error.reason));
  manager.on('acquired', (lease, event) => {
    const seen = real.tokens.get(event.name) ?? new Set<number>();
    if (seen.has(event.token)) real.problems.push(`token ${event.token} of "${event.name}" was handed out twice`);
    seen.add(event.token);
    real.tokens.set(event.name, seen);
    const before = real.stored.get(event.name) ?? 0;
    if (event.token < before)
      real.problems.push(`acquired "${event.name}" with token ${event.token}, below the stored ${before}`);
    real.pending.push(checkAcquired(real, lease, { lease, token: event.token, expiresAt: event.expiresAt }));
  });
  return { manager, owner, generation };
}

/** An `acquired` event: while the lease still holds that token, the database must agree. */
async function checkAcquired(real: Real, lease: Lease, claim: Claim): Promise<string> {
  const forces = real.forces.get(lease.name) ?? 0;
  const forcingAtEvent = real.forcing.has(lease.name);
  const stored = await readLocks(raw, COLLECTION, [lease.name]);
  if (!lease.held || lease.token !== claim.token || real.displaced.has(lease)) return '';
  // A force in flight at the event, begun meanwhile, or still in flight may have ended this hold
  // (a forceRelease applied just after the grant): judged at the step's check instead.
  if (forcingAtEvent || (real.forces.get(lease.name) ?? 0) !== forces || real.forcing.has(lease.name)) return '';
  // A force that ended before the event was emitted: its reply came first, the grant's after.
  if (noteFreedByForce(real, claim, stored.get(lease.name))) return '';
  const problem = claimProblem(claim, stored.get(lease.name));
  return problem ? `at the acquired event: ${problem}` : '';
}

/**
 * A grant whose reply came after a forceRelease that freed it (the force applied just after the
 * grant, on another connection): displaced by that force, whose end it cannot have seen. The lock
 * is still free with the grant's token, or another grant took it since, after a force that ended
 * after this grant was made (server and test share one machine's clock). Marks it so and says
 * whether it is.
 */
function noteFreedByForce(real: Real, claim: Claim, doc: StoredLock | undefined): boolean {
  if (real.displaced.has(claim.lease)) return true;
  const forced = real.forceEnds.get(claim.lease.name);
  if (forced === undefined || doc?.token === undefined) return false;
  const stillFree = doc.token === claim.token && doc.leaseId === null;
  const grantedAt = claim.expiresAt.getTime() - claim.lease.ttl;
  const takenSince = doc.token > claim.token && forced >= grantedAt - CLOCK_SLACK;
  if (!stillFree && !takenSince) return false;
  real.displaced.set(claim.lease, forced);
  return true;
}

const allLeases = (real: Real) => real.slots.flatMap((s) => s.manager.heldLeases);
const electionOpen = (real: Real, name: string) => real.elections.some((e) => e.name === name);

/** Marks every lease holding `name` (other than `except`) as displaced by force now. */
function displace(real: Real, name: string, except?: Lease): void {
  for (const lease of allLeases(real)) {
    if (lease.name === name && lease !== except && !real.displaced.has(lease)) real.displaced.set(lease, Date.now());
  }
}

/** What the model says of `name`: the lease that holds it, null for free, undefined when it cannot say. */
function expectedHolder(model: Model, real: Real, name: string): Lease | null | undefined {
  if (electionOpen(real, name)) return undefined;
  const holder = model.holder.get(name);
  // A holder that lost its lease on its own (a stall of seconds) makes the name undecidable until resync.
  if (holder && real.lost.has(holder) && !real.displaced.has(holder)) return undefined;
  return holder;
}

/** After elections or a loss made a name undecidable: the model takes up what the leases say. */
function resync(model: Model, real: Real): void {
  for (const name of real.names) {
    if (electionOpen(real, name)) {
      model.holder.set(name, undefined);
      continue;
    }
    const holder = model.holder.get(name);
    if (holder === undefined || (holder && real.lost.has(holder) && !real.displaced.has(holder))) {
      const held = real.leases.filter((l) => l.name === name && l.held && !real.displaced.has(l));
      model.holder.set(name, held.length === 1 ? held[0]! : held.length === 0 ? null : undefined);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The checks after every step.

async function checkInvariants(model: Model, real: Real, step: string): Promise<void> {
  const problems = [...real.problems.splice(0)];
  for (const p of await within(Promise.all(real.pending.splice(0)), STEP, 'the acquired-event checks')) {
    if (p) problems.push(p);
  }
  // Sample every claim, then read the documents (with the server's clock).
  const claims = allLeases(real)
    .map(claimOf)
    .filter((c): c is Claim => c !== undefined);
  const stored = await within(readLocks(raw, COLLECTION, real.names), STEP, 'reading the locks');
  for (const claim of claims) {
    noteFreedByForce(real, claim, stored.get(claim.lease.name));
    const since = real.displaced.get(claim.lease);
    if (since !== undefined) {
      if (Date.now() - since > DISPLACED_GRACE)
        problems.push(
          `lease "${claim.lease.name}" (token ${claim.token}) still says held ${Date.now() - since} ms after it was displaced by force`,
        );
      continue;
    }
    const problem = claimProblem(claim, stored.get(claim.lease.name));
    if (problem) problems.push(problem);
  }
  for (const name of real.names) {
    const live = claims.filter(
      (c) => c.lease.name === name && !real.displaced.has(c.lease) && c.expiresAt > stored.get(name)!.now,
    );
    if (live.length > 1) problems.push(`${live.length} leases say they hold "${name}" at once`);
    const doc = stored.get(name)!;
    const before = real.stored.get(name) ?? 0;
    if (doc.token !== undefined) {
      if (doc.token < before) problems.push(`the stored token of "${name}" went down from ${before} to ${doc.token}`);
      real.stored.set(name, Math.max(before, doc.token));
    }
    problems.push(...orphanProblems(real, name, doc));
  }
  const unhandled = rejections.since(real.rejectionsFrom);
  if (unhandled) problems.push(`unhandled rejection: ${unhandled}`);
  if (problems.length) throw new Error(`after ${step}:\n  - ${problems.join('\n  - ')}\n  log: ${real.log.join('; ')}`);
}

/** A document owned by a closed manager must not be held: its holder is gone. */
function orphanProblems(real: Real, name: string, doc: StoredLock): string[] {
  if (doc.owner === undefined || !real.closedOwners.has(doc.owner) || doc.leaseId == null) return [];
  return [
    `"${name}" is left held by nobody: owner ${doc.owner} (closed) with a leaseId, token ${doc.token}, expiresAt ${doc.expiresAt?.toISOString()}${doc.live ? ' (live)' : ' (expired)'}`,
  ];
}

// ---------------------------------------------------------------------------------------------
// Commands.

const settle = (promise: Promise<unknown>, what: string) => settleWithin(promise, STEP, what);
const isCode = (error: unknown, ...codes: string[]) => error instanceof LockError && codes.includes(error.code);

abstract class Step implements fc.AsyncCommand<Model, Real, false> {
  check(): boolean {
    return true;
  }
  async run(model: Model, real: Real): Promise<void> {
    commands++;
    real.log.push(this.toString());
    const failures: string[] = [];
    await this.act(model, real, failures);
    resync(model, real);
    if (failures.length) throw new Error(`${this.toString()}: ${failures.join('; ')}\n  log: ${real.log.join('; ')}`);
    await checkInvariants(model, real, this.toString());
  }
  abstract act(model: Model, real: Real, failures: string[]): Promise<void>;
  abstract toString(): string;
}

/** tryAcquire, acquire({ wait }) or withLock({ wait }) from `slot` on name `n`. */
class Take extends Step {
  constructor(
    readonly how: 'tryAcquire' | 'acquire' | 'withLock',
    readonly slot: number,
    readonly n: number,
    readonly wait: number,
  ) {
    super();
  }
  toString() {
    const opts = this.how === 'tryAcquire' ? '' : `, { wait: ${this.wait} }`;
    return `s${this.slot}.${this.how}(n${this.n}${opts})`;
  }
  async act(model: Model, real: Real, failures: string[]) {
    const { manager } = real.slots[this.slot]!;
    const name = real.names[this.n]!;
    const expected = expectedHolder(model, real, name);
    let fnCalls = 0;
    let inside: Lease | undefined;
    const call =
      this.how === 'tryAcquire'
        ? manager.tryAcquire(name, { ttl: TTL })
        : this.how === 'acquire'
          ? manager.acquire(name, { ttl: TTL, wait: this.wait })
          : manager.withLock(
              name,
              async (lease) => {
                fnCalls++;
                inside = lease;
                if (!lease.held) failures.push('withLock called fn without a held lease');
                const claim = claimOf(lease);
                if (claim) {
                  const problem = claimProblem(claim, (await readLocks(raw, COLLECTION, [name])).get(name));
                  if (problem) failures.push(`inside withLock's fn: ${problem}`);
                }
                return lease.token;
              },
              { ttl: TTL, wait: this.wait },
            );
    const outcome = await settle(call, this.toString());
    let got: Lease | null = null;
    if ('value' in outcome) {
      if (this.how === 'withLock') {
        if (fnCalls !== 1) failures.push(`withLock resolved after ${fnCalls} calls of fn`);
        if (inside?.held) failures.push('the lease is still held after withLock resolved');
      } else {
        got = outcome.value as Lease | null;
        if (got && !got.held) failures.push(`${this.how} resolved a lease that is not held`);
        if (got) real.leases.push(got);
      }
    } else {
      const timedOut = outcome.error instanceof LockTimeoutError;
      if (this.how === 'tryAcquire' || !timedOut) failures.push(`rejected: ${describeError(outcome.error)}`);
      if (fnCalls) failures.push('withLock rejected with a timeout yet called fn');
    }
    const succeeded = 'value' in outcome && (this.how === 'withLock' || got !== null);
    if (expected !== undefined) {
      const free = expected === null;
      if (free && !succeeded) failures.push(`"${name}" is free by the model, yet ${this.how} did not get it`);
      if (!free && succeeded) failures.push(`"${name}" is held by the model, yet ${this.how} got it`);
    }
    if (got) model.holder.set(name, got);
  }
}

class Release extends Step {
  constructor(readonly k: number) {
    super();
  }
  toString() {
    return `lease#${this.k}.release()`;
  }
  async act(model: Model, real: Real, failures: string[]) {
    if (real.leases.length === 0) return;
    const lease = real.leases[this.k % real.leases.length]!;
    const name = lease.name;
    const wasHolder = expectedHolder(model, real, name) === lease && lease.held;
    const outcome = await settle(lease.release(), this.toString());
    if ('value' in outcome) {
      if (wasHolder && outcome.value !== true)
        failures.push(`release() of the holder resolved ${String(outcome.value)}`);
    } else if (!isCode(outcome.error, 'not_acquired', 'closed') || wasHolder) {
      failures.push(`release() rejected: ${describeError(outcome.error)}`);
    }
    if (lease.held) failures.push('the lease says held after release() settled');
    if (model.holder.get(name) === lease) model.holder.set(name, null);
  }
}

class Force extends Step {
  constructor(
    readonly how: 'forceAcquire' | 'forceRelease',
    readonly slot: number,
    readonly n: number,
  ) {
    super();
  }
  toString() {
    return this.how === 'forceAcquire'
      ? `s${this.slot}.lease(n${this.n}).forceAcquire()`
      : `s${this.slot}.forceRelease(n${this.n})`;
  }
  async act(model: Model, real: Real, failures: string[]) {
    const name = real.names[this.n]!;
    const expected = expectedHolder(model, real, name);
    real.forces.set(name, (real.forces.get(name) ?? 0) + 1);
    real.forcing.add(name);
    try {
      await this.force(model, real, failures, name, expected);
    } finally {
      real.forcing.delete(name);
    }
  }
  async force(model: Model, real: Real, failures: string[], name: string, expected: Lease | null | undefined) {
    const { manager } = real.slots[this.slot]!;
    if (this.how === 'forceAcquire') {
      const lease = manager.lease(name, { ttl: TTL });
      displace(real, name);
      const outcome = await settle(lease.forceAcquire(), this.toString());
      displace(real, name, lease); // and any election that took it meanwhile
      // A grant applied just before the force, whose reply comes after it, is displaced too.
      real.forceEnds.set(name, Date.now());
      if ('error' in outcome) failures.push(`rejected: ${describeError(outcome.error)}`);
      else if (outcome.value !== true || !lease.held)
        failures.push(`resolved ${String(outcome.value)}, held ${lease.held}`);
      real.leases.push(lease);
      if (lease.held) model.holder.set(name, lease);
    } else {
      displace(real, name);
      const outcome = await settle(manager.forceRelease(name), this.toString());
      displace(real, name);
      real.forceEnds.set(name, Date.now());
      if ('error' in outcome) failures.push(`rejected: ${describeError(outcome.error)}`);
      else if (expected !== undefined && outcome.value !== (expected !== null))
        failures.push(
          `resolved ${String(outcome.value)}, but the model says "${name}" was ${expected ? 'held' : 'free'}`,
        );
      model.holder.set(name, electionOpen(real, name) ? undefined : null);
    }
  }
}

class Close extends Step {
  constructor(readonly slot: number) {
    super();
  }
  toString() {
    return `s${this.slot}.close()`;
  }
  async act(model: Model, real: Real, failures: string[]) {
    const slot = real.slots[this.slot]!;
    const mine = real.leases.filter((l) => slot.manager.heldLeases.includes(l));
    const elections = real.elections.filter((e) => e.slot === this.slot);
    const outcome = await settle(slot.manager.close(), this.toString());
    if ('error' in outcome) failures.push(`close() rejected: ${describeError(outcome.error)}`);
    real.closedOwners.add(slot.owner);
    if (slot.manager.heldLeases.length) failures.push('leases still held after close()');
    for (const lease of mine) if (lease.held) failures.push(`lease "${lease.name}" says held after close()`);
    for (const e of elections) {
      if (e.election.isLeader) failures.push(`election "${e.name}" leads after its manager closed`);
      real.elections.splice(real.elections.indexOf(e), 1);
    }
    for (const name of real.names) {
      const holder = model.holder.get(name);
      if (holder && mine.includes(holder)) model.holder.set(name, null);
    }
    // Nothing the closed manager held is left held by nobody.
    const stored = await within(readLocks(raw, COLLECTION, real.names), STEP, 'reading the locks');
    for (const name of real.names) failures.push(...orphanProblems(real, name, stored.get(name)!));
    real.slots[this.slot] = newManager(real, this.slot, slot.generation + 1);
  }
}

class Elect extends Step {
  constructor(
    readonly slot: number,
    readonly n: number,
  ) {
    super();
  }
  toString() {
    return `s${this.slot}.elect(n${this.n})`;
  }
  act(model: Model, real: Real, failures: string[]) {
    const name = real.names[this.n]!;
    if (real.elections.some((e) => e.slot === this.slot && e.name === name)) return Promise.resolve();
    try {
      const election = real.slots[this.slot]!.manager.elect(name, { ttl: TTL });
      real.elections.push({ election, slot: this.slot, name });
      model.holder.set(name, undefined);
    } catch (error) {
      failures.push(`elect() threw ${describeError(error)}`);
    }
    return Promise.resolve();
  }
}

class Resign extends Step {
  constructor(
    readonly k: number,
    readonly close: boolean,
  ) {
    super();
  }
  toString() {
    return `election#${this.k}.${this.close ? 'close' : 'resign'}()`;
  }
  async act(model: Model, real: Real, failures: string[]) {
    if (real.elections.length === 0) return;
    const entry = real.elections[this.k % real.elections.length]!;
    const { election } = entry;
    const leading = election.isLeader;
    if (this.close) {
      const outcome = await settle(election.close(), this.toString());
      if ('error' in outcome) failures.push(`close() rejected: ${describeError(outcome.error)}`);
      real.elections.splice(real.elections.indexOf(entry), 1);
    } else {
      const outcome = await settle(election.resign({ rejoinAfter: 200 }), this.toString());
      if ('error' in outcome) failures.push(`resign() rejected: ${describeError(outcome.error)}`);
      else if (leading && outcome.value !== true && !real.lost.size)
        failures.push(`resign() of the leader resolved ${String(outcome.value)}`);
    }
    if (election.isLeader && this.close) failures.push('the election leads after close()');
  }
}

const slot = fc.integer({ min: 0, max: SLOTS - 1 });
const nameIndex = fc.integer({ min: 0, max: 1 });
const commandArbs = [
  fc
    .tuple(fc.constantFrom<Take['how']>('tryAcquire', 'acquire', 'withLock'), slot, nameIndex, fc.constantFrom(0, 150))
    .map(([how, s, n, w]) => new Take(how, s, n, w)),
  fc
    .tuple(fc.constantFrom<Take['how']>('tryAcquire', 'acquire'), slot, nameIndex)
    .map(([how, s, n]) => new Take(how, s, n, 0)),
  fc.nat(20).map((k) => new Release(k)),
  fc.nat(20).map((k) => new Release(k)),
  fc
    .tuple(fc.constantFrom<Force['how']>('forceAcquire', 'forceRelease'), slot, nameIndex)
    .map(([how, s, n]) => new Force(how, s, n)),
  slot.map((s) => new Close(s)),
  fc.tuple(slot, nameIndex).map(([s, n]) => new Elect(s, n)),
  fc.tuple(fc.nat(10), fc.boolean()).map(([k, c]) => new Resign(k, c)),
];

// ---------------------------------------------------------------------------------------------

test(
  'model-based sequences across three managers and two names',
  () =>
    fc.assert(
      fc.asyncProperty(
        fc.boolean(),
        fc.commands(commandArbs, {
          maxCommands: MAX_COMMANDS,
          size: 'large',
          // A reported counterexample's /*replayPath="..."*/, with FUZZ_SEED and FUZZ_PATH, replays it.
          ...(process.env.FUZZ_REPLAY_PATH ? { replayPath: process.env.FUZZ_REPLAY_PATH } : {}),
        }),
        async (fair, cmds) => {
          sequences++;
          const run = ++runSerial;
          const real: Real = {
            run,
            fair,
            names: [`run${run}-a`, `run${run}-b`],
            slots: [],
            leases: [],
            elections: [],
            displaced: new Map(),
            forceEnds: new Map(),
            forces: new Map(),
            forcing: new Set(),
            lost: new Map(),
            tokens: new Map(),
            stored: new Map(),
            closedOwners: new Set(),
            pending: [],
            problems: [],
            errors: [],
            log: fair ? ['fair'] : [],
            rejectionsFrom: rejections.seen.length,
          };
          for (let i = 0; i < SLOTS; i++) real.slots.push(newManager(real, i, 0));
          const model: Model = { holder: new Map(real.names.map((n) => [n, null])) };
          try {
            await fc.asyncModelRun(() => ({ model, real }), cmds);
          } finally {
            // Every election and manager closes, and nothing is left held by nobody.
            await within(
              Promise.all(real.elections.map((e) => e.election.close())),
              STEP,
              'closing the elections at the end',
            );
            await within(
              Promise.all(
                real.slots.map((s) => {
                  real.closedOwners.add(s.owner);
                  return s.manager.close();
                }),
              ),
              STEP,
              'closing the managers at the end',
            );
          }
          const stored = await readLocks(raw, COLLECTION, real.names);
          const left = real.names.flatMap((name) => orphanProblems(real, name, stored.get(name)!));
          if (left.length)
            throw new Error(`after closing everything: ${left.join('; ')}\n  log: ${real.log.join('; ')}`);
          const unhandled = rejections.since(real.rejectionsFrom);
          if (unhandled) throw new Error(`unhandled rejection: ${unhandled}`);
        },
      ),
      fuzzParameters(Number(process.env.FUZZ_SEQUENCES ?? 10)),
    ),
  propertyTimeout(55_000),
);
