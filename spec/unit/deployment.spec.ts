import { LockError } from '../../lib/errors';
import { deploymentProblems, MIN_WIRE_VERSION } from '../../lib/deployment';

const standalone = { maxWireVersion: 25, arbiters: 0, mongos: false };

test('a standalone server of 4.2 or later lacks nothing', () => {
  expect(deploymentProblems(standalone)).toEqual([]);
  expect(deploymentProblems({ ...standalone, maxWireVersion: MIN_WIRE_VERSION })).toEqual([]);
});

test('a server older than 4.2 is one clear error: lock commands need update pipelines and $$NOW', () => {
  const [problem, ...more] = deploymentProblems({ ...standalone, maxWireVersion: 7 });
  expect(more).toEqual([]);
  expect(problem).toBeInstanceOf(LockError);
  expect(problem).toMatchObject({ code: 'database', message: expect.stringMatching(/4\.2 or later.*wire version 7/) });
});

test('a replica set with an arbiter is warned of: majority writes can go unacknowledged', () => {
  const problems = deploymentProblems({ ...standalone, setName: 'rs0', arbiters: 1 });
  expect(problems).toHaveLength(1);
  expect(problems[0]!.message).toMatch(/replica set "rs0" has 1 arbiter.*majority writes cannot be acknowledged/);
});
