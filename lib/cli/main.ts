#!/usr/bin/env node
// The `mdlock` command (the package's bin): see `mdlock --help` and the README.
import fs from 'node:fs';
import path from 'node:path';
import { main } from './program.js';
import { processTerminal } from './top.js';

/** The version in the package.json of this package, found upwards from this script (dist/cjs/cli or lib/cli). */
function version(): string {
  let dir = path.dirname(fs.realpathSync(process.argv[1]!));
  for (;;) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) {
      const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'mongoose-distributed-lock' && typeof pkg.version === 'string') return pkg.version;
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('cannot find the package.json of mongoose-distributed-lock');
    dir = parent;
  }
}

void main(process.argv.slice(2), {
  env: process.env,
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
  tty: process.stdout.isTTY === true,
  version,
  terminal: processTerminal,
}).then((code) => {
  process.exitCode = code;
  // Everything is closed by now and the process ends by itself; should a driver handle linger,
  // a command-line tool must still not hang.
  setTimeout(() => process.exit(code), 2000).unref();
});
