// Model-based sequences of a counting semaphore: generated runs of tryAcquire / acquire({ wait })
// / withPermit / release / close across three managers (each on its own connection, as three
// processes would be) on one semaphore whose limit is drawn per run (1 to 3). A model counts the
// permits held, and so says what each call must return (a permit is free exactly when fewer than
// `limit` are held). After every step the run is checked against the model and against the
// semaphore's document as stored (read directly, with the server's clock):
//   - never more than `limit` live holders in the document;
//   - fencing tokens strictly increase, grant after grant, and the stored counter never goes down;
//   - a permit says `held` only while the document lists it (its token, live by `$$NOW`), and
//     every live holder in the document is a permit that says held (nothing left behind: not
//     after a release, nor after a close);
//   - every promise settles, no unhandled rejection, close() resolves;
//   - with `fair` (drawn per run): the same, and no live queue entry is left between steps (a wait
//     that ended, granted or not, has left the queue; the steps run one at a time, so a fair run
//     must answer exactly as the unfair model says).
// Sizes: FUZZ_RUNS (sequences), FUZZ_COMMANDS (longest sequence), FUZZ_MINUTES (see support.ts).
// Replay: FUZZ_SEED, FUZZ_PATH and FUZZ_REPLAY_PATH, with the same FUZZ_COMMANDS as the failing run.
import fc from 'fast-check';
import { LockManager, LockTimeoutError, type Lease } from '../../lib/index';
import { lockFixture } from '../helpers/locks';
import { describeError, fuzzParameters, propertyTimeout, within } from './support';
import { sequenceSuite } from './sequences';

const COLLECTION = 'prop_semaphore';
const locks = lockFixture({ collection: COLLECTION });
const SLOTS = 3;
const TTL = 5000; // heartbeat ttl / 3: a stall of over three seconds would be needed to lose a permit
const STEP = 20_000; // no step should take nearly this long: a call that does has hung
const MAX_COMMANDS = Number(process.env.FUZZ_COMMANDS ?? 12);
/** This property's share of its file's FUZZ_MINUTES: the file's only property, all of it. */
const SHARE = 1;
let runSerial = 0;

interface Real {
  readonly name: string;
  readonly limit: number;
  /** Every declaration of the run's semaphore is fair. */
  readonly fair: boolean;
  readonly managers: LockManager[];
  /** Every permit a command got, in order. */
  readonly leases: Lease[];
  /** Tokens of every `acquired` event, in order. */
  readonly tokens: number[];
  /** Permits that emitted `lost` or `timeout`: their give-back may still be in flight. */
  readonly ended: Set<Lease>;
  /** The stored token at the last check. */
  stored: number;
  readonly log: string[];
  readonly rejectionsFrom: number;
}

interface Model {
  /** The permits held, by the model's account. */
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
  manager.on('error', () => {}); // background errors are reported, not failures
  manager.on('acquired', (lease, event) => void real.tokens.push(event.token));
  manager.on('lost', (lease) => void real.ended.add(lease));
  manager.on('timeout', (lease) => void real.ended.add(lease));
  return manager;
}

/** The semaphore's live holders (by `$$NOW`), its token counter and the server's clock. */
async function readSemaphore(name: string) {
  const [doc] = await suite
    .raw()
    .db!.collection(`${COLLECTION}.semaphores`)
    .aggregate<{ token?: number; live: { token: number; expiresAt: Date }[]; queued: number; now: Date }>([
      { $match: { _id: name } },
      {
        $project: {
          token: 1,
          now: '$$NOW',
          live: { $filter: { input: { $ifNull: ['$holders', []] }, cond: { $gt: ['$$this.expiresAt', '$$NOW'] } } },
          queued: {
            $size: { $filter: { input: { $ifNull: ['$queue', []] }, cond: { $gt: ['$$this.expiresAt', '$$NOW'] } } },
          },
        },
      },
    ])
    .toArray();
  return {
    token: doc?.token === undefined ? 0 : Number(doc.token),
    live: (doc?.live ?? []).map((h) => ({ token: Number(h.token), expiresAt: h.expiresAt })),
    queued: doc?.queued ?? 0,
    now: doc?.now,
  };
}

async function checkInvariants(model: Model, real: Real, step: string): Promise<void> {
  const problems: string[] = [];
  // Claims first, then the document: a claim made before the read must be borne out by it.
  const claims = real.leases
    .filter((p) => p.held)
    .map((p) => ({ permit: p, token: p.token!, expiresAt: p.expiresAt! }));
  const stored = await within(readSemaphore(real.name), STEP, 'reading the semaphore');
  if (stored.live.length > real.limit)
    problems.push(`${stored.live.length} live holders, above the limit of ${real.limit}`);
  if (stored.queued > 0) problems.push(`${stored.queued} live queue entries left between steps`);
  for (const claim of claims) {
    if (stored.now && stored.now >= claim.expiresAt) continue; // may have ended by itself in between
    if (!stored.live.some((h) => h.token === claim.token))
      problems.push(`a permit says held with token ${claim.token}, but the document does not list it live`);
  }
  for (const holder of stored.live) {
    const permit = real.leases.find((p) => p.token === holder.token);
    if (!permit) problems.push(`the document lists token ${holder.token}, which no permit was given`);
    else if (!permit.held && !real.ended.has(permit))
      problems.push(`the document lists token ${holder.token} live, but its permit says not held`);
  }
  for (let i = 1; i < real.tokens.length; i++) {
    if (real.tokens[i]! <= real.tokens[i - 1]!)
      problems.push(`token ${real.tokens[i]} granted after ${real.tokens[i - 1]}: not increasing`);
  }
  if (stored.token < real.stored) problems.push(`the stored token went down from ${real.stored} to ${stored.token}`);
  real.stored = stored.token;
  const lastToken = real.tokens.at(-1);
  if (lastToken !== undefined && stored.token !== lastToken)
    problems.push(`the stored token is ${stored.token}, the last grant's ${lastToken}`);
  // A permit the model says is held must say so itself (nothing expired: the ttl is long).
  for (const permit of model.held) {
    if (!permit.held && !real.ended.has(permit)) problems.push(`permit ${permit.token} should be held, and is not`);
  }
  const unhandled = suite.rejections.since(real.rejectionsFrom);
  if (unhandled) problems.push(`unhandled rejection: ${unhandled}`);
  if (problems.length) throw new Error(`after ${step}:\n  - ${problems.join('\n  - ')}\n  log: ${real.log.join('; ')}`);
}

/** The model can say what a call must do unless a permit ended by itself (a stall of seconds). */
const decidable = (real: Real) => real.ended.size === 0;

const suite = sequenceSuite<Model, Real>({
  name: 'semaphore',
  step: STEP,
  slots: SLOTS,
  db: locks.db,
  check: checkInvariants,
  newManager,
});
const { command, settle } = suite;

type How = 'tryAcquire' | 'acquire' | 'withPermit';

/** tryAcquire, acquire({ wait }) or withPermit({ wait }) from `slot`: a permit exactly when one is free. */
function take(how: How, slot: number, wait: number) {
  const label = `s${slot}.${how}(${how === 'tryAcquire' ? '' : `{ wait: ${wait} }`})`;
  return command(label, async (model, real, failures) => {
    const sem = real.managers[slot]!.semaphore(real.name, { limit: real.limit, ttl: TTL, fair: real.fair });
    const free = model.held.size < real.limit;
    let inside = '';
    const work = async (permit: Lease) => {
      const stored = await readSemaphore(real.name);
      if (!permit.held) inside = 'fn was called without a held permit';
      else if (!stored.live.some((h) => h.token === permit.token))
        inside = `inside fn, the document does not list token ${permit.token}`;
      real.leases.push(permit);
      return permit.token;
    };
    const call =
      how === 'tryAcquire'
        ? sem.tryAcquire()
        : how === 'acquire'
          ? sem.acquire({ wait })
          : sem.withPermit(work, { wait });
    const outcome = await settle(call, label);
    if (inside) failures.push(inside);
    const got = 'value' in outcome && how !== 'withPermit' ? (outcome.value as Lease | null) : null;
    if (got) {
      real.leases.push(got);
      model.held.add(got);
      if (!got.held) failures.push(`${how} resolved a permit that is not held`);
    }
    if ('error' in outcome && (how === 'tryAcquire' || !(outcome.error instanceof LockTimeoutError)))
      failures.push(`rejected: ${describeError(outcome.error)}`);
    const succeeded = 'value' in outcome && (how === 'withPermit' || got !== null);
    if (decidable(real) && succeeded !== free) {
      const held = model.held.size - (got ? 1 : 0);
      failures.push(
        `${held} of ${real.limit} permits held by the model, yet ${how} ${succeeded ? 'got' : 'did not get'} one`,
      );
    }
  });
}

const slot = fc.integer({ min: 0, max: SLOTS - 1 });
const commandArbs = [
  fc
    .tuple(fc.constantFrom<How>('tryAcquire', 'acquire', 'withPermit'), slot, fc.constantFrom(0, 150))
    .map(([how, s, w]) => take(how, s, w)),
  slot.map((s) => take('tryAcquire', s, 0)),
  fc.nat(20).map(suite.release),
  fc.nat(20).map(suite.release),
  slot.map(suite.close),
];

test(
  'model-based sequences of one semaphore across three managers',
  () =>
    fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 3 }),
        fc.boolean(),
        fc.commands(commandArbs, {
          maxCommands: MAX_COMMANDS,
          size: 'large',
          ...(process.env.FUZZ_REPLAY_PATH ? { replayPath: process.env.FUZZ_REPLAY_PATH } : {}),
        }),
        async (limit, fair, cmds) => {
          suite.counts.sequences++;
          const real: Real = {
            name: `run${++runSerial}`,
            limit,
            fair,
            managers: [],
            leases: [],
            tokens: [],
            ended: new Set(),
            stored: 0,
            log: [`limit ${limit}${fair ? ', fair' : ''}`],
            rejectionsFrom: suite.rejections.seen.length,
          };
          for (let i = 0; i < SLOTS; i++) real.managers.push(newManager(real, i));
          const model: Model = { held: new Set() };
          try {
            await fc.asyncModelRun(() => ({ model, real }), cmds);
          } finally {
            await suite.closeAll(real);
          }
          // Every manager closed: no live holder is left behind.
          suite.afterRun(real, real.rejectionsFrom, (await readSemaphore(real.name)).live.length);
        },
      ),
      fuzzParameters(Number(process.env.FUZZ_SEQUENCES ?? 6), SHARE),
    ),
  propertyTimeout(40_000, SHARE),
);
