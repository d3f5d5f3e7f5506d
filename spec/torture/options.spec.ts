// The torture test's command line: the workloads `--workload` takes (a list, `both`, `all`), and
// the fair workload refused unless the library takes `fair: true`.
import { parseOptions } from './run';

const workload = (value: string, fair = false) => parseOptions(['--workload', value], { fair }).workload;

test('--workload takes a list, in any order, and both or all', () => {
  expect(workload('rwlock,semaphore')).toEqual(['semaphore', 'rwlock']);
  expect(workload('locks')).toEqual(['locks']);
  expect(workload('both')).toEqual(['locks', 'schedule']);
  expect(workload('both,semaphore')).toEqual(['locks', 'schedule', 'semaphore']);
  expect(parseOptions([]).workload).toEqual(['locks']);
});

test('all includes the fair workload only when the library takes fair: true; fair alone is refused otherwise', () => {
  expect(workload('all')).toEqual(['locks', 'schedule', 'semaphore', 'rwlock']);
  expect(workload('all', true)).toEqual(['locks', 'schedule', 'semaphore', 'rwlock', 'fair']);
  expect(workload('fair', true)).toEqual(['fair']);
  expect(() => workload('fair')).toThrow(
    /--workload fair: this version of the library does not take the `fair` option/,
  );
});

test('an unknown workload is refused, naming the list', () => {
  expect(() => workload('locks,semaphores')).toThrow(
    /--workload takes a list of locks, schedule, semaphore, rwlock, fair \(or both, or all\), got "locks,semaphores"/,
  );
});
