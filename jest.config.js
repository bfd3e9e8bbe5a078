/**
 * Suites whose checks are wall-clock measurements (frame rates over trace windows, polling
 * periods, place() latency, replay timing). They run after the others, one at a time
 * (npm test runs FORESIGHT_TEST_PHASE=untimed, then =timed): beside a Chromium suite on a 2-core
 * machine the scheduler, not the code under test, would decide them. Without the variable, every
 * suite runs as usual (e.g. `npx jest <file>`).
 */
const TIMED = [
  'test/profile/profiler.integration.test.ts',
  'test/profile/schedule.integration.test.ts',
  'test/act/placeDuringMigration.integration.test.ts',
  'test/loadgen/replay.test.ts',
];
const phase = process.env.FORESIGHT_TEST_PHASE;
const timedPhase = phase === 'timed';

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: timedPhase ? TIMED.map((p) => `<rootDir>/${p}`) : ['**/*.test.ts'],
  testPathIgnorePatterns: phase !== 'untimed' ? ['/node_modules/'] : ['/node_modules/', ...TIMED.map((p) => p.replace(/[.]/g, '\\.'))],
  transform: {
    '^.+\\.(t|j)sx?$': ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' } }],
  },
  // One throwaway influxd per run (unless INFLUX_URL is set), shared by every test file.
  globalSetup: '<rootDir>/test/support/globalSetup.ts',
  globalTeardown: '<rootDir>/test/support/globalTeardown.ts',
  testTimeout: 60000,
  maxWorkers: timedPhase ? 1 : 2,
  // Integration tests spawn workers and UDP sockets; a leaked handle must fail loudly, not hang CI.
  forceExit: false,
  detectOpenHandles: false,
};
