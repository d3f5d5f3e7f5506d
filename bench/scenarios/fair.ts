// Fair waiting (`fair: true`): the hand-over between two processes (release resolved in A ->
// acquire resolved in B), and 4 processes contending for 1 name, fair against unfair.
import { timedRow, type Context, type Row } from '../support';
import { pool, run } from './contended';
import { measure } from './handover';

export async function fair({ uri, quick }: Context): Promise<Row[]> {
  const poll = 500;
  const rounds = quick ? 15 : 200;
  const handed = await measure(uri, true, rounds, poll, { fair: true, collection: 'bench_fair' });
  const unfairHanded = await measure(uri, true, rounds, poll, { collection: 'bench_fair' });
  const duration = quick ? 1500 : 10_000;
  // One pool after the other: together they would share the CPU, and the comparison with it.
  const fairPool = await pool(uri, true, { fair: true, collection: 'bench_fair_contended' });
  let fairRun;
  try {
    fairRun = await run(fairPool, 1, duration);
  } finally {
    await Promise.all(fairPool.map((w) => w.stop()));
  }
  const unfairPool = await pool(uri, true, { collection: 'bench_fair_contended' });
  let unfairRun;
  try {
    unfairRun = await run(unfairPool, 1, duration);
  } finally {
    await Promise.all(unfairPool.map((w) => w.stop()));
  }
  const maxWait = (waits: number[]) => Math.round(Math.max(...waits));
  return [
    timedRow(
      'fair hand-over between 2 processes (poll 500 ms)',
      handed.latencies,
      { label: 'unfair', times: unfairHanded.latencies },
      {
        'commands/s of a waiting process': Number(handed.perSecond.toFixed(2)),
        'commands/s, unfair': Number(unfairHanded.perSecond.toFixed(2)),
        rounds: handed.latencies.length,
      },
    ),
    timedRow(
      'contended, fair: 4 processes × 1 name (wait per acquisition)',
      fairRun.waits,
      { label: 'unfair', times: unfairRun.waits },
      {
        'acquisitions/s': Math.round(fairRun.perSecond),
        'acquisitions/s, unfair': Math.round(unfairRun.perSecond),
        'cost, unfair/fair throughput': Number((unfairRun.perSecond / fairRun.perSecond).toFixed(2)),
        'max wait (ms)': maxWait(fairRun.waits),
        'max wait, unfair (ms)': maxWait(unfairRun.waits),
        'per process min/max': `${fairRun.min}/${fairRun.max}`,
        'per process min/max, unfair': `${unfairRun.min}/${unfairRun.max}`,
      },
    ),
  ];
}
