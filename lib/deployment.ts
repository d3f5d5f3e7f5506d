// What the server the manager talks to can do, checked once at start-up: the core needs update
// pipelines and $$NOW (MongoDB 4.2, wire version 8); a replica set with an arbiter can leave
// majority writes unacknowledged while a data-bearing member is down.
import { LockError, LockErrorCode } from './errors.js';
import type { LockStore } from './store.js';
import { bounded } from './timeout.js';

/** What `hello` says of the deployment, as far as the library cares. */
export interface Deployment {
  /** The server's (or router's) highest wire version: 8 is MongoDB 4.2. */
  readonly maxWireVersion: number;
  /** The replica set's name, if it is one. */
  readonly setName?: string;
  /** How many arbiters the replica set has. */
  readonly arbiters: number;
  /** A `mongos` router of a sharded cluster. */
  readonly mongos: boolean;
}

/** MongoDB 4.2: update pipelines and `$$NOW`, which every acquisition and renewal uses. */
export const MIN_WIRE_VERSION = 8;

/** Reads what the deployment is, with one `hello` (bounded by `timeout`). */
export async function inspectDeployment(store: LockStore, timeout: number): Promise<Deployment> {
  const db = await store.db('hello', timeout);
  const what = 'hello';
  const reply = await bounded(
    db.command({ hello: 1 }, { readPreference: 'primary' }),
    timeout,
    () => new LockError(LockErrorCode.Connection, `${what}: MongoDB did not answer within ${timeout} ms`),
  );
  return {
    maxWireVersion: typeof reply.maxWireVersion === 'number' ? reply.maxWireVersion : 0,
    ...(typeof reply.setName === 'string' && { setName: reply.setName }),
    arbiters: Array.isArray(reply.arbiters) ? reply.arbiters.length : 0,
    mongos: reply.msg === 'isdbgrid',
  };
}

/** One clear error per capability the deployment lacks, or a condition to warn of. */
export function deploymentProblems(deployment: Deployment): LockError[] {
  const problems: LockError[] = [];
  if (deployment.maxWireVersion < MIN_WIRE_VERSION) {
    problems.push(
      new LockError(
        LockErrorCode.Database,
        `MongoDB 4.2 or later is needed (update pipelines and $$NOW); this server reports wire version ${deployment.maxWireVersion}, so lock commands will fail`,
      ),
    );
  }
  if (deployment.arbiters > 0) {
    problems.push(
      new LockError(
        LockErrorCode.Database,
        `replica set "${deployment.setName ?? '?'}" has ${deployment.arbiters} arbiter(s): while a data-bearing member is down, majority writes cannot be acknowledged and every lock command fails after commandTimeout (see docs/deployments.md)`,
      ),
    );
  }
  return problems;
}
