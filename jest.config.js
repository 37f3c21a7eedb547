/**
 * Tests are TypeScript (ts-jest) and exercise the built packages (`npm test` builds first):
 * what the tests import is what `npm start` runs, inference threads included.
 * @type {import('jest').Config}
 */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/test/tsconfig.json' }] },
  testTimeout: 60_000,
  maxWorkers: 2,
  verbose: false,
};
