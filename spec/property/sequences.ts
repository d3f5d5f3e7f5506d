// Shared pieces of the model-based sequences of leases across manager slots (the semaphore and
// read-write lock suites): the slots' connections, and the commands that are the same for any
// kind of hold (the wrapper that logs and checks after each step, release, close).
import type fc from 'fast-check';
import type { Connection } from 'mongoose';
import type { Lease, LockManager } from '../../lib/index';
import { describeError, recordCounts, rejectionRecorder, settle, within } from './support';

/** What the shared commands need of a suite's model: the holds it counts as held. */
export interface SequenceModel {
  readonly held: Set<Lease>;
}

/** What the shared commands need of a suite's real state. */
export interface SequenceReal {
  readonly managers: LockManager[];
  /** Every hold a command got, in order. */
  readonly leases: Lease[];
  readonly log: string[];
}

/** A suite of sequences: its counters, its checks, and how a slot gets a new manager. */
export interface SequenceSuite<M extends SequenceModel, R extends SequenceReal> {
  readonly name: string;
  /** How long one step may take before it counts as hung. */
  readonly step: number;
  readonly slots: number;
  readonly db: { connect(): Promise<Connection> };
  /** The invariants after a step (throws what went wrong). */
  check(model: M, real: R, step: string): Promise<void>;
  newManager(real: R, slot: number): LockManager;
}

/**
 * Opens one connection per manager slot (as separate processes would have) and one to read the
 * database with, and records unhandled rejections, around the suite's tests.
 */
export function sequenceSuite<M extends SequenceModel, R extends SequenceReal>(suite: SequenceSuite<M, R>) {
  const rejections = rejectionRecorder();
  const counts = { suite: suite.name, runs: 0, sequences: 0, commands: 0 };
  const connections: Connection[] = [];
  let raw: Connection | undefined;

  beforeAll(async () => {
    rejections.install();
    const opened = await Promise.all(Array.from({ length: suite.slots + 1 }, () => suite.db.connect()));
    raw = opened.pop()!;
    connections.push(...opened);
  });

  afterAll(() => {
    rejections.remove();
    recordCounts({ ...counts, runs: counts.sequences });
    expect(rejections.since(0)).toBe('');
  });

  const settleStep = (promise: Promise<unknown>, what: string) => settle(promise, suite.step, what);

  /** A command of a sequence: `act`, which notes what went against the contract, then the checks. */
  function command(
    label: string,
    act: (model: M, real: R, failures: string[]) => Promise<void>,
  ): fc.AsyncCommand<M, R, false> {
    return {
      check: () => true,
      toString: () => label,
      async run(model, real) {
        counts.commands++;
        real.log.push(label);
        const failures: string[] = [];
        await act(model, real, failures);
        for (const lease of [...model.held]) if (!lease.held) model.held.delete(lease);
        if (failures.length) throw new Error(`${label}: ${failures.join('; ')}\n  log: ${real.log.join('; ')}`);
        await suite.check(model, real, label);
      },
    };
  }

  /** release() of the k-th hold given so far: true if it was held, a not_acquired rejection if not. */
  function release(k: number) {
    const label = `hold#${k}.release()`;
    return command(label, async (model, real, failures) => {
      if (real.leases.length === 0) return;
      const lease = real.leases[k % real.leases.length]!;
      const wasHeld = model.held.has(lease) && lease.held;
      const outcome = await settleStep(lease.release(), label);
      if ('value' in outcome && wasHeld && outcome.value !== true)
        failures.push(`release() of a held lease resolved ${String(outcome.value)}`);
      const code = 'error' in outcome ? (outcome.error as { code?: string }).code : undefined;
      if ('error' in outcome && (wasHeld || (code !== 'not_acquired' && code !== 'closed')))
        failures.push(`release() rejected: ${describeError(outcome.error)}`);
      if (lease.held) failures.push('the lease says held after release() settled');
      model.held.delete(lease);
    });
  }

  /** close() of a manager (replaced by a new one): its holds are released. */
  function close(slot: number) {
    const label = `s${slot}.close()`;
    return command(label, async (model, real, failures) => {
      const manager = real.managers[slot]!;
      const mine = manager.heldLeases;
      const outcome = await settleStep(manager.close(), label);
      if ('error' in outcome) failures.push(`close() rejected: ${describeError(outcome.error)}`);
      if (mine.some((l) => l.held)) failures.push('a lease says held after its manager closed');
      for (const lease of mine) model.held.delete(lease);
      real.managers[slot] = suite.newManager(real, slot);
    });
  }

  /** Closes every manager of a run, bounded (in a `finally`: also after a failed run). */
  const closeAll = (real: R) =>
    within(Promise.all(real.managers.map((m) => m.close())), suite.step, 'closing the managers at the end');

  /** After closing everything: fails if a live holder is left, or a rejection went unhandled since `from`. */
  function afterRun(real: R, from: number, liveLeft: number) {
    if (liveLeft) throw new Error(`after closing everything, ${liveLeft} live holders\n  log: ${real.log.join('; ')}`);
    const unhandled = rejections.since(from);
    if (unhandled) throw new Error(`unhandled rejection: ${unhandled}`);
  }

  return {
    rejections,
    counts,
    connections,
    /** The connection that reads the database directly. */
    raw: () => raw!,
    settle: settleStep,
    command,
    release,
    close,
    closeAll,
    afterRun,
  };
}
