// 4 processes acquiring and releasing 1, 10 and 100 names as fast as they can: throughput and fairness.
import { now, timedRow, Worker, type Context, type Row } from '../support';

interface Looped {
  count: number;
  waits: number[];
  maxGap: number;
}

/** 4 worker processes; `options`: more manager options (`fair`). */
export async function pool(uri: string, wakeups: boolean, options: object = {}): Promise<Worker[]> {
  const settings = JSON.stringify({ wakeups, collection: 'bench_contended', ...options });
  const workers = Array.from({ length: 4 }, () => new Worker('workers/lock-worker.ts', [uri, settings]));
  await Promise.all(workers.map((w) => w.next()));
  return workers;
}

export async function run(workers: Worker[], names: number, duration: number) {
  const startAt = now() + 200;
  for (const w of workers) w.send({ type: 'loop', names, startAt, duration });
  const results = await Promise.all(workers.map((w) => w.next<Looped>()));
  const counts = results.map((r) => r.count);
  return {
    perSecond: counts.reduce((a, b) => a + b, 0) / (duration / 1000),
    waits: results.flatMap((r) => r.waits),
    min: Math.min(...counts),
    max: Math.max(...counts),
    maxGap: Math.max(...results.map((r) => r.maxGap)),
  };
}

export async function contended({ uri, quick }: Context): Promise<Row[]> {
  const duration = quick ? 1500 : 10_000;
  const [on, off] = await Promise.all([pool(uri, true), pool(uri, false)]);
  try {
    const rows: Row[] = [];
    for (const names of [1, 10, 100]) {
      const withWakeups = await run(on, names, duration);
      const polling = await run(off, names, duration);
      rows.push(
        timedRow(
          `contended: 4 processes × ${names} name${names > 1 ? 's' : ''} (wait per acquisition)`,
          withWakeups.waits,
          { label: 'wake-ups off', times: polling.waits },
          {
            'acquisitions/s': Math.round(withWakeups.perSecond),
            'acquisitions/s, wake-ups off': Math.round(polling.perSecond),
            'per process min/max': `${withWakeups.min}/${withWakeups.max}`,
            'per process min/max, wake-ups off': `${polling.min}/${polling.max}`,
            'longest gap of a process (ms)': Math.round(withWakeups.maxGap),
            'longest gap, wake-ups off (ms)': Math.round(polling.maxGap),
          },
        ),
      );
    }
    return rows;
  } finally {
    await Promise.all([...on, ...off].map((w) => w.stop()));
  }
}
