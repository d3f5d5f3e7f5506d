// One manager holding 1 … 10,000 leases: heartbeat tick time, round trips per tick (which must be
// exactly 2, one updateMany and one find, at every size: the run fails otherwise), memory per lease.
import { fork } from 'node:child_process';
import path from 'node:path';
import type { Context, Row } from '../support';

interface Measured {
  count: number;
  held: number;
  bytesPerLease: number;
  median: number;
  p99: number;
  roundTrips: number;
  fewest: number;
  kinds: string;
}

/** One updateMany to renew every held lease, one find to read them all back: no getMore, whatever the count. */
const ROUND_TRIPS = 2;

export async function heartbeat({ uri, quick }: Context): Promise<Row[]> {
  const sizes = [1, 100, 1000, 10_000];
  // Ticks do not overlap: a tick longer than the interval (10,000 leases, quick) is followed at once by the next.
  const interval = quick ? 500 : 2000;
  const child = fork(
    path.join(__dirname, '..', 'workers', 'heartbeat-worker.ts'),
    [uri, sizes.join(','), quick ? '2' : '8', String(interval)],
    {
      execArgv: ['--import', 'tsx', '--expose-gc'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    },
  );
  const results: Measured[] = [];
  child.on('message', (message: Measured) => results.push(message));
  await new Promise((resolve) => child.once('exit', resolve));
  if (results.length !== sizes.length) throw new Error('the heartbeat benchmark worker ended early');
  const base = results[0]!;
  return results.map((r) => ({
    ...(r.roundTrips !== ROUND_TRIPS || r.fewest !== ROUND_TRIPS
      ? { failure: `a tick took ${r.fewest}…${r.roundTrips} round trips (${r.kinds}), not ${ROUND_TRIPS}` }
      : {}),
    scenario: `heartbeat tick, ${r.count.toLocaleString('en')} held lease${r.count > 1 ? 's' : ''}`,
    median: r.median,
    p99: r.p99,
    unit: 'ms',
    baseline: { label: '1 held lease', median: base.median, p99: base.p99 },
    notes: {
      'round trips per tick': r.fewest === r.roundTrips ? r.roundTrips : `${r.fewest}…${r.roundTrips}`,
      commands: r.kinds,
      // Below 100 leases, the heap's own noise (tens of KB) swamps what a lease costs.
      'heap bytes per lease': r.count >= 100 ? Math.round(r.bytesPerLease) : 'too few to tell',
      'still held': `${r.held}/${r.count}`,
      'tick / heartbeat interval': `${Math.round((100 * r.median) / interval)}%`,
      'tick / default heartbeat (20 s)': `${((100 * r.median) / 20_000).toFixed(1)}%`,
    },
  }));
}
