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

type RunInvocation = Extract<Invocation, { command: 'run' }>;

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

async function busyMessage(manager: LockManager, name: string, waited: string): Promise<string> {
  const holder = await manager.inspect(name).catch(() => null);
  const who = holder?.held ? `: held by ${holder.owner} (token ${holder.token})` : '';
  return `lock "${name}" is busy${waited}${who}`;
}

/** Takes the lock as the options say: a lease, `null` if busy, or the signal that interrupted the wait. */
async function take(
  manager: LockManager,
  invocation: RunInvocation,
  interrupted: AbortSignal,
  io: Io,
): Promise<Lease | null | NodeJS.Signals> {
  const { name, wait } = invocation;
  const started = performance.now();
  try {
    const lease = await manager.tryAcquire(name, { signal: interrupted });
    if (lease || wait === undefined) return lease;
    if (invocation.verbose) {
      const until = wait === Infinity ? 'as long as it takes' : `up to ${formatDuration(wait)}`;
      io.stderr(`mdlock: ${await busyMessage(manager, name, '')}; waiting ${until}\n`);
    }
    const left = Math.max(0, wait - (performance.now() - started));
    return await manager.acquire(name, { wait: left, signal: interrupted });
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
 * `mdlock run`: holds the lock while the command runs (the manager's watchdog renews it), and
 * resolves with the exit code. The lock is released on every way out that this process lives
 * through; if mdlock itself is killed with SIGKILL, the lock expires after its ttl.
 */
export async function runCommand(invocation: RunInvocation, connection: Connection, io: Io): Promise<number> {
  const { name, ttl, heartbeat, owner, target, grace } = invocation;
  const manager = new LockManager({
    connection,
    collection: target.collection,
    ttl,
    heartbeat,
    owner,
    commandTimeout: target.timeout,
  });
  const warned = new Set<string>();
  manager.on('error', (error) => {
    const kind = (error as { code?: string }).code ?? error.name;
    if (warned.has(kind)) return;
    warned.add(kind);
    io.stderr(`mdlock: warning: ${error.message}\n`);
  });

  const interrupt = new AbortController();
  let child: ChildProcess | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (child) signalGroup(child, signal);
    else interrupt.abort(signal);
  };
  for (const signal of FORWARDED) process.on(signal, onSignal);
  try {
    const lease = await take(manager, invocation, interrupt.signal, io);
    if (typeof lease === 'string') return signalExit(lease);
    if (!lease) {
      const waited = invocation.wait ? ` after waiting ${formatDuration(invocation.wait)}` : '';
      if (!invocation.quiet) io.stderr(`mdlock: ${await busyMessage(manager, name, waited)}\n`);
      return ExitCode.Busy;
    }

    if (invocation.verbose) io.stderr(`mdlock: acquired "${name}" (token ${lease.token})\n`);
    const [file, ...args] = invocation.argv;
    const env = { ...io.env, [invocation.tokenEnv]: String(lease.token) };
    child = spawn(file!, args, { stdio: 'inherit', env, detached: true });
    let lost: LeaseLostError | undefined;
    let graceOver: Promise<void> | undefined;
    const running = child;
    const onLost = (error: LeaseLostError) => {
      lost = error;
      io.stderr(`mdlock: lost the lock "${name}" (${error.reason}): stopping the command\n`);
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
    for (const signal of FORWARDED) process.off(signal, onSignal);
    const releasing = manager.heldLeases.length > 0;
    await manager.close(); // releases the lease if it is still held
    if (releasing && invocation.verbose) io.stderr(`mdlock: released "${name}"\n`);
  }
}
