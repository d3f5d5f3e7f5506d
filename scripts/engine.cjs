'use strict';
// Starts the embedded MongoDB engine (./mongod.cjs) in a child process, from code: the test
// suite's global setup, the examples, the demo, the benchmarks and the torture test use it.
// The child exits by itself when this process dies, however it dies.

const { fork } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const MONGOD = path.join(__dirname, 'mongod.cjs');

/**
 * @typedef {object} EngineOptions
 * @property {number} [port] TCP port on 127.0.0.1; 0 (the default) picks a free one.
 * @property {string} [dbpath] Data directory; default: a new temporary directory, removed by stop().
 * @property {string} [ttlMonitor] Period of the TTL monitor, as an `ms` string; default '1s'.
 */

/**
 * @typedef {object} RunningEngine
 * @property {string} uri A mongodb:// connection string.
 * @property {number} port
 * @property {number} pid The engine's process id (for SIGSTOP/SIGCONT/SIGKILL in fault tests).
 * @property {string} dbpath
 * @property {() => Promise<void>} stop Shuts the engine down cleanly (and removes a temporary dbpath).
 * @property {() => void} pause Freezes the engine process (SIGSTOP), like a stalled server.
 * @property {() => void} resume Thaws it (SIGCONT).
 * @property {() => Promise<void>} crash Kills it with SIGKILL and waits for it to be gone.
 * @property {() => Promise<RunningEngine>} restart Stops it and starts it again on the same port and dbpath.
 */

/**
 * Starts an engine and resolves once it accepts connections.
 * @param {EngineOptions} [options]
 * @returns {Promise<RunningEngine>}
 */
async function startEngine(options = {}) {
  const temporary = options.dbpath === undefined;
  const dbpath = options.dbpath ?? fs.mkdtempSync(path.join(os.tmpdir(), 'mdlock-engine-'));
  const args = ['--port', String(options.port ?? 0), '--dbpath', dbpath];
  args.push('--ttl-monitor', options.ttlMonitor ?? '1s', '--quiet');

  const child = fork(MONGOD, args, { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text) => (stderr = (stderr + text).slice(-4000)));
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));

  const ready = await new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code, signal) => {
      const reason = stderr.trim() || `exited with ${signal ?? `code ${code}`}`;
      reject(new Error(reason.replace(/^mongod: /, 'embedded engine: ')));
    });
  });
  // Once running, the engine must not keep this process alive by itself; stop() is the way out.
  child.unref();
  child.channel?.unref();
  child.stderr.unref?.();

  /** @type {RunningEngine} */
  const engine = {
    uri: ready.uri,
    port: ready.port,
    pid: child.pid,
    dbpath,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.ref(); // until it is gone: the caller awaits this
        child.kill('SIGCONT'); // a paused engine cannot act on SIGTERM
        child.kill('SIGTERM');
        await exited;
      }
      if (temporary) fs.rmSync(dbpath, { recursive: true, force: true });
    },
    pause: () => child.kill('SIGSTOP'),
    resume: () => child.kill('SIGCONT'),
    async crash() {
      child.ref();
      child.kill('SIGKILL');
      await exited;
    },
    async restart() {
      await engine.crash();
      return startEngine({ ...options, port: engine.port, dbpath });
    },
  };
  return engine;
}

module.exports = { startEngine };
