// A network that holds replies back: an acquisition granted by the server but answered after
// the lease's local deadline is given back, never handed to the caller as held. Found by the
// torture test's proxy fault: the lease was reported acquired 2 s after it had expired on the server.
// These tests put a proxy in front of a private engine, so they start their own whatever MONGODB_URI says.
import mongoose, { type Connection } from 'mongoose';
import { LockManager } from '../../lib/index';
import { FaultProxy } from '../torture/proxy';
import { waitFor } from '../helpers/wait';

import { startEngine } from '../../scripts/engine.cjs';

let engine: Awaited<ReturnType<typeof startEngine>>;
let proxy: FaultProxy;
let proxied: string;
const connections: Connection[] = [];
const managers: LockManager[] = [];

beforeAll(async () => {
  engine = await startEngine();
  proxy = new FaultProxy(engine.port);
  proxied = `mongodb://127.0.0.1:${await proxy.listen()}/?directConnection=true`;
});

afterAll(async () => {
  await Promise.all(managers.map((m) => m.close()));
  await Promise.all(connections.map((c) => c.close()));
  await proxy.close();
  await engine.stop();
});

async function manager(uri: string, options: ConstructorParameters<typeof LockManager>[0] = {}) {
  const connection = await mongoose.createConnection(uri, { dbName: 'network' }).asPromise();
  connections.push(connection);
  const m = new LockManager({ connection, ...options });
  m.on('error', () => {}); // the stall is expected here
  managers.push(m);
  return m;
}

test.each([
  ['tryAcquire', (m: LockManager) => m.tryAcquire('late-try')],
  ['acquire with a short wait', (m: LockManager) => m.acquire('late-wait', { wait: 200 }).catch((e: unknown) => e)],
])(
  '%s: a grant whose reply arrives after the lease could have expired is given back, not reported held',
  async (_, attempt) => {
    const holder = await manager(proxied, { ttl: 1000, heartbeat: false, owner: 'late', commandTimeout: '20s' });
    const observer = await manager(engine.uri, { owner: 'observer' });
    const acquired: unknown[] = [];
    holder.on('acquired', (lease) => acquired.push(lease.name));
    await holder.list(); // the connection is open: the stall below hits the acquire, not the handshake

    const stalled = proxy.stall(1, 'down', Math.random); // requests go through, replies are held
    const outcome: Promise<unknown> = attempt(holder);
    const name = (await waitFor(async () => (await observer.list()).find((l) => l.owner === 'late' && l.held))).name;
    await waitFor(async () => !(await observer.inspect(name))!.held, { what: 'the grant to expire on the server' });
    proxy.heal(stalled, 'deliver'); // the grant's reply arrives now, too late

    const result = await outcome;
    expect(result === null || (result as { code?: string }).code === 'timeout').toBe(true);
    expect(acquired).toEqual([]);
    const contender = await observer.tryAcquire(name); // free for anyone, right away
    expect(contender).not.toBeNull();
    await contender!.release();
  },
  60_000,
);
