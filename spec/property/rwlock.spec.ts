// Model-based sequences of a read-write lock: generated runs of read / write / withRead / withWrite
// ({ wait }), release and close across three managers (each on its own connection, as three
// processes would be) on one read-write lock. A model keeps the holds and their modes, and so says
// what each call must return (a read gets in exactly when no writer holds the lock, a write exactly
// when nobody does). After every step the run is checked against the model and against the lock's
// document as stored (read directly, with the server's clock):
//   - at most one live writer, and then no live reader;
//   - fencing tokens strictly increase, grant after grant (reads and writes), and the stored
//     counter never goes down;
//   - a hold says `held` only while the document lists it (its token and mode, live by `$$NOW`),
//     and every live holder in the document is a hold that says held (nothing left behind);
//   - no live writer marker is left once a step has settled (a writer that gave up took it away),
//     and, for a lock declared `fair` (half the sequences), no live queue entry either (a waiter
//     that gave up left the queue);
//   - inspect() shows a writer or readers, never both, and every hold that says held in its mode;
//   - every promise settles, no unhandled rejection, close() resolves.
// Sizes: FUZZ_RUNS (sequences), FUZZ_COMMANDS (longest sequence), FUZZ_MINUTES (see support.ts).
// Replay: FUZZ_SEED, FUZZ_PATH and FUZZ_REPLAY_PATH, with the same FUZZ_COMMANDS as the failing run.
import fc from 'fast-check';
import { LockManager, LockTimeoutError, type Lease } from '../../lib/index';
import { lockFixture } from '../helpers/locks';
import { describeError, fuzzParameters, propertyTimeout, within } from './support';
import { sequenceSuite } from './sequences';

type Mode = 'read' | 'write';

const COLLECTION = 'prop_rwlock';
const locks = lockFixture({ collection: COLLECTION });
const SLOTS = 3;
const TTL = 5000; // heartbeat ttl / 3: a stall of over three seconds would be needed to lose a hold
const STEP = 20_000; // no step should take nearly this long: a call that does has hung
const MAX_COMMANDS = Number(process.env.FUZZ_COMMANDS ?? 12);
/** This property's share of its file's FUZZ_MINUTES: the file's only property, all of it. */
const SHARE = 1;

let runSerial = 0;

interface Real {
  readonly name: string;
  /** The sequence declares its lock `fair`: the same grants (steps run one at a time), a queue. */
  readonly fair: boolean;
  readonly managers: LockManager[];
  /** Every hold a command got, in order. */
  readonly leases: Lease[];
  /** The mode of each hold. */
  readonly modes: Map<Lease, Mode>;
  /** Tokens of every `acquired` event, in order. */
  readonly tokens: number[];
  /** Holds that emitted `lost` or `timeout`. */
  readonly ended: Set<Lease>;
  stored: number;
  readonly log: string[];
  readonly rejectionsFrom: number;
}

interface Model {
  /** The holds, by the model's account (their modes in `Real.modes`). */
  readonly held: Set<Lease>;
}

function newManager(real: Real, slot: number): LockManager {
  const manager = new LockManager({
    connection: suite.connections[slot]!,
    collection: COLLECTION,
    ttl: TTL,
    poll: 50,
    owner: `${real.name}-s${slot}-${real.log.length}`,
  });
  manager.on('error', () => {});
  manager.on('acquired', (lease, event) => void real.tokens.push(event.token));
  manager.on('lost', (lease) => void real.ended.add(lease));
  manager.on('timeout', (lease) => void real.ended.add(lease));
  return manager;
}

/** The lock's live holders (by `$$NOW`), its token counter, whether a live marker is set, the server's clock. */
async function readLock(name: string) {
  const [doc] = await suite
    .raw()
    .db!.collection(`${COLLECTION}.rwlocks`)
    .aggregate<{ token?: number; live: { token: number; mode: Mode }[]; marker: boolean; queued: number; now: Date }>([
      { $match: { _id: name } },
      {
        $project: {
          token: 1,
          now: '$$NOW',
          marker: { $gt: ['$writerWaiting.expiresAt', '$$NOW'] },
          queued: {
            $size: { $filter: { input: { $ifNull: ['$queue', []] }, cond: { $gt: ['$$this.expiresAt', '$$NOW'] } } },
          },
          live: { $filter: { input: { $ifNull: ['$holders', []] }, cond: { $gt: ['$$this.expiresAt', '$$NOW'] } } },
        },
      },
    ])
    .toArray();
  return {
    token: doc?.token === undefined ? 0 : Number(doc.token),
    live: (doc?.live ?? []).map((h) => ({ token: Number(h.token), mode: h.mode })),
    marker: doc?.marker === true,
    queued: doc?.queued ?? 0,
    now: doc?.now,
  };
}

async function checkInvariants(model: Model, real: Real, step: string): Promise<void> {
  const problems: string[] = [];
  const claims = real.leases
    .filter((l) => l.held)
    .map((l) => ({ mode: real.modes.get(l), token: l.token!, expiresAt: l.expiresAt! }));
  const stored = await within(readLock(real.name), STEP, 'reading the lock');
  const writers = stored.live.filter((h) => h.mode === 'write').length;
  if (writers > 1) problems.push(`${writers} live writers`);
  if (writers === 1 && stored.live.length > 1) problems.push(`a live writer beside ${stored.live.length - 1} readers`);
  if (stored.marker) problems.push('a live writer marker is left after the step');
  if (stored.queued > 0) problems.push(`${stored.queued} live queue entries are left after the step`);
  for (const claim of claims) {
    if (stored.now && stored.now >= claim.expiresAt) continue;
    if (!stored.live.some((h) => h.token === claim.token && h.mode === claim.mode))
      problems.push(`a ${claim.mode} hold says held with token ${claim.token}, but the document does not list it live`);
  }
  for (const holder of stored.live) {
    const hold = real.leases.find((l) => l.token === holder.token);
    if (!hold) problems.push(`the document lists token ${holder.token}, which no hold was given`);
    else if (!hold.held && !real.ended.has(hold))
      problems.push(`the document lists token ${holder.token} live, but its hold says not held`);
  }
  // inspect() through a manager still open shows what the document holds: a writer or readers,
  // never both, and every hold that says held (with a second to spare) in its mode.
  const open = real.managers.find((m) => !m.closed);
  if (open) {
    const info = await within(open.readWriteLock(real.name).inspect(), STEP, 'inspect()');
    if (info.writer && info.readers.length > 0)
      problems.push(`inspect() shows a writer and ${info.readers.length} readers`);
    const shown = [
      ...info.readers.map((h) => ({ token: h.token, mode: 'read' })),
      ...(info.writer ? [{ token: info.writer.token, mode: 'write' }] : []),
    ];
    for (const claim of claims) {
      if (!stored.now || claim.expiresAt.getTime() - stored.now.getTime() < 1000) continue;
      const lease = real.leases.find((l) => l.token === claim.token);
      if (lease?.held && !shown.some((h) => h.token === claim.token && h.mode === claim.mode))
        problems.push(`inspect() does not show the ${claim.mode} hold ${claim.token}`);
    }
  }
  for (let i = 1; i < real.tokens.length; i++) {
    if (real.tokens[i]! <= real.tokens[i - 1]!)
      problems.push(`token ${real.tokens[i]} granted after ${real.tokens[i - 1]}: not increasing`);
  }
  if (stored.token < real.stored) problems.push(`the stored token went down from ${real.stored} to ${stored.token}`);
  real.stored = stored.token;
  for (const lease of model.held) {
    if (!lease.held && !real.ended.has(lease)) problems.push(`hold ${lease.token} should be held, and is not`);
  }
  const unhandled = suite.rejections.since(real.rejectionsFrom);
  if (unhandled) problems.push(`unhandled rejection: ${unhandled}`);
  if (problems.length)
    throw new Error(
      `after ${step}${real.fair ? ' (fair)' : ''}:\n  - ${problems.join('\n  - ')}\n  log: ${real.log.join('; ')}`,
    );
}

const suite = sequenceSuite<Model, Real>({
  name: 'rwlock',
  step: STEP,
  slots: SLOTS,
  db: locks.db,
  check: checkInvariants,
  newManager,
});
const { command, settle } = suite;

/** read/write({ wait }) or withRead/withWrite({ wait }) from `slot`: a hold exactly when the model says it is free. */
function take(mode: Mode, within: boolean, slot: number, wait: number) {
  const how = within ? (mode === 'read' ? 'withRead' : 'withWrite') : mode;
  const label = `s${slot}.${how}({ wait: ${wait} })`;
  return command(label, async (model, real, failures) => {
    const rw = real.managers[slot]!.readWriteLock(real.name, { ttl: TTL, fair: real.fair });
    const modes = [...model.held].map((l) => real.modes.get(l));
    const free = mode === 'read' ? !modes.includes('write') : modes.length === 0;
    let inside = '';
    const work = async (lease: Lease) => {
      const stored = await readLock(real.name);
      if (!lease.held) inside = 'fn was called without a held lease';
      else if (!stored.live.some((h) => h.token === lease.token && h.mode === mode))
        inside = `inside fn, the document does not list ${mode} token ${lease.token}`;
      real.leases.push(lease);
      real.modes.set(lease, mode);
      return lease.token;
    };
    const call = within
      ? mode === 'read'
        ? rw.withRead(work, { wait })
        : rw.withWrite(work, { wait })
      : mode === 'read'
        ? rw.read({ wait })
        : rw.write({ wait });
    const outcome = await settle(call, label);
    if (inside) failures.push(inside);
    const got = 'value' in outcome && !within ? (outcome.value as Lease) : null;
    if (got) {
      real.leases.push(got);
      real.modes.set(got, mode);
      model.held.add(got);
      if (!got.held) failures.push(`${how} resolved a lease that is not held`);
    }
    if ('error' in outcome && !(outcome.error instanceof LockTimeoutError))
      failures.push(`rejected: ${describeError(outcome.error)}`);
    const succeeded = 'value' in outcome;
    if (real.ended.size === 0 && succeeded !== free)
      failures.push(`held by the model: [${modes.join(', ')}], yet ${how} ${succeeded ? 'got' : 'did not get'} in`);
  });
}

const slot = fc.integer({ min: 0, max: SLOTS - 1 });
const commandArbs = [
  fc
    .tuple(fc.constantFrom<Mode>('read', 'write'), fc.boolean(), slot, fc.constantFrom(0, 150))
    .map(([mode, inFn, s, w]) => take(mode, inFn, s, w)),
  fc.tuple(slot, fc.constantFrom(0, 150)).map(([s, w]) => take('read', false, s, w)),
  fc.tuple(slot, fc.constantFrom(0, 150)).map(([s, w]) => take('write', false, s, w)),
  fc.nat(20).map(suite.release),
  fc.nat(20).map(suite.release),
  slot.map(suite.close),
];

test(
  'model-based sequences of one read-write lock across three managers',
  () =>
    fc.assert(
      fc.asyncProperty(
        fc.boolean(),
        fc.commands(commandArbs, {
          maxCommands: MAX_COMMANDS,
          size: 'large',
          ...(process.env.FUZZ_REPLAY_PATH ? { replayPath: process.env.FUZZ_REPLAY_PATH } : {}),
        }),
        async (fair, cmds) => {
          suite.counts.sequences++;
          const real: Real = {
            name: `run${++runSerial}`,
            fair,
            managers: [],
            leases: [],
            modes: new Map(),
            tokens: [],
            ended: new Set(),
            stored: 0,
            log: [],
            rejectionsFrom: suite.rejections.seen.length,
          };
          for (let i = 0; i < SLOTS; i++) real.managers.push(newManager(real, i));
          const model: Model = { held: new Set() };
          try {
            await fc.asyncModelRun(() => ({ model, real }), cmds);
          } finally {
            await suite.closeAll(real);
          }
          suite.afterRun(real, real.rejectionsFrom, (await readLock(real.name)).live.length);
        },
      ),
      fuzzParameters(Number(process.env.FUZZ_SEQUENCES ?? 8), SHARE),
    ),
  propertyTimeout(40_000, SHARE),
);
