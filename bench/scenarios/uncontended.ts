// Uncontended acquire() + release() against the raw driver sending the same two commands.
import { LockManager } from 'mongoose-distributed-lock';
import { connect, now, rawLockCommands, timedRow, type Context, type Row } from '../support';

export async function uncontended({ uri, quick }: Context): Promise<Row[]> {
  const connection = await connect(uri);
  const manager = new LockManager({ connection, collection: 'bench_uncontended' });
  const raw = rawLockCommands(connection, 'bench_uncontended', manager.owner);
  const rounds = quick ? 300 : 3000;
  const library: number[] = [];
  const rawTimes: number[] = [];
  const lease = manager.lease('solo');
  const runLibrary = async () => {
    const started = now();
    await lease.acquire();
    await lease.release();
    library.push(now() - started);
  };
  const runRaw = async (i: number) => {
    const leaseId = `raw-${i}`;
    const started = now();
    await raw.acquire('solo-raw', leaseId);
    await raw.release('solo-raw', leaseId);
    rawTimes.push(now() - started);
  };
  for (let i = 0; i < 50; i++) await Promise.all([runLibrary(), runRaw(i)]); // warm up both paths
  library.length = rawTimes.length = 0;
  // Interleaved, so that noise on this shared machine falls on both alike.
  for (let i = 0; i < rounds; i++) {
    if (i % 2) {
      await runLibrary();
      await runRaw(i);
    } else {
      await runRaw(i);
      await runLibrary();
    }
  }
  await manager.close();
  await connection.close();
  return [
    timedRow(
      'uncontended acquire() + release()',
      library,
      { label: 'raw driver, same 2 commands', times: rawTimes },
      { rounds },
    ),
  ];
}
