// Replicas of an example: the same TypeScript file run in several Node.js processes (through
// tsx), as a service would run on several hosts. Their output is printed line by line with their
// name, and they are stopped however this process ends. As a command:
//
//   tsx examples/support/fleet.ts examples/scheduler.ts [--replicas 3] [--for 20s]
//
// starts the embedded engine (or uses MONGODB_URI), runs the replicas until they exit by
// themselves or `--for` has passed, then stops them with SIGTERM (as it does on Ctrl-C).
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { parseArgs } from 'node:util';
import ms from 'ms';
import { startDatabase } from './database';
import { say } from './output';

/** One replica: a child process running the example. */
export interface Replica {
  readonly name: string;
  readonly process: ChildProcess;
  /** Resolves with the exit code (or the signal's name) once the process has exited. */
  readonly exited: Promise<number | string>;
}

const replicas = new Set<Replica>();

/**
 * Starts `script` as replica `name`, with MONGODB_URI and REPLICA_NAME set. `onLine` gets each line
 * it prints (stdout and stderr). It also exits if this process dies: it is told through its IPC channel.
 */
export function startReplica(
  script: string,
  name: string,
  uri: string,
  onLine: (line: string) => void = (line) => say(name, line),
  env: NodeJS.ProcessEnv = {},
): Replica {
  const child = fork(path.resolve(script), [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, ...env, MONGODB_URI: uri, REPLICA_NAME: name },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  for (const stream of [child.stdout!, child.stderr!]) {
    let pending = '';
    stream.setEncoding('utf8').on('data', (text: string) => {
      const lines = (pending + text).split('\n');
      pending = lines.pop()!;
      for (const line of lines) onLine(line);
    });
  }
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  const replica = { name, process: child, exited };
  replicas.add(replica);
  void exited.then(() => replicas.delete(replica));
  return replica;
}

/** Stops every replica still running: SIGTERM, then SIGKILL for any still there after `grace` ms. */
export async function stopReplicas(grace = 5000): Promise<void> {
  const running = [...replicas];
  for (const replica of running) replica.process.kill('SIGTERM');
  const timer = setTimeout(() => running.forEach((replica) => replica.process.kill('SIGKILL')), grace);
  await Promise.all(running.map((replica) => replica.exited));
  clearTimeout(timer);
}

/** On Ctrl-C or SIGTERM: stop the replicas, then run `cleanup` (stopping the engine), then exit. */
export function stopOnSignals(cleanup: () => Promise<void>): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    say('fleet', `${signal}: stopping every process`);
    void stopReplicas(2000)
      .then(cleanup)
      .finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    options: { replicas: { type: 'string', default: '3' }, for: { type: 'string' } },
    allowPositionals: true,
  });
  const [script] = positionals;
  const count = Number(values.replicas);
  const lasting = values.for === undefined ? undefined : ms(values.for as ms.StringValue);
  if (!script || !Number.isInteger(count) || count < 1 || Number.isNaN(lasting)) {
    console.error('usage: tsx examples/support/fleet.ts <example.ts> [--replicas 3] [--for 20s]');
    process.exit(64);
  }
  const base = path.basename(script, path.extname(script));
  const database = await startDatabase();
  stopOnSignals(() => database.stop());
  try {
    const started = Array.from({ length: count }, (_, i) =>
      startReplica(script, `${base}-${String.fromCharCode(97 + i)}`, database.uri),
    );
    const timer = lasting === undefined ? undefined : setTimeout(() => void stopReplicas(), lasting);
    await Promise.all(started.map((replica) => replica.exited));
    clearTimeout(timer);
  } finally {
    await stopReplicas();
    await database.stop();
  }
}

if (require.main === module) void main();
