// npm run bench [-- --quick] [--only handover,heartbeat] [--out bench/results/latest.json]
//
// Every scenario is measured against a baseline in the same run, and reported as a ratio: this
// machine is shared and noisy, and absolute times say more about the neighbours than the code.
// Some rows also check a property that is not a timing (the heartbeat's round trips per tick, a
// baseline's commands being the library's): if one does not hold, the run exits with code 1.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import mongoose from 'mongoose';
import { startEngine } from '../scripts/engine.cjs';
import { contended } from './scenarios/contended';
import { fair } from './scenarios/fair';
import { handover } from './scenarios/handover';
import { heartbeat } from './scenarios/heartbeat';
import { pause } from './scenarios/pause';
import { schedule } from './scenarios/schedule';
import { semaphore } from './scenarios/semaphore';
import { telemetry } from './scenarios/telemetry';
import { uncontended } from './scenarios/uncontended';
import type { Context, Row } from './support';

const scenarios = { uncontended, semaphore, handover, fair, contended, heartbeat, schedule, pause, telemetry } as const;

function options() {
  try {
    const { values } = parseArgs({
      options: {
        quick: { type: 'boolean', default: false },
        only: { type: 'string' },
        out: { type: 'string', default: path.join(__dirname, 'results', 'latest.json') },
      },
      strict: true,
    });
    const only = values.only?.split(',') ?? Object.keys(scenarios);
    const unknown = only.filter((name) => !(name in scenarios));
    if (unknown.length)
      throw new Error(`unknown scenario ${unknown.join(', ')} (known: ${Object.keys(scenarios).join(', ')})`);
    return { ...values, only: only as (keyof typeof scenarios)[] };
  } catch (error) {
    console.error(`bench: ${(error as Error).message}`);
    process.exit(2);
  }
}

const format = (value: number) => (Number.isFinite(value) ? (value >= 100 ? value.toFixed(0) : value.toFixed(2)) : '-');

function table(rows: Row[]): string {
  const lines = [
    '| scenario | median | p99 | baseline | baseline median | baseline p99 | ratio (median) | notes |',
    '| --- | ---: | ---: | --- | ---: | ---: | ---: | --- |',
  ];
  for (const r of rows) {
    const ratio = r.baseline ? `${(r.median / r.baseline.median).toFixed(2)}x` : '-';
    const notes = Object.entries(r.notes ?? {})
      .map(([k, v]) => `${k}: ${v}`)
      .join('; ');
    const base = r.baseline
      ? [r.baseline.label, `${format(r.baseline.median)} ${r.unit}`, `${format(r.baseline.p99)} ${r.unit}`]
      : ['-', '-', '-'];
    lines.push(
      `| ${r.scenario} | ${format(r.median)} ${r.unit} | ${format(r.p99)} ${r.unit} | ${base.join(' | ')} | ${ratio} | ${notes} |`,
    );
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const { quick, only, out } = options();
  const started = Date.now();
  const engine = process.env.MONGODB_URI ? undefined : await startEngine();
  const uri = process.env.MONGODB_URI ?? engine!.uri;
  try {
    const probe = await mongoose.createConnection(uri).asPromise();
    const build = (await probe.db!.admin().command({ buildInfo: 1 })) as { version: string };
    await probe.db!.dropDatabase({ dbName: 'mdlock_bench' });
    await probe.useDb('mdlock_bench').dropDatabase();
    await probe.close();
    const machine = {
      cpus: os.cpus().length,
      cpu: os.cpus()[0]?.model ?? 'unknown',
      memoryGiB: Math.round(os.totalmem() / 2 ** 30),
      node: process.version,
      mongoose: mongoose.version,
      server: `${engine ? 'embedded engine' : 'MONGODB_URI'} ${build.version}`,
      mode: quick ? 'quick' : 'full',
    };
    console.log(
      `machine: ${Object.entries(machine)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`,
    );
    const context: Context = { uri, quick, enginePid: engine?.pid, pause: engine?.pause, resume: engine?.resume };
    const rows: Row[] = [];
    for (const name of only) {
      const scenarioStarted = Date.now();
      const produced = await scenarios[name](context);
      rows.push(...produced);
      console.log(`  ${name}: ${((Date.now() - scenarioStarted) / 1000).toFixed(1)} s`);
    }
    console.log(`\n${table(rows)}\n`);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), machine, rows }, null, 2)}\n`);
    console.log(`saved ${path.relative(process.cwd(), out)}; took ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const failures = rows.flatMap((r) => (r.failure ? [`${r.scenario}: ${r.failure}`] : []));
    if (failures.length) {
      console.error(`\nbench: FAILED\n${failures.map((f) => `- ${f}`).join('\n')}`);
      process.exitCode = 1;
    }
  } finally {
    await engine?.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
