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

  test('a try woken early (a release, an expiry) is not counted, so it never shortens the wait', () => {
    const schedule = pollSchedule(500, 3);
    expect(schedule.next(1, 1)).toBe(500);
    expect(schedule.next(2, 40)).toBe(500); // woken after 39 ms: an extra try
    expect(schedule.next(3, 541)).toBe(500); // the second scheduled try
    expect(schedule.next(4, 1042)).toBeNull(); // the third
  });

  test('Infinity never gives up', () => {
    const schedule = pollSchedule(50, Infinity);
    for (let attempt = 1; attempt < 1000; attempt++) expect(schedule.next(attempt, attempt * 51)).toBe(50);
  });
});
