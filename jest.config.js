// MDL_MONGOOSE=8 runs the suite on mongoose 8 (the devDependency aliased `mongoose8`) instead of
// mongoose 9: every `mongoose` that Jest loads (lib/, spec helpers, tests) is then mongoose 8, one
// instance. Child processes that tests spawn (tsx fixtures, examples, mdlock) resolve `mongoose`
// the normal way, so they stay on mongoose 9. See CONTRIBUTING.md.
const mongooseMajor = process.env.MDL_MONGOOSE || '9';
if (mongooseMajor !== '8' && mongooseMajor !== '9') {
  throw new Error(`MDL_MONGOOSE must be 8 or 9 (the mongoose major to test on), not ${JSON.stringify(mongooseMajor)}`);
}

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
    '^mongoose-distributed-lock/opentelemetry$': '<rootDir>/lib/opentelemetry.ts',
    ...(mongooseMajor === '8' ? { '^mongoose$': require.resolve('mongoose8') } : {}),
  },
  // One engine for the whole run, unless MONGODB_URI names a server to use instead.
  globalSetup: '<rootDir>/spec/setup/global-setup.cjs',
  globalTeardown: '<rootDir>/spec/setup/global-teardown.cjs',
  testTimeout: 60_000,
  // Integration tests wait on real timers against a real server; two cores, so two workers.
  maxWorkers: 2,
};
