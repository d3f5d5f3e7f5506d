// How a torture worker opens its connections. It may start (a replacement) in the middle of a
// fault: the proxy cutting connections, the engine restarting. Its first connection's handshake
// then fails (`connection 1 to … closed`), as an application's would at that moment; like an
// application, it tries again rather than die. Once connected, the driver reconnects by itself,
// except in one case, which `watchForWedge` detects.
import mongoose, { type Connection } from 'mongoose';

/** A failed attempt is tried again after this long, for at most ATTEMPTS attempts. */
const RETRY_MS = 500;
const ATTEMPTS = 20;

export async function connect(uri: string, dbName: string): Promise<Connection> {
  for (let attempt = 1; ; attempt++) {
    const connection = mongoose.createConnection(uri, { dbName });
    try {
      return await connection.asPromise();
    } catch (error) {
      await connection.close().catch(() => {});
      if (attempt >= ATTEMPTS) throw error;
      process.stderr.write(`connecting to ${uri} failed (attempt ${attempt}), trying again: ${String(error)}\n`);
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
    }
  }
}

/**
 * How long the driver's server monitor may sit in one check on a connection that has closed before
 * the client counts as wedged. A check on a connection that closes fails at once; this only lasts
 * when the driver lost the close (./monitor-wedge.ts).
 */
const WEDGE_MS = 5000;

type Monitor = { s: { state: string }; connection?: { closed: boolean } | null };
type Topology = { s: { servers: Map<string, { monitor?: Monitor }> } };

/** The driver's server monitor is in a check on a connection that has closed: its check never ends. */
function monitorStuck(connection: Connection): boolean {
  const { topology } = connection.getClient() as unknown as { topology?: Topology };
  return [...(topology?.s.servers.values() ?? [])].some(
    ({ monitor }) => monitor?.s.state === 'monitoring' && monitor.connection?.closed === true,
  );
}

/**
 * Calls `onWedged` once if the MongoDB driver's client of `connection` wedges: its server monitor
 * stays in a check on a connection that closed under it (a close that came just as the check
 * began; the driver 7.x waits for that reply for ever), so the client never selects the server again
 * and every command fails with "no answer" until the process restarts. docs/deployments.md tells
 * applications behind a proxy to have a health check restart such a process; the torture
 * orchestrator is that health check for its schedulers. Returns what stops watching.
 */
export function watchForWedge(connection: Connection, onWedged: (ms: number) => void): () => void {
  let since: number | undefined;
  const timer = setInterval(() => {
    if (!monitorStuck(connection)) {
      since = undefined;
      return;
    }
    since ??= performance.now();
    const ms = performance.now() - since;
    if (ms < WEDGE_MS) return;
    clearInterval(timer);
    onWedged(ms);
  }, 250);
  timer.unref();
  return () => clearInterval(timer);
}
