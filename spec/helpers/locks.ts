import type { Connection } from 'mongoose';
import { LockManager, type LockManagerOptions } from '../../lib/index';
import type { LockDocument } from '../../lib/commands';
import { testDatabase } from './mongo';

/**
 * Managers for one test file, each on its own connection (its own pool, as in another process)
 * unless one is given; all closed after the file's tests.
 */
export function lockFixture(defaults: LockManagerOptions = {}) {
  const db = testDatabase();
  let raw: Connection | undefined;
  return {
    db,
    async manager(options: LockManagerOptions = {}): Promise<LockManager> {
      const connection = options.connection ?? (await db.connect());
      const manager = new LockManager({ ...defaults, ...options, connection });
      db.beforeClose(() => manager.close());
      return manager;
    },
    /** The lock collection as stored, read through a connection of its own. */
    async documents(collection = defaults.collection ?? 'locks') {
      raw ??= await db.connect();
      return raw.db!.collection<LockDocument>(collection);
    },
  };
}

/** Lets real time pass, for tests whose subject is time passing (a ttl running out). */
export function elapse(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Records the events of an emitter, in order, as `event` or `event:detail`. */
export function recorder() {
  const seen: string[] = [];
  return { seen, push: (entry: string) => seen.push(entry) };
}

/**
 * Counts the commands a connection sends (opened with `monitorCommands: true`) by `command target`
 * (`update locks.semaphores`); `delta(key)` is the count since the last `mark()`.
 */
export function commandsByTarget(connection: Connection) {
  const counts = new Map<string, number>();
  let before = new Map<string, number>();
  connection.getClient().on('commandStarted', (event) => {
    const target = String((event.command as Record<string, unknown>)[event.commandName]);
    const key = `${event.commandName} ${target}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  });
  return {
    mark: () => void (before = new Map(counts)),
    delta: (key: string) => (counts.get(key) ?? 0) - (before.get(key) ?? 0),
  };
}
