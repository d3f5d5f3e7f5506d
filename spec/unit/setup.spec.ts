import mongoose from 'mongoose';
import { resolveManagerOptions } from '../../lib/options';
import { planIndexes, wantedIndexes } from '../../lib/setup';

const connection = mongoose.createConnection();
afterAll(() => connection.close());

describe('cleanupAfter and history options', () => {
  test('defaults: free documents kept a day, no history (read from "<collection>.history", kept 30 days)', () => {
    const settings = resolveManagerOptions({ connection, collection: 'jobs' });
    expect(settings.cleanupAfter).toBe(86_400);
    expect(settings.history).toEqual({ enabled: false, collection: 'jobs.history', retain: 30 * 86_400 });
    expect(resolveManagerOptions({ connection, history: true }).history).toEqual({
      enabled: true,
      collection: 'locks.history',
      retain: 2_592_000,
    });
  });

  test('retentions are whole seconds, rounded up; 0 and false are allowed', () => {
    expect(resolveManagerOptions({ connection, cleanupAfter: '90m' }).cleanupAfter).toBe(5400);
    expect(resolveManagerOptions({ connection, cleanupAfter: 1500 }).cleanupAfter).toBe(2);
    expect(resolveManagerOptions({ connection, cleanupAfter: 0 }).cleanupAfter).toBe(0);
    expect(resolveManagerOptions({ connection, cleanupAfter: false }).cleanupAfter).toBe(false);
    const history = resolveManagerOptions({ connection, history: { collection: 'audit', retain: false } }).history;
    expect(history).toEqual({ enabled: true, collection: 'audit', retain: false });
    expect(resolveManagerOptions({ connection, history: { retain: '1y' } }).history.retain).toBe(31_557_600);
  });

  test('bad values name the option and the value', () => {
    expect(() => resolveManagerOptions({ connection, cleanupAfter: 'later' })).toThrow(
      /options.cleanupAfter must be a duration .*received "later"/,
    );
    expect(() => resolveManagerOptions({ connection, cleanupAfter: -1 })).toThrow(RangeError);
    expect(() => resolveManagerOptions({ connection, cleanupAfter: true as never })).toThrow(TypeError);
    expect(() => resolveManagerOptions({ connection, cleanupAfter: '100y' })).toThrow(
      /options.cleanupAfter must be at most 2147483647000 ms/,
    );
    expect(() => resolveManagerOptions({ connection, history: 'yes' as never })).toThrow(
      /options.history must be true, false, or \{ collection, retain \}, received "yes"/,
    );
    expect(() => resolveManagerOptions({ connection, history: [] as never })).toThrow(TypeError);
    expect(() => resolveManagerOptions({ connection, history: { collection: 'locks' } })).toThrow(
      /options.history.collection must be another collection than the locks, received "locks"/,
    );
    expect(() => resolveManagerOptions({ connection, history: { collection: 'a$b' } })).toThrow(RangeError);
    expect(() => resolveManagerOptions({ connection, history: { retain: -5 } })).toThrow(
      /options.history.retain must be a finite duration of 0 or more, received -5/,
    );
  });
});

describe('index set-up', () => {
  test('the indexes a manager wants follow its options', () => {
    expect(wantedIndexes(resolveManagerOptions({ connection }))).toEqual([
      {
        collection: 'locks',
        purpose: expect.any(String),
        indexes: [{ key: { freedAt: 1 }, expireAfterSeconds: 86_400 }],
      },
    ]);
    expect(wantedIndexes(resolveManagerOptions({ connection, cleanupAfter: false }))).toEqual([]);
    const withHistory = resolveManagerOptions({ connection, cleanupAfter: false, history: { retain: false } });
    expect(wantedIndexes(withHistory)).toEqual([
      { collection: 'locks.history', purpose: expect.any(String), indexes: [{ key: { name: 1, endedAt: -1 } }] },
    ]);
  });

  test('existing indexes are kept, missing ones created, ones with another retention replaced', () => {
    const ttl = { key: { freedAt: 1 }, expireAfterSeconds: 60 } as const;
    const byName = { key: { name: 1, endedAt: -1 } } as const;
    expect(planIndexes([{ name: '_id_', key: { _id: 1 } }], [ttl, byName])).toEqual({
      create: [ttl, byName],
      replace: [],
    });
    expect(planIndexes([{ name: 'freedAt_1', ...ttl }], [ttl])).toEqual({ create: [], replace: [] });
    expect(planIndexes([{ name: 'mine', key: { freedAt: 1 }, expireAfterSeconds: 3600 }], [ttl])).toEqual({
      create: [],
      replace: [{ drop: 'mine', spec: ttl }],
    });
    expect(planIndexes([{ name: 'plain', key: { freedAt: 1 } }], [ttl])).toEqual({
      create: [],
      replace: [{ drop: 'plain', spec: ttl }],
    });
    expect(planIndexes([{ name: 'other-order', key: { endedAt: -1, name: 1 } }], [byName])).toEqual({
      create: [byName],
      replace: [],
    });
  });
});
