import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** The repository's root: scripts are given relative to it. */
export const root = path.join(__dirname, '..', '..');

/** True while a process with this id exists and has not exited (a zombie waiting to be reaped has). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  return procStat(pid)?.[0] !== 'Z';
}

/** The fields of /proc/<pid>/stat after the command name (Linux), from the state on. */
function procStat(pid: number): string[] | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ');
  } catch {
    return undefined;
  }
}

/** When a process started (Linux: from /proc), to tell it from a later process with the same pid. */
function startTime(pid: number): string | undefined {
  return procStat(pid)?.[19];
}

/** How a child process ended. */
export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A child process started by {@link processes}, with its output kept line by line. */
export interface Child {
  readonly process: ChildProcess;
  readonly pid: number;
  /** Every complete line of stdout so far. */
  readonly lines: string[];
  /** Everything written so far: stdout and stderr. */
  output(): string;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first line of stdout (already written or to come) that matches. */
  line(pattern: RegExp, timeout?: number): Promise<RegExpMatchArray>;
  /** Resolves when the process has exited. */
  readonly exited: Promise<Exit>;
  /** True once the process has exited. */
  readonly done: boolean;
}

/**
 * Starts real child processes for a test file: TypeScript files through tsx (`node --import tsx`)
 * or any command. Every child still running after the file's tests is killed (SIGKILL), and its
 * whole process group with it when it was started as a group leader.
 */
export function processes() {
  const started = new Set<Child>();
  const groups = new WeakSet<Child>();
  const adopted = new Map<number, string | undefined>();
  afterAll(async () => {
    const running = [...started].filter((child) => !child.done);
    for (const child of running) kill(child, 'SIGKILL');
    // Only if it is the same process still (not another that got its pid since).
    for (const [pid, since] of adopted) if (alive(pid) && startTime(pid) === since) process.kill(pid, 'SIGKILL');
    await Promise.all(running.map((child) => child.exited));
  });

  function kill(child: Child, signal: NodeJS.Signals): void {
    try {
      process.kill(groups.has(child) ? -child.pid : child.pid, signal);
    } catch {
      // already gone
    }
  }

  function start(
    command: string,
    args: readonly string[],
    options: { env?: NodeJS.ProcessEnv; cwd?: string; group?: boolean } = {},
  ): Child {
    const proc = spawn(command, args, {
      cwd: options.cwd ?? root,
      env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: options.group ?? false,
    });
    let out = '';
    let err = '';
    let pending = '';
    const lines: string[] = [];
    const watchers = new Set<() => void>();
    let done = false;
    proc.stdout.setEncoding('utf8').on('data', (text: string) => {
      out += text;
      pending += text;
      const parts = pending.split('\n');
      pending = parts.pop()!;
      lines.push(...parts);
      for (const watch of [...watchers]) watch();
    });
    proc.stderr.setEncoding('utf8').on('data', (text: string) => (err += text));
    const exited = new Promise<Exit>((resolve) => {
      proc.once('exit', (code, signal) => {
        done = true;
        resolve({ code, signal });
      });
      proc.once('error', () => {
        done = true;
        resolve({ code: null, signal: null });
      });
    }).then(async (exit) => {
      await new Promise((resolve) => setImmediate(resolve)); // let the last output arrive
      for (const watch of [...watchers]) watch();
      return exit;
    });
    const child: Child = {
      process: proc,
      pid: proc.pid!,
      lines,
      output: () => out + err,
      stdout: () => out,
      stderr: () => err,
      exited,
      get done() {
        return done;
      },
      line(pattern, timeout = 30_000) {
        return new Promise((resolve, reject) => {
          let seen = 0;
          const check = () => {
            for (; seen < lines.length; seen++) {
              const match = pattern.exec(lines[seen]!);
              if (match) return finish(undefined, match);
            }
            if (done) finish(new Error(`exited before printing a line matching ${pattern}; output:\n${out}${err}`));
          };
          const timer = setTimeout(
            () => finish(new Error(`no line matching ${pattern} within ${timeout} ms; output:\n${out}${err}`)),
            timeout,
          );
          const finish = (error?: Error, match?: RegExpMatchArray) => {
            clearTimeout(timer);
            watchers.delete(check);
            if (error) reject(error);
            else resolve(match!);
          };
          watchers.add(check);
          check();
        });
      },
    };
    if (options.group) groups.add(child);
    started.add(child);
    return child;
  }

  return {
    /** Runs a TypeScript file (relative to the repository) in a new Node.js process through tsx. */
    script(file: string, args: readonly string[] = [], options: { env?: NodeJS.ProcessEnv; group?: boolean } = {}) {
      return start(process.execPath, ['--import', 'tsx', path.join(root, file), ...args], options);
    },
    /** Runs any command. */
    command: start,
    /** Sends `signal` to the child (to its whole group if it leads one). */
    kill,
    /** A process started by a child (that its end may not end): killed after the file's tests too. */
    adopt: (pid: number) => void adopted.set(pid, startTime(pid)),
  };
}
