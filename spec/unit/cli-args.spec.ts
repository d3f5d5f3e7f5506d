// The mdlock command line, read without connecting: every subcommand, defaults, and bad input.
import { CliError, ExitCode, globMatcher, parseInvocation, usage } from '../../lib/cli/args';
import { formatDuration } from '../../lib/cli/report';
import { boundedGrace } from '../../lib/cli/run';
import { checkUri } from '../../lib/cli/uri';

const env = { MONGODB_URI: 'mongodb://db.example/app' };

function fails(argv: string[], message: RegExp, environment: NodeJS.ProcessEnv = env) {
  let error: unknown;
  try {
    parseInvocation(argv, environment);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(CliError);
  expect(error).toMatchObject({ exitCode: ExitCode.Usage, message: expect.stringMatching(message) });
  expect((error as Error).message).not.toContain('\n');
}

test('run: defaults, every option, and the command after --', () => {
  expect(parseInvocation(['run', 'job', '--', 'backup.sh', '--full', '-v'], env)).toEqual({
    command: 'run',
    name: 'job',
    target: { uri: 'mongodb://db.example/app', collection: 'locks', json: false, timeout: 10_000 },
    limit: undefined,
    ttl: 30_000,
    heartbeat: undefined,
    wait: undefined,
    tokenEnv: 'MDLOCK_TOKEN',
    grace: 10_000,
    owner: undefined,
    verbose: false,
    quiet: false,
    argv: ['backup.sh', '--full', '-v'],
  });
  const argv = ['--uri', 'mongodb://other/x', 'run', 'job', '--ttl', '2m', '--heartbeat', '20s', '--wait', 'forever'];
  argv.push('--token-env', 'FENCE', '--grace', '3s', '--owner', 'cron@web1', '--collection', 'mutex');
  argv.push('--connect-timeout', '2s', '--', 'sh', '-c', 'echo $FENCE');
  expect(parseInvocation(argv, env)).toMatchObject({
    target: { uri: 'mongodb://other/x', collection: 'mutex', timeout: 2000 },
    ttl: 120_000,
    heartbeat: 20_000,
    wait: Infinity,
    tokenEnv: 'FENCE',
    grace: 3000,
    owner: 'cron@web1',
    argv: ['sh', '-c', 'echo $FENCE'],
  });
  expect(parseInvocation(['run', 'job', '--wait', '0', '--', 'true'], env)).toMatchObject({ wait: 0 });
  expect(parseInvocation(['run', 'job', '--wait', '10s', '--', 'true'], env)).toMatchObject({ wait: 10_000 });
});

test('run --limit: a permit of a semaphore, a whole number from 1 to 10,000', () => {
  expect(parseInvocation(['run', 'job', '--limit', '2', '--', 'true'], env)).toMatchObject({ name: 'job', limit: 2 });
  expect(parseInvocation(['run', 'job', '--limit=10000', '--', 'true'], env)).toMatchObject({ limit: 10_000 });
  for (const bad of ['0', '-1', '1.5', 'two', '2e3', ' 2', '']) {
    fails(
      ['run', 'job', `--limit=${bad}`, '--', 'true'],
      new RegExp(
        `^--limit must be a whole number of at least 1, received "${bad}" \\(usage: mdlock run <name> \\[--limit N\\]`,
      ),
    );
  }
  fails(['run', 'job', '--limit=10001', '--', 'true'], /^--limit must be at most 10000, received "10001"/);
  fails(['run', 'job', '--limit', '--', 'true'], /^option --limit needs a value/);
  expect(usage('run')).toMatch(/--limit <n> +hold a permit of the semaphore <name>/);
});

test('ls, inspect, release and help', () => {
  expect(parseInvocation(['ls', '--json'], env)).toMatchObject({
    command: 'ls',
    target: { json: true },
    pattern: undefined,
    held: false,
  });
  expect(parseInvocation(['inspect', 'job'], env)).toMatchObject({ command: 'inspect', name: 'job' });
  expect(parseInvocation(['release', '--force', 'job'], env)).toMatchObject({
    command: 'release',
    name: 'job',
    kind: undefined,
    token: undefined,
  });
  expect(parseInvocation(['release', '--force', 'pool', '--kind', 'semaphore', '--token', '42'], env)).toMatchObject({
    command: 'release',
    name: 'pool',
    kind: 'semaphore',
    token: 42,
  });
  expect(usage('release')).toMatch(/--token <n> +only the permit or read-write hold whose fencing token is n/);
  expect(parseInvocation(['--help'], {})).toEqual({ command: 'help', topic: undefined });
  expect(parseInvocation(['run', '-h'], {})).toEqual({ command: 'help', topic: 'run' });
  expect(parseInvocation(['help', 'ls'], {})).toEqual({ command: 'help', topic: 'ls' });
  expect(usage()).toMatch(/mdlock run <name>.*\n.*mdlock ls/);
  expect(usage('run')).toContain('--token-env');
});

test('bad input: a one-line usage error naming what was wrong', () => {
  fails([], /^missing command: run, ls, inspect, release, runs or top/);
  fails(['frob'], /^unknown command "frob"/);
  fails(['ls', '--bogus'], /^unknown option --bogus/);
  fails(['ls', '--ttl', '3s'], /^option --ttl is not an option of mdlock ls/);
  fails(['run', 'job', '--json', '--', 'true'], /^option --json is not an option of mdlock run/);
  fails(['ls'], /^no MongoDB URI: pass --uri or set MONGODB_URI/, {});
  fails(['run', 'job'], /^missing the command to run after "--"/);
  fails(['run', 'job', 'echo', 'hi'], /^put the command after "--", as in: mdlock run job -- echo hi/);
  fails(['run', '--', 'true'], /^missing the lock name/);
  fails(['run', 'job', '--ttl'], /^option --ttl needs a value/);
  fails(['run', 'job', '--ttl', 'soon', '--', 'true'], /^--ttl must be a duration/);
  fails(
    ['run', 'job', '--ttl', '-5s', '--', 'true'],
    /^option --ttl needs a value; for one that starts with "-", write --ttl=<value>/,
  );
  fails(['run', 'job', '--ttl=-5s', '--', 'true'], /^--ttl must be a finite duration above 0/);
  fails(['run', 'job', '--wait', 'later', '--', 'true'], /^--wait must be a duration such as 10s, or "forever"/);
  fails(['run', 'job', '--token-env', 'NOT-A-NAME', '--', 'true'], /^--token-env must be an environment variable name/);
  fails(['run', 'job', '--owner', '', '--', 'true'], /^--owner must not be empty/);
  fails(['inspect'], /^missing the lock name/);
  fails(['inspect', 'a', 'b'], /^unexpected argument "b"/);
  fails(['ls', 'a*', 'extra'], /^unexpected argument "extra": ls takes one pattern/);
  fails(['ls', ''], /^the pattern must not be empty/);
  fails(['run', 'job', '--held', '--', 'true'], /^option --held is not an option of mdlock run/);
  fails(['ls', '--', 'true'], /^mdlock ls runs no command/);
  fails(['release', 'job'], /^release frees the lock whoever holds it: add --force to confirm/);
  fails(
    ['release', '--force', 'job', '--kind', 'queue'],
    /^--kind must be lock, semaphore or rwlock, received "queue"/,
  );
  for (const bad of ['0', '1.5', 'x', '-1']) {
    fails(['release', '--force', 'job', `--token=${bad}`], /^--token must be a fencing token \(a whole number\)/);
  }
  fails(['release', '--force', 'job', '--kind', 'lock', '--token', '3'], /^--token picks a permit or read-write hold/);
  fails(['inspect', 'job', '--token', '3'], /^option --token is not an option of mdlock inspect/);
  fails(['inspect', 'x'.repeat(600)], /^lock name must be at most 512 bytes long/);
  fails(['ls', '--connect-timeout', '0'], /^--connect-timeout must be a finite duration above 0/);
});

test('durations read well in a table', () => {
  expect([450, 9_990, 12_400, 200_000, 7_380_000, 90_000_000].map(formatDuration)).toEqual([
    '0.4s',
    '9.9s',
    '12s',
    '3m 20s',
    '2h 3m',
    '1d 1h',
  ]);
});

test('--version, with or without a command, asks for the version and needs no URI', () => {
  expect(parseInvocation(['--version'], {})).toEqual({ command: 'version' });
  expect(parseInvocation(['-V'], {})).toEqual({ command: 'version' });
  expect(parseInvocation(['ls', '--version'], {})).toEqual({ command: 'version' });
  expect(usage()).toContain('mdlock --version');
});

test('ls filters: a glob pattern and --held', () => {
  expect(parseInvocation(['ls', 'job:*', '--held'], env)).toMatchObject({
    command: 'ls',
    pattern: 'job:*',
    held: true,
  });
  expect(parseInvocation(['ls', '--held'], env)).toMatchObject({ pattern: undefined, held: true });
  expect(usage('ls')).toMatch(/^usage: mdlock ls \['<pattern>'\] \[--held\] \[--json\]\n[\s\S]*--held/);

  const names = ['job:a', 'job:b:1', 'job:', 'jobs', 'x-job:a', 'a.b', 'aXb', 'a+b', '(x)', '[y]', 'line\nbreak'];
  const pick = (pattern: string) => names.filter(globMatcher(pattern));
  expect(pick('job:*')).toEqual(['job:a', 'job:b:1', 'job:']);
  expect(pick('job:a')).toEqual(['job:a']); // no star: the exact name
  expect(pick('*:a')).toEqual(['job:a', 'x-job:a']);
  expect(pick('*:b*')).toEqual(['job:b:1']);
  expect(pick('line*')).toEqual(['line\nbreak']);
  // Regular-expression syntax stands for itself.
  expect(pick('a.b')).toEqual(['a.b']);
  expect(pick('a+*')).toEqual(['a+b']);
  expect(pick('(*')).toEqual(['(x)']);
  expect(pick('[y]')).toEqual(['[y]']);
  expect(pick('*')).toEqual(names);
});

test('--grace is bounded by the lease safety margin, ttl / 10', () => {
  expect(boundedGrace(10_000, 30_000)).toBe(3000); // the defaults: 3 s, not 10 s
  expect(boundedGrace(1000, 30_000)).toBe(1000);
  expect(boundedGrace(60_000, 300_000)).toBe(30_000);
  expect(usage('run')).toMatch(/--grace <time>[\s\S]*at most ttl \/ 10/);
});

test('URIs are checked before connecting: the database the locks are in, or a one-line usage error', () => {
  expect(checkUri('mongodb://db.example:27017/app')).toBe('app');
  expect(checkUri('mongodb://ops:pw@db1,db2:27018/app?replicaSet=rs0')).toBe('app');
  expect(checkUri('mongodb://[::1]:27017/app')).toBe('app');
  expect(checkUri('mongodb+srv://cluster0.example.net/app?retryWrites=true')).toBe('app');
  expect(checkUri('mongodb://%2Ftmp%2Fmongodb-27017.sock/app')).toBe('app');
  const refused = (uri: string, message: RegExp) => {
    let error: unknown;
    try {
      checkUri(uri);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(CliError);
    expect(error).toMatchObject({ exitCode: ExitCode.Usage, message: expect.stringMatching(message) });
    expect((error as Error).message).not.toContain('\n');
  };
  refused('mongodb://bad uri', /^invalid MongoDB URI "mongodb:\/\/bad uri": "bad uri" is not a host name$/);
  refused('mongodb://db,/app', /: a host name is empty$/);
  refused('postgres://db/x', /^invalid MongoDB URI "postgres:\/\/db\/x": Invalid scheme/);
  refused('mongodb://db:99999/app', /^invalid MongoDB URI "mongodb:\/\/db:99999\/app": /);
  refused('mongodb://db/app?frob=1', /: option frob is not supported$/);
  refused('mongodb://ops:s3cret@db/app?frob=1', /^invalid MongoDB URI "mongodb:\/\/ops:\*\*\*@db\/app\?frob=1"/);
  for (const uri of ['mongodb://db', 'mongodb://db/', 'mongodb://db/?replicaSet=rs0', 'mongodb+srv://c.example.net/']) {
    refused(uri, /: it names no database: add one, as in mongodb:\/\/host:27017\/app/);
  }
  refused('mongodb://db/my.app', /: "my\.app" is not a database name/);
  refused('mongodb://db/my%20app', /: "my app" is not a database name/);
  refused(`mongodb://db/${'d'.repeat(64)}`, /is not a database name \(at most 63 bytes/);
});

test('runs: a schedule name, --limit (default 20) and --json', () => {
  expect(parseInvocation(['runs', 'nightly-report'], env)).toEqual({
    command: 'runs',
    target: { uri: 'mongodb://db.example/app', collection: 'locks', json: false, timeout: 10_000 },
    name: 'nightly-report',
    limit: 20,
  });
  expect(parseInvocation(['runs', 'job', '--limit', '3', '--json', '--collection', 'mutex'], env)).toMatchObject({
    command: 'runs',
    name: 'job',
    limit: 3,
    target: { json: true, collection: 'mutex' },
  });
  expect(parseInvocation(['runs', 'job', '--limit=1'], env)).toMatchObject({ limit: 1 });
  expect(parseInvocation(['runs', '--help'], {})).toEqual({ command: 'help', topic: 'runs' });
  expect(usage('runs')).toMatch(/^usage: mdlock runs <name> \[--limit 20\] \[--json\]\n[\s\S]*--limit <n>/);
  expect(usage()).toMatch(/mdlock runs <name>[\s\S]*runs {6}lists the latest runs of a scheduled job/);

  fails(['runs'], /^missing the schedule name \(usage: mdlock runs/);
  fails(['runs', 'a', 'b'], /^unexpected argument "b": runs takes one schedule name/);
  for (const bad of ['0', '-1', '2.5', 'ten', '1e3', '', '99999999999999999999']) {
    fails(
      ['runs', 'job', `--limit=${bad}`],
      new RegExp(`^--limit must be a whole number of at least 1, received "${bad}"`),
    );
  }
  fails(['runs', 'job', '--held'], /^option --held is not an option of mdlock runs/);
  fails(['ls', '--limit', '3'], /^option --limit is not an option of mdlock ls/);
  fails(['runs', 'job', '--', 'true'], /^mdlock runs runs no command/);
  fails(['runs', 'x'.repeat(600)], /^schedule name must be at most 512 bytes long/);
  fails(['frob'], /^unknown command "frob": run, ls, inspect, release, runs or top/);
});

test('top: a pattern, --interval (default 1s, at least 100ms), --sort and --once', () => {
  expect(parseInvocation(['top'], env)).toMatchObject({
    command: 'top',
    pattern: undefined,
    interval: 1000,
    once: false,
    sort: 'name',
  });
  expect(parseInvocation(['top', 'job:*', '--interval', '250ms', '--sort', 'time', '--once'], env)).toMatchObject({
    command: 'top',
    pattern: 'job:*',
    interval: 250,
    once: true,
    sort: 'time',
  });
  fails(['top', '--interval', '50ms'], /^--interval must be at least 100ms, received "50ms"/);
  fails(['top', '--sort', 'owner'], /^--sort must be name, time or kind, received "owner"/);
  fails(['top', 'a', 'b'], /^unexpected argument "b": top takes one pattern/);
  fails(['top', '--json'], /^option --json is not an option of mdlock top/);
  expect(usage('top')).toMatch(/Keys: n sort by name, t by time left, k by kind, q quit/);
});
