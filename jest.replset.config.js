// `npm run test:replset`: the replica-set suite, against the deployment MONGODB_URI names (it must
// be a replica set; scripts/test-replset.cjs checks that first). Not part of `npm test`: the
// embedded engine of `npm test` is a standalone server.
const base = require('./jest.config.js');

/** @type {import('jest').Config} */
module.exports = {
  ...base,
  roots: ['<rootDir>/spec/replset'],
  testMatch: ['**/*.replset.ts'],
  globalSetup: undefined,
  globalTeardown: undefined,
  // One file at a time: the tests step the primary down, which every other test would feel.
  maxWorkers: 1,
  testTimeout: 120_000,
};
