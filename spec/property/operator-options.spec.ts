// The operators' entry points of issue 13, property-based: `list(options)` and
// `forceRelease(name, { kind, token })` with any value of each option. An option whose value is
// `undefined` is absent; a bad value throws at once a TypeError or RangeError (code
// `invalid_argument`) naming the option, and sends nothing; a good one resolves what it says,
// checked against the database: a forced release frees exactly the holds it names.
import fc from 'fast-check';
import type { LockManager } from '../../lib/index';
import { lockFixture } from '../helpers/locks';
import { fuzzParameters, invalidArgumentProblem, propertyTimeout, within } from './support';

const locks = lockFixture({ ttl: '30s', collection: 'operators' });
/** Each property's share of a timed fuzz run (FUZZ_MINUTES): the file's two properties split it. */
const SHARE = 0.5;
let manager: LockManager;
beforeAll(async () => {
  manager = await locks.manager({ owner: 'op' });
  manager.on('error', () => {});
});

/** Values of every type, and the good ones more often. */
const anything = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.double(),
  fc.string(),
);

test(
  'list(options): `all` is a boolean or absent; with it, every kind with its `kind`',
  () =>
    fc.assert(
      fc.asyncProperty(fc.oneof(fc.constant(undefined), fc.boolean(), anything), async (all) => {
        const good = all === undefined || typeof all === 'boolean';
        let listed: Promise<unknown[]>;
        try {
          listed = manager.list({ all } as { all?: boolean });
        } catch (error) {
          if (good) throw error;
          const problem = invalidArgumentProblem(error, ['list() options.all']);
          if (problem) throw new Error(problem, { cause: error });
          return;
        }
        if (!good) throw new Error(`list({ all: ${String(all)} }) was accepted`);
        const entries = (await within(listed, 10_000, 'list()')) as { kind?: unknown }[];
        if (!entries.every((e) => (all === true ? typeof e.kind === 'string' : e.kind === undefined)))
          throw new Error(`list({ all: ${String(all)} }) entries: ${JSON.stringify(entries)}`);
      }),
      fuzzParameters(30, SHARE),
    ),
  propertyTimeout(60_000, SHARE),
);

test(
  'forceRelease(name, { kind, token }): bad values throw naming the option; good ones free exactly the holds named',
  () =>
    fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.constantFrom(undefined, 'lock', 'semaphore', 'rwlock'), anything),
        fc.oneof(fc.constant(undefined), fc.nat(2), anything),
        async (kind, pick) => {
          const sem = manager.semaphore('pool', { limit: 3 });
          const permits = [await sem.acquire(), await sem.acquire(), await sem.acquire()];
          // `pick` 0..2: the token of that permit; otherwise the value itself.
          const token =
            typeof pick === 'number' && Number.isInteger(pick) && pick >= 0 && pick <= 2 ? permits[pick]!.token : pick;
          const kindGood = kind === undefined || kind === 'lock' || kind === 'semaphore' || kind === 'rwlock';
          const tokenGood =
            token === undefined ||
            (kind !== undefined &&
              kind !== 'lock' &&
              typeof token === 'number' &&
              Number.isSafeInteger(token) &&
              token >= 1);
          try {
            let call: Promise<boolean>;
            try {
              call = manager.forceRelease('pool', { kind, token } as never);
            } catch (error) {
              if (kindGood && tokenGood) throw error;
              const problem = invalidArgumentProblem(error, [
                'forceRelease() options.kind',
                'forceRelease() options.token',
              ]);
              if (problem) throw new Error(problem, { cause: error });
              return;
            }
            if (!kindGood || !tokenGood)
              throw new Error(`forceRelease(${String(kind)}, ${String(token)}) was accepted`);
            const released = await within(call, 10_000, 'forceRelease()');
            const left = (await sem.inspect()).holders.map((h) => h.token);
            const tokens = permits.map((p) => p.token);
            const expected =
              kind !== 'semaphore' ? tokens : token === undefined ? [] : tokens.filter((t) => t !== token);
            if (JSON.stringify(left) !== JSON.stringify(expected))
              throw new Error(
                `kind ${String(kind)}, token ${String(token)}: left ${left.join()}, expected ${expected.join()}`,
              );
            if (released !== expected.length < 3) throw new Error(`resolved ${released} with ${left.length} left`);
          } finally {
            await within(manager.forceRelease('pool', { kind: 'semaphore' }), 10_000, 'the clean-up');
            await Promise.allSettled(permits.map((p) => p.release()));
          }
        },
      ),
      fuzzParameters(25, SHARE),
    ),
  propertyTimeout(60_000, SHARE),
);
