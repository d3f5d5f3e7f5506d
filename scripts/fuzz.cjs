#!/usr/bin/env node
'use strict';
// Runs the property suites (spec/property) longer than `npm test` does, on the test engine:
//   npm run fuzz -- --runs 500          every property 500 runs (model: 500 sequences)
//   npm run fuzz -- --minutes 10        the whole run takes about 10 minutes: each suite file gets
//                                       its slot of them (files run two at a time, one per core), and
//                                       each property of a file its share of the slot
//   npm run fuzz -- --commands 40       longest model sequence (default 25 here, 12 in npm test)
//   npm run fuzz -- --seed 123 --path 4:1 [--replay NDW:F]   replay a reported failure (same --commands)
//   npm run fuzz -- --only model        one suite (options, operator-options, model, semaphore or rwlock)
// Prints a summary line: runs, sequences and commands executed, read from the counts the
// suites write. Exits non-zero if a property failed (fast-check prints its seed and counterexample).
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const usage =
  'usage: npm run fuzz -- [--runs N | --minutes N] [--commands N] [--seed N [--path P] [--replay R]] [--only options|operator-options|model|semaphore|rwlock]';

function parseArgs(argv) {
  const options = {
    runs: undefined,
    minutes: undefined,
    commands: 25,
    seed: undefined,
    path: undefined,
    only: undefined,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    const number = () => {
      const n = Number(value);
      if (value === undefined || !Number.isFinite(n) || n <= 0) fail(`${flag} needs a positive number, got ${value}`);
      i++;
      return n;
    };
    switch (flag) {
      case '--runs':
        options.runs = Math.ceil(number());
        break;
      case '--minutes':
        options.minutes = number();
        break;
      case '--commands':
        options.commands = Math.ceil(number());
        break;
      case '--seed':
        if (value === undefined || !/^-?\d+$/.test(value)) fail(`--seed needs an integer, got ${value}`);
        options.seed = value;
        i++;
        break;
      case '--path':
        if (value === undefined) fail('--path needs a value');
        options.path = value;
        i++;
        break;
      case '--replay':
        if (value === undefined) fail('--replay needs the replayPath of a counterexample');
        options.replay = value;
        i++;
        break;
      case '--only':
        if (!['options', 'operator-options', 'model', 'semaphore', 'rwlock'].includes(value))
          fail(`--only takes options, operator-options, model, semaphore or rwlock, got ${value}`);
        options.only = value;
        i++;
        break;
      case '--help':
      case '-h':
        console.log(usage);
        process.exit(0);
        break;
      default:
        fail(`unknown argument ${flag}`);
    }
  }
  if (options.runs !== undefined && options.minutes !== undefined) fail('give --runs or --minutes, not both');
  if (options.runs === undefined && options.minutes === undefined) options.runs = 200;
  return options;
}

function fail(message) {
  console.error(`fuzz: ${message}\n${usage}`);
  process.exit(2);
}

const options = parseArgs(process.argv.slice(2));
const counts = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'mdl-fuzz-')), 'counts.jsonl');
const target = options.only ? `spec/property/${options.only}.spec.ts` : 'spec/property';
/** Jest's workers (jest.config.js): the suite files run this many at a time. */
const WORKERS = 2;
const files = options.only
  ? 1
  : fs.readdirSync(path.join(__dirname, '..', 'spec', 'property')).filter((f) => f.endsWith('.spec.ts')).length;
/** Each file's minutes, so that the files, WORKERS at a time, take about `--minutes` together. */
const slot = options.minutes === undefined ? undefined : options.minutes / Math.ceil(files / WORKERS);
const env = {
  ...process.env,
  FUZZ_COUNTS_FILE: counts,
  FUZZ_COMMANDS: String(options.commands),
  ...(options.runs !== undefined ? { FUZZ_RUNS: String(options.runs) } : {}),
  ...(slot !== undefined ? { FUZZ_MINUTES: String(slot) } : {}),
  ...(options.seed !== undefined ? { FUZZ_SEED: options.seed } : {}),
  ...(options.path !== undefined ? { FUZZ_PATH: options.path } : {}),
  ...(options.replay !== undefined ? { FUZZ_REPLAY_PATH: options.replay } : {}),
};
const jest = require.resolve('jest/bin/jest');
const started = Date.now();
const result = spawnSync(process.execPath, [jest, target], {
  cwd: path.join(__dirname, '..'),
  env,
  stdio: 'inherit',
});

const totals = { runs: 0, sequences: 0, commands: 0 };
if (fs.existsSync(counts)) {
  for (const line of fs.readFileSync(counts, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const entry = JSON.parse(line);
    totals.runs += entry.runs ?? 0;
    totals.sequences += entry.sequences ?? 0;
    totals.commands += entry.commands ?? 0;
  }
  fs.rmSync(path.dirname(counts), { recursive: true, force: true });
}
const seconds = ((Date.now() - started) / 1000).toFixed(1);
const verdict = result.status === 0 ? 'passed' : 'FAILED';
console.log(
  `fuzz ${verdict}: ${totals.runs} runs, ${totals.sequences} sequences, ${totals.commands} commands executed in ${seconds} s`,
);
process.exit(result.status ?? 1);
