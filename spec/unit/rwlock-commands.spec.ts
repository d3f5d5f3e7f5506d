// The acquisition command of read-write locks, without a server: caller values enter it only as
// literals, and its shape (the integration suite runs it on the real engine).
import { acquireRwCommand, type RwMode } from '../../lib/rwlock-commands';

/** The keys under which the given values occur anywhere in `value` (the parent key for array items). */
function parentsOf(value: unknown, targets: readonly unknown[], parent = ''): string[] {
  if (targets.includes(value)) return [parent];
  if (!value || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([key, child]) =>
    parentsOf(child, targets, Array.isArray(value) ? parent : key),
  );
}

test('is one findOneAndUpdate with upsert on the name, with a single $replaceWith stage', () => {
  const { filter, update, options } = acquireRwCommand({ name: 'n', mode: 'read', leaseId: 'l', owner: 'o', ttl: 10 });
  expect(filter).toEqual({ _id: 'n' });
  expect(update).toHaveLength(1);
  expect(Object.keys(update[0]!)).toEqual(['$replaceWith']);
  expect(options).toMatchObject({ upsert: true, returnDocument: 'after' });
});

test.each<[RwMode, boolean]>([
  ['read', false],
  ['read', true],
  ['write', false],
  ['write', true],
])('caller-given values enter the %s pipeline (waiting: %s) and its projection only as literals', (mode, waiting) => {
  // Strings that the server would evaluate, and that appear nowhere else in the command.
  const sneaky = { name: 'n', mode, leaseId: '$leaseId.x', owner: '$$CURRENT', ttl: 1234, waiting };
  const { update, options } = acquireRwCommand(sneaky);
  const found = [
    ...parentsOf(update, ['$leaseId.x', '$$CURRENT', 1234]),
    ...parentsOf(options.projection, ['$leaseId.x']),
  ];
  // The owner, the lease id (grant, own hold, marker), the ttl (grant's expiry and ttl): each under $literal.
  expect(found.length).toBeGreaterThanOrEqual(5);
  expect(new Set(found)).toEqual(new Set(['$literal']));
});
