/**
 * Tests are TypeScript (ts-jest) and exercise the built packages (`npm test` builds first):
 * what the tests import is what `npm start` runs, inference threads included.
 * @type {import('jest').Config}
 */
const ESM_ONLY = '/node_modules/(hyparquet|hyparquet-compressors|hyparquet-writer|hysnappy)/.+\\.js$';

module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/test/tsconfig.json' }],
    // hyparquet and its companions ship as ES modules only. Node requires them natively (≥ 20.19);
    // jest's module registry cannot, so under jest alone they are compiled to CommonJS.
    [ESM_ONLY]: ['ts-jest', { tsconfig: { allowJs: true, module: 'commonjs', target: 'es2022', isolatedModules: true } }],
  },
  transformIgnorePatterns: ['/node_modules/(?!(hyparquet|hyparquet-compressors|hyparquet-writer|hysnappy)/)'],
  testTimeout: 60_000,
  maxWorkers: 2,
  verbose: false,
};
