// A semaphore's uncontended acquire() + release() against the plain lock's, in one run, rounds
// interleaved: what a permit costs over a lock (issue 13's target: at most 1.25x).
import { LockManager } from 'mongoose-distributed-lock';
import { connect, interleaved, timedRow, type Context, type Row } from '../support';

const COLLECTION = 'bench_semaphore';
const TTL = 60_000;
const TARGET = 1.25;

export async function semaphore({ uri, quick }: Context): Promise<Row[]> {
  const connection = await connect(uri);
  const manager = new LockManager({ connection, collection: COLLECTION, ttl: TTL });
  const lease = manager.lease('solo');
  const permits = manager.semaphore('solo-semaphore', { limit: 3, ttl: TTL });
  const variants: Record<string, () => Promise<unknown>> = {
    lock: async () => {
      await lease.acquire();
      await lease.release();
    },
    permit: async () => {
      const permit = await permits.acquire();
      await permit.release();
    },
  };
  const rounds = quick ? 300 : 3000;
  let times: Record<string, number[]>;
  try {
    times = await interleaved(variants, rounds);
  } finally {
    await manager.close();
    await connection.close();
  }
  const row = timedRow('semaphore (limit 3): uncontended acquire() + release()', times.permit!, {
    label: "the plain lock's acquire() + release()",
    times: times.lock!,
  });
  const ratio = row.median / row.baseline!.median;
  return [{ ...row, notes: { target: `≤ ${TARGET}x${ratio > TARGET ? ': MISSED' : ''}`, rounds } }];
}
