// `npm run demo` in its short mode, as CI runs it: a failover and a hand-over happen, and it
// cleans up every process it started.
import { alive, processes } from '../helpers/processes';

const children = processes();

test('the demo shows a leader, a failover after SIGKILL, an instant hand-over, and ends by itself', async () => {
  const started = performance.now();
  // Its own engine, as `npm run demo` on a fresh machine.
  const demo = children.script('examples/demo.ts', ['--short'], { env: { MONGODB_URI: '' } });
  const exit = await demo.exited;
  const took = performance.now() - started;
  const text = demo.lines.map((line) => line.replace(/^\d\d:\d\d:\d\d\.\d{3}\s+/, '')).join('\n');
  expect({ exit, stderr: demo.stderr() }).toEqual({ exit: { code: 0, signal: null }, stderr: '' });
  expect(took).toBeLessThan(60_000);

  const killed = /SIGKILL (scheduler-\w), the leader/.exec(text)![1]!;
  expect(text).toMatch(new RegExp(`${killed}\\s+★ elected leader \\(term \\d+\\)`));
  const failover = /failover: (scheduler-\w) took over (\d+\.\d) s after the kill \(ttl 3 s\)/.exec(text)!;
  expect(failover[1]).not.toBe(killed);
  expect(Number(failover[2])).toBeLessThan(3 + 10); // the lease ran out after at most its ttl (plus a busy machine)
  const handover = /hand-over: (scheduler-\w) took over (\d+) ms after the resignation/.exec(text)!;
  expect([killed, failover[1]]).not.toContain(handover[1]);
  expect(Number(handover[2])).toBeLessThan(3000); // not the 3 s ttl: the resigner freed the lock
  expect(text).toMatch(new RegExp(`${failover[1]}\\s+☆ no longer leader \\(resigned\\)`));
  expect(text).toMatch(
    /\d+ ticks ran, each in one process only \(scheduler-\w \d+, scheduler-\w \d+, scheduler-\w \d+\)/,
  );
  expect(text).not.toContain('FAILED');

  const pids = [...text.matchAll(/scheduler-\w is process (\d+)|embedded engine, process (\d+)/g)].map((m) =>
    Number(m[1] ?? m[2]),
  );
  expect(pids).toHaveLength(4); // the engine and three schedulers
  expect(pids.filter(alive)).toEqual([]);
}, 90_000);
