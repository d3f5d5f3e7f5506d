// Hand-over between two processes: from release() resolving in A to acquire() resolving in B,
// with cross-process wake-ups on and off; and what a waiting process costs the server.
import { connect, median, now, rawLockCommands, sleep, timedRow, Worker, type Context, type Row } from '../support';

interface Times {
  at: number;
  waited: number;
}

/** Worker processes with one manager each; `count`: their connections count commands (slower). */
async function workers(uri: string, options: object, count: boolean, n: number): Promise<Worker[]> {
  const args = [uri, JSON.stringify(options), ...(count ? ['count'] : [])];
  const started = Array.from({ length: n }, () => new Worker('workers/lock-worker.ts', args));
  await Promise.all(started.map((w) => w.next()));
  return started;
}

/** Hand-overs of one lock from A to B, `rounds` times; `options`: more manager options (`fair`). */
export async function measure(uri: string, wakeups: boolean, rounds: number, poll: number, options: object = {}) {
  const settings = { wakeups, poll, collection: 'bench_handover', ...options };
  const [a, b] = (await workers(uri, settings, false, 2)) as [Worker, Worker];
  const latencies: number[] = [];
  let counting: Worker | undefined;
  try {
    for (let round = 0; round < rounds; round++) {
      a.send({ type: 'acquire', name: 'baton' });
      await a.next();
      b.send({ type: 'wait', name: 'baton' });
      await b.next();
      // Release at a random phase of B's polling, as in real life.
      await sleep(50 + Math.random() * poll);
      a.send({ type: 'release', name: 'baton' });
      const released = await a.next<{ at: number }>();
      const acquired = await b.next<Times>();
      latencies.push(acquired.at - released.at);
      b.send({ type: 'release', name: 'baton' });
      await b.next();
    }
    // A long wait on a held lock: the commands per second one waiting process costs, counted by
    // a process of its own (counting is kept off the hand-overs' path).
    [counting] = (await workers(uri, settings, true, 1)) as [Worker];
    a.send({ type: 'acquire', name: 'held' });
    await a.next();
    counting.send({ type: 'idle-wait', name: 'held', duration: rounds > 20 ? 10_000 : 2000 });
    const idle = await counting.next<{ perSecond: number }>();
    return { latencies, perSecond: idle.perSecond };
  } finally {
    await Promise.all([a.stop(), b.stop(), counting?.stop()]);
  }
}

/** The floor of a hand-over: one round trip of the acquire command that ends it, by the raw driver. */
async function acquireRoundTrip(uri: string, rounds: number): Promise<number> {
  const connection = await connect(uri);
  const raw = rawLockCommands(connection, 'bench_handover');
  const times: number[] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      const started = now();
      await raw.acquire('raw-baton', `raw-${round}`);
      times.push(now() - started);
      await raw.release('raw-baton', `raw-${round}`);
    }
  } finally {
    await connection.close();
  }
  return median(times);
}

export async function handover({ uri, quick }: Context): Promise<Row[]> {
  const poll = 500;
  // One after the other: run together, the two pairs would contend for the lock and the CPU.
  const on = await measure(uri, true, quick ? 15 : 200, poll);
  const off = await measure(uri, false, quick ? 6 : 40, poll);
  const floor = await acquireRoundTrip(uri, quick ? 50 : 500);
  return [
    timedRow(
      'hand-over between 2 processes (poll 500 ms)',
      on.latencies,
      { label: 'wake-ups off (polling only)', times: off.latencies },
      {
        'one acquire round trip, raw driver (ms)': Number(floor.toFixed(2)),
        'commands/s of a waiting process': Number(on.perSecond.toFixed(2)),
        'commands/s, wake-ups off': Number(off.perSecond.toFixed(2)),
        rounds: on.latencies.length,
      },
    ),
  ];
}
