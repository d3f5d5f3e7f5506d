// Runs an example against MONGODB_URI, or else against the embedded engine it starts and stops.
import { startEngine } from '../../scripts/engine.cjs';

/** A database for an example: MONGODB_URI's server, or a new embedded engine. `stop()` is safe to call twice. */
export async function startDatabase(): Promise<{ uri: string; pid?: number; stop(): Promise<void> }> {
  const external = process.env.MONGODB_URI;
  if (external) return { uri: external, stop: async () => {} };
  const engine = await startEngine();
  let stopping: Promise<void> | undefined;
  return { uri: engine.uri, pid: engine.pid, stop: () => (stopping ??= engine.stop()) };
}

export async function withDatabase(main: (uri: string) => Promise<void>): Promise<void> {
  const database = await startDatabase();
  try {
    await main(database.uri);
  } finally {
    await database.stop();
  }
}
