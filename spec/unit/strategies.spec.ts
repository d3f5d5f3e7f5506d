import { strategies, type PollStrategy } from '../../lib/index';

/** The delays a strategy gives for successive attempts, with `step` ms between them. */
function run(strategy: PollStrategy, step: (delay: number) => number = (d) => d, limit = 100): (number | null)[] {
  const delays: (number | null)[] = [];
  let elapsed = 0;
  for (let attempt = 1; attempt <= limit; attempt++) {
    const delay = strategy.next(attempt, elapsed);
    delays.push(delay);
    if (delay === null) break;
    elapsed += step(delay);
  }
  return delays;
}

describe('strategies.bounded', () => {
  test('attempts counts every try, the first included', () => {
    expect(run(strategies.bounded({ interval: 100, attempts: 3 }))).toEqual([100, 100, null]);
    expect(run(strategies.bounded({ interval: 100, attempts: 1 }))).toEqual([null]);
  });

  test('within bounds the time, with the last attempt falling on the limit', () => {
    expect(run(strategies.bounded({ interval: '100ms', within: 250 }))).toEqual([100, 100, 50, null]);
  });

  test('within: 0 allows only the first attempt', () => {
    expect(run(strategies.bounded({ interval: 100, within: 0 }))).toEqual([null]);
  });

  test('the first bound reached wins', () => {
    expect(run(strategies.bounded({ interval: 100, attempts: 2, within: '10s' }))).toEqual([100, null]);
    expect(run(strategies.bounded({ interval: 100, attempts: 50, within: 150 }))).toEqual([100, 50, null]);
  });

  test('needs a bound and a valid interval', () => {
    expect(() => strategies.bounded({ interval: 100 })).toThrow(/attempts, within, or both/);
    expect(() => strategies.bounded({ interval: 0, attempts: 2 })).toThrow(RangeError);
    expect(() => strategies.bounded({ interval: 'soon', attempts: 2 })).toThrow(TypeError);
    expect(() => strategies.bounded({ interval: 10, attempts: 0 })).toThrow(
      /attempts must be a whole number of at least 1, received 0/,
    );
    expect(() => strategies.bounded({ interval: 10, attempts: 1.5 })).toThrow(RangeError);
  });
});

describe('strategies.infinite', () => {
  test('never stops', () => {
    const strategy = strategies.infinite({ interval: '2s' });
    expect(strategy.next(1, 0)).toBe(2000);
    expect(strategy.next(1_000_000, 1e12)).toBe(2000);
  });
});

describe('strategies.backoff', () => {
  test('grows by factor up to max', () => {
    const strategy = strategies.backoff({ initial: 50, max: 1000, jitter: 0 });
    expect(run(strategy, undefined, 8)).toEqual([50, 100, 200, 400, 800, 1000, 1000, 1000]);
    expect(run(strategies.backoff({ initial: 10, max: 100, factor: 3, jitter: 0 }), undefined, 4)).toEqual([
      10, 30, 90, 100,
    ]);
  });

  test('jitter takes up to its fraction off each delay', () => {
    const low = strategies.backoff({ initial: 100, max: 1000, jitter: 0.5, random: () => 0.999999 });
    const high = strategies.backoff({ initial: 100, max: 1000, jitter: 0.5, random: () => 0 });
    expect(low.next(1, 0)).toBeCloseTo(50, 3);
    expect(high.next(1, 0)).toBe(100);
    const defaults = strategies.backoff({ initial: 100, max: 1000 });
    for (let i = 0; i < 50; i++) {
      const delay = defaults.next(2, 0)!;
      expect(delay).toBeGreaterThan(200 * 0.8 - 1e-9);
      expect(delay).toBeLessThanOrEqual(200);
    }
  });

  test('within bounds the total time', () => {
    expect(run(strategies.backoff({ initial: 100, max: 1000, jitter: 0, within: 500 }))).toEqual([100, 200, 200, null]);
  });

  test('rejects impossible settings', () => {
    expect(() => strategies.backoff({ initial: 100, max: 50 })).toThrow(/max must be at least initial/);
    expect(() => strategies.backoff({ initial: 100, max: 500, factor: 0.5 })).toThrow(RangeError);
    expect(() => strategies.backoff({ initial: 100, max: 500, jitter: 2 })).toThrow(RangeError);
    expect(() => strategies.backoff({ initial: 100, max: 500, jitter: NaN })).toThrow(RangeError);
    expect(() => strategies.backoff(null as never)).toThrow(TypeError);
  });
});

test('backoff: a source of randomness outside [0, 1) never makes a negative or longer delay', () => {
  for (const drawn of [1000, -5, NaN, Infinity]) {
    const strategy = strategies.backoff({ initial: 1, max: 10, random: () => drawn });
    const delay = strategy.next(1, 0)!;
    expect(delay).toBeGreaterThanOrEqual(0);
    expect(delay).toBeLessThanOrEqual(10);
  }
});

test('an option given as null is refused, not taken for the default', () => {
  expect(() => strategies.backoff({ initial: 1, max: 10, factor: null as never })).toThrow(/factor/);
});
