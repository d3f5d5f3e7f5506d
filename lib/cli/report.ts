import { styleText } from 'node:util';
import type { Connection } from 'mongoose';
import type { ListedInfo, LockManager, Queued } from '../manager.js';
import type { ReadWriteLockInfo } from '../rwlock.js';
import type { SemaphoreInfo } from '../semaphore.js';
import type { SemaphoreHolder } from '../semaphore-store.js';
import type { RunOutcome, RunRecord } from '../runs.js';
import { liveQueue } from '../commands.js';
import type { LockInfo } from '../types.js';
import { CliError, ExitCode, globMatcher, type Invocation, type Target } from './args.js';
import type { Io } from './program.js';

/** A lock as `--json` prints it. */
interface LockRow {
  readonly name: string;
  readonly owner: string;
  readonly token: number;
  readonly held: boolean;
  readonly acquiredAt: string;
  readonly expiresAt: string;
  /** Milliseconds left by the server's clock while held; `null` when free. */
  readonly expiresIn: number | null;
  /** Live fair waiters queued for it, from every process. */
  readonly queued: number;
}

function row(info: LockInfo & Queued, serverNow: number): LockRow {
  return {
    name: info.name,
    owner: info.owner,
    token: info.token,
    held: info.held,
    acquiredAt: info.acquiredAt.toISOString(),
    expiresAt: info.expiresAt.toISOString(),
    expiresIn: info.held ? Math.max(0, info.expiresAt.getTime() - serverNow) : null,
    queued: info.queued,
  };
}

/** A semaphore's or read-write lock's holder as `--json` prints it. */
interface HolderRow {
  readonly owner: string;
  readonly token: number;
  readonly acquiredAt: string;
  readonly expiresAt: string;
  /** Milliseconds left by the server's clock. */
  readonly expiresIn: number;
}

function holderRow(h: SemaphoreHolder, serverNow: number): HolderRow {
  return {
    owner: h.owner,
    token: h.token,
    acquiredAt: h.acquiredAt.toISOString(),
    expiresAt: h.expiresAt.toISOString(),
    expiresIn: Math.max(0, h.expiresAt.getTime() - serverNow),
  };
}

/** A semaphore as `--json` prints it: `kind` tells it from a lock (whose rows have no `kind`). */
interface SemaphoreRow {
  readonly kind: 'semaphore';
  readonly name: string;
  readonly limit: number;
  /** True when it has at least one live holder. */
  readonly held: boolean;
  /** The live holders, by token. */
  readonly holders: readonly HolderRow[];
  /** Live fair waiters queued for a permit, from every process. */
  readonly queued: number;
}

function semaphoreRow(info: SemaphoreInfo & Queued, serverNow: number): SemaphoreRow {
  return {
    kind: 'semaphore',
    name: info.name,
    limit: info.limit,
    held: info.holders.length > 0,
    holders: info.holders.map((h) => holderRow(h, serverNow)),
    queued: info.queued,
  };
}

/** A read-write lock as `--json` prints it. */
interface RwLockRow {
  readonly kind: 'rwlock';
  readonly name: string;
  /** True when it has a live reader or writer. */
  readonly held: boolean;
  /** The live readers, by token. */
  readonly readers: readonly HolderRow[];
  readonly writer: HolderRow | null;
  /** A writer waits (and new readers wait behind it): when its marker expires unless renewed. */
  readonly writerWaiting: { readonly expiresAt: string; readonly expiresIn: number } | null;
  /** Live fair waiters (readers and writers) queued for it, from every process. */
  readonly queued: number;
}

function rwLockRow(info: ReadWriteLockInfo & Queued, serverNow: number): RwLockRow {
  const marker = info.writerWaiting;
  return {
    kind: 'rwlock',
    name: info.name,
    held: info.writer !== null || info.readers.length > 0,
    readers: info.readers.map((h) => holderRow(h, serverNow)),
    writer: info.writer && holderRow(info.writer, serverNow),
    writerWaiting: marker && {
      expiresAt: marker.expiresAt.toISOString(),
      expiresIn: Math.max(0, marker.expiresAt.getTime() - serverNow),
    },
    queued: info.queued,
  };
}

/** A state cell with the fair queue: `held, 2 queued`. */
const withQueue = (state: string, queued: number) => (queued > 0 ? `${state}, ${queued} queued` : state);

/** `inspect`'s line of the fair queue, if anyone is queued. */
const queueField = (queued: number): [string, string][] =>
  queued > 0 ? [['queued', `${queued} fair waiter${queued === 1 ? '' : 's'}`]] : [];

/** A read-write lock's state in one word or two: `write`, `2 read`, `free`, and whether a writer waits. */
function rwState(r: RwLockRow): string {
  const state = r.writer ? 'write' : r.readers.length > 0 ? `${r.readers.length} read` : 'free';
  return r.writerWaiting ? `${state}, writer waiting` : state;
}

/** What a name names: each kind stored under it (a lock, a semaphore, a read-write lock), by kind. */
async function named(manager: LockManager, matches: (name: string) => boolean): Promise<ListedInfo[]> {
  // Filtered here, over every entry: each collection holds one small document per name.
  return (await manager.list({ all: true })).filter((info) => matches(info.name));
}

/** `1.2s`, `42s`, `3m 20s`, `5h 2m`, `3d 4h`. */
export function formatDuration(ms: number): string {
  const s = ms / 1000;
  if (s < 10) return `${(Math.floor(s * 10) / 10).toFixed(1)}s`;
  if (s < 60) return `${Math.floor(s)}s`;
  const units: [number, string][] = [
    [86_400, 'd'],
    [3600, 'h'],
    [60, 'm'],
    [1, 's'],
  ];
  const i = units.findIndex(([size]) => s >= size);
  const [big, bigUnit] = units[i]!;
  const [small, smallUnit] = units[i + 1]!;
  return `${Math.floor(s / big)}${bigUnit} ${Math.floor((s % big) / small)}${smallUnit}`;
}

/** The server's clock now, so that "expires in" does not depend on this machine's clock. */
export async function serverNow(connection: Connection): Promise<number> {
  const hello = await connection.db!.command({ hello: 1 });
  return hello.localTime instanceof Date ? hello.localTime.getTime() : Date.now();
}

function paint(io: Io, style: Parameters<typeof styleText>[0], text: string): string {
  return io.tty && !io.env.NO_COLOR ? styleText(style, text) : text;
}

function json(io: Io, value: unknown): void {
  io.stdout(`${JSON.stringify(value, null, 2)}\n`);
}

/** A line of `ls`'s table: its cells, and whether it is held (a line that is not is dimmed). */
interface Line {
  readonly cells: readonly string[];
  readonly held: boolean;
}

/** The table lines of a lock, a semaphore (then a line per permit), a read-write lock (then a line per hold). */
function lines(r: LockRow | SemaphoreRow | RwLockRow): Line[] {
  const hold = (what: string) => (h: HolderRow) => ({
    cells: [`  ${what}`, h.owner, String(h.token), 'held', formatDuration(h.expiresIn)],
    held: true,
  });
  if (!('kind' in r)) {
    const left = r.expiresIn === null ? '-' : formatDuration(r.expiresIn);
    const state = withQueue(r.held ? 'held' : 'free', r.queued);
    return [{ cells: [r.name, r.owner, String(r.token), state, left], held: r.held }];
  }
  if (r.kind === 'semaphore') {
    const state = withQueue(r.held ? `${r.holders.length} held` : 'free', r.queued);
    return [{ cells: [r.name, `limit ${r.limit}`, '-', state, '-'], held: r.held }, ...r.holders.map(hold('permit'))];
  }
  return [
    { cells: [r.name, 'rwlock', '-', withQueue(rwState(r), r.queued), '-'], held: r.held },
    ...(r.writer ? [hold('write')(r.writer)] : []),
    ...r.readers.map(hold('read')),
  ];
}

/** Every listed entry as its `--json` row. */
function rows(found: readonly ListedInfo[], now: number): (LockRow | SemaphoreRow | RwLockRow)[] {
  return found.map((info) => {
    if (info.kind === 'semaphore') return semaphoreRow(info, now);
    if (info.kind === 'rwlock') return rwLockRow(info, now);
    return row(info, now);
  });
}

/**
 * `mdlock ls`: a table of the locks, then the semaphores, then the read-write locks (or a JSON
 * array), those matching the pattern, held ones only with `--held`.
 */
export async function listLocks(
  manager: LockManager,
  connection: Connection,
  invocation: Extract<Invocation, { command: 'ls' }>,
  io: Io,
): Promise<number> {
  const { target, pattern, held } = invocation;
  const matches = pattern === undefined ? () => true : globMatcher(pattern);
  const found = await named(manager, matches);
  const now = found.length > 0 ? await serverNow(connection) : Date.now();
  const listed = rows(found, now).filter((r) => !held || r.held);
  if (target.json) {
    json(io, listed);
    return ExitCode.Ok;
  }
  if (listed.length === 0) {
    const which = `${held ? 'held ' : ''}locks${pattern === undefined ? '' : ` matching "${pattern}"`}`;
    io.stdout(`no ${which} in collection "${target.collection}"\n`);
    return ExitCode.Ok;
  }
  const all = listed.flatMap(lines);
  const cells = [['NAME', 'OWNER', 'TOKEN', 'STATE', 'EXPIRES IN'], ...all.map((line) => line.cells)];
  io.stdout(table(io, cells, (i) => (all[i]!.held ? undefined : 'dim')));
  return ExitCode.Ok;
}

/**
 * `mdlock inspect <name>`: one lock; if there is no lock `name`, the semaphore `name`, or else the
 * read-write lock `name`; exit code 1 if there is none.
 */
export async function inspectLock(
  manager: LockManager,
  connection: Connection,
  name: string,
  target: Target,
  io: Io,
): Promise<number> {
  const info = await manager.inspect(name);
  if (!info) {
    const [other] = await named(manager, (found) => found === name);
    if (other?.kind === 'semaphore') return showSemaphore(other, connection, target, io);
    if (other?.kind === 'rwlock') return showRwLock(other, connection, target, io);
    if (target.json) json(io, null);
    throw new CliError(
      `no lock, semaphore or read-write lock named "${name}" in collection "${target.collection}"`,
      ExitCode.Failure,
    );
  }
  const r = row(
    { ...info, queued: await queuedFor(connection, target.collection, name) },
    info.held ? await serverNow(connection) : Date.now(),
  );
  if (target.json) {
    json(io, r);
    return ExitCode.Ok;
  }
  const fields: [string, string][] = [
    ['name', r.name],
    ['state', r.held ? paint(io, 'green', 'held') : 'free'],
    ['owner', r.owner],
    ['token', String(r.token)],
    ['acquired', r.acquiredAt],
    [
      r.held ? 'expires' : 'ended',
      r.expiresIn === null ? r.expiresAt : `${r.expiresAt} (in ${formatDuration(r.expiresIn)})`,
    ],
    ...queueField(r.queued),
  ];
  printFields(io, fields);
  return ExitCode.Ok;
}

function printFields(io: Io, fields: readonly (readonly [string, string])[]): void {
  io.stdout(fields.map(([key, value]) => `${key.padEnd(9)}${value}\n`).join(''));
}

/** A holder's line of `inspect`. */
const holderLine = (h: HolderRow) =>
  `${h.owner}, token ${h.token}, acquired ${h.acquiredAt}, expires ${h.expiresAt} (in ${formatDuration(h.expiresIn)})`;

/** `mdlock inspect <name>` of a semaphore: its limit, then each live holder. */
async function showSemaphore(
  info: SemaphoreInfo & Queued,
  connection: Connection,
  target: Target,
  io: Io,
): Promise<number> {
  const r = semaphoreRow(info, info.holders.length > 0 ? await serverNow(connection) : 0);
  if (target.json) {
    json(io, r);
    return ExitCode.Ok;
  }
  printFields(io, [
    ['name', r.name],
    ['kind', 'semaphore'],
    ['limit', String(r.limit)],
    ['state', r.held ? paint(io, 'green', `${r.holders.length} held`) : 'free'],
    ...r.holders.map((h): [string, string] => ['holder', holderLine(h)]),
    ...queueField(r.queued),
  ]);
  return ExitCode.Ok;
}

/** `mdlock inspect <name>` of a read-write lock: its state, its writer, its readers, a waiting writer. */
async function showRwLock(
  info: ReadWriteLockInfo & Queued,
  connection: Connection,
  target: Target,
  io: Io,
): Promise<number> {
  const busy = info.writer !== null || info.readers.length > 0 || info.writerWaiting !== null;
  const r = rwLockRow(info, busy ? await serverNow(connection) : 0);
  if (target.json) {
    json(io, r);
    return ExitCode.Ok;
  }
  const waiting = r.writerWaiting;
  printFields(io, [
    ['name', r.name],
    ['kind', 'rwlock'],
    ['state', r.held ? paint(io, 'green', rwState(r)) : rwState(r)],
    ...(r.writer ? [['writer', holderLine(r.writer)] as [string, string]] : []),
    ...r.readers.map((h): [string, string] => ['reader', holderLine(h)]),
    ...(waiting
      ? [
          [
            'waiting',
            `a writer; new readers wait (marker expires ${waiting.expiresAt}, in ${formatDuration(waiting.expiresIn)})`,
          ] as [string, string],
        ]
      : []),
    ...queueField(r.queued),
  ]);
  return ExitCode.Ok;
}

/** The live fair waiters queued for the lock `name` (read from its document, by the server's clock). */
async function queuedFor(connection: Connection, collection: string, name: string): Promise<number> {
  const [doc] = await connection
    .db!.collection<{ _id: string }>(collection)
    .aggregate<{ queued: number }>([{ $match: { _id: name } }, { $project: { queued: { $size: liveQueue } } }])
    .toArray();
  return doc?.queued ?? 0;
}

/** Who held what `release` ended, for its message. */
function who(holders: readonly { owner: string; token: number }[]): string {
  return holders.map((h) => `${h.owner} (token ${h.token})`).join(', ');
}

/**
 * `mdlock release --force <name>`: frees the lock whoever holds it; or a semaphore's permits or a
 * read-write lock's holds (every one, or with `--token` the one with that token). Without
 * `--kind`, `name` is whichever kind of that name is held (a usage error if several are).
 */
export async function releaseLock(
  manager: LockManager,
  invocation: Extract<Invocation, { command: 'release' }>,
  io: Io,
): Promise<number> {
  const { name, target, token } = invocation;
  const found = await named(manager, (n) => n === name);
  const holders = (info: ListedInfo | undefined) => {
    if (!info) return [];
    if (info.kind === 'lock') return info.held ? [{ owner: info.owner, token: info.token }] : [];
    const all = info.kind === 'semaphore' ? info.holders : [...(info.writer ? [info.writer] : []), ...info.readers];
    return all.filter((h) => token === undefined || h.token === token);
  };
  let kind = invocation.kind;
  if (kind === undefined) {
    // With --token, a lock is never meant (it has one holder, and no --token).
    const held = found.filter((info) => (token === undefined || info.kind !== 'lock') && holders(info).length > 0);
    if (held.length > 1) {
      const kinds = held.map((info) => info.kind).join(' and ');
      throw new CliError(`"${name}" names a held ${kinds}: say which with --kind`, ExitCode.Usage);
    }
    const other = found.find((info) => info.kind !== 'lock')?.kind ?? 'semaphore';
    kind = held[0]?.kind ?? (token === undefined ? 'lock' : other);
  }
  const before = holders(found.find((info) => info.kind === kind));
  if (kind === 'lock') {
    const lock = found.find((info) => info.kind === 'lock') as LockInfo | undefined;
    const released = await manager.forceRelease(name);
    if (target.json) {
      json(io, { name, released, owner: lock?.owner ?? null, token: lock?.token ?? null });
    } else if (released) {
      io.stdout(`released "${name}" (it was held by ${lock?.owner ?? 'someone'}, token ${lock?.token ?? '?'})\n`);
    } else {
      io.stdout(`"${name}" was not held: nothing to release\n`);
    }
    return ExitCode.Ok;
  }
  const released = await manager.forceRelease(name, { kind, token });
  const what = kind === 'semaphore' ? `semaphore "${name}"` : `read-write lock "${name}"`;
  if (target.json) {
    json(io, { name, kind, released, holders: released ? before.map(({ owner, token }) => ({ owner, token })) : [] });
  } else if (released) {
    const holds = kind === 'semaphore' ? 'permit' : 'hold';
    const count = before.length === 1 ? `1 ${holds}` : `${before.length} ${holds}s`;
    io.stdout(`released ${count} of ${what} (held by ${who(before)})\n`);
  } else {
    const which = token === undefined ? '' : ` with token ${token}`;
    io.stdout(`${what} had no live holder${which}: nothing to release\n`);
  }
  return ExitCode.Ok;
}

/** A run as `mdlock runs --json` prints it. */
interface RunRow {
  readonly name: string;
  readonly scheduledAt: string;
  readonly outcome: RunOutcome;
  readonly attempt: number;
  readonly token: number;
  readonly owner: string;
  readonly startedAt: string;
  /** `null` while running, or when its runner died before settling it. */
  readonly finishedAt: string | null;
  /** The message of the error a failed run threw; `null` otherwise. */
  readonly error: string | null;
}

function runRow(record: RunRecord): RunRow {
  return {
    name: record.name,
    scheduledAt: record.scheduledAt.toISOString(),
    outcome: record.outcome,
    attempt: record.attempt,
    token: record.token,
    owner: record.owner,
    startedAt: record.startedAt.toISOString(),
    finishedAt: record.finishedAt?.toISOString() ?? null,
    error: record.error ?? null,
  };
}

type Style = Parameters<typeof styleText>[0];

/** Lines of a table whose columns are padded to their widest cell; the header in bold. */
function table(io: Io, cells: readonly (readonly string[])[], style: (row: number) => Style | undefined): string {
  const widths = cells[0]!.map((_, column) => Math.max(...cells.map((row) => row[column]!.length)));
  const lines = cells.map((row, line) => {
    const text = row
      .map((cell, column) => cell.padEnd(widths[column]!))
      .join('  ')
      .trimEnd();
    if (line === 0) return paint(io, 'bold', text);
    const color = style(line - 1);
    return color === undefined ? text : paint(io, color, text);
  });
  return `${lines.join('\n')}\n`;
}

const OUTCOME_STYLE: Partial<Record<RunOutcome, Style>> = {
  failed: 'red',
  lost: 'red',
  missed: 'dim',
  running: 'green',
};

/** `mdlock runs <name>`: the latest runs of a schedule, newest first (a table, or a JSON array). */
export async function listRuns(
  manager: LockManager,
  invocation: Extract<Invocation, { command: 'runs' }>,
  io: Io,
): Promise<number> {
  const { target, name, limit } = invocation;
  const rows = (await manager.runs(name, { limit })).map(runRow);
  if (target.json) {
    json(io, rows);
    return ExitCode.Ok;
  }
  if (rows.length === 0) {
    io.stdout(`no runs of "${name}" in collection "${target.collection}.runs"\n`);
    return ExitCode.Ok;
  }
  const cells = [
    ['SCHEDULED AT', 'OUTCOME', 'ATTEMPT', 'TOKEN', 'OWNER', 'STARTED', 'FINISHED'],
    ...rows.map((r) => [
      r.scheduledAt,
      r.outcome,
      String(r.attempt),
      String(r.token),
      r.owner,
      r.startedAt,
      r.finishedAt ?? '-',
    ]),
  ];
  io.stdout(table(io, cells, (i) => OUTCOME_STYLE[rows[i]!.outcome]));
  return ExitCode.Ok;
}
