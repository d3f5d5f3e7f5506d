// The test server is a real MongoDB engine: the features the lock relies on behave as MongoDB's do.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { BSON } from 'mongodb';
import { testDatabase } from '../helpers/mongo';
import { waitFor } from '../helpers/wait';

import { startEngine } from '../../scripts/engine.cjs';

const db = testDatabase();

test('findOneAndUpdate with upsert applies a pipeline using the server clock ($$NOW)', async () => {
  const connection = await db.connect();
  const collection = connection.db!.collection<{ _id: string; n?: number; at?: Date }>('engine_pipeline');
  const update = [{ $set: { n: { $add: [{ $ifNull: ['$n', 0] }, 1] }, at: '$$NOW' } }];
  const before = Date.now();
  const first = await collection.findOneAndUpdate({ _id: 'a' }, update, { upsert: true, returnDocument: 'after' });
  const second = await collection.findOneAndUpdate({ _id: 'a' }, update, { upsert: true, returnDocument: 'after' });
  expect(first).toMatchObject({ _id: 'a', n: 1 });
  expect(second).toMatchObject({ _id: 'a', n: 2 });
  expect(second!.at).toBeInstanceOf(Date);
  // Same machine: the server's clock agrees with ours to well within a minute.
  expect(Math.abs(second!.at!.getTime() - before)).toBeLessThan(60_000);
  expect(await collection.countDocuments()).toBe(1);
});

test('a unique index violation surfaces as error code 11000', async () => {
  const connection = await db.connect();
  const collection = connection.db!.collection('engine_unique');
  await collection.createIndex({ key: 1 }, { unique: true });
  await collection.insertOne({ key: 'x' });
  await expect(collection.insertOne({ key: 'x' })).rejects.toMatchObject({ code: 11000, keyValue: { key: 'x' } });
  expect(await collection.countDocuments({ key: 'x' })).toBe(1);
});

test('a TTL index removes an expired document', async () => {
  const connection = await db.connect();
  const collection = connection.db!.collection('engine_ttl');
  await collection.createIndex({ at: 1 }, { expireAfterSeconds: 1 });
  await collection.insertMany([{ name: 'old', at: new Date(Date.now() - 60_000) }, { name: 'kept' }]);
  // The run's engine passes every second; a stock mongod every 60 s, hence the wide bound.
  await waitFor(async () => (await collection.countDocuments({ name: 'old' })) === 0, {
    timeout: 90_000,
    interval: 200,
    what: 'the TTL monitor to remove the expired document',
  });
  expect(await collection.find().project({ _id: 0, name: 1 }).toArray()).toEqual([{ name: 'kept' }]);
}, 120_000);

test('a tailable awaitData cursor waits on the server for an insert, as mongod does', async () => {
  const connection = await db.connect({ monitorCommands: true });
  const database = connection.db!;
  await database.createCollection('engine_capped', { capped: true, size: 65536, max: 100 });
  const capped = database.collection<{ n: number }>('engine_capped');
  await capped.insertOne({ n: 0 });
  let getMores = 0;
  connection.getClient().on('commandStarted', (event) => event.commandName === 'getMore' && getMores++);
  const cursor = capped.find({}, { tailable: true, awaitData: true, maxAwaitTimeMS: 500 });
  expect(await cursor.next()).toMatchObject({ n: 0 });
  const arrival = cursor.next();
  const idle = new Promise((resolve) => setTimeout(resolve, 1600));
  await idle; // about three empty waits of 500 ms on the server; a server that answered at once would spin
  expect(getMores).toBeGreaterThanOrEqual(2);
  expect(getMores).toBeLessThanOrEqual(6);
  await capped.insertOne({ n: 1 });
  await expect(arrival).resolves.toMatchObject({ n: 1 });
  await cursor.close();
});

test('a client that connects while a restarted engine is still opening is served, and stop() still completes', async () => {
  const dbpath = fs.mkdtempSync(path.join(os.tmpdir(), 'mdlock-restart-'));
  let engine = await startEngine({ dbpath });
  try {
    await engine.crash();
    const restarting = startEngine({ dbpath, port: engine.port });
    // Knock until the port accepts: the listener is up before the engine behind it has opened.
    const socket = await new Promise<net.Socket>((resolve) => {
      const knock = () => {
        const attempt = net.connect(engine.port, '127.0.0.1');
        attempt.once('connect', () => resolve(attempt));
        attempt.once('error', () => setTimeout(knock, 2));
      };
      knock();
    });
    engine = await restarting;
    const reply = await new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no reply within 20 s')), 20_000);
      let received = Buffer.alloc(0);
      socket.on('data', (chunk) => {
        received = Buffer.concat([received, chunk]);
        if (received.length >= 4 && received.length >= received.readInt32LE(0)) {
          clearTimeout(timer);
          resolve(received);
        }
      });
      socket.once('error', reject);
      socket.write(opMsg({ ping: 1, $db: 'admin' }));
    });
    expect(BSON.deserialize(reply.subarray(21))).toMatchObject({ ok: 1 });
    socket.destroy();
  } finally {
    await engine.stop(); // hung before: a connection made during the opening was never closed
    fs.rmSync(dbpath, { recursive: true, force: true });
  }
}, 60_000);

/** One OP_MSG request carrying `command`. */
function opMsg(command: Record<string, unknown>): Buffer {
  const body = Buffer.from(BSON.serialize(command));
  const message = Buffer.alloc(21 + body.length);
  message.writeInt32LE(message.length, 0);
  message.writeInt32LE(1, 4); // requestID
  message.writeInt32LE(2013, 12); // OP_MSG; flags 0; section kind 0 (the body)
  body.copy(message, 21);
  return message;
}
