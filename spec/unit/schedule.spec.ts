// What runOnce decides from a tick's record, read while holding the tick's lease (no server).
import { decide, type RunRecord } from '../../lib/runs';

const record = (outcome: RunRecord['outcome'], attempt: number, token: number): RunRecord => ({
  name: 'job',
  scheduledAt: new Date(0),
  attempt,
  token,
  owner: 'someone',
  startedAt: new Date(0),
  outcome,
});

test.each([
  ['no record: attempt 1', null, 0, { kind: 'claim', attempt: 1 }],
  ['done: never again', record('done', 1, 5), 9, { kind: 'settled', outcome: 'done' }],
  ['missed stays missed', record('missed', 0, 0), 9, { kind: 'settled', outcome: 'missed' }],
  ['lost stays lost', record('lost', 1, 5), 9, { kind: 'settled', outcome: 'lost' }],
  ['failed, a retry left: attempt 2', record('failed', 1, 5), 1, { kind: 'claim', attempt: 2 }],
  ['failed, no retry left', record('failed', 2, 5), 1, { kind: 'settled', outcome: 'failed' }],
  ['running under an ended lease, a retry left', record('running', 1, 5), 1, { kind: 'claim', attempt: 2 }],
  ['running under an ended lease, no retry left', record('running', 1, 5), 0, { kind: 'lost' }],
] as const)('%s', (_, previous, retries, expected) => {
  expect(decide(previous, 10, retries)).toEqual(expected);
});

test('a record of a token not smaller than ours is a live run: nothing to do', () => {
  expect(decide(record('running', 1, 10), 10, 5)).toEqual({ kind: 'settled', outcome: 'running' });
  expect(decide(record('running', 1, 11), 10, 5)).toEqual({ kind: 'settled', outcome: 'running' });
});
