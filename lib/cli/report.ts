import { styleText } from 'node:util';
import type { Connection } from 'mongoose';
import type { LockManager } from '../manager.js';
import type { SemaphoreInfo } from '../semaphore.js';
import type { RunOutcome, RunRecord } from '../runs.js';
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
}

function row(info: LockInfo, serverNow: number): LockRow {
  return {
    name: info.name,
    owner: info.owner,
    token: info.token,
    held: info.held,
    acquiredAt: info.acquiredAt.toISOString(),
    expiresAt: info.expiresAt.toISOString(),
    expiresIn: info.held ? Math.max(0, info.expiresAt.getTime() - serverNow) : null,
  };
}

/** A semaphore's holder as `--json` prints it. */
interface HolderRow {
  readonly owner: string;
  readonly token: number;
  readonly acquiredAt: string;
  readonly expiresAt: string;
  /** Milliseconds left by the server's clock. */
  readonly expiresIn: number;
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
}

function semaphoreRow(info: SemaphoreInfo, serverNow: number): SemaphoreRow {
  return {
    kind: 'semaphore',
    name: info.name,
    limit: info.limit,
    held: info.holders.length > 0,
    holders: info.holders.map((h) => ({
      owner: h.owner,
      token: h.token,
      acquiredAt: h.acquiredAt.toISOString(),
      expiresAt: h.expiresAt.toISOString(),
      expiresIn: Math.max(0, h.expiresAt.getTime() - serverNow),
    })),
  };
}

/** The semaphores' collection of the lock collection `collection` (the library's naming). */
const semaphoreCollection = (collection: string) => `${collection}.semaphores`;

/**
 * The semaphores whose names pass `matches`, each with its stored limit and live holders (read
 * through the library, so that "live" is judged as it judges it), by name.
 */
async function readSemaphores(
  manager: LockManager,
  connection: Connection,
  collection: string,
  matches: (name: string) => boolean,
): Promise<SemaphoreInfo[]> {
  const stored = await connection
    .db!.collection<{ _id: string; limit: number }>(semaphoreCollection(collection))
    .find({}, { projection: { limit: 1 } })
    .sort({ _id: 1 })
    .toArray();
  // A document without a limit yet (a creation in progress) has no holders either.
  const named = stored.filter(
    (doc) => typeof doc._id === 'string' && typeof doc.limit === 'number' && matches(doc._id),
  );
  return Promise.all(named.map((doc) => manager.semaphore(doc._id, { limit: doc.limit }).inspect()));
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

/** The server's clock now (`$$NOW`), so that "expires in" does not depend on this machine's clock. */
async function serverNow(connection: Connection, collection: string): Promise<number> {
  const [doc] = await connection
    .db!.collection(collection)
    .aggregate<{ now: Date }>([{ $limit: 1 }, { $project: { _id: 0, now: '$$NOW' } }])
    .toArray();
  return doc?.now.getTime() ?? Date.now();
}

function paint(io: Io, style: Parameters<typeof styleText>[0], text: string): string {
  return io.tty && !io.env.NO_COLOR ? styleText(style, text) : text;
}

function json(io: Io, value: unknown): void {
  io.stdout(`${JSON.stringify(value, null, 2)}\n`);
}

/** `mdlock ls`: a table of the locks (or a JSON array), those matching the pattern, held ones only with `--held`. */
export async function listLocks(
  manager: LockManager,
  connection: Connection,
  invocation: Extract<Invocation, { command: 'ls' }>,
  io: Io,
): Promise<number> {
  const { target, pattern, held } = invocation;
  const matches = pattern === undefined ? () => true : globMatcher(pattern);
  // Filtered here, over every lock: the collection holds one small document per lock name.
  const locks = (await manager.list()).filter((info) => matches(info.name) && (!held || info.held));
  const semaphores = (await readSemaphores(manager, connection, target.collection, matches)).filter(
    (info) => !held || info.holders.length > 0,
  );
  const clock = locks.length > 0 ? target.collection : semaphoreCollection(target.collection);
  const now = locks.length + semaphores.length > 0 ? await serverNow(connection, clock) : Date.now();
  const rows = locks.map((info) => row(info, now));
  const semaphoreRows = semaphores.map((info) => semaphoreRow(info, now));
  if (target.json) {
    json(io, [...rows, ...semaphoreRows]);
    return ExitCode.Ok;
  }
  if (rows.length + semaphoreRows.length === 0) {
    const which = `${held ? 'held ' : ''}locks${pattern === undefined ? '' : ` matching "${pattern}"`}`;
    io.stdout(`no ${which} in collection "${target.collection}"\n`);
    return ExitCode.Ok;
  }
  // A semaphore: a line with its limit and how many hold it, then a line per holder.
  const lines: { cells: string[]; held: boolean }[] = [
    ...rows.map((r) => ({
      cells: [
        r.name,
        r.owner,
        String(r.token),
        r.held ? 'held' : 'free',
        r.expiresIn === null ? '-' : formatDuration(r.expiresIn),
      ],
      held: r.held,
    })),
    ...semaphoreRows.flatMap((s) => [
      { cells: [s.name, `limit ${s.limit}`, '-', s.held ? `${s.holders.length} held` : 'free', '-'], held: s.held },
      ...s.holders.map((h) => ({
        cells: ['  permit', h.owner, String(h.token), 'held', formatDuration(h.expiresIn)],
        held: true,
      })),
    ]),
  ];
  const cells = [['NAME', 'OWNER', 'TOKEN', 'STATE', 'EXPIRES IN'], ...lines.map((line) => line.cells)];
  io.stdout(table(io, cells, (i) => (lines[i]!.held ? undefined : 'dim')));
  return ExitCode.Ok;
}

/**
 * `mdlock inspect <name>`: one lock; if there is no lock `name`, the semaphore `name`; exit code 1
 * if there is neither.
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
    const [semaphore] = await readSemaphores(manager, connection, target.collection, (found) => found === name);
    if (semaphore) return showSemaphore(semaphore, connection, target, io);
    if (target.json) json(io, null);
    throw new CliError(`no lock or semaphore named "${name}" in collection "${target.collection}"`, ExitCode.Failure);
  }
  const r = row(info, info.held ? await serverNow(connection, target.collection) : Date.now());
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
  ];
  io.stdout(fields.map(([key, value]) => `${key.padEnd(9)}${value}\n`).join(''));
  return ExitCode.Ok;
}

/** `mdlock inspect <name>` of a semaphore: its limit, then each live holder. */
async function showSemaphore(info: SemaphoreInfo, connection: Connection, target: Target, io: Io): Promise<number> {
  const now = info.holders.length > 0 ? await serverNow(connection, semaphoreCollection(target.collection)) : 0;
  const r = semaphoreRow(info, now);
  if (target.json) {
    json(io, r);
    return ExitCode.Ok;
  }
  const fields: [string, string][] = [
    ['name', r.name],
    ['kind', 'semaphore'],
    ['limit', String(r.limit)],
    ['state', r.held ? paint(io, 'green', `${r.holders.length} held`) : 'free'],
    ...r.holders.map((h): [string, string] => [
      'holder',
      `${h.owner}, token ${h.token}, acquired ${h.acquiredAt}, expires ${h.expiresAt} (in ${formatDuration(h.expiresIn)})`,
    ]),
  ];
  io.stdout(fields.map(([key, value]) => `${key.padEnd(9)}${value}\n`).join(''));
  return ExitCode.Ok;
}

/** `mdlock release --force <name>`: frees the lock whoever holds it. */
export async function releaseLock(manager: LockManager, name: string, target: Target, io: Io): Promise<number> {
  const before = await manager.inspect(name);
  const released = await manager.forceRelease(name);
  if (target.json) {
    json(io, { name, released, owner: before?.owner ?? null, token: before?.token ?? null });
  } else if (released) {
    io.stdout(`released "${name}" (it was held by ${before?.owner ?? 'someone'}, token ${before?.token ?? '?'})\n`);
  } else {
    io.stdout(`"${name}" was not held: nothing to release\n`);
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
