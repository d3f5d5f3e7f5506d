'use strict';
// Starts one embedded engine for the test run (each test file uses its own database on it),
// unless MONGODB_URI names a server to run the suite against instead.
const { startEngine } = require('../../scripts/engine.cjs');

module.exports = async function globalSetup() {
  if (process.env.MONGODB_URI) {
    process.env.MDL_TEST_URI = process.env.MONGODB_URI;
    return;
  }
  const engine = await startEngine({ ttlMonitor: '1s' });
  globalThis.__MDL_ENGINE__ = engine;
  process.env.MDL_TEST_URI = engine.uri;
};
