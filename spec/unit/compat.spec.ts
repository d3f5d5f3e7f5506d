import { pollSchedule } from '../../lib/compat';

describe("pollAcquire's schedule", () => {
  test('probeMaxAttempts tries in all, pollInterval apart; a fraction is rounded up', () => {
    const schedule = pollSchedule(500, 4);
    expect([schedule.next(1, 2), schedule.next(2, 503), schedule.next(3, 1004), schedule.next(4, 1505)]).toEqual([
      500,
      500,
      500,
      null,
    ]);
    const fractional = pollSchedule(100, 2.5);
    expect([fractional.next(1, 1), fractional.next(2, 102), fractional.next(3, 203)]).toEqual([100, 100, null]);
    expect(pollSchedule(100, 1).next(1, 1)).toBeNull();
    expect(pollSchedule(100, 0.5).next(1, 1)).toBeNull();
  });

  test('every try counts, also one woken early (a release, an expiry), so probeMaxAttempts bounds the tries', () => {
    const schedule = pollSchedule(1000, 3);
    expect(schedule.next(1, 1)).toBe(1000);
    expect(schedule.next(2, 250)).toBe(1000); // woken at the expiry the first try saw: the second try
    expect(schedule.next(3, 500)).toBeNull(); // and again: the third, the last
    // A holder renewing every 100 ms wakes the poller at each expiry it saw, forever: still 3 tries.
    const renewed = pollSchedule(1000, 3);
    const delays = Array.from({ length: 10 }, (_, i) => renewed.next(i + 1, (i + 1) * 200));
    expect(delays.indexOf(null)).toBe(2);
  });

  test('Infinity never gives up', () => {
    const schedule = pollSchedule(50, Infinity);
    for (let attempt = 1; attempt < 1000; attempt++) expect(schedule.next(attempt, attempt * 51)).toBe(50);
  });
});
