// One manager holding 1 … 10,000 leases: heartbeat tick time, round trips per tick, memory per lease.
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
}

export async function heartbeat({ uri, quick }: Context): Promise<Row[]> {
  const sizes = quick ? [1, 100, 1000] : [1, 100, 1000, 10_000];
  const interval = quick ? 1000 : 2000;
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
    scenario: `heartbeat tick, ${r.count.toLocaleString('en')} held lease${r.count > 1 ? 's' : ''}`,
    median: r.median,
    p99: r.p99,
    unit: 'ms',
    baseline: { label: '1 held lease', median: base.median, p99: base.p99 },
    notes: {
      'round trips per tick': r.roundTrips,
      // Below 100 leases, the heap's own noise (tens of KB) swamps what a lease costs.
      'heap bytes per lease': r.count >= 100 ? Math.round(r.bytesPerLease) : 'too few to tell',
      'still held': `${r.held}/${r.count}`,
      'tick / heartbeat interval': `${Math.round((100 * r.median) / interval)}%`,
      'tick / default heartbeat (20 s)': `${((100 * r.median) / 20_000).toFixed(1)}%`,
    },
  }));
}
