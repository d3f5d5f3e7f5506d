/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/spec'],
  testMatch: ['**/*.spec.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.json' }],
  },
  // Sources import siblings as './x.js' (what Node's ESM loader needs); Jest resolves the .ts.
  moduleNameMapper: {
    '^(\\.{1,2}/.*)\\.js$': '$1',
    // The package's name resolves to what `require` gets from the published package.
    '^mongoose-distributed-lock$': '<rootDir>/lib/main.cjs',
  },
  // One engine for the whole run, unless MONGODB_URI names a server to use instead.
  globalSetup: '<rootDir>/spec/setup/global-setup.cjs',
  globalTeardown: '<rootDir>/spec/setup/global-teardown.cjs',
  testTimeout: 60_000,
  // Integration tests wait on real timers against a real server; two cores, so two workers.
  maxWorkers: 2,
};
