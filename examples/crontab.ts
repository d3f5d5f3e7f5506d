// Runs the job line of examples/crontab on three "hosts" at the same moment, as cron would on
// three machines: one runs the job, the other two find the lock busy and exit with code 75.
// The crontab's MONGODB_URI is replaced by the embedded engine's (or by yours, from MONGODB_URI),
// and `mdlock` is the command from this repository's sources.
//
//   npm run example:crontab
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { startDatabase } from './support/database';
import { say } from './support/output';

const root = path.join(__dirname, '..');

/** The crontab's variable assignments and its job lines (the command after the five time fields). */
function readCrontab(file: string): { env: Record<string, string>; jobs: string[] } {
  const env: Record<string, string> = {};
  const jobs: string[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
    const assignment = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (assignment) env[assignment[1]!] = assignment[2]!;
    else jobs.push(/^(?:\S+\s+){5}(.*)$/.exec(line)![1]!);
  }
  return { env, jobs };
}

/** A directory with an `mdlock` that runs this repository's command through tsx. */
function mdlockOnPath(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdlock-bin-'));
  const tsx = pathToFileURL(require.resolve('tsx')).href;
  const cli = path.join(root, 'lib', 'cli', 'main.ts');
  fs.writeFileSync(
    path.join(dir, 'mdlock'),
    `#!/bin/sh\nexec "${process.execPath}" --import "${tsx}" "${cli}" "$@"\n`,
    {
      mode: 0o755,
    },
  );
  return dir;
}

/** `uri` with its database replaced by `name`. */
function withDatabaseName(uri: string, name: string): string {
  return uri.replace(/^(mongodb(?:\+srv)?:\/\/[^/?]+)(\/[^?]*)?/, `$1/${name}`);
}

/** Runs `command` as cron does (`$SHELL -c`), printing its output as `host`; resolves with its exit code. */
function cronRun(host: string, command: string, env: NodeJS.ProcessEnv, home: string): Promise<number> {
  const child = spawn(env.SHELL ?? '/bin/sh', ['-c', command], { env, cwd: home, stdio: ['ignore', 'pipe', 'pipe'] });
  for (const stream of [child.stdout, child.stderr]) {
    stream.setEncoding('utf8').on('data', (text: string) => {
      for (const line of text.trimEnd().split('\n')) say(host, line);
    });
  }
  return new Promise((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? 128 + (signal ? os.constants.signals[signal] : 0))),
  );
}

async function main(): Promise<void> {
  const crontab = readCrontab(path.join(__dirname, 'crontab'));
  const database = await startDatabase();
  const bin = mdlockOnPath();
  try {
    const env: NodeJS.ProcessEnv = {
      // What cron gives a job: a small environment, plus the crontab's variables.
      HOME: bin,
      LOGNAME: os.userInfo().username,
      PATH: `${bin}:/usr/local/bin:/usr/bin:/bin`,
      ...crontab.env,
      MONGODB_URI: withDatabaseName(database.uri, process.env.EXAMPLE_DB ?? 'examples'),
    };
    for (const job of crontab.jobs) {
      say('cron', `on three hosts at once: ${job}`);
      const hosts = ['host-a', 'host-b', 'host-c'];
      const codes = await Promise.all(hosts.map((host) => cronRun(host, job, env, bin)));
      hosts.forEach((host, i) =>
        say(host, `exit code ${codes[i]}${codes[i] === 75 ? ' (busy: another host ran it)' : ''}`),
      );
    }
    say('cron', 'the lock as `mdlock ls` shows it now:');
    await cronRun('mdlock ls', 'mdlock ls', env, bin);
  } finally {
    fs.rmSync(bin, { recursive: true, force: true });
    await database.stop();
  }
}

void main();
