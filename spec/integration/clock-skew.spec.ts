// A client whose clock is hours off neither steals a live lock nor loses its own: expiry is
// decided by the server's $$NOW, and local deadlines run on the monotonic clock.
import { elapse, lockFixture } from '../helpers/locks';

const locks = lockFixture({ ttl: 2000, heartbeat: 300, poll: 100 });
const RealDate = Date;
let skew = 0;

/** Date as a machine with a wrong clock sees it. */
class SkewedDate extends RealDate {
  constructor(...args: unknown[]) {
    if (args.length === 0) super(RealDate.now() + skew);
    else super(...(args as [number]));
  }
  static override now(): number {
    return RealDate.now() + skew;
  }
}

beforeAll(() => {
  globalThis.Date = SkewedDate as DateConstructor;
});
afterAll(() => {
  globalThis.Date = RealDate;
});

test.each([
  ['ahead', 6 * 3600_000],
  ['behind', -6 * 3600_000],
])(
  'a holder and a contender with clocks six hours %s',
  async (_, offset) => {
    const [holder, contender] = [await locks.manager({ owner: 'holder' }), await locks.manager({ owner: 'contender' })];
    skew = offset;
    try {
      const name = `skew-${offset}`;
      const lease = await holder.acquire(name);
      const lost: unknown[] = [];
      lease.on('lost', (e) => lost.push(e));
      const attempts: unknown[] = [];
      const deadline = performance.now() + 5000; // two and a half ttls
      while (performance.now() < deadline) {
        attempts.push(await contender.tryAcquire(name));
        skew = -skew; // and the clocks jump the other way while it is held
        await elapse(250);
      }
      expect(attempts.length).toBeGreaterThan(5);
      expect(attempts.every((a) => a === null)).toBe(true); // never stolen
      expect(lost).toEqual([]); // never lost
      expect(lease.held).toBe(true);
      // The stored expiry is on the server's (true) clock, not the skewed one.
      const doc = await (await locks.documents()).findOne({ _id: name });
      const trueNow = RealDate.now();
      expect(Math.abs(doc!.expiresAt.getTime() - (trueNow + 2000))).toBeLessThan(1500);
      await lease.release();
      expect(await contender.tryAcquire(name)).not.toBeNull();
    } finally {
      skew = 0;
    }
  },
  30_000,
);
