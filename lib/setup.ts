import mongoose, { type Connection } from 'mongoose';
import { LockError, LockErrorCode } from './errors.js';
import type { ManagerSettings } from './options.js';
import { MONGODB_CODES, serverCode } from './mongo-errors.js';
import { deploymentProblems, inspectDeployment } from './deployment.js';
import type { LockStore } from './store.js';

/** An index the library needs, as `createIndex` takes it. */
export interface IndexSpec {
  readonly key: Readonly<Record<string, 1 | -1>>;
  readonly expireAfterSeconds?: number;
}

/** An index as `listIndexes` describes it. */
export interface ExistingIndex extends IndexSpec {
  readonly name: string;
}

/** The indexes one collection needs. */
export interface CollectionIndexes {
  readonly collection: string;
  /** What each index is for, said in a failure's message. */
  readonly purpose: string;
  readonly indexes: readonly IndexSpec[];
}

/** What to do to a collection's indexes: create the missing, replace those with other options. */
export interface IndexPlan {
  readonly create: readonly IndexSpec[];
  /** An index on the same key with other options (another retention): dropped, then made again. */
  readonly replace: readonly { readonly drop: string; readonly spec: IndexSpec }[];
}

/**
 * The indexes a manager needs: the clean-up TTL index on the lock collection's `freedAt` (unless
 * `cleanupAfter: false`) and, with history on, the history's TTL index on `endedAt` (unless
 * `retain: false`) and its index for reading one lock's history newest first.
 */
export function wantedIndexes(settings: ManagerSettings): CollectionIndexes[] {
  const wanted: CollectionIndexes[] = [];
  if (settings.cleanupAfter !== false) {
    wanted.push({
      collection: settings.collection,
      purpose: 'free lock documents are not removed',
      indexes: [{ key: { freedAt: 1 }, expireAfterSeconds: settings.cleanupAfter }],
    });
  }
  const history = settings.history;
  if (history.enabled) {
    const indexes: IndexSpec[] = [{ key: { name: 1, endedAt: -1 } }];
    if (history.retain !== false) indexes.push({ key: { endedAt: 1 }, expireAfterSeconds: history.retain });
    wanted.push({ collection: history.collection, purpose: 'history records are kept or read slowly', indexes });
  }
  return wanted;
}

const sameKey = (a: IndexSpec, b: IndexSpec) => JSON.stringify(a.key) === JSON.stringify(b.key);
const satisfies = (index: IndexSpec, spec: IndexSpec) =>
  sameKey(index, spec) && index.expireAfterSeconds === spec.expireAfterSeconds;

/** The indexes of `collection` (none if it does not exist yet). */
function listIndexes(store: LockStore, collection: string): Promise<ExistingIndex[]> {
  return store.run(
    `listIndexes("${collection}")`,
    async (c) => {
      try {
        return (await c.listIndexes().toArray()) as ExistingIndex[];
      } catch (error) {
        if (serverCode(error) === MONGODB_CODES.NamespaceNotFound) return [];
        throw error;
      }
    },
    { collection },
  );
}

/** Creates one index (a no-op if the same one exists). */
async function createIndex(store: LockStore, collection: string, spec: IndexSpec): Promise<void> {
  const options = spec.expireAfterSeconds === undefined ? {} : { expireAfterSeconds: spec.expireAfterSeconds };
  await store.run(
    `createIndex("${collection}", ${JSON.stringify(spec.key)})`,
    (c) => c.createIndex(spec.key, options),
    {
      collection,
    },
  );
}

/** Drops the index `name` of `collection`; one already gone is fine. */
async function dropIndex(store: LockStore, collection: string, name: string): Promise<void> {
  await store.run(
    `dropIndex("${collection}", "${name}")`,
    async (c) => {
      await c.dropIndex(name).catch((error: unknown) => {
        if (serverCode(error) !== MONGODB_CODES.IndexNotFound) throw error;
      });
    },
    { collection },
  );
}

/** Compares a collection's indexes (as `listIndexes` gives them) with the ones it needs. */
export function planIndexes(existing: readonly ExistingIndex[], wanted: readonly IndexSpec[]): IndexPlan {
  const create: IndexSpec[] = [];
  const replace: { drop: string; spec: IndexSpec }[] = [];
  for (const spec of wanted) {
    if (existing.some((index) => satisfies(index, spec))) continue;
    const other = existing.find((index) => sameKey(index, spec));
    if (other) replace.push({ drop: other.name, spec });
    else create.push(spec);
  }
  return { create, replace };
}

/** Resolves once `connection` is open, or once `closing` aborts (then resolves false). */
function opened(connection: Connection, closing: AbortSignal): Promise<boolean> {
  if (connection.readyState === mongoose.ConnectionStates.connected && connection.db) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = () => {
      connection.off('open', done);
      closing.removeEventListener('abort', done);
      resolve(!closing.aborted);
    };
    connection.once('open', done);
    closing.addEventListener('abort', done, { once: true });
  });
}

/**
 * Makes one collection's indexes what they must be: lists them, creates what is missing, and
 * replaces an index on the same key with other options (a changed retention). Safe when many
 * managers do it at once: creating an existing index is a no-op on the server, and after a
 * failure the indexes are listed again, so losing a race to an identical index is no failure.
 */
async function ensureIndexes(
  store: LockStore,
  { collection, indexes }: CollectionIndexes,
  cutShort: () => boolean,
): Promise<void> {
  const plan = planIndexes(await listIndexes(store, collection), indexes);
  const work = [
    ...plan.create.map((spec) => () => createIndex(store, collection, spec)),
    ...plan.replace.map(({ drop, spec }) => async () => {
      await dropIndex(store, collection, drop);
      await createIndex(store, collection, spec);
    }),
  ];
  for (const step of work) {
    if (cutShort()) return;
    try {
      await step();
    } catch (error) {
      if (cutShort()) throw error;
      const now = planIndexes(await listIndexes(store, collection), indexes);
      if (now.create.length > 0 || now.replace.length > 0) throw error;
    }
  }
}

/**
 * A manager's set-up, run once it is created (as soon as its connection is open): checks and
 * makes its indexes, then frees holds whose holder crashed long ago so that the clean-up index
 * can remove them. Never rejects: locks work without any of this, so each failure (a user without
 * the createIndex privilege, say) goes to `report` and the rest goes on.
 */
export async function setUp(
  store: LockStore,
  settings: ManagerSettings,
  report: (error: unknown) => void,
  closing: AbortSignal,
): Promise<void> {
  const { connection } = settings;
  if (!(await opened(connection, closing))) return;
  // Once the application closes its connection (a short script that is done already) or the
  // manager, the set-up stops where it is, quietly: the next manager to start does the rest. (A
  // command sent on a closed connection could even open it again, keeping the process alive.)
  const cutShort = () => closing.aborted || connection.readyState !== mongoose.ConnectionStates.connected;
  const failure = (what: string) => (error: unknown) => {
    if (!cutShort()) report(failed(error, what));
  };
  // What the deployment lacks, said once, at start-up (an outage here is no finding: say nothing).
  const deployment = await inspectDeployment(store, settings.commandTimeout).catch(() => undefined);
  if (deployment && !cutShort()) for (const problem of deploymentProblems(deployment)) report(problem);
  for (const wanted of wantedIndexes(settings)) {
    if (cutShort()) return;
    const what = `index set-up on "${wanted.collection}" failed, so ${wanted.purpose}`;
    await ensureIndexes(store, wanted, cutShort).catch(failure(what));
  }
  if (settings.cleanupAfter !== false && !cutShort()) {
    await store
      .sweep(settings.cleanupAfter * 1000, cutShort)
      .catch(failure('the clean-up of locks whose holder crashed failed'));
  }
}

/** A set-up failure, saying what it costs; its cause is the server's own error where there is one. */
function failed(error: unknown, what: string): LockError {
  const wrapped = error instanceof LockError;
  const message = error instanceof Error ? error.message : String(error);
  return new LockError(wrapped ? error.code : LockErrorCode.Database, `${what} (locks work without it): ${message}`, {
    cause: wrapped && error.cause !== undefined ? error.cause : error,
  });
}
