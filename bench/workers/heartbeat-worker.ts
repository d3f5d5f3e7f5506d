// Holds N leases in one manager and watches its heartbeat ticks (run with --expose-gc).
//   argv: <uri> <N,N,...> <ticks to observe per N> <heartbeat ms>
import { LockManager, type Lease } from 'mongoose-distributed-lock';
import { connect, median, now, p99 } from '../support';

const [uri, sizes, ticksArg, heartbeatArg] = process.argv.slice(2) as [string, string, string, string];
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});

async function measure(count: number, ticks: number) {
  const connection = await connect(uri, { monitorCommands: true });
  const manager = new LockManager({
    connection,
    collection: 'bench_heartbeat',
    ttl: '60s',
    heartbeat: Number(heartbeatArg),
  });
  manager.on('error', (error) => console.error(`heartbeat worker: ${error.message}`));
  await (await manager.acquire(`warm-up-${count}`)).release(); // the connection's first-use costs are not the leases'
  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  const leases: Lease[] = [];
  for (let i = 0; i < count; i += 200) {
    const batch = Array.from({ length: Math.min(200, count - i) }, (_, j) => manager.acquire(`beat-${count}-${i + j}`));
    leases.push(...(await Promise.all(batch)));
  }
  gc();
  const bytesPerLease = (process.memoryUsage().heapUsed - heapBefore) / count;

  // A tick: from the renewal command starting to the read-back succeeding; count what it sent.
  const durations: number[] = [];
  const roundTrips: number[] = [];
  let tickStart: number | undefined;
  let sent = 0;
  let readId: number | undefined;
  const client = connection.getClient();
  await new Promise<void>((resolve) => {
    client.on('commandStarted', (event) => {
      const command = event.command as Record<string, unknown>;
      if (event.commandName === 'update' && command.update === 'bench_heartbeat' && tickStart === undefined) {
        tickStart = now();
        sent = 0;
      }
      if (tickStart !== undefined && command[event.commandName] === 'bench_heartbeat') sent++;
      if (event.commandName === 'find' && command.find === 'bench_heartbeat' && tickStart !== undefined)
        readId = event.requestId;
    });
    client.on('commandSucceeded', (event) => {
      if (event.requestId !== readId || tickStart === undefined) return;
      durations.push(now() - tickStart);
      roundTrips.push(sent);
      tickStart = readId = undefined;
      if (durations.length >= ticks) resolve();
    });
  });
  const held = leases.filter((l) => l.held).length;
  await manager.close();
  await connection.close();
  return {
    count,
    held,
    bytesPerLease,
    median: median(durations),
    p99: p99(durations),
    roundTrips: Math.max(...roundTrips),
  };
}

async function main(): Promise<void> {
  for (const count of sizes.split(',').map(Number))
    process.send!({ type: 'measured', ...(await measure(count, Number(ticksArg))) });
  process.exit(0);
}

void main();
