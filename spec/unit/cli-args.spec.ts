// The mdlock command line, read without connecting: every subcommand, defaults, and bad input.
import { CliError, ExitCode, parseInvocation, usage } from '../../lib/cli/args';
import { formatDuration } from '../../lib/cli/report';

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

test('ls, inspect, release and help', () => {
  expect(parseInvocation(['ls', '--json'], env)).toMatchObject({ command: 'ls', target: { json: true } });
  expect(parseInvocation(['inspect', 'job'], env)).toMatchObject({ command: 'inspect', name: 'job' });
  expect(parseInvocation(['release', '--force', 'job'], env)).toMatchObject({ command: 'release', name: 'job' });
  expect(parseInvocation(['--help'], {})).toEqual({ command: 'help', topic: undefined });
  expect(parseInvocation(['run', '-h'], {})).toEqual({ command: 'help', topic: 'run' });
  expect(parseInvocation(['help', 'ls'], {})).toEqual({ command: 'help', topic: 'ls' });
  expect(usage()).toMatch(/mdlock run <name>.*\n.*mdlock ls/);
  expect(usage('run')).toContain('--token-env');
});

test('bad input: a one-line usage error naming what was wrong', () => {
  fails([], /^missing command: run, ls, inspect or release/);
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
  fails(['ls', 'extra'], /^unexpected argument "extra"/);
  fails(['ls', '--', 'true'], /^mdlock ls runs no command/);
  fails(['release', 'job'], /^release frees the lock whoever holds it: add --force to confirm/);
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
