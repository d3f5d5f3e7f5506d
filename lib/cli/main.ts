#!/usr/bin/env node
// The `mdlock` command (the package's bin): see `mdlock --help` and the README.
import { main } from './program.js';

void main(process.argv.slice(2), {
  env: process.env,
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
  tty: process.stdout.isTTY === true,
}).then((code) => {
  process.exitCode = code;
  // Everything is closed by now and the process ends by itself; should a driver handle linger,
  // a command-line tool must still not hang.
  setTimeout(() => process.exit(code), 2000).unref();
});
