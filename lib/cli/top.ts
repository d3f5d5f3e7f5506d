// `mdlock top`: a live view of what the database holds (locks, semaphores, read-write locks, the
// last runs of scheduled jobs), refreshed every interval, like top(1). The snapshot is read with
// the server's clock (`$$NOW`); the frame is a pure function of the snapshot, tested on its own.
import type { Connection } from 'mongoose';
import { heldNow } from '../commands.js';
import { tickId, type RunRecord } from '../runs.js';
import { ExitCode, globMatcher, type Invocation } from './args.js';
import type { Io } from './program.js';
import { formatDuration, serverNow } from './report.js';

type TopInvocation = Extract<Invocation, { command: 'top' }>;

/** How the rows are sorted: by name, by time left (least first), or by kind (then name). */
export type SortKey = 'name' | 'time' | 'kind';

/** One live hold, as top shows it: its time left is drawn against its ttl. */
export interface TopHolder {
  readonly owner: string;
  readonly token: number;
  readonly expiresAt: Date;
  /** The hold's ttl in ms (each renewal sets its expiry to now + ttl). */
  readonly ttl: number;
  /** A read-write lock's hold: `read` or `write`. */
  readonly mode?: 'read' | 'write';
}

/** What the database holds at one moment. */
export interface Snapshot {
  /** The server's clock, in ms. */
  readonly now: number;
  /** The locks held now; `leader`: the lock is an election's (its holder leads). */
  readonly locks: readonly {
    readonly name: string;
    readonly holder: TopHolder;
    readonly contended: boolean;
    readonly leader?: boolean;
  }[];
  readonly semaphores: readonly {
    readonly name: string;
    readonly limit: number;
    readonly holders: readonly TopHolder[];
    readonly contended: boolean;
  }[];
  readonly rwlocks: readonly {
    readonly name: string;
    /** The writer first, then the readers by token. */
    readonly holders: readonly TopHolder[];
    readonly writerWaiting: boolean;
    readonly contended: boolean;
  }[];
  /** Per schedule, its latest run, and the lease of that tick if it is held now. */
  readonly jobs: readonly { readonly last: RunRecord; readonly tick: TopHolder | null }[];
}

/** How a frame is drawn. */
export interface FrameOptions {
  readonly collection: string;
  readonly sort: SortKey;
  readonly interval: number;
  /** The terminal's size; `undefined`: no limit (`--once`, or output that is not a terminal). */
  readonly columns?: number;
  readonly rows?: number;
  /** Show the keys line (interactive only). */
  readonly keys: boolean;
}

const BAR = 10;

/** `[######....] 21s`: the part of its ttl a hold has left, and the time. */
export function timeBar(left: number, ttl: number): string {
  const fraction = ttl > 0 ? Math.min(1, Math.max(0, left / ttl)) : 0;
  const filled = Math.round(fraction * BAR);
  return `[${'#'.repeat(filled)}${'.'.repeat(BAR - filled)}] ${formatDuration(Math.max(0, left))}`;
}

/** Rows that move together when sorted: a semaphore and its permits, say. */
interface Group {
  readonly kind: 'lock' | 'semaphore' | 'rwlock' | 'job';
  readonly name: string;
  /** The least time left of its holds, in ms; `null` when nothing is held. */
  readonly left: number | null;
  readonly rows: readonly (readonly string[])[];
}

const KIND_ORDER = { lock: 0, semaphore: 1, rwlock: 2, job: 3 } as const;

function groups(snapshot: Snapshot): Group[] {
  const { now } = snapshot;
  const left = (h: TopHolder) => h.expiresAt.getTime() - now;
  const least = (holders: readonly TopHolder[]) => (holders.length > 0 ? Math.min(...holders.map(left)) : null);
  const hold = (label: string, h: TopHolder) => [
    '',
    `  ${label}`,
    h.owner,
    String(h.token),
    timeBar(left(h), h.ttl),
    '',
  ];
  const waiting = (contended: boolean) => (contended ? 'waiters' : '');
  return [
    ...snapshot.locks.map(({ name, holder, contended, leader }) => ({
      kind: 'lock' as const,
      name,
      left: left(holder),
      rows: [
        [
          leader ? 'leader' : 'lock',
          name,
          holder.owner,
          String(holder.token),
          timeBar(left(holder), holder.ttl),
          waiting(contended),
        ],
      ],
    })),
    ...snapshot.semaphores.map(({ name, limit, holders, contended }) => ({
      kind: 'semaphore' as const,
      name,
      left: least(holders),
      rows: [
        ['semaphore', name, `${holders.length}/${limit} held`, '-', '', waiting(contended)],
        ...holders.map((h) => hold('permit', h)),
      ],
    })),
    ...snapshot.rwlocks.map(({ name, holders, writerWaiting, contended }) => {
      const readers = holders.filter((h) => h.mode === 'read').length;
      const state = holders.some((h) => h.mode === 'write') ? 'write' : readers > 0 ? `${readers} read` : 'free';
      const info = writerWaiting ? 'writer waiting' : waiting(contended);
      return {
        kind: 'rwlock' as const,
        name,
        left: least(holders),
        rows: [['rwlock', name, state, '-', '', info], ...holders.map((h) => hold(h.mode ?? 'read', h))],
      };
    }),
    ...snapshot.jobs.map(({ last, tick }) => ({
      kind: 'job' as const,
      name: last.name,
      left: tick && left(tick),
      rows: [
        [
          'job',
          last.name,
          last.owner,
          last.token > 0 ? String(last.token) : '-',
          tick ? timeBar(left(tick), tick.ttl) : '',
          `${last.outcome}, tick ${last.scheduledAt.toISOString()}`,
        ],
      ],
    })),
  ];
}

function compare(sort: SortKey): (a: Group, b: Group) => number {
  const byName = (a: Group, b: Group) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  const byKind = (a: Group, b: Group) => KIND_ORDER[a.kind] - KIND_ORDER[b.kind];
  if (sort === 'name') return (a, b) => byName(a, b) || byKind(a, b);
  if (sort === 'kind') return (a, b) => byKind(a, b) || byName(a, b);
  // Least time left first; what holds nothing comes last.
  return (a, b) => (a.left ?? Infinity) - (b.left ?? Infinity) || byKind(a, b) || byName(a, b);
}

const SORT_NAMES: Record<SortKey, string> = { name: 'name', time: 'time left', kind: 'kind' };

/** One frame: a summary line, the keys (interactive), and the table, cut to the terminal's size. */
export function renderFrame(snapshot: Snapshot, options: FrameOptions): string[] {
  const sorted = groups(snapshot).sort(compare(options.sort));
  const header = ['KIND', 'NAME', 'HOLDER', 'TOKEN', 'TIME LEFT', 'INFO'];
  const cells = [header, ...sorted.flatMap((g) => g.rows)];
  const widths = header.map((_, column) => Math.max(...cells.map((row) => row[column]!.length)));
  const table = cells.map((row) =>
    row
      .map((cell, column) => cell.padEnd(widths[column]!))
      .join('  ')
      .trimEnd(),
  );
  const count = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
  const summary =
    `mdlock top: ${options.collection} at ${new Date(snapshot.now).toISOString()}: ` +
    [
      count(snapshot.locks.length, 'lock held', 'locks held'),
      count(snapshot.semaphores.length, 'semaphore'),
      count(snapshot.rwlocks.length, 'read-write lock'),
      count(snapshot.jobs.length, 'job'),
    ].join(', ');
  const keys = `every ${formatDuration(options.interval)}, sorted by ${SORT_NAMES[options.sort]}; keys: n name, t time left, k kind, q quit`;
  const lines = [summary, ...(options.keys ? [keys] : []), '', ...(sorted.length > 0 ? table : ['nothing held'])];
  const { rows, columns } = options;
  let shown = lines;
  if (rows !== undefined && lines.length > rows) {
    shown = lines.slice(0, Math.max(1, rows - 1));
    shown.push(`... ${lines.length - shown.length} more lines`);
  }
  return columns === undefined ? shown : shown.map((line) => line.slice(0, columns));
}

/** Reads the holders of a document's `holders` array that are live by `$$NOW` (with their ttl). */
const liveHolders = {
  $filter: { input: { $ifNull: ['$holders', []] }, as: 'h', cond: { $gt: ['$$h.expiresAt', '$$NOW'] } },
};

type StoredHolder = { owner: string; token: unknown; expiresAt: Date; ttl: number; mode?: 'read' | 'write' };
const toHolder = (h: StoredHolder): TopHolder => ({ ...h, token: Number(h.token), ttl: Number(h.ttl) });
const byToken = (a: TopHolder, b: TopHolder) => a.token - b.token;

/** The most schedules a frame lists (their latest runs are read with one aggregation). */
const MAX_JOBS = 500;

/** Reads what the database holds under `collection` (its locks, semaphores, read-write locks, runs). */
export async function readSnapshot(connection: Connection, collection: string, pattern?: string): Promise<Snapshot> {
  const db = connection.db!;
  const matches = pattern === undefined ? () => true : globMatcher(pattern);
  const holderFields = { owner: 1, token: 1, expiresAt: 1, ttl: 1, mode: 1 };
  const [now, locks, semaphores, rwlocks, runs] = await Promise.all([
    serverNow(connection),
    db
      .collection(collection)
      .aggregate<{ _id: string; contended?: boolean; election?: boolean } & StoredHolder>([
        { $match: { $expr: heldNow } },
        { $project: { ...holderFields, contended: 1, election: 1 } },
        { $sort: { _id: 1 } },
      ])
      .toArray(),
    db
      .collection(`${collection}.semaphores`)
      .aggregate<{ _id: string; limit?: unknown; contended?: boolean; holders: StoredHolder[] }>([
        { $project: { limit: 1, contended: 1, holders: liveHolders } },
        { $sort: { _id: 1 } },
      ])
      .toArray(),
    db
      .collection(`${collection}.rwlocks`)
      .aggregate<{ _id: string; contended?: boolean; waiting: boolean; holders: StoredHolder[] }>([
        {
          $project: {
            contended: 1,
            holders: liveHolders,
            waiting: { $gt: [{ $ifNull: ['$writerWaiting.expiresAt', null] }, '$$NOW'] },
          },
        },
        { $sort: { _id: 1 } },
      ])
      .toArray(),
    db
      .collection(`${collection}.runs`)
      .aggregate<{ last: RunRecord }>([
        { $sort: { name: 1, scheduledAt: -1 } },
        { $group: { _id: '$name', last: { $first: '$$ROOT' } } },
        { $sort: { _id: 1 } },
        { $limit: MAX_JOBS },
      ])
      .toArray(),
  ]);
  const jobs = runs.map(({ last }) => ({ ...last, token: Number(last.token) })).filter((last) => matches(last.name));
  // A running tick's lease is shown on its job's line, not as a lock of its own.
  const ticks = new Map(jobs.map((last) => [tickId(last.name, last.scheduledAt), last.name]));
  const tickHolds = new Map<string, TopHolder>();
  const plainLocks = locks.filter((doc) => {
    const job = ticks.get(doc._id);
    if (job !== undefined) tickHolds.set(job, toHolder(doc));
    return job === undefined && matches(doc._id);
  });
  return {
    now,
    locks: plainLocks.map((doc) => ({
      name: doc._id,
      holder: toHolder(doc),
      contended: doc.contended === true,
      leader: doc.election === true,
    })),
    semaphores: semaphores
      .filter((doc) => typeof doc.limit === 'number' && matches(doc._id))
      .map((doc) => ({
        name: doc._id,
        limit: doc.limit as number,
        holders: doc.holders.map(toHolder).sort(byToken),
        contended: doc.contended === true,
      })),
    rwlocks: rwlocks
      .filter((doc) => matches(doc._id))
      .map((doc) => {
        const holders = doc.holders.map(toHolder).sort(byToken);
        return {
          name: doc._id,
          holders: [...holders.filter((h) => h.mode === 'write'), ...holders.filter((h) => h.mode !== 'write')],
          writerWaiting: doc.waiting,
          contended: doc.contended === true,
        };
      }),
    jobs: jobs.map((last) => ({
      last,
      tick: last.outcome === 'running' ? (tickHolds.get(last.name) ?? null) : null,
    })),
  };
}

/** The terminal `top` draws on and reads keys from: the real one, or a test's. */
export interface Terminal {
  readonly columns: number;
  readonly rows: number;
  write(text: string): void;
  /** Starts raw-mode key reading; returns how to stop it (and restore the terminal's mode). */
  keys(onKey: (key: string) => void): () => void;
  /** Calls `listener` on a resize; returns how to stop listening. */
  onResize(listener: () => void): () => void;
}

/** The process's own terminal, if stdout and stdin are terminals. */
export function processTerminal(): Terminal | undefined {
  const { stdin, stdout } = process;
  if (!stdout.isTTY || !stdin.isTTY) return undefined;
  return {
    get columns() {
      return stdout.columns;
    },
    get rows() {
      return stdout.rows;
    },
    write: (text) => void stdout.write(text),
    keys(onKey) {
      const onData = (data: Buffer) => onKey(data.toString('utf8'));
      stdin.setRawMode(true);
      stdin.on('data', onData);
      stdin.resume();
      return () => {
        stdin.off('data', onData);
        stdin.setRawMode(false);
        stdin.pause(); // or the process would wait for more input
      };
    },
    onResize(listener) {
      stdout.on('resize', listener);
      return () => void stdout.off('resize', listener);
    },
  };
}

// Terminal control: the alternate screen (the shell's screen comes back on exit), cursor hidden,
// each frame drawn from the top left, each line and the rest of the screen cleared after it.
const ENTER = '\x1b[?1049h\x1b[?25l';
const LEAVE = '\x1b[?1049l\x1b[?25h';
const HOME = '\x1b[H';
const CLEAR_LINE = '\x1b[K';
const CLEAR_BELOW = '\x1b[J';

const KEYS: Record<string, SortKey> = { n: 'name', t: 'time', k: 'kind' };
/** Signals that end `top`, with the exit code a shell reports for each. */
const STOPS: Record<string, number> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };

/**
 * `mdlock top`: with `--once` (or when stdout is not a terminal), plain frames without escape
 * codes: one, or one every interval until a signal. Otherwise a live view on the alternate
 * screen, with keys to sort and quit; the terminal is restored however it ends.
 */
export async function topCommand(
  invocation: TopInvocation,
  connection: Connection,
  io: Io,
  terminal: Terminal | undefined,
): Promise<number> {
  const { target, pattern, interval } = invocation;
  let sort: SortKey = invocation.sort;
  const read = () => readSnapshot(connection, target.collection, pattern);
  const plain = (snapshot: Snapshot) =>
    renderFrame(snapshot, { collection: target.collection, sort, interval, keys: false }).join('\n') + '\n';
  if (invocation.once) {
    io.stdout(plain(await read()));
    return ExitCode.Ok;
  }

  let stop: (code: number) => void = () => {};
  const stopped = new Promise<number>((resolve) => (stop = resolve));
  const onSignal = (signal: NodeJS.Signals) => stop(STOPS[signal] ?? ExitCode.Failure);
  for (const signal of Object.keys(STOPS)) process.on(signal, onSignal);
  let timer: NodeJS.Timeout | undefined;
  let ended = false;
  const cleanups: (() => void)[] = [];
  try {
    let last: Snapshot | undefined;
    let problem = '';
    const draw = () => {
      if (!terminal) {
        if (last) io.stdout(`${plain(last)}\n`);
        return;
      }
      const { columns, rows } = terminal;
      const lines = last
        ? renderFrame(last, { collection: target.collection, sort, interval, keys: true, columns, rows: rows - 1 })
        : ['mdlock top: reading...'];
      if (problem) lines.splice(1, 0, `mdlock: ${problem}`.slice(0, columns));
      terminal.write(HOME + lines.map((line) => line + CLEAR_LINE).join('\r\n') + CLEAR_BELOW);
    };
    if (terminal) {
      terminal.write(ENTER);
      cleanups.push(() => terminal.write(LEAVE));
      cleanups.push(
        terminal.keys((key) => {
          if (key === 'q' || key === 'Q' || key === '\x03' || key === '\x04') stop(ExitCode.Ok);
          const chosen = KEYS[key.toLowerCase()];
          if (chosen) {
            sort = chosen;
            draw();
          }
        }),
      );
      cleanups.push(terminal.onResize(draw));
      draw();
    }
    // A refresh starts once the previous one settled: a slow server never piles up reads.
    const refresh = async () => {
      try {
        last = await read();
        problem = '';
      } catch (error) {
        problem = (error as Error).message.split('\n')[0]!;
        if (!terminal && !ended) io.stderr(`mdlock: ${problem}\n`);
      }
      if (ended) return; // a read that was in flight when top ended
      draw();
      timer = setTimeout(() => void refresh(), interval);
    };
    void refresh();
    return await stopped;
  } finally {
    ended = true;
    clearTimeout(timer);
    for (const signal of Object.keys(STOPS)) process.off(signal, onSignal);
    for (const cleanup of cleanups.reverse()) cleanup();
  }
}
