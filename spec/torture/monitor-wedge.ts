// A reproduction, not a test: the MongoDB driver's server monitor stuck for good after an engine
// restart that follows a pause, seen through the torture test's proxy (./proxy.ts) while a
// manager's wake-up cursor (a tailable awaitData cursor) is open. The monitor stays in its
// `monitoring` state with a connection the proxy closed, its check never ends, no new connection
// is ever made, and every command of that client fails with "no answer" from then on. Here a
// direct connection, or `wakeups: false`, recovers within a second; but a short torture run (seed
// 12) wedged both its schedulers, which run without wake-ups, so those only make it rarer. The
// driver's likely fault: a command begun as its connection closes waits for ever (the close's
// clean-up ran before the read began, and a destroyed socket's timeout never fires).
// ./connect.ts's watchForWedge detects the stuck monitor (it logs here after 5 s); the torture
// orchestrator replaces a scheduler whose client wedged. See docs/deployments.md.
//
//   npx tsx spec/torture/monitor-wedge.ts                  # with wake-ups: stuck
//   WAKEUPS=off npx tsx spec/torture/monitor-wedge.ts      # recovers
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mongoose from 'mongoose';
import { LockManager } from '../../lib/index';
import { startEngine } from '../../scripts/engine.cjs';
import { watchForWedge } from './connect';
import { FaultProxy } from './proxy';

const started = Date.now();
const log = (...what: unknown[]) => console.log(((Date.now() - started) / 1000).toFixed(1), ...what);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function main(): Promise<void> {
  let engine = await startEngine({ dbpath: fs.mkdtempSync(path.join(os.tmpdir(), 'monitor-wedge-')) });
  const proxy = new FaultProxy(engine.port);
  const uri = `mongodb://127.0.0.1:${await proxy.listen()}/?directConnection=true`;
  const connection = await mongoose.createConnection(uri, { dbName: 'wedge' }).asPromise();
  const client = connection.getClient();
  watchForWedge(connection, (ms) =>
    log(`watchForWedge: wedged (monitor in a check on a closed connection for ${Math.round(ms)} ms)`),
  );
  client.on('serverHeartbeatStarted', () => log('heartbeat started'));
  client.on('serverHeartbeatSucceeded', () => log('heartbeat succeeded'));
  client.on('serverHeartbeatFailed', (event) => log('heartbeat failed:', event.failure.message));
  const manager = new LockManager({
    connection,
    commandTimeout: 3000,
    poll: 100,
    wakeups: process.env.WAKEUPS !== 'off',
  });
  manager.on('error', () => {});
  let held = 0;
  let failed = 0;
  const work = setInterval(() => {
    manager.acquire('lock', { wait: 2000 }).then(
      (lease) => ((held += 1), lease.release()),
      () => (failed += 1),
    );
  }, 200);
  await sleep(2000);
  log('pause');
  engine.pause();
  await sleep(4000);
  engine.resume();
  await sleep(3000);
  log(`restart (so far: ${held} held, ${failed} failed)`);
  engine = await engine.restart();
  const before = held;
  await sleep(15_000);
  type Monitor = { s: { state: string }; connection?: { closed: boolean } };
  const topology = (client as unknown as { topology: { s: { servers: Map<string, { monitor: Monitor }> } } }).topology;
  const { monitor } = [...topology.s.servers.values()][0]!;
  log(
    `15 s after the restart: ${held - before} held since; monitor ${monitor.s.state}, its connection closed: ${monitor.connection?.closed}, proxy connections ${proxy.connections}`,
  );
  console.log(held > before ? 'recovered' : 'STUCK');
  clearInterval(work);
  await manager.close();
  await connection.close();
  await proxy.close();
  await engine.stop();
}

void main();
