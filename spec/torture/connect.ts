// How a torture worker opens its connections. It may start (a replacement) in the middle of a
// fault: the proxy cutting connections, the engine restarting. Its first connection's handshake
// then fails (`connection 1 to … closed`), as an application's would at that moment; like an
// application, it tries again rather than die. Once connected, the driver reconnects by itself.
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
