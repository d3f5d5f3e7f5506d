// `locks.schedule('bench-tick', '*/1 * * * * *', fn)` declared by 3, then 10 processes: what each
// tick costs each process (the commands it sends, counted by the driver's command monitoring) and
// how late the run starts and is recorded done after the tick's scheduled time. Every tick of the
// measured window must run exactly once across the fleet: the run fails otherwise.
import { median, p99, sleep, Worker, type Context, type Row } from '../support';
import type { Observed } from '../workers/schedule-worker';

const FLEETS = [3, 10];
const PERIOD = 1000;

const ms = (values: number[]) => `${Math.round(median(values))} / ${Math.round(p99(values))}`;

async function fleet(workers: Worker[], ticks: number): Promise<Row> {
  const n = workers.length;
  const collection = `bench_schedule_${n}`;
  for (const w of workers) w.send({ type: 'start', collection });
  await Promise.all(workers.map((w) => w.next()));
  // The first full tick after every process declared the job is a warm-up (first commands on the
  // collections, the indexes); the window is the `ticks` ticks after it.
  const first = Math.ceil(Date.now() / PERIOD) * PERIOD + PERIOD;
  const window = Array.from({ length: ticks }, (_, i) => first + i * PERIOD);
  // The window's last second must be over, and its tick settled everywhere, before the jobs stop.
  await sleep(first + (ticks + 1) * PERIOD - Date.now());
  for (const w of workers) w.send({ type: 'stop' });
  const observed = await Promise.all(workers.map((w) => w.next<Observed>()));

  const inWindow = (tick: number) => tick >= first && tick < first + ticks * PERIOD;
  // Commands of a tick: those a process started within the period after the tick's scheduled time.
  const perTick: number[] = [];
  const kinds = new Map<string, number>();
  for (const o of observed) {
    const counts = new Map<number, number>(window.map((t) => [t, 0]));
    for (const [at, name] of o.commands) {
      const tick = Math.floor(at / PERIOD) * PERIOD;
      if (!counts.has(tick)) continue;
      counts.set(tick, counts.get(tick)! + 1);
      kinds.set(name, (kinds.get(name) ?? 0) + 1);
    }
    perTick.push(...counts.values());
  }
  const runs = observed.flatMap((o) => o.runs).filter((r) => inWindow(r.tick));
  const settled = observed.flatMap((o) => [
    ...o.runs.filter((r) => inWindow(r.tick)).map((r) => r.done - r.tick),
    ...o.skipped.filter((s) => inWindow(s.tick)).map((s) => s.at - s.tick),
  ]);
  const ranTimes = new Map<number, number>(window.map((t) => [t, 0]));
  for (const r of runs) ranTimes.set(r.tick, ranTimes.get(r.tick)! + 1);
  const twice = [...ranTimes].filter(([, k]) => k > 1).length;
  const never = [...ranTimes].filter(([, k]) => k === 0).length;
  const errors = observed.flatMap((o) => o.errors);
  for (const e of errors) console.error(`schedule worker: ${e}`);
  const runners = observed.filter((o) => o.runs.some((r) => inWindow(r.tick))).length;
  const samples = n * ticks;
  return {
    ...(twice > 0 && { failure: `${twice} of ${ticks} ticks ran more than once across ${n} processes` }),
    scenario: `schedule(), ${n} processes, 1 tick/s: commands per tick per process`,
    median: median(perTick),
    p99: p99(perTick),
    unit: 'commands',
    notes: {
      'commands per tick per process (mean)': (perTick.reduce((a, b) => a + b, 0) / samples).toFixed(2),
      'by kind, per tick per process': [...kinds]
        .sort((a, b) => b[1] - a[1])
        .map(([name, k]) => `${name} ${(k / samples).toFixed(2)}`)
        .join(', '),
      'run start after tick, ms (median / p99)': ms(runs.map((r) => r.started - r.tick)),
      'recorded done after tick, ms (median / p99)': ms(runs.map((r) => r.done - r.tick)),
      'tick settled in each process, ms (median / p99)': ms(settled),
      ticks,
      'ran once / never': `${ticks - twice - never} / ${never}`,
      'processes that ran ticks': `${runners}/${n}`,
      ...(errors.length > 0 && { errors: errors.length }),
    },
  };
}

export async function schedule({ uri, quick }: Context): Promise<Row[]> {
  const ticks = quick ? 5 : 15;
  // Every process is started once: the smaller fleet is the first few of them (the rest stay idle).
  const workers = Array.from({ length: Math.max(...FLEETS) }, () => new Worker('workers/schedule-worker.ts', [uri]));
  try {
    await Promise.all(workers.map((w) => w.next()));
    const rows: Row[] = [];
    for (const n of FLEETS) rows.push(await fleet(workers.slice(0, n), ticks));
    return rows;
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
  }
}
