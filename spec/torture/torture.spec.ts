// The torture test's short run, part of the suite: worker processes contend for three locks, a
// semaphore's permits and a read-write lock (and a fair lock, once the library takes `fair`), and
// two scheduler processes with clocks 2 s apart run a schedule every second, while every fault is
// injected, and the checker finds nothing wrong in the recorded history. Exactly what
// `npm run torture -- --duration 25s --faults all --fault-every 1s --workload all --schedulers 2`
// does (faults that often, so that each of the seven kinds comes round within the 25 s: a restart,
// a close-stall and a stall hold up the next fault for seconds, and with 1.5 s between faults a run
// once ended before the last two kinds came; then 15 s without faults for the last ticks to settle); the long runs (`--duration 10m --faults all`, with
// `--workload all` or a list) are on demand. It starts its own engines whatever MONGODB_URI says.
import { spawn } from 'node:child_process';
import path from 'node:path';
import type { Stats, Violation } from './checker';
import { FAULTS, fairSupported } from './run';

const ROOT = path.join(__dirname, '..', '..');

function torture(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'spec/torture/run.ts', ...args], { cwd: ROOT });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

test('a short torture run with every fault and every workload: no violation, every fault injected, work done', async () => {
  // The lock workers share their operations among the locks, the semaphore and the read-write lock
  // (and the fair lock): the run takes no longer than with locks alone.
  const fair = await fairSupported();
  const { code, stdout, stderr } = await torture([
    '--duration',
    '25s',
    '--faults',
    'all',
    '--fault-every',
    '1s',
    '--workload',
    'all',
    '--schedulers',
    '2',
    '--json',
  ]);
  const last = stdout.trim().split('\n').pop() ?? '';
  let summary: { violations: Violation[]; stats: Stats };
  try {
    summary = JSON.parse(last) as typeof summary;
  } catch {
    throw new Error(`the torture run printed no summary (exit ${code}):\n${stdout}\n${stderr}`);
  }
  expect(summary.violations).toEqual([]);
  expect(code).toBe(0);
  const { stats } = summary;
  // Liveness under load is only asked to be plausible; safety above is exact.
  expect(stats.acquisitions).toBeGreaterThanOrEqual(10);
  expect(stats.fenced.accepted).toBeGreaterThan(0);
  expect(stats.unfenced.increments).toBeGreaterThan(0);
  // The semaphore, the read-write lock (its writers' writes are among the fenced ones above), the fair lock.
  expect(stats.semaphore.permits).toBeGreaterThan(0);
  expect(stats.rwlock.reads + stats.rwlock.writes).toBeGreaterThan(0);
  if (fair) expect(stats.fair.ops).toBeGreaterThan(0);
  else expect(stats.fair.ops).toBe(0);
  // The schedule: ticks in the checked window (all accounted for, above), most of them done.
  expect(stats.schedule.window).toBeGreaterThanOrEqual(10);
  expect(stats.schedule.outcomes.done).toBeGreaterThanOrEqual(stats.schedule.window / 2);
  const injected = Object.keys(stats.faults).map((kind) => kind.replace(/^proxy-.*/, 'proxy'));
  expect(new Set(injected)).toEqual(new Set(FAULTS));
}, 240_000);
