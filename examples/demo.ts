// `npm run demo`: leader election for a cron scheduler, on a real MongoDB engine started for it.
// Three scheduler processes (examples/scheduler.ts) share one schedule; only the leader runs each
// tick. Part-way, the leader is killed with SIGKILL and another takes over once the lease runs
// out; then the new leader resigns, and the last one takes over at once. About 30 s; `--short`
// (used by the tests) about 15 s. Ctrl-C stops everything.
import { parseArgs } from 'node:util';
import mongoose from 'mongoose';
import { startDatabase } from './support/database';
import { startReplica, stopOnSignals, stopReplicas, type Replica } from './support/fleet';
import { colors, say } from './support/output';

const { values } = parseArgs({ options: { short: { type: 'boolean', default: false } } });
const settings = values.short
  ? { ttl: 3, schedule: '* * * * * *', every: '1 s', ticks: [2, 2, 2] }
  : { ttl: 6, schedule: '*/2 * * * * *', every: '2 s', ticks: [3, 2, 2] };
const DB = 'mdlock_demo';
/** Longest wait for any one step, so that a demo that goes wrong still ends by itself. */
const STEP_TIMEOUT = 45_000;

type Event =
  | { kind: 'elected'; term: number }
  | { kind: 'revoked'; reason: string }
  | { kind: 'tick'; term: number }
  | { kind: 'other' };

/** What a scheduler's line says (see examples/scheduler.ts). */
function parse(line: string): Event {
  let match = /^elected leader \(term (\d+)\)/.exec(line);
  if (match) return { kind: 'elected', term: Number(match[1]) };
  match = /^no longer leader \((\w+)\)/.exec(line);
  if (match) return { kind: 'revoked', reason: match[1]! };
  match = /^tick \S+: ran the report \(term (\d+)\)/.exec(line);
  if (match) return { kind: 'tick', term: Number(match[1]) };
  return { kind: 'other' };
}

function show(line: string, event: Event): string {
  if (event.kind === 'elected') return colors.green(colors.bold(`★ ${line}`));
  if (event.kind === 'revoked') return colors.yellow(`☆ ${line}`);
  if (event.kind === 'tick') return `▶ ${line}`;
  if (/FAILED|error/.test(line)) return colors.red(line);
  return colors.dim(line);
}

/** Every scheduler event, in order; `until` waits for a condition on them. */
const seen: { who: string; event: Event; at: number; line: string }[] = [];
const waiters = new Set<() => void>();

function until<T>(what: string, probe: () => T | undefined): Promise<T> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const found = probe();
      if (found === undefined) return;
      waiters.delete(check);
      clearTimeout(timer);
      resolve(found);
    };
    const timer = setTimeout(() => {
      waiters.delete(check);
      reject(new Error(`the demo waited ${STEP_TIMEOUT / 1000} s for ${what}, in vain`));
    }, STEP_TIMEOUT);
    waiters.add(check);
    check();
  });
}

/** The first event from `from` on that matches. */
function next(what: string, match: (who: string, event: Event) => boolean, from = seen.length) {
  return until(what, () => seen.slice(from).find((entry) => match(entry.who, entry.event)));
}

/** Waits for `count` more ticks run by `who`. */
function ticksBy(who: string, count: number): Promise<true> {
  const from = seen.length;
  const ran = () => seen.slice(from).filter((entry) => entry.who === who && entry.event.kind === 'tick').length;
  return until(`${count} ticks by ${who}`, () => ran() >= count || undefined);
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

async function main(): Promise<void> {
  const started = performance.now();
  say('demo', colors.bold('leader election for a cron scheduler, on MongoDB'));
  const database = await startDatabase();
  stopOnSignals(() => database.stop());
  const connection = await mongoose.createConnection(database.uri, { dbName: DB }).asPromise();
  try {
    await connection.dropDatabase(); // a fresh start, also on a server of your own (MONGODB_URI)
    const where = database.pid ? `the embedded engine, process ${database.pid}` : 'MONGODB_URI';
    say('demo', `MongoDB is up at ${database.uri.replace(/\?.*/, '')} (${where})`);
    say(
      'demo',
      `starting 3 schedulers: one schedule (a tick every ${settings.every}), one election (ttl ${settings.ttl} s)`,
    );

    const replicas = new Map<string, Replica>();
    for (const name of ['scheduler-a', 'scheduler-b', 'scheduler-c']) {
      const replica = startReplica(
        'examples/scheduler.ts',
        name,
        database.uri,
        (line) => {
          const event = parse(line);
          say(name, show(line, event));
          seen.push({ who: name, event, at: performance.now(), line });
          for (const check of [...waiters]) check();
        },
        { EXAMPLE_DB: DB, SCHEDULE: settings.schedule, ELECTION_TTL: `${settings.ttl}s` },
      );
      replicas.set(name, replica);
      say('demo', colors.dim(`${name} is process ${replica.process.pid}`));
    }

    const first = await next('a leader', (_, e) => e.kind === 'elected');
    await ticksBy(first.who, settings.ticks[0]!);

    say(
      'demo',
      colors.red(
        colors.bold(`SIGKILL ${first.who}, the leader: it cannot step down, so its lease runs out within the ttl`),
      ),
    );
    const killedAt = performance.now();
    const from = seen.length;
    replicas.get(first.who)!.process.kill('SIGKILL');
    const second = await next('a new leader', (w, e) => w !== first.who && e.kind === 'elected', from);
    const failover = second.at - killedAt;
    say(
      'demo',
      colors.bold(`failover: ${second.who} took over ${seconds(failover)} after the kill (ttl ${settings.ttl} s)`),
    );
    await ticksBy(second.who, settings.ticks[1]!);

    say(
      'demo',
      colors.bold(`asking ${second.who} to resign (SIGUSR2): it frees the lock, and the others need not wait`),
    );
    const resignedAt = performance.now();
    const mark = seen.length;
    replicas.get(second.who)!.process.kill('SIGUSR2');
    const third = await next('the hand-over', (w, e) => w !== second.who && e.kind === 'elected', mark);
    const handover = third.at - resignedAt;
    say('demo', colors.bold(`hand-over: ${third.who} took over ${Math.round(handover)} ms after the resignation`));
    await ticksBy(third.who, settings.ticks[2]!);

    say('demo', 'stopping the schedulers (SIGTERM): the leader steps down, they close and exit');
    await stopReplicas();

    const reports = await connection.db!.collection<{ _id: Date; by: string }>('reports').find().toArray();
    const byWhom = new Map<string, number>();
    for (const report of reports) byWhom.set(report.by, (byWhom.get(report.by) ?? 0) + 1);
    const failed = seen.filter(({ line }) => line.includes('FAILED')).length;
    const summary = [...byWhom].map(([who, count]) => `${who} ${count}`).join(', ');
    say('demo', colors.bold(`${reports.length} ticks ran, each in one process only (${summary})`));
    if (failed > 0) throw new Error(`${failed} ticks failed (see above)`);
    say(
      'demo',
      colors.bold(`failover after a crash: ${seconds(failover)}; hand-over on resignation: ${Math.round(handover)} ms`),
    );
    say('demo', colors.dim(`done in ${seconds(performance.now() - started)}`));
  } finally {
    await stopReplicas();
    await connection.close();
    await database.stop();
  }
}

main().catch((error: unknown) => {
  say('demo', colors.red(`failed: ${error instanceof Error ? error.message : String(error)}`));
  process.exitCode = 1;
});
