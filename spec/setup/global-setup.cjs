'use strict';
// Starts one embedded engine for the test run (each test file uses its own database on it),
// unless MONGODB_URI names a server to run the suite against instead.
const { startEngine } = require('../../scripts/engine.cjs');

module.exports = async function globalSetup(globalConfig) {
  // `npm run test:unit`: pure logic only, no server to start.
  const patterns = globalConfig.testPathPatterns?.patterns ?? globalConfig.testPathPattern ?? [];
  const only = Array.isArray(patterns) ? patterns : [patterns];
  if (only.length > 0 && only.every((p) => /^spec\/unit\/?$/.test(String(p)))) return;
  if (process.env.MONGODB_URI) {
    process.env.MDL_TEST_URI = process.env.MONGODB_URI;
    return;
  }
  const engine = await startEngine({ ttlMonitor: '1s' });
  globalThis.__MDL_ENGINE__ = engine;
  process.env.MDL_TEST_URI = engine.uri;
};
