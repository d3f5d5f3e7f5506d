import mongoose from 'mongoose';
import { parseDuration } from '../../lib/duration';
import { DEFAULTS } from '../../lib/defaults';
import { checkName, leaseTiming, resolveManagerOptions } from '../../lib/options';

describe('durations', () => {
  test('accept milliseconds and ms strings', () => {
    expect(parseDuration(250, 'x')).toBe(250);
    expect(parseDuration('30s', 'x')).toBe(30_000);
    expect(parseDuration('2m', 'x')).toBe(120_000);
    expect(parseDuration('1.5h', 'x')).toBe(5_400_000);
    expect(parseDuration('500', 'x')).toBe(500);
  });

  test('reject what is not a duration with a TypeError naming the option and value', () => {
    expect(() => parseDuration('soon', 'options.ttl')).toThrow(
      new TypeError('options.ttl must be a duration (milliseconds, or a string such as "30s"), received "soon"'),
    );
    expect(() => parseDuration({ $gt: 1 }, 'options.ttl')).toThrow(/received \{"\$gt":1\}/);
    expect(() => parseDuration(null, 'options.poll')).toThrow(TypeError);
    expect(() => parseDuration('', 'options.poll')).toThrow(TypeError);
    expect(() => parseDuration(10n, 'options.poll')).toThrow(/received 10n/);
  });

  test('reject impossible values with a RangeError', () => {
    expect(() => parseDuration(0, 'options.ttl')).toThrow(RangeError);
    expect(() => parseDuration(-5, 'options.ttl')).toThrow(/above 0, received -5/);
    expect(() => parseDuration('-1s', 'options.ttl')).toThrow(RangeError);
    expect(() => parseDuration(NaN, 'options.ttl')).toThrow(RangeError);
    expect(() => parseDuration(Infinity, 'options.ttl')).toThrow(RangeError);
    expect(() => parseDuration('1000y', 'options.ttl')).toThrow(/at most 2147483647 ms/);
    expect(parseDuration(0, 'wait', { allowZero: true })).toBe(0);
  });
});

describe('manager and lease options', () => {
  const connection = mongoose.createConnection();
  afterAll(() => connection.close());

  test('defaults: 60 s ttl, heartbeat ttl / 3, 500 ms poll, "locks", host:pid owner', () => {
    const settings = resolveManagerOptions({ connection });
    expect(settings).toMatchObject({
      collection: 'locks',
      ttl: 60_000,
      heartbeat: 20_000,
      poll: 500,
      margin: 0.1,
      commandTimeout: 10_000,
    });
    expect(settings.owner).toMatch(/^.+:\d+$/);
    expect(resolveManagerOptions(undefined).connection).toBe(mongoose.connection);
  });

  test('fair: a boolean, the manager default unless the lease says otherwise; undefined is absent', () => {
    const fair = resolveManagerOptions({ connection, fair: true });
    expect(fair.fair).toBe(true);
    expect(resolveManagerOptions({ connection, fair: undefined }).fair).toBe(false);
    expect(leaseTiming(fair, {}).fair).toBe(true);
    expect(leaseTiming(fair, { fair: false }).fair).toBe(false);
    expect(leaseTiming(fair, { fair: undefined }).fair).toBe(true);
    expect(leaseTiming(resolveManagerOptions({ connection }), { fair: true }).fair).toBe(true);
    expect(() => resolveManagerOptions({ connection, fair: 'yes' as unknown as boolean })).toThrow(
      /options\.fair must be true or false/,
    );
    expect(() => leaseTiming(fair, { fair: 0 as unknown as boolean })).toThrow(/lease options\.fair/);
  });

  test('a lease with its own ttl gets its own default heartbeat; heartbeat: false is inherited', () => {
    const settings = resolveManagerOptions({ connection, ttl: '30s' });
    expect(leaseTiming(settings, {})).toEqual({
      ttl: 30_000,
      heartbeat: 10_000,
      margin: 3000,
      interval: 10_000,
      fair: false,
    });
    expect(leaseTiming(settings, { ttl: 9000 })).toMatchObject({ ttl: 9000, heartbeat: 3000 });
    expect(leaseTiming(settings, { heartbeat: '5s' })).toMatchObject({ ttl: 30_000, heartbeat: 5000 });
    const noHeartbeat = resolveManagerOptions({ connection, ttl: 6000, heartbeat: false });
    expect(leaseTiming(noHeartbeat, { ttl: 3000 })).toEqual({
      ttl: 3000,
      heartbeat: false,
      margin: 300,
      interval: 1000,
      fair: false,
    });
  });

  test('a heartbeat that leaves a renewal less than one margin of time to land is a RangeError', () => {
    expect(() => resolveManagerOptions({ connection, ttl: 1000, heartbeat: 1000 })).toThrow(
      /options.heartbeat must be at most the ttl less twice the safety margin \(800 ms\).*received 1000/,
    );
    const settings = resolveManagerOptions({ connection, ttl: 10_000 });
    expect(() => leaseTiming(settings, { heartbeat: '20s' })).toThrow(RangeError);
    // ttl 1000 with the default margin (100 ms): the lease counts as lost 900 ms after a renewal
    // is read back, so a heartbeat of 899 ms left 1 ms for two round trips (every lease lapsed).
    expect(() => leaseTiming(settings, { ttl: 1000, heartbeat: 899 })).toThrow(/lease options.heartbeat.*\(800 ms\)/);
    expect(leaseTiming(settings, { ttl: 1000, heartbeat: 800 }).heartbeat).toBe(800);
  });

  test('an option whose value is undefined is the same as an absent one', () => {
    expect(resolveManagerOptions({ connection, ttl: undefined, heartbeat: undefined, margin: undefined })).toEqual(
      resolveManagerOptions({ connection }),
    );
    const settings = resolveManagerOptions({ connection, ttl: 9000 });
    expect(leaseTiming(settings, { ttl: undefined, heartbeat: undefined })).toEqual(leaseTiming(settings, {}));
  });

  test('options are read once, from own properties; a getter that throws is a TypeError naming it', () => {
    const throwing = Object.defineProperty({ connection }, 'ttl', {
      enumerable: true,
      get() {
        throw new Error('boom');
      },
    });
    expect(() => resolveManagerOptions(throwing)).toThrow(/options.ttl could not be read: boom/);
    const inherited = Object.assign(Object.create({ ttl: 5 }) as object, { connection });
    expect(resolveManagerOptions(inherited).ttl).toBe(60_000);
  });

  test('a lock name with a lone surrogate is refused: it would be stored as U+FFFD and share a lock', () => {
    expect(() => checkName('report-\uD83D')).toThrow(TypeError);
    expect(() => checkName('\uDE00-x')).toThrow(/well-formed/);
    expect(checkName('report-\uD83D\uDE00')).toBe('report-\uD83D\uDE00');
  });

  test('bad option values name the option and the value', () => {
    expect(() => resolveManagerOptions({ connection, poll: -1 })).toThrow(
      /options.poll must be a finite duration above 0, received -1/,
    );
    expect(() => resolveManagerOptions({ connection, collection: '' })).toThrow(TypeError);
    expect(() => resolveManagerOptions({ connection, collection: 'a$b' })).toThrow(RangeError);
    expect(() => resolveManagerOptions({ connection, collection: 'system.locks' })).toThrow(RangeError);
    expect(() => resolveManagerOptions({ connection, owner: '' })).toThrow(/options.owner must be a non-empty string/);
    expect(() => resolveManagerOptions({ connection, margin: 0.9 })).toThrow(RangeError);
    expect(() => resolveManagerOptions({ connection: {} as never })).toThrow(
      /options.connection must be a mongoose Connection/,
    );
    expect(() => resolveManagerOptions('fast' as never)).toThrow(/LockManager options must be an options object/);
  });
});

describe('defaults', () => {
  test('live in one frozen place that the options, the 0.0.1 API and the CLI read', () => {
    expect(Object.isFrozen(DEFAULTS)).toBe(true);
    expect(Object.isFrozen(DEFAULTS.compat)).toBe(true);
    expect(Object.isFrozen(DEFAULTS.cli)).toBe(true);
    const settings = resolveManagerOptions({ connection: mongoose.connection });
    expect(settings).toMatchObject({
      collection: DEFAULTS.collection,
      ttl: DEFAULTS.ttl,
      heartbeat: DEFAULTS.ttl / DEFAULTS.renewalsPerTtl,
      poll: DEFAULTS.poll,
      margin: DEFAULTS.margin,
      commandTimeout: DEFAULTS.commandTimeout,
      wakeups: DEFAULTS.wakeups,
    });
  });
});

test('owner and margin given as null are refused: only undefined means absent', () => {
  const connection = mongoose.connection;
  expect(() => resolveManagerOptions({ connection, owner: null as never })).toThrow(/options.owner/);
  expect(() => resolveManagerOptions({ connection, margin: null as never })).toThrow(/options.margin/);
});
