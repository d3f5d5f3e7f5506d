// Holds N leases in one manager and watches its heartbeat ticks (run with --expose-gc).
//   argv: <uri> <N,N,...> <ticks to observe per N> <heartbeat ms>
import { LockManager, type Lease } from 'mongoose-distributed-lock';
import { connect, median, now, p99 } from '../support';

const [uri, sizes, ticksArg, heartbeatArg] = process.argv.slice(2) as [string, string, string, string];
const COLLECTION = 'bench_heartbeat';
/** `update + find`, or `update + find + getMore ×200`: each kind of command with its count. */
function summary(sent: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const name of sent) counts.set(name, (counts.get(name) ?? 0) + 1);
  return [...counts].map(([name, n]) => (n > 1 ? `${name} ×${n}` : name)).join(' + ');
}

const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});

async function measure(count: number, ticks: number, last: boolean) {
  const connection = await connect(uri, { monitorCommands: true });
  const manager = new LockManager({
    connection,
    collection: COLLECTION,
    ttl: '60s',
    heartbeat: Number(heartbeatArg),
  });
  manager.on('error', (error) => console.error(`heartbeat worker: ${error.message}`));
  await (await manager.acquire(`warm-up-${count}`)).release(); // the connection's first-use costs are not the leases'
  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  const leases: Lease[] = [];
  for (let i = 0; i < count; i += 1000) {
    const batch = Array.from({ length: Math.min(1000, count - i) }, (_, j) =>
      manager.acquire(`beat-${count}-${i + j}`),
    );
    leases.push(...(await Promise.all(batch)));
  }
  gc();
  const bytesPerLease = (process.memoryUsage().heapUsed - heapBefore) / count;

  // A tick begins when its renewal (an update) starts, and lasts until the next one starts: every
  // command on the lock collection in between is one of its round trips, whatever its kind (an
  // update, a find, and also any getMore or killCursors the read-back needed). Its duration runs
  // from the renewal starting to the last of those commands succeeding.
  const durations: number[] = [];
  const roundTrips: number[] = [];
  const kinds: string[] = [];
  let tick: { started: number; sent: string[]; ended: number; ids: Set<number> } | undefined;
  const client = connection.getClient();
  const ours = (command: Record<string, unknown>, name: string) =>
    command[name] === COLLECTION || (name === 'getMore' && command.collection === COLLECTION);
  await new Promise<void>((resolve) => {
    client.on('commandStarted', (event) => {
      const command = event.command as Record<string, unknown>;
      if (!ours(command, event.commandName)) return;
      if (event.commandName === 'update') {
        if (tick) {
          durations.push(tick.ended - tick.started);
          roundTrips.push(tick.sent.length);
          kinds.push(summary(tick.sent));
          if (durations.length >= ticks) return resolve();
        }
        tick = { started: now(), sent: [], ended: NaN, ids: new Set() };
      }
      tick?.sent.push(event.commandName);
      tick?.ids.add(event.requestId);
    });
    client.on('commandSucceeded', (event) => {
      if (tick?.ids.has(event.requestId)) tick.ended = now();
    });
  });
  const held = leases.filter((l) => l.held).length;
  // After the last count the process exits, and its leases expire as a crashed holder's would:
  // releasing 10,000 of them takes longer than measuring them (and the next run drops the database).
  if (!last) {
    await manager.close();
    await connection.close();
  }
  return {
    count,
    held,
    bytesPerLease,
    median: median(durations),
    p99: p99(durations),
    /** The most round trips any tick took, and every tick's, if any took other than 2. */
    roundTrips: Math.max(...roundTrips),
    fewest: Math.min(...roundTrips),
    kinds: [...new Set(kinds)].join('; '),
  };
}

async function main(): Promise<void> {
  const counts = sizes.split(',').map(Number);
  for (const [i, count] of counts.entries()) {
    const measured = await measure(count, Number(ticksArg), i === counts.length - 1);
    await new Promise((resolve) => process.send!({ type: 'measured', ...measured }, resolve));
  }
  process.exit(0);
}

void main();
