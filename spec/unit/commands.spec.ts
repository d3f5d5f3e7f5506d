// The command builders of lib/commands.ts, without a server: which caller values enter a command
// only as literals, which write concern each command asks for, and what the acquire and release
// pipelines compute, evaluated here by a small interpreter of the aggregation operators they use
// (the integration suites run the same commands on the real engine).
import {
  COLLECTION,
  RELAXED,
  acquireCommand,
  fairReleaseCommand,
  forceReleaseCommand,
  holdProjection,
  releaseCommand,
  type AcquireRequest,
} from '../../lib/commands';

type Doc = Record<string, unknown>;
const REMOVE = Symbol('$$REMOVE');

/** BSON's order of the types these pipelines compare: null and missing, numbers, strings, objects, booleans, dates. */
function rank(value: unknown): number {
  if (value === null || value === undefined) return 0;
  if (typeof value === 'number' || typeof value === 'bigint') return 1;
  if (typeof value === 'string') return 2;
  if (value instanceof Date) return 5;
  if (typeof value === 'boolean') return 4;
  return 3;
}

function compare(a: unknown, b: unknown): number {
  const [ra, rb] = [rank(a), rank(b)];
  if (ra !== rb || ra === 0) return ra - rb;
  const [va, vb] = [a as number | string | Date, b as number | string | Date];
  return va < vb ? -1 : va > vb ? 1 : 0;
}

/** Evaluates an aggregation expression against `root`, with `$$NOW` = `now` and the variables of enclosing `$let`s. */
function evaluate(expr: unknown, root: Doc, now: Date, vars: Record<string, unknown> = {}): unknown {
  const ev = (e: unknown) => evaluate(e, root, now, vars);
  if (typeof expr === 'string') {
    if (expr === '$$NOW') return now;
    if (expr === '$$ROOT') return root;
    if (expr === '$$REMOVE') return REMOVE;
    if (expr.startsWith('$$')) {
      const name = expr.slice(2);
      if (!(name in vars)) throw new Error(`unknown variable ${expr}`);
      return vars[name];
    }
    if (expr.startsWith('$')) return root[expr.slice(1)];
    return expr;
  }
  if (Array.isArray(expr)) return expr.map(ev);
  if (expr === null || typeof expr !== 'object' || expr instanceof Date) return expr;
  const entries = Object.entries(expr);
  const [operator, operand] = entries[0] ?? [];
  if (entries.length === 1 && operator?.startsWith('$')) {
    const args = operator === '$literal' || operator === '$let' ? [] : (operand as unknown[]);
    const values = () => args.map(ev);
    switch (operator) {
      case '$literal':
        return operand;
      case '$let': {
        const { vars: defined, in: body } = operand as { vars: Doc; in: unknown };
        const bound = Object.fromEntries(Object.entries(defined).map(([k, v]) => [k, ev(v)]));
        return evaluate(body, root, now, { ...vars, ...bound });
      }
      case '$cond':
        return ev(args[0]) === true ? ev(args[1]) : ev(args[2]);
      case '$and':
        return values().every((v) => v === true);
      case '$or':
        return values().some((v) => v === true);
      case '$eq':
        return compare(...(values() as [unknown, unknown])) === 0;
      case '$ne':
        return compare(...(values() as [unknown, unknown])) !== 0;
      case '$gt':
        return compare(...(values() as [unknown, unknown])) > 0;
      case '$lte':
        return compare(...(values() as [unknown, unknown])) <= 0;
      case '$ifNull': {
        const [value, fallback] = values();
        return value === null || value === undefined ? fallback : value;
      }
      case '$add': {
        const v = values() as (number | Date)[];
        const sum = v.reduce<number>((a, b) => a + Number(b), 0);
        return v.some((x) => x instanceof Date) ? new Date(sum) : sum;
      }
      case '$subtract': {
        const [a, b] = values() as [number | Date, number | Date];
        return Number(a) - Number(b);
      }
      case '$max':
        return values().reduce((a, b) => (compare(a, b) >= 0 ? a : b));
      case '$min':
        return values().reduce((a, b) => (compare(a, b) <= 0 ? a : b));
      case '$toLong':
        return Number(ev(operand));
      case '$toDate':
        return new Date(Number(ev(operand)));
      case '$mergeObjects':
        return Object.assign({}, ...values());
      default:
        throw new Error(`the test interpreter does not know ${operator}`);
    }
  }
  const out: Doc = {};
  for (const [key, value] of entries) {
    const v = ev(value);
    if (v !== REMOVE) out[key] = v;
  }
  return out;
}

/** Applies an update pipeline to `doc` as the server would, at server time `now`. */
function apply(pipeline: readonly Record<string, unknown>[], doc: Doc, now: Date): Doc {
  let current = doc;
  for (const stage of pipeline) {
    const [[name, spec]] = Object.entries(stage) as [[string, unknown]];
    if (name === '$replaceWith') current = evaluate(spec, current, now) as Doc;
    else if (name === '$set') {
      const next: Doc = { ...current };
      for (const [key, value] of Object.entries(spec as Doc)) {
        const v = evaluate(value, current, now);
        if (v === REMOVE) delete next[key];
        else next[key] = v;
      }
      current = next;
    } else throw new Error(`the test interpreter does not know the stage ${name}`);
  }
  return current;
}

/** Applies a projection with expressions (the `1`s keep fields) to `doc`. */
function project(projection: Record<string, unknown>, doc: Doc, now: Date): Doc {
  const out: Doc = {};
  for (const [key, value] of Object.entries(projection)) {
    if (value === 0) continue;
    if (value === 1) {
      if (key in doc) out[key] = doc[key];
    } else out[key] = evaluate(value, doc, now);
  }
  if (projection._id !== 0) out._id = doc._id;
  return out;
}

const now = new Date('2030-01-01T00:00:00.000Z');
const at = (ms: number) => new Date(now.getTime() + ms);
const request: AcquireRequest = { name: 'job', leaseId: 'new-id', owner: 'me', ttl: 5000 };

/** One acquisition against `doc` (absent: the upsert's `{ _id }`): the document after, and the answer. */
function acquire(doc: Doc | undefined, changes: Partial<AcquireRequest> = {}) {
  const { filter, update, options } = acquireCommand({ ...request, ...changes });
  const after = apply(update, doc ?? { _id: filter._id }, now);
  return { after, answer: project(options.projection, after, now) };
}

const held = (changes: Doc = {}): Doc => ({
  _id: 'job',
  token: 41,
  leaseId: 'their-id',
  owner: 'them',
  acquiredAt: at(-10_000),
  expiresAt: at(2000),
  ttl: 12_000,
  ...changes,
});

describe('acquireCommand', () => {
  test('is one findOneAndUpdate with upsert on the lock name, with a single pipeline stage', () => {
    const { filter, update, options } = acquireCommand(request);
    expect(filter).toEqual({ _id: 'job' });
    expect(update).toHaveLength(1);
    expect(options).toMatchObject({ upsert: true, returnDocument: 'after' });
  });

  test('caller-given values enter the pipeline and the projection only as literals', () => {
    // Strings that the server would evaluate, and that appear nowhere else in the commands.
    const sneaky = { name: 'n', leaseId: '$leaseId.x', owner: '$$CURRENT', ttl: 10 };
    for (const history of [false, true]) {
      const { update, options } = acquireCommand({ ...sneaky, history, waiting: true });
      const found: string[] = [];
      const walk = (value: unknown, parent: string) => {
        if (value === '$leaseId.x' || value === '$$CURRENT' || value === 10) found.push(parent);
        else if (value && typeof value === 'object') {
          for (const [key, child] of Object.entries(value)) walk(child, Array.isArray(value) ? parent : key);
        }
      };
      walk(update, '');
      walk(options.projection, '');
      // Wherever they occur (the owner, the lease id twice, the ttl in expiresAt and ttl), it is under $literal.
      expect(found.length).toBeGreaterThanOrEqual(5);
      expect(new Set(found)).toEqual(new Set(['$literal']));
    }
    // And a stored owner is the string as written.
    const { after } = acquire(undefined, { owner: '$token', leaseId: '$$NOW' });
    expect(after).toMatchObject({ owner: '$token', leaseId: '$$NOW' });
  });

  test('a new lock: every field of the hold is set, the token is the server time in ms', () => {
    const { after, answer } = acquire(undefined);
    expect(after).toEqual({
      _id: 'job',
      token: now.getTime(),
      leaseId: 'new-id',
      owner: 'me',
      acquiredAt: now,
      expiresAt: at(5000),
      ttl: 5000,
    });
    expect(answer).toEqual({ mine: true, token: now.getTime(), owner: 'me', expiresAt: at(5000), remaining: 5000 });
  });

  test('a free lock: the new hold replaces what the last one left; the token is max(previous + 1, now in ms)', () => {
    const freed = held({ leaseId: null, expiresAt: at(-500), freedAt: at(-500), contended: true });
    expect(acquire(freed).after).toEqual({
      _id: 'job',
      token: now.getTime(),
      leaseId: 'new-id',
      owner: 'me',
      acquiredAt: now,
      expiresAt: at(5000),
      ttl: 5000,
    });
    // A token run ahead of the clock still grows by one.
    const ahead = now.getTime() + 50;
    expect(acquire({ ...freed, token: ahead }).after.token).toBe(ahead + 1);
  });

  test('a hold that expired (expiry not after $$NOW) is taken over', () => {
    for (const expiresAt of [at(-1), now]) {
      const { after, answer } = acquire(held({ expiresAt }));
      expect(after).toMatchObject({ leaseId: 'new-id', owner: 'me', token: now.getTime(), acquiredAt: now });
      expect(answer.mine).toBe(true);
    }
  });

  test('a live hold of someone else is left as it is, and the answer says how long it has left', () => {
    const doc = held();
    const { after, answer } = acquire(doc);
    expect(after).toEqual(doc);
    expect(answer).toEqual({ mine: false, token: 41, owner: 'them', expiresAt: at(2000), remaining: 2000 });
  });

  test('a waiting contender marks a live hold contended, and changes nothing else', () => {
    const doc = held();
    expect(acquire(doc, { waiting: true }).after).toEqual({ ...doc, contended: true });
    expect(acquire(held({ contended: true }), { waiting: true }).after).toEqual({ ...doc, contended: true });
    expect(acquire(undefined, { waiting: true }).after).not.toHaveProperty('contended'); // taken: not contended
  });

  test('a retry with the same lease id finds its own live hold: same token and start, expiry extended', () => {
    const mine = held({ leaseId: 'new-id', owner: 'me', expiresAt: at(100), previous: { token: 40 } });
    const { after, answer } = acquire(mine, { history: true });
    expect(after).toMatchObject({ token: 41, acquiredAt: at(-10_000), expiresAt: at(5000), previous: { token: 40 } });
    expect(answer).toMatchObject({ mine: true, token: 41, remaining: 5000 });
    // Its own hold that has expired is a new hold: new token.
    expect(acquire({ ...mine, expiresAt: at(-1) }).after.token).toBe(now.getTime());
  });

  test('force takes a live hold of someone else', () => {
    const { after, answer } = acquire(held(), { force: true });
    expect(after).toMatchObject({ leaseId: 'new-id', owner: 'me', token: now.getTime(), expiresAt: at(5000) });
    expect(answer.mine).toBe(true);
  });

  test('without history: no previous is stashed, projected, or left over from an earlier hold', () => {
    const { update, options } = acquireCommand(request);
    expect(JSON.stringify(update)).not.toContain('previous');
    expect(options.projection).not.toHaveProperty('previous');
    expect(acquire(held({ expiresAt: at(-1), previous: { token: 3 } })).after).not.toHaveProperty('previous');
  });

  test('with history: the hold taken over is stashed as previous (expired or taken) and answered', () => {
    const expired = acquire(held({ expiresAt: at(-300) }), { history: true });
    const ended = { token: 41, owner: 'them', acquiredAt: at(-10_000) };
    expect(expired.after.previous).toEqual({ ...ended, endedAt: at(-300), outcome: 'expired' });
    expect(expired.answer.previous).toEqual(expired.after.previous);
    const forced = acquire(held(), { history: true, force: true });
    expect(forced.after.previous).toEqual({ ...ended, endedAt: now, outcome: 'taken' });
    // A released lock ended its hold itself: nothing to stash.
    const free = acquire(held({ leaseId: null, expiresAt: at(-300), previous: { token: 3 } }), { history: true });
    expect(free.after).not.toHaveProperty('previous');
    expect(free.answer).not.toHaveProperty('previous');
  });
});

describe('releaseCommand and forceReleaseCommand', () => {
  test('release frees only the hold of its lease id, and answers from the document as it was', () => {
    const { filter, update, options } = releaseCommand('job', '$$NOW');
    expect(filter).toEqual({ _id: 'job', leaseId: '$$NOW' }); // a query value, not an expression
    expect(options.returnDocument).toBe('before');
    const doc = held({ token: now.getTime() - 20_000, contended: true });
    const after = apply(update, doc, now);
    expect(after).toEqual({ ...held({ token: doc.token }), leaseId: null, expiresAt: now, freedAt: now });
    expect(project(options.projection, doc, now)).toEqual({ live: true, contended: true });
    const expired = held({ expiresAt: at(-50) });
    expect(apply(update, expired, now)).toMatchObject({ leaseId: null, expiresAt: at(-50), freedAt: now });
    expect(project(options.projection, expired, now)).toEqual({ live: false });
  });

  test('release reads what the history record needs only with history on', () => {
    expect(Object.keys(releaseCommand('job', 'id').options.projection).sort()).toEqual(['_id', 'contended', 'live']);
    const { options } = releaseCommand('job', 'id', true);
    expect(options.projection).toMatchObject({ ...holdProjection, contended: 1 });
    expect(project(options.projection, held(), now)).toEqual({
      token: 41,
      owner: 'them',
      acquiredAt: at(-10_000),
      expiresAt: at(2000),
      now,
      live: true,
    });
  });

  test('the forced release frees whoever holds it, if held now', () => {
    const { filter, update } = forceReleaseCommand('job');
    expect(filter).toMatchObject({ _id: 'job' });
    expect(apply(update, held(), now)).toMatchObject({ leaseId: null, expiresAt: now });
  });
});

describe('write concerns', () => {
  test('the lock collection writes durably and reads majority-committed data from the primary', () => {
    expect(COLLECTION).toEqual({
      writeConcern: { w: 'majority', j: true },
      readConcern: { level: 'majority' },
      readPreference: 'primary',
    });
  });

  test('releases, forced releases included, ask for w: 1; acquisitions keep the durable default', () => {
    expect(RELAXED).toEqual({ writeConcern: { w: 1 } });
    expect(releaseCommand('job', 'id').options.writeConcern).toEqual({ w: 1 });
    expect(releaseCommand('job', 'id', true).options.writeConcern).toEqual({ w: 1 });
    expect(forceReleaseCommand('job').options.writeConcern).toEqual({ w: 1 });
    expect(acquireCommand(request).options).not.toHaveProperty('writeConcern');
  });

  test('a fair release, which may hand the lock over, is durable like an acquisition', () => {
    expect(fairReleaseCommand('job', 'id').options.writeConcern).toEqual({ w: 'majority', j: true });
    expect(fairReleaseCommand('job', 'id', true, 500).options.writeConcern).toEqual({
      w: 'majority',
      j: true,
      wtimeoutMS: 500,
    });
  });
});
