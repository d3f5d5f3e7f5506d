import { parseArgs } from 'node:util';
import { parseDuration } from '../duration.js';
import { checkName } from '../options.js';
import { DEFAULTS } from '../defaults.js';

/** Exit codes of `mdlock` itself (`run` otherwise exits with its command's code). */
export const ExitCode = Object.freeze({
  Ok: 0,
  /** An error that fits no other code, or `inspect` of a lock that does not exist. */
  Failure: 1,
  /** EX_USAGE: bad arguments or a bad URI. */
  Usage: 64,
  /** EX_UNAVAILABLE: MongoDB could not be reached within the connect timeout, or stopped answering. */
  Unavailable: 69,
  /** EX_SOFTWARE: `run` lost its lock while the command ran, and stopped the command. */
  Lost: 70,
  /** EX_TEMPFAIL: `run` found the lock busy, and the wait (if any) ran out. */
  Busy: 75,
  /** The command could not be executed (as in shells). */
  NotExecutable: 126,
  /** The command was not found (as in shells). */
  NotFound: 127,
} as const);

/** An error to print on one line, with the exit code it calls for. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

/** Where the locks are: options every subcommand takes. */
export interface Target {
  readonly uri: string;
  readonly collection: string;
  readonly json: boolean;
  /** Milliseconds to wait for MongoDB, when connecting and for each command. */
  readonly timeout: number;
}

/** What the command line asks for. */
export type Invocation =
  | { readonly command: 'help'; readonly topic: Subcommand | undefined }
  | { readonly command: 'version' }
  | {
      readonly command: 'ls';
      readonly target: Target;
      /** Only the locks whose names match this glob (`*`: any characters; nothing else is special). */
      readonly pattern: string | undefined;
      /** Only the locks held now. */
      readonly held: boolean;
    }
  | { readonly command: 'inspect'; readonly target: Target; readonly name: string }
  | {
      readonly command: 'release';
      readonly target: Target;
      readonly name: string;
      /** What `name` names, if `--kind` says; otherwise whichever kind of that name is held. */
      readonly kind: HoldKindName | undefined;
      /** `--token`: only the permit or read-write hold with this fencing token. */
      readonly token: number | undefined;
    }
  | {
      readonly command: 'top';
      readonly target: Target;
      /** Only what is named to match this glob. */
      readonly pattern: string | undefined;
      /** Milliseconds between refreshes. */
      readonly interval: number;
      /** One frame, plain text, then exit. */
      readonly once: boolean;
      /** The first sort order (keys change it). */
      readonly sort: 'name' | 'time' | 'kind';
    }
  | {
      readonly command: 'runs';
      readonly target: Target;
      /** The schedule's name. */
      readonly name: string;
      /** How many runs at most, newest first. */
      readonly limit: number;
    }
  | {
      readonly command: 'run';
      readonly target: Target;
      readonly name: string;
      /** With `--limit`: a permit of the semaphore `name` with this many permits, instead of the lock `name`. */
      readonly limit: number | undefined;
      readonly ttl: number;
      readonly heartbeat: number | undefined;
      /** Milliseconds to wait for a busy lock (`Infinity`: forever); `undefined`: one attempt. */
      readonly wait: number | undefined;
      readonly tokenEnv: string;
      /** Milliseconds between SIGTERM and SIGKILL after a loss, as given (`run` bounds it by the lease's margin). */
      readonly grace: number;
      readonly owner: string | undefined;
      /** Say on stderr when the lock is busy and mdlock waits, when it is taken, and when it is released. */
      readonly verbose: boolean;
      /** Say nothing when the lock is busy (the exit code, 75, still says it): for crontabs. */
      readonly quiet: boolean;
      /** The command and its arguments. */
      readonly argv: readonly string[];
    };

type Subcommand = 'run' | 'ls' | 'inspect' | 'release' | 'runs' | 'top';

/** The kinds of things `mdlock` shows and releases, as `--kind` names them. */
export type HoldKindName = 'lock' | 'semaphore' | 'rwlock';
const KINDS: readonly HoldKindName[] = ['lock', 'semaphore', 'rwlock'];

const OPTIONS = {
  uri: { type: 'string' },
  collection: { type: 'string' },
  json: { type: 'boolean' },
  'connect-timeout': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' },
  held: { type: 'boolean' },
  ttl: { type: 'string' },
  heartbeat: { type: 'string' },
  wait: { type: 'string' },
  'token-env': { type: 'string' },
  grace: { type: 'string' },
  owner: { type: 'string' },
  force: { type: 'boolean' },
  verbose: { type: 'boolean', short: 'v' },
  quiet: { type: 'boolean', short: 'q' },
  limit: { type: 'string' },
  token: { type: 'string' },
  kind: { type: 'string' },
  interval: { type: 'string' },
  once: { type: 'boolean' },
  sort: { type: 'string' },
} as const;

const COMMON = ['uri', 'collection', 'connect-timeout', 'help'];
const ALLOWED: Record<Subcommand, readonly string[]> = {
  run: [...COMMON, 'limit', 'ttl', 'heartbeat', 'wait', 'token-env', 'grace', 'owner', 'verbose', 'quiet'],
  ls: [...COMMON, 'json', 'held'],
  inspect: [...COMMON, 'json'],
  release: [...COMMON, 'json', 'force', 'kind', 'token'],
  runs: [...COMMON, 'json', 'limit'],
  top: [...COMMON, 'interval', 'once', 'sort'],
};

/** How often `mdlock top` refreshes unless `--interval` says otherwise, and the shortest interval. */
export const DEFAULT_TOP_INTERVAL = 1000;
const MIN_TOP_INTERVAL = 100;
const SORTS = ['name', 'time', 'kind'] as const;

/** How many runs `mdlock runs` lists unless `--limit` says otherwise. */
export const DEFAULT_RUNS_LIMIT = 20;

const SYNOPSIS: Record<Subcommand, string> = {
  run: 'mdlock run <name> [--limit N] [--ttl 30s] [--wait 10s|forever] [--token-env MDLOCK_TOKEN] [--grace 10s] -- <command...>',
  ls: "mdlock ls ['<pattern>'] [--held] [--json]",
  inspect: 'mdlock inspect <name> [--json]',
  release: 'mdlock release --force <name> [--kind lock|semaphore|rwlock] [--token N] [--json]',
  runs: 'mdlock runs <name> [--limit 20] [--json]',
  top: "mdlock top ['<pattern>'] [--interval 1s] [--sort name|time|kind] [--once]",
};

/** `mdlock --help`, or the help of one subcommand. */
export function usage(topic?: Subcommand): string {
  const common = `Connection (every command):
  --uri <uri>               MongoDB connection string (default: $MONGODB_URI); it must name the
                            database, as in mongodb://host:27017/app (a URI without one is refused)
  --collection <name>       the lock collection (default: locks)
  --connect-timeout <time>  longest wait for MongoDB, when connecting and for each command (default: 10s)`;
  const run = `mdlock run: runs a command while holding the lock <name>, renewing it as long as the command runs.
  --limit <n>           hold a permit of the semaphore <name> (at most n holders at once) instead
                        of the lock; every holder must give the same n
  --ttl <time>          how long the lock outlives mdlock if it is killed (default: 30s)
  --heartbeat <time>    how often the lock is renewed (default: ttl / 3)
  --wait <time|forever> how long to wait for a busy lock (default: no wait, a single attempt)
  --token-env <VAR>     environment variable that gives the command the fencing token (default: MDLOCK_TOKEN)
  --grace <time>        if the lock is lost, or mdlock killed: time between SIGTERM and SIGKILL to the
                        command (default: 10s), at most ttl / 10 (3s at the default ttl), what the lease
                        has left on the server after mdlock counts it lost
  --owner <text>        who holds the lock, as ls shows it, taken literally (default: hostname:pid)
  -v, --verbose         say on stderr when mdlock waits for the lock, takes it, and releases it
  -q, --quiet           say nothing when the lock is busy (exit code 75 says it): for crontabs
The command runs in a process group of its own; signals sent to mdlock (INT, TERM, HUP, QUIT, USR1,
USR2) are passed on to it. The lock is released when the command exits, however it exits; a signal
that comes during the release waits for it. If mdlock is killed (SIGKILL), the command's group gets
SIGTERM, then SIGKILL after the grace, from a watcher process.
Exit code: the command's (128 + n if it died of signal n); 75 if the lock was busy; 70 if the lock
was lost and the command stopped; 127/126 if the command was not found/not executable.`;
  const ls = `mdlock ls: lists the locks, semaphores and read-write locks, or those whose names match <pattern>:
a glob where * stands for any characters and every other character for itself (quote it: 'job:*').
  --held                only the locks held now, and the semaphores and read-write locks with a holder`;
  const runs = `mdlock runs: lists the latest runs of the scheduled job <name> (schedule(), runOnce() or
node-cron's run coordinator), newest first: the tick, its outcome (running, done, failed, lost,
missed), the attempt, the fencing token, the owner, when it started and when it finished.
  --limit <n>           how many runs at most (default: ${DEFAULT_RUNS_LIMIT})`;
  const release = `mdlock release --force: frees the lock <name> whoever holds it (its holder sees the lock lost);
for a semaphore or read-write lock, every holder of it, or with --token the one hold with that token.
  --kind <kind>         lock, semaphore or rwlock: needed only when several kinds of that name are held
  --token <n>           only the permit or read-write hold whose fencing token is n (as ls shows it)`;
  const top = `mdlock top: a live view, refreshed every interval, of the locks held, the semaphores (permits
held of the limit), the read-write locks and the last run of each scheduled job: holder, fencing
token, time left (a bar: the part of its ttl left), waiters. An election is a lock named after it:
its leader shows as the lock's holder. Keys: n sort by name, t by time left, k by kind, q quit.
  --interval <time>     time between refreshes (default: 1s, at least 100ms)
  --sort <key>          the first sort order: name, time or kind (default: name)
  --once                print one frame as plain text and exit (also plain frames, one per
                        interval, when stdout is not a terminal)`;
  if (topic === 'run') return `usage: ${SYNOPSIS.run}\n\n${run}\n\n${common}\n`;
  if (topic === 'top') return `usage: ${SYNOPSIS.top}\n\n${top}\n\n${common}\n`;
  if (topic === 'release') return `usage: ${SYNOPSIS.release}\n\n${release}\n\n${common}\n`;
  if (topic === 'ls') return `usage: ${SYNOPSIS.ls}\n\n${ls}\n\n${common}\n`;
  if (topic === 'runs') return `usage: ${SYNOPSIS.runs}\n\n${runs}\n\n${common}\n`;
  if (topic) return `usage: ${SYNOPSIS[topic]}\n\n${common}\n`;
  return `mdlock: distributed locks on MongoDB, from the shell

usage:
  ${Object.values(SYNOPSIS).join('\n  ')}
  mdlock --version

  ls        lists the locks (name, owner, fencing token, held or free, time left), semaphores
            and read-write locks
  inspect   shows one lock, or the semaphore or read-write lock of that name if there is no such lock
  release   frees a lock, or a semaphore's permits or a read-write lock's holds, whoever holds them
  runs      lists the latest runs of a scheduled job (ls does not list runs)
  top       a live view of locks, semaphores, read-write locks, leaders and scheduled jobs

${run}

${ls}

${release}

${runs}

${top}

${common}
  --json                    machine-readable output (ls, inspect, release, runs)

Other exit codes: 64 bad usage or URI; 69 MongoDB unreachable; 1 no such lock or semaphore (inspect),
other errors.
`;
}

function usageError(message: string, topic?: Subcommand): CliError {
  const hint = topic ? `usage: ${SYNOPSIS[topic]}` : 'see mdlock --help';
  return new CliError(`${message} (${hint})`, ExitCode.Usage);
}

/** Rewords util.parseArgs' errors into one line. */
function parseError(error: unknown): CliError {
  const { code, message } = error as { code?: string; message: string };
  const option = /'(-[^' ]+)/.exec(message)?.[1];
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return usageError(`unknown option ${option}`);
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && option) {
    const dash = message.includes('ambiguous') ? `; for one that starts with "-", write ${option}=<value>` : '';
    return usageError(`option ${option} needs a value${dash}`);
  }
  return usageError(message.split('\n')[0]!);
}

function duration(value: string | undefined, option: string, fallback: number): number {
  if (value === undefined) return fallback;
  try {
    return parseDuration(value, `--${option}`);
  } catch (error) {
    throw usageError((error as Error).message);
  }
}

/** Reads the command line (without `node` and the script) and the environment: never connects, never exits. */
export function parseInvocation(argv: readonly string[], env: NodeJS.ProcessEnv): Invocation {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, strict: true, allowPositionals: true, tokens: true });
  } catch (error) {
    throw parseError(error);
  }
  const { values, tokens } = parsed;
  if (values.version) return { command: 'version' };
  const terminator = tokens.find((t) => t.kind === 'option-terminator')?.index ?? Infinity;
  const words = tokens.flatMap((t) => (t.kind === 'positional' ? [t] : []));
  const positionals = words.filter((t) => t.index < terminator).map((t) => t.value);
  const after = words.filter((t) => t.index > terminator).map((t) => t.value);

  const [command, ...rest] = positionals;
  if (command === 'help') return { command: 'help', topic: rest[0] === undefined ? undefined : subcommand(rest[0]) };
  if (command === undefined) {
    if (values.help) return { command: 'help', topic: undefined };
    throw usageError('missing command: run, ls, inspect, release, runs or top');
  }
  const topic = subcommand(command);
  if (values.help) return { command: 'help', topic };
  for (const token of tokens) {
    if (token.kind === 'option' && !ALLOWED[topic].includes(token.name)) {
      throw usageError(`option --${token.name} is not an option of mdlock ${topic}`, topic);
    }
  }
  if (topic !== 'run' && terminator !== Infinity) throw usageError(`mdlock ${topic} runs no command`, topic);

  const uri = values.uri ?? env.MONGODB_URI;
  if (!uri) throw usageError('no MongoDB URI: pass --uri or set MONGODB_URI', topic);
  const collection = values.collection ?? DEFAULTS.collection;
  if (collection === '') throw usageError('--collection must not be empty', topic);
  const target: Target = {
    uri,
    collection,
    json: values.json ?? false,
    timeout: duration(values['connect-timeout'], 'connect-timeout', DEFAULTS.cli.connectTimeout),
  };

  if (topic === 'ls') {
    const [pattern, ...others] = rest;
    if (others.length > 0) throw usageError(`unexpected argument "${others[0]}": ls takes one pattern`, topic);
    if (pattern === '') throw usageError('the pattern must not be empty', topic);
    return { command: 'ls', target, pattern, held: values.held ?? false };
  }
  if (topic === 'top') {
    const [pattern, ...others] = rest;
    if (others.length > 0) throw usageError(`unexpected argument "${others[0]}": top takes one pattern`, topic);
    if (pattern === '') throw usageError('the pattern must not be empty', topic);
    const sort = values.sort ?? 'name';
    if (!(SORTS as readonly string[]).includes(sort)) {
      throw usageError(`--sort must be name, time or kind, received "${sort}"`, topic);
    }
    const interval = duration(values.interval, 'interval', DEFAULT_TOP_INTERVAL);
    if (interval < MIN_TOP_INTERVAL) {
      throw usageError(`--interval must be at least ${MIN_TOP_INTERVAL}ms, received "${values.interval}"`, topic);
    }
    return {
      command: 'top',
      target,
      pattern,
      interval,
      once: values.once ?? false,
      sort: sort as (typeof SORTS)[number],
    };
  }
  const [name, ...extra] = rest;
  if (name === undefined) throw usageError(`missing the ${topic === 'runs' ? 'schedule' : 'lock'} name`, topic);
  try {
    checkName(name, topic === 'runs' ? 'schedule name' : 'lock name');
  } catch (error) {
    throw usageError((error as Error).message, topic);
  }
  if (topic === 'runs') {
    if (extra.length > 0) throw usageError(`unexpected argument "${extra[0]}": runs takes one schedule name`, topic);
    return { command: 'runs', target, name, limit: limitOption(values.limit, topic) ?? DEFAULT_RUNS_LIMIT };
  }
  if (topic !== 'run') {
    if (extra.length > 0) throw usageError(`unexpected argument "${extra[0]}"`, topic);
    if (topic === 'inspect') return { command: topic, target, name };
    if (!values.force) throw usageError('release frees the lock whoever holds it: add --force to confirm', topic);
    const kind = values.kind;
    if (kind !== undefined && !(KINDS as readonly string[]).includes(kind)) {
      throw usageError(`--kind must be lock, semaphore or rwlock, received "${kind}"`, topic);
    }
    const token = values.token === undefined ? undefined : tokenOption(values.token);
    if (token !== undefined && kind === 'lock') {
      throw usageError('--token picks a permit or read-write hold: a lock has one holder', topic);
    }
    return { command: topic, target, name, kind: kind as HoldKindName | undefined, token };
  }

  if (extra.length > 0) throw usageError(`put the command after "--", as in: mdlock run ${name} -- ${extra.join(' ')}`);
  if (after.length === 0) throw usageError('missing the command to run after "--"', topic);
  const ttl = duration(values.ttl, 'ttl', DEFAULTS.cli.ttl);
  const heartbeat = values.heartbeat === undefined ? undefined : duration(values.heartbeat, 'heartbeat', 0);
  const wait = values.wait === undefined ? undefined : waitOption(values.wait);
  const tokenEnv = values['token-env'] ?? 'MDLOCK_TOKEN';
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(tokenEnv)) {
    throw usageError(`--token-env must be an environment variable name, received "${tokenEnv}"`, topic);
  }
  if (values.owner === '') throw usageError('--owner must not be empty', topic);
  return {
    command: 'run',
    target,
    name,
    limit: limitOption(values.limit, topic, MAX_PERMITS),
    ttl,
    heartbeat,
    wait,
    tokenEnv,
    grace: duration(values.grace, 'grace', DEFAULTS.cli.grace),
    owner: values.owner,
    verbose: values.verbose ?? false,
    quiet: values.quiet ?? false,
    argv: after,
  };
}

/** The largest `run --limit`: the library's bound on a semaphore's permits. */
const MAX_PERMITS = 10_000;

/** `--limit`: a whole number from 1 (to `max`, if given), or `undefined` when absent. */
function limitOption(value: string | undefined, topic: Subcommand, max?: number): number | undefined {
  if (value === undefined) return undefined;
  const limit = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw usageError(`--limit must be a whole number of at least 1, received "${value}"`, topic);
  }
  if (max !== undefined && limit > max) {
    throw usageError(`--limit must be at most ${max}, received "${value}"`, topic);
  }
  return limit;
}

/** `release --token`: a fencing token, a whole number from 1. */
function tokenOption(value: string): number {
  const token = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(token) || token < 1) {
    throw usageError(`--token must be a fencing token (a whole number), received "${value}"`, 'release');
  }
  return token;
}

function waitOption(value: string): number {
  if (value === 'forever') return Infinity;
  try {
    return parseDuration(value, '--wait', { allowZero: true, max: Number.MAX_SAFE_INTEGER });
  } catch {
    throw usageError(`--wait must be a duration such as 10s, or "forever", received "${value}"`, 'run');
  }
}

/**
 * A test for lock names matching a glob: `*` stands for any characters (none included); every
 * other character, regular-expression syntax included, stands for itself.
 */
export function globMatcher(pattern: string): (name: string) => boolean {
  const source = pattern
    .split('*')
    .map((part) => part.replace(/[\\^$.|?+()[\]{}]/g, '\\$&'))
    .join('.*');
  const regexp = new RegExp(`^${source}$`, 's');
  return (name) => regexp.test(name);
}

function subcommand(word: string): Subcommand {
  if (Object.hasOwn(ALLOWED, word)) return word as Subcommand;
  throw usageError(`unknown command "${word}": run, ls, inspect, release, runs or top`);
}
