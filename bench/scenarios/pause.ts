// The engine paused (SIGSTOP) under a holder: how long until `lost`, against the server-side expiry.
import { LockManager } from 'mongoose-distributed-lock';
import { connect, sleep, timedRow, type Context, type Row } from '../support';

export async function pause({ uri, quick, pause: stop, resume }: Context): Promise<Row[]> {
  if (!stop || !resume) return []; // only with the benchmark's own engine
  const connection = await connect(uri);
  const manager = new LockManager({ connection, collection: 'bench_pause', ttl: 2000, heartbeat: 500 });
  manager.on('error', () => {}); // the outage is the point
  const lostAfter: number[] = [];
  const expiryAfter: number[] = [];
  try {
    for (let round = 0; round < (quick ? 2 : 10); round++) {
      const lease = await manager.acquire(`paused-${round}`);
      await sleep(Math.random() * 500); // a random phase of the heartbeat
      const lost = new Promise((resolve) => lease.once('lost', resolve));
      const pausedAt = Date.now(); // the engine runs on this machine: its clock is this clock
      const serverExpiry = lease.expiresAt.getTime();
      stop();
      await lost;
      lostAfter.push(Date.now() - pausedAt);
      expiryAfter.push(serverExpiry - pausedAt);
      resume();
      await sleep(300);
    }
  } finally {
    resume();
    await manager.close();
    await connection.close();
  }
  const slack = lostAfter.map((lost, i) => expiryAfter[i]! - lost);
  return [
    timedRow(
      'server paused: time to `lost` (ttl 2 s, heartbeat 500 ms)',
      lostAfter,
      { label: 'server-side expiry, from the pause', times: expiryAfter },
      { 'least time left before expiry (ms)': Math.round(Math.min(...slack)), rounds: lostAfter.length },
    ),
  ];
}
