import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Connection } from 'mongoose';
import { LockTimeoutError, type LeaseLostError } from '../errors.js';
import type { Lease } from '../lease.js';
import { LockManager } from '../manager.js';
import { ExitCode, type Invocation } from './args.js';
import type { Io } from './program.js';
import { formatDuration } from './report.js';
import { DEFAULTS } from '../defaults.js';

type RunInvocation = Extract<Invocation, { command: 'run' }>;

/**
 * The lease's safety margin (the manager's `margin`): it counts as lost this fraction of the ttl
 * before it could expire on the server. It bounds `--grace`, so that a command stopped after a
 * loss is gone before the server could give the lock to anyone else.
 */
const MARGIN = DEFAULTS.margin;

/** How long a command stopped after a loss (or after mdlock was killed) gets between SIGTERM and SIGKILL. */
export function boundedGrace(grace: number, ttl: number): number {
  return Math.min(grace, ttl * MARGIN);
}

/**
 * The watcher, a separate small process (`node -e`, in a session of its own so that no signal to
 * mdlock's process group reaches it): it reads a pipe from mdlock, and if the pipe closes while
 * mdlock has said nothing (mdlock died, even of SIGKILL), it sends SIGTERM to the command's
 * process group, then SIGKILL once the group is gone or the grace is over. mdlock disarms it
 * (writes to the pipe) and kills it once the command has exited. Arguments: pgid, grace in ms.
 */
const WATCHER = `
const group = -Number(process.argv[1]);
const grace = Number(process.argv[2]);
const send = (signal) => { try { process.kill(group, signal); return true; } catch { return false; } };
let disarmed = false;
let stopping = false;
const stop = () => {
  if (disarmed || stopping) return process.exit(0);
  stopping = true;
  send('SIGTERM');
  const deadline = Date.now() + grace;
  setInterval(() => {
    if (!send(0) || Date.now() >= deadline) { send('SIGKILL'); process.exit(0); }
  }, 50);
};
process.stdin.on('data', () => { disarmed = true; });
process.stdin.on('end', stop);
process.stdin.on('error', stop);
`;

/** Starts the watcher of the command's group; returns how to disarm it. */
function watch(child: ChildProcess, grace: number): () => void {
  let watcher: ChildProcess;
  try {
    watcher = spawn(process.execPath, ['-e', WATCHER, String(child.pid), String(Math.round(grace))], {
      stdio: ['pipe', 'ignore', 'ignore'],
      detached: true,
      env: {},
    });
  } catch {
    return () => {}; // mdlock still stops the command itself on every way out it lives through
  }
  watcher.on('error', () => {});
  watcher.stdin!.on('error', () => {});
  watcher.unref();
  (watcher.stdin as unknown as { unref?(): void }).unref?.();
  return () => {
    watcher.stdin!.end('done'); // read before the end of the pipe: the watcher then stands down
    watcher.kill('SIGKILL');
  };
}

/** Signals passed on to the command; SIGKILL and SIGSTOP cannot be caught. */
const FORWARDED: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

/** The exit code of a process that died of `signal`, as shells report it. */
function signalExit(signal: NodeJS.Signals): number {
  return 128 + (constants.signals[signal] ?? 0);
}

/** Signals the command's whole process group (it leads one: pipelines and `sh -c` children included). */
function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // the group is gone already
  }
}

function groupAlive(child: ChildProcess): boolean {
  try {
    process.kill(-child.pid!, 0);
    return true;
  } catch {
    return false;
  }
}

/** After a SIGTERM: resolves when the command's process group is gone, sending SIGKILL once `grace` ms have passed. */
async function stopGroup(child: ChildProcess, grace: number): Promise<void> {
  const deadline = performance.now() + grace;
  while (groupAlive(child) && performance.now() < deadline) await sleep(Math.min(50, grace));
  signalGroup(child, 'SIGKILL');
}

/**
 * What `run` holds: the lock `name`, or with `--limit` a permit of the semaphore `name`. Both are
 * leases (the same events, token, renewal and release), so the rest of `run` does not tell them apart.
 */
interface Holdable {
  /** `lock "name"` or `semaphore "name"`, for messages. */
  readonly what: string;
  /** The hold, as messages name it: `"name"` (a lock, as always), or `a permit of semaphore "name"`. */
  readonly hold: string;
  /** The hold once lost: `the lock "name"` or `its permit of semaphore "name"`. */
  readonly lost: string;
  tryAcquire(signal: AbortSignal): Promise<Lease | null>;
  acquire(wait: number, signal: AbortSignal): Promise<Lease>;
  /** Who holds it, to say why it is busy: `: held by ...`, or `''` if that cannot be read. */
  holders(): Promise<string>;
}

function holdable(manager: LockManager, invocation: RunInvocation): Holdable {
  const { name, limit } = invocation;
  if (limit === undefined) {
    return {
      what: `lock "${name}"`,
      hold: `"${name}"`,
      lost: `the lock "${name}"`,
      tryAcquire: (signal) => manager.tryAcquire(name, { signal }),
      acquire: (wait, signal) => manager.acquire(name, { wait, signal }),
      holders: async () => {
        const holder = await manager.inspect(name).catch(() => null);
        return holder?.held ? `: held by ${holder.owner} (token ${holder.token})` : '';
      },
    };
  }
  const semaphore = manager.semaphore(name, { limit });
  return {
    what: `semaphore "${name}"`,
    hold: `a permit of semaphore "${name}"`,
    lost: `its permit of semaphore "${name}"`,
    tryAcquire: (signal) => semaphore.tryAcquire({ signal }),
    acquire: (wait, signal) => semaphore.acquire({ wait, signal }),
    holders: async () => {
      const info = await semaphore.inspect().catch(() => null);
      if (!info || info.holders.length === 0) return '';
      const who = info.holders.map((h) => `${h.owner} (token ${h.token})`).join(', ');
      return `: ${info.holders.length} of ${info.limit} permits held by ${who}`;
    },
  };
}

async function busyMessage(subject: Holdable, waited: string): Promise<string> {
  return `${subject.what} is busy${waited}${await subject.holders()}`;
}

/** Takes the lock or permit as the options say: a lease, `null` if busy, or the signal that interrupted the wait. */
async function take(
  subject: Holdable,
  invocation: RunInvocation,
  interrupted: AbortSignal,
  io: Io,
): Promise<Lease | null | NodeJS.Signals> {
  const { wait } = invocation;
  const started = performance.now();
  try {
    const lease = await subject.tryAcquire(interrupted);
    if (lease || wait === undefined) return lease;
    if (invocation.verbose) {
      const until = wait === Infinity ? 'as long as it takes' : `up to ${formatDuration(wait)}`;
      io.stderr(`mdlock: ${await busyMessage(subject, '')}; waiting ${until}\n`);
    }
    const left = Math.max(0, wait - (performance.now() - started));
    return await subject.acquire(left, interrupted);
  } catch (error) {
    if (interrupted.aborted) return interrupted.reason as NodeJS.Signals;
    if (error instanceof LockTimeoutError) return null;
    throw error;
  }
}

/** Runs the command and resolves with how it ended, or with the error that kept it from starting. */
function execute(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null } | Error> {
  return new Promise((resolve) => {
    child.once('error', (error) => {
      if (child.pid === undefined) resolve(error); // never started
    });
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

/**
 * `mdlock run`: holds the lock (or with `--limit` a semaphore's permit) while the command runs
 * (the manager's watchdog renews it), and resolves with the exit code. The hold is released on
 * every way out that this process lives through; if mdlock itself is killed with SIGKILL, it
 * expires after its ttl.
 */
export async function runCommand(invocation: RunInvocation, connection: Connection, io: Io): Promise<number> {
  const { name, ttl, heartbeat, owner, target } = invocation;
  const grace = boundedGrace(invocation.grace, ttl);
  const manager = new LockManager({
    connection,
    collection: target.collection,
    ttl,
    heartbeat,
    owner,
    margin: MARGIN,
    commandTimeout: target.timeout,
  });
  const subject = holdable(manager, invocation);
  const warned = new Set<string>();
  manager.on('error', (error) => {
    const kind = (error as { code?: string }).code ?? error.name;
    if (warned.has(kind)) return;
    warned.add(kind);
    io.stderr(`mdlock: warning: ${error.message}\n`);
  });

  const interrupt = new AbortController();
  let child: ChildProcess | undefined;
  let releasing = false;
  const onSignal = (signal: NodeJS.Signals) => {
    // During the release the handler stays: a signal then must not abandon it halfway.
    if (releasing) io.stderr(`mdlock: ${signal}: releasing "${name}" first\n`);
    else if (child) signalGroup(child, signal);
    else interrupt.abort(signal);
  };
  for (const signal of FORWARDED) process.on(signal, onSignal);
  let disarm = () => {};
  try {
    const lease = await take(subject, invocation, interrupt.signal, io);
    if (typeof lease === 'string') return signalExit(lease);
    if (!lease) {
      const waited = invocation.wait ? ` after waiting ${formatDuration(invocation.wait)}` : '';
      if (!invocation.quiet) io.stderr(`mdlock: ${await busyMessage(subject, waited)}\n`);
      return ExitCode.Busy;
    }

    if (invocation.verbose) io.stderr(`mdlock: acquired ${subject.hold} (token ${lease.token})\n`);
    const [file, ...args] = invocation.argv;
    const env = { ...io.env, [invocation.tokenEnv]: String(lease.token) };
    child = spawn(file!, args, { stdio: 'inherit', env, detached: true });
    if (child.pid !== undefined) disarm = watch(child, grace);
    let lost: LeaseLostError | undefined;
    let graceOver: Promise<void> | undefined;
    const running = child;
    const onLost = (error: LeaseLostError) => {
      lost = error;
      io.stderr(
        `mdlock: lost ${subject.lost} (${error.reason}): stopping the command (SIGKILL after ${formatDuration(grace)})\n`,
      );
      signalGroup(running, 'SIGTERM');
      graceOver = stopGroup(running, grace);
    };
    lease.once('lost', onLost);
    const outcome = await execute(child);
    lease.off('lost', onLost);
    if (outcome instanceof Error) {
      const code = (outcome as NodeJS.ErrnoException).code;
      io.stderr(`mdlock: cannot run "${file}": ${code === 'ENOENT' ? 'command not found' : outcome.message}\n`);
      return code === 'ENOENT' ? ExitCode.NotFound : ExitCode.NotExecutable;
    }
    if (lost) {
      await graceOver; // what the command left running in its group gets SIGKILL when the grace period ends
      return ExitCode.Lost;
    }
    return outcome.code ?? signalExit(outcome.signal!);
  } finally {
    disarm();
    releasing = manager.heldLeases.length > 0;
    if (releasing && invocation.verbose) io.stderr(`mdlock: releasing ${subject.hold}\n`);
    try {
      await manager.close(); // releases the lease if it is still held
    } finally {
      for (const signal of FORWARDED) process.off(signal, onSignal);
    }
    if (releasing && invocation.verbose) io.stderr(`mdlock: released ${subject.hold}\n`);
  }
}
