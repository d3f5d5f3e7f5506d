// `mdlock top`'s frame, drawn from a snapshot without a database: rows, bars, sorting, and the cut
// to the terminal's size. The live view itself is tested in a terminal (spec/cli/cli-top.spec.ts).
import { renderFrame, timeBar, type FrameOptions, type Snapshot, type TopHolder } from '../../lib/cli/top';

const now = Date.parse('2030-01-01T00:00:00.000Z');
const hold = (owner: string, token: number, left: number, ttl = 30_000, mode?: 'read' | 'write'): TopHolder => ({
  owner,
  token,
  expiresAt: new Date(now + left),
  ttl,
  ...(mode && { mode }),
});

const snapshot: Snapshot = {
  now,
  locks: [
    { name: 'deploy', holder: hold('web-1', 88, 27_000), contended: true },
    { name: 'backup', holder: hold('web-2', 90, 3_000), contended: false },
  ],
  semaphores: [
    { name: 'encode', limit: 3, holders: [hold('w1', 14, 29_000), hold('w2', 15, 12_000)], contended: false },
  ],
  rwlocks: [
    { name: 'catalog', holders: [hold('r1', 16, 20_000, 30_000, 'read')], writerWaiting: true, contended: true },
  ],
  jobs: [
    {
      last: {
        name: 'nightly',
        scheduledAt: new Date('2029-12-31T03:00:00.000Z'),
        attempt: 1,
        token: 77,
        owner: 'web-3',
        startedAt: new Date(now),
        outcome: 'running',
      },
      tick: hold('web-3', 77, 15_000),
    },
  ],
};
const options: FrameOptions = { collection: 'locks', sort: 'name', interval: 1000, keys: true };
/** The name of each row of the table: a kind's name, or `permit`/`read` for a hold. */
const names = (lines: string[]) => lines.slice(4).map((line) => line.trim().split(/\s+/)[line.startsWith(' ') ? 0 : 1]);

test('bars: the part of its ttl a hold has left, in tenths, and the time', () => {
  expect(timeBar(30_000, 30_000)).toBe('[##########] 30s');
  expect(timeBar(15_000, 30_000)).toBe('[#####.....] 15s');
  expect(timeBar(2_900, 30_000)).toBe('[#.........] 2.9s');
  expect(timeBar(-500, 30_000)).toBe('[..........] 0.0s');
  expect(timeBar(45_000, 30_000)).toBe('[##########] 45s'); // a longer hold than the ttl says: full
});

test('a frame: summary, keys, then every kind with its holders, waiters and the last run of each job', () => {
  const lines = renderFrame(snapshot, options);
  expect(lines.slice(0, 3)).toEqual([
    'mdlock top: locks at 2030-01-01T00:00:00.000Z: 2 locks held, 1 semaphore, 1 read-write lock, 1 job',
    'every 1.0s, sorted by name; keys: n name, t time left, k kind, q quit',
    '',
  ]);
  expect(lines.slice(3).map((line) => line.split(/ {2,}/))).toEqual([
    ['KIND', 'NAME', 'HOLDER', 'TOKEN', 'TIME LEFT', 'INFO'],
    ['lock', 'backup', 'web-2', '90', '[#.........] 3.0s'],
    ['rwlock', 'catalog', '1 read', '-', 'writer waiting'],
    ['', 'read', 'r1', '16', '[#######...] 20s'],
    ['lock', 'deploy', 'web-1', '88', '[#########.] 27s', 'waiters'],
    ['semaphore', 'encode', '2/3 held', '-'],
    ['', 'permit', 'w1', '14', '[##########] 29s'],
    ['', 'permit', 'w2', '15', '[####......] 12s'],
    ['job', 'nightly', 'web-3', '77', '[#####.....] 15s', 'running, tick 2029-12-31T03:00:00.000Z'],
  ]);
});

test('sorting by time left (least first, what holds nothing last) and by kind; a group moves as one', () => {
  const byTime = renderFrame(snapshot, { ...options, sort: 'time' });
  expect(byTime[1]).toContain('sorted by time left');
  expect(names(byTime)).toEqual(['backup', 'encode', 'permit', 'permit', 'nightly', 'catalog', 'read', 'deploy']);
  const byKind = renderFrame(snapshot, { ...options, sort: 'kind' });
  expect(names(byKind)).toEqual(['backup', 'deploy', 'encode', 'permit', 'permit', 'catalog', 'read', 'nightly']);
});

test('cut to the terminal: at most `rows` lines (the last says how many more), each at most `columns` wide', () => {
  const lines = renderFrame(snapshot, { ...options, rows: 8, columns: 40 });
  expect(lines).toHaveLength(8);
  expect(lines[7]).toBe('... 5 more lines'); // 12 lines: 7 shown, then this one
  expect(lines.every((line) => line.length <= 40)).toBe(true);
  const empty = renderFrame({ now, locks: [], semaphores: [], rwlocks: [], jobs: [] }, { ...options, keys: false });
  expect(empty).toEqual([
    'mdlock top: locks at 2030-01-01T00:00:00.000Z: 0 locks held, 0 semaphores, 0 read-write locks, 0 jobs',
    '',
    'nothing held',
  ]);
});
