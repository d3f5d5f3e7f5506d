// Uncontended acquire() + release() against hand-written pairs sent by the raw driver, in one run:
// the library's own two commands (what its JavaScript costs), a minimal durable pair (what the
// library costs in all), the minimal pair with the library's durability, and the minimal pair
// without any (what durability costs).
import type { Connection } from 'mongoose';
import { LockManager } from 'mongoose-distributed-lock';
import {
  connect,
  DURABLE,
  interleaved,
  median,
  minimalLockCommands,
  rawLockCommands,
  timedRow,
  W1,
  type Context,
  type Row,
} from '../support';

const COLLECTION = 'bench_uncontended';
const TTL = 60_000;
/** The target of the issue "A codebase the next engineer can carry on": the library within 15 % of the minimal durable pair. */
const TARGET = 1.15;

/** A command as the driver sends it, without what differs per request (session, cluster time, the lease id). */
function normalised(command: Record<string, unknown>, leaseId: string): string {
  const { lsid: _lsid, $clusterTime: _time, txnNumber: _txn, ...rest } = command;
  return JSON.stringify(rest).split(JSON.stringify(leaseId).slice(1, -1)).join('<lease id>');
}

/**
 * Sends one library acquire() + release() and the same pair by hand on a monitored connection, and
 * says how the commands differ (nothing, if the baseline is byte-identical).
 */
async function sameCommands(uri: string): Promise<string | undefined> {
  const connection = await connect(uri, { monitorCommands: true });
  const manager = new LockManager({ connection, collection: COLLECTION, ttl: TTL });
  const raw = rawLockCommands(connection, COLLECTION, manager.owner);
  const sent: Record<string, unknown>[] = [];
  connection.getClient().on('commandStarted', (event) => {
    if (event.commandName === 'findAndModify') sent.push(event.command);
  });
  try {
    const lease = manager.lease('identical');
    await lease.acquire();
    await lease.release();
    const library = sent.splice(0);
    const leaseId = String((library[1]?.query as { leaseId?: unknown } | undefined)?.leaseId);
    await raw.acquire('identical', 'by-hand');
    await raw.release('identical', 'by-hand');
    const mine = library.map((c) => normalised(c, leaseId));
    const theirs = sent.map((c) => normalised(c, 'by-hand'));
    if (mine.length !== 2 || theirs.length !== 2)
      return `expected 2 commands each, saw ${mine.length} and ${theirs.length}`;
    const differs = mine.findIndex((c, i) => c !== theirs[i]);
    return differs < 0
      ? undefined
      : `command ${differs + 1} differs:\n  library: ${mine[differs]}\n  by hand: ${theirs[differs]}`;
  } finally {
    await manager.close();
    await connection.close();
  }
}

type Pair = {
  acquire(name: string, leaseId: string): Promise<unknown>;
  release(name: string, leaseId: string): Promise<unknown>;
};

export async function uncontended({ uri, quick }: Context): Promise<Row[]> {
  const mismatch = await sameCommands(uri);
  const connection: Connection = await connect(uri);
  const manager = new LockManager({ connection, collection: COLLECTION, ttl: TTL });
  const lease = manager.lease('solo');
  const byHand = (pair: Pair, name: string) => async (i: number) => {
    await pair.acquire(name, `${name}-${i}`);
    await pair.release(name, `${name}-${i}`);
  };
  const variants: Record<string, (i: number) => Promise<unknown>> = {
    library: async () => {
      await lease.acquire();
      await lease.release();
    },
    identical: byHand(rawLockCommands(connection, COLLECTION, manager.owner), 'identical'),
    durable: byHand(minimalLockCommands(connection, COLLECTION, { acquire: DURABLE, release: DURABLE }), 'durable'),
    same: byHand(minimalLockCommands(connection, COLLECTION, { acquire: DURABLE, release: W1 }), 'same'),
    w1: byHand(minimalLockCommands(connection, COLLECTION, { acquire: W1, release: W1 }), 'w1'),
  };
  const rounds = quick ? 300 : 3000;
  let times: Record<string, number[]>;
  try {
    times = await interleaved(variants, rounds);
  } finally {
    await manager.close();
    await connection.close();
  }
  const ratio = median(times.library!) / median(times.durable!);
  const library = 'uncontended acquire() + release()';
  return [
    {
      ...timedRow(
        library,
        times.library!,
        { label: 'minimal durable pair (both w: majority, j: true)', times: times.durable! },
        { target: `≤ ${TARGET}x`, rounds },
      ),
      ...(ratio > TARGET && { notes: { target: `≤ ${TARGET}x: MISSED`, rounds } }),
    },
    timedRow(library, times.library!, {
      label: 'minimal pair, same durability (acquire durable, release w: 1)',
      times: times.same!,
    }),
    {
      ...timedRow(library, times.library!, {
        label: "the library's own 2 commands, by hand (its JavaScript)",
        times: times.identical!,
      }),
      notes: { 'commands byte-identical': mismatch ? 'NO' : 'yes' },
      ...(mismatch && { failure: `the by-hand baseline does not send the library's commands: ${mismatch}` }),
    },
    timedRow(library, times.library!, { label: 'minimal w: 1 pair (no durability)', times: times.w1! }),
    timedRow("the library's 2 commands, by hand", times.identical!, {
      label: 'minimal pair, same durability',
      times: times.same!,
    }),
    timedRow('minimal durable pair', times.durable!, {
      label: 'minimal w: 1 pair (the price of durability)',
      times: times.w1!,
    }),
  ];
}
