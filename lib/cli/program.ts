import mongoose, { type Connection } from 'mongoose';
import { LockError, LockErrorCode, type ArgumentErrorFields } from '../errors.js';
import { LockManager } from '../manager.js';
import { bounded } from '../timeout.js';
import { CliError, ExitCode, parseInvocation, usage, type Invocation, type Target } from './args.js';
import { inspectLock, listLocks, listRuns, releaseLock } from './report.js';
import { runCommand } from './run.js';
import { topCommand, type Terminal } from './top.js';
import { checkUri, redact } from './uri.js';

/** Where `mdlock` reads and writes: the real process's, or a test's. */
export interface Io {
  readonly env: NodeJS.ProcessEnv;
  stdout(text: string): void;
  stderr(text: string): void;
  /** True when stdout is a terminal (colours are then used unless NO_COLOR is set). */
  readonly tty: boolean;
  /** The package's version, for `mdlock --version`. */
  version(): string;
  /** The terminal `top` draws on, if stdout and stdin are one (none: plain frames). */
  terminal?(): Terminal | undefined;
}

/** Opens a connection, or fails within the timeout with a one-line reason: never hangs. */
async function connect(target: Target): Promise<Connection> {
  const timeout = target.timeout;
  let connection: Connection | undefined;
  try {
    connection = mongoose.createConnection(target.uri, {
      serverSelectionTimeoutMS: timeout,
      connectTimeoutMS: timeout,
      bufferCommands: false,
      autoIndex: false,
      autoCreate: false,
    });
    return await bounded(
      connection.asPromise(),
      timeout + 1000,
      () => new Error(`no answer within ${timeout} ms`), // a backstop: the driver's own timeout comes first
      { keepAlive: false },
    );
  } catch (error) {
    void connection?.close(true).catch(() => {});
    const { name, message } = error as Error;
    if (name === 'MongoParseError' || name === 'MongoAPIError' || name === 'MongooseError') {
      throw new CliError(`invalid MongoDB URI "${redact(target.uri)}": ${message}`, ExitCode.Usage);
    }
    throw new CliError(
      `cannot reach MongoDB at ${redact(target.uri)} within ${timeout} ms: ${message.split('\n')[0]}`,
      ExitCode.Unavailable,
    );
  }
}

/** An error as one line and an exit code. */
function failure(error: unknown): { message: string; code: number } {
  if (error instanceof CliError) return { message: error.message, code: error.exitCode };
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof LockError && error.code === LockErrorCode.Connection) {
    return { message, code: ExitCode.Unavailable };
  }
  const argument = error as Partial<ArgumentErrorFields>;
  if (argument.code === LockErrorCode.InvalidArgument && argument.argument && argument.option) {
    // The manager's own checks (a heartbeat too long for the ttl): name the command-line option.
    return { message: message.replace(argument.argument, `--${argument.option}`), code: ExitCode.Usage };
  }
  return { message, code: ExitCode.Failure };
}

async function dispatch(
  invocation: Exclude<Invocation, { command: 'help' | 'version' }>,
  connection: Connection,
  io: Io,
): Promise<number> {
  const { collection, timeout } = invocation.target;
  if (invocation.command === 'run') return runCommand(invocation, connection, io);
  if (invocation.command === 'top') return topCommand(invocation, connection, io, io.terminal?.());
  const manager = new LockManager({ connection, collection, commandTimeout: timeout });
  try {
    if (invocation.command === 'ls') return await listLocks(manager, connection, invocation, io);
    if (invocation.command === 'runs') return await listRuns(manager, invocation, io);
    if (invocation.command === 'inspect')
      return await inspectLock(manager, connection, invocation.name, invocation.target, io);
    return await releaseLock(manager, invocation, io);
  } finally {
    await manager.close();
  }
}

/**
 * Runs `mdlock` with the arguments after the script's name; resolves with the exit code. Errors
 * are written to `io.stderr` as one line starting with `mdlock:`; nothing is thrown.
 */
export async function main(argv: readonly string[], io: Io): Promise<number> {
  let invocation: Invocation;
  try {
    invocation = parseInvocation(argv, io.env);
    if (invocation.command === 'help') {
      io.stdout(usage(invocation.topic));
      return ExitCode.Ok;
    }
    if (invocation.command === 'version') {
      io.stdout(`${io.version()}\n`);
      return ExitCode.Ok;
    }
    checkUri(invocation.target.uri);
  } catch (error) {
    const { message, code } = failure(error); // a CliError: usage (64), or --version's package.json unreadable (1)
    io.stderr(`mdlock: ${message}\n`);
    return code;
  }
  let connection: Connection | undefined;
  try {
    connection = await connect(invocation.target);
    return await dispatch(invocation, connection, io);
  } catch (error) {
    const { message, code } = failure(error);
    io.stderr(`mdlock: ${message}\n`);
    return code;
  } finally {
    const closing = connection?.close();
    if (closing) {
      await bounded(closing, invocation.target.timeout, () => new Error('close timed out'), {
        keepAlive: false,
      }).catch(() => {});
    }
  }
}
