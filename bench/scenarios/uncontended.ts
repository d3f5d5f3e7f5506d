// Uncontended acquire() + release() against the raw driver sending the same two commands.
import { LockManager } from 'mongoose-distributed-lock';
import { acquireCommand, COLLECTION, releaseCommand, type LockDocument } from '../../lib/store';
import { connect, median, now, p99, type Context, type Row } from '../support';

export async function uncontended({ uri, quick }: Context): Promise<Row[]> {
  const connection = await connect(uri);
  const manager = new LockManager({ connection, collection: 'bench_uncontended' });
  // The library's collection options too (durable writes, majority reads): the same commands, byte for byte.
  const collection = connection.db!.collection<LockDocument>('bench_uncontended', COLLECTION);
  const rounds = quick ? 300 : 3000;
  const library: number[] = [];
  const raw: number[] = [];
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
    const acquire = acquireCommand({ name: 'solo-raw', leaseId, owner: manager.owner, ttl: 60_000 });
    await collection.findOneAndUpdate(acquire.filter, acquire.update, acquire.options);
    const release = releaseCommand('solo-raw', leaseId);
    await collection.findOneAndUpdate(release.filter, release.update, release.options);
    raw.push(now() - started);
  };
  for (let i = 0; i < 50; i++) await Promise.all([runLibrary(), runRaw(i)]); // warm up both paths
  library.length = raw.length = 0;
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
    {
      scenario: 'uncontended acquire() + release()',
      median: median(library),
      p99: p99(library),
      unit: 'ms',
      baseline: { label: 'raw driver, same 2 commands', median: median(raw), p99: p99(raw) },
      notes: { rounds },
    },
  ];
}
