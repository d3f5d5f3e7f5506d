import { randomBytes } from 'node:crypto';
import path from 'node:path';
import mongoose, { type Connection } from 'mongoose';

/** The server this test run uses: the run's embedded engine, or MONGODB_URI. */
export function testUri(): string {
  const uri = process.env.MDL_TEST_URI;
  if (!uri) throw new Error('MDL_TEST_URI is not set: run the tests through jest (npm test)');
  return uri;
}

/**
 * This test file's own database, so that files can run in parallel on one server. Every
 * connection opened through it is closed, and the database dropped, after the file's tests.
 */
export function testDatabase(uri = testUri()) {
  const file = path.basename(expect.getState().testPath ?? 'spec', '.spec.ts').replace(/[^a-z0-9]/gi, '_');
  const name = `mdl_${file.slice(0, 40)}_${randomBytes(3).toString('hex')}`;
  const connections: Connection[] = [];
  const beforeClose: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    await Promise.allSettled(beforeClose.map((task) => task()));
    await connections.find((c) => c.readyState === mongoose.ConnectionStates.connected)?.dropDatabase();
    await Promise.all(connections.map((c) => c.close()));
  });
  return {
    name,
    /** Runs `task` after the file's tests, before its connections close (for example closing managers). */
    beforeClose(task: () => Promise<unknown>): void {
      beforeClose.push(task);
    },
    /** A new mongoose connection (its own pool, as another process would have) to this database. */
    async connect(options: mongoose.ConnectOptions = {}): Promise<Connection> {
      const connection = mongoose.createConnection(uri, { dbName: name, ...options });
      connections.push(connection);
      return connection.asPromise();
    },
  };
}

/** `uri` with its database set to `name` (the database a child process should use). */
export function databaseUri(name: string, uri = testUri()): string {
  const match = /^(mongodb(?:\+srv)?:\/\/[^/?]+)(\/[^?]*)?(\?.*)?$/.exec(uri);
  if (!match) throw new Error(`cannot set the database of ${uri}`);
  return `${match[1]}/${name}${match[3] ?? ''}`;
}
