// The wake-up listener's reaction to a cursor that keeps failing, with a stand-in for the driver.
import { LockError } from '../../lib/errors';
import { ReleaseSignals } from '../../lib/signals';
import type { LockStore } from '../../lib/store';

/** A store whose database has a capped signal collection whose tailable cursor always fails. */
function failingStore(error: Error) {
  let finds = 0;
  const collection = {
    insertOne: () => Promise.resolve({}),
    options: () => Promise.resolve({ capped: true }),
    find: () => {
      finds++;
      return {
        close: () => Promise.resolve(),
        [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(error) }),
      };
    },
  };
  const db = {
    createCollection: () => Promise.resolve(collection),
    collection: () => collection,
  };
  const store = {
    db: () => Promise.resolve(db),
    run: (_what: string, command: (c: unknown) => Promise<unknown>) => command(collection),
  } as unknown as LockStore;
  return { store, finds: () => finds };
}

test('a cursor that keeps failing (not a connection problem) turns wake-ups off after three tries, saying why', async () => {
  const failure = Object.assign(new Error('tailable cursors are not supported'), {
    name: 'MongoServerError',
    code: 115,
  });
  const { store, finds } = failingStore(failure);
  const errors: unknown[] = [];
  const signals = new ReleaseSignals(
    store,
    'locks',
    () => {},
    (error) => errors.push(error),
  );
  signals.demand(true);
  await signals.idle(); // the listener ends by itself once wake-ups are off
  expect(finds()).toBe(3);
  expect(errors).toHaveLength(3);
  const last = errors[2] as LockError;
  expect(last).toBeInstanceOf(LockError);
  expect(last.message).toMatch(/wake-ups are off, waits rely on polling: the signal cursor failed 3 times in a row/);
  // Later demand starts nothing, and publishing is a no-op.
  signals.demand(true);
  await signals.publish('x');
  expect(finds()).toBe(3);
  await signals.close();
});
