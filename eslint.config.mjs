// @ts-check
import { readFileSync } from 'node:fs';
import js from '@eslint/js';
import stylistic from '@stylistic/eslint-plugin';
import tseslint from 'typescript-eslint';

// One line width for the whole repository: Prettier's (it formats; this refuses what it cannot wrap,
// such as long strings and comments).
const { printWidth } = JSON.parse(readFileSync(new URL('./.prettierrc.json', import.meta.url), 'utf8'));

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'coverage/**', 'test-artifacts/**', 'bench-results/**', 'models/**/*.py'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    plugins: { '@stylistic': stylistic },
    rules: {
      '@stylistic/max-len': ['error', { code: printWidth, tabWidth: 2 }],
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: [
                '../../contracts/*',
                '../../shared/*',
                '../../api/*',
                '../../worker/*',
                '../../scheduler/*',
                '../contracts/*',
                '../shared/*',
                '../api/*',
                '../worker/*',
                '../scheduler/*',
              ],
              message: 'Import other packages by name (@onnx-batch/…), not by relative path.',
            },
          ],
        },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'process', property: 'env', message: 'Read configuration through loadConfig() (shared/src/config.ts).' },
      ],
    },
  },
  {
    // A client installs the CLI with the contracts only: it must never load the server's packages.
    files: ['cli/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: ['@onnx-batch/shared', '@onnx-batch/api', '@onnx-batch/worker', '@onnx-batch/scheduler'].map((name) => ({
            name,
            message: 'The CLI depends on @onnx-batch/contracts only (it installs without the server).',
          })),
          patterns: [
            {
              group: ['../../*', '../shared/*', '../contracts/*'],
              message: 'Import other packages by name (@onnx-batch/…), not by relative path.',
            },
          ],
        },
      ],
    },
  },
  {
    // The contracts have no runtime dependency: nothing but their own modules.
    files: ['contracts/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ regex: '^[^.]', message: '@onnx-batch/contracts imports nothing outside itself (no dependencies, no Node API).' }] },
      ],
    },
  },
  {
    // The console renders user data (job errors, feature names, labels): text nodes only, never markup.
    files: ['api/console/src/**/*.ts'],
    rules: {
      'no-restricted-properties': [
        'error',
        ...['innerHTML', 'outerHTML'].map((property) => ({ property, message: 'Build nodes with h()/textContent (dom.ts).' })),
        ...['insertAdjacentHTML', 'write', 'writeln', 'createContextualFragment'].map((property) => ({
          property,
          message: 'Parses markup: build nodes with h()/textContent (dom.ts).',
        })),
      ],
      'no-restricted-globals': ['error', { name: 'localStorage', message: 'The key lives in sessionStorage only (api.ts).' }, 'eval'],
      'no-implied-eval': 'error',
    },
  },
  {
    files: ['shared/src/config.ts', 'test/**', 'scripts/**', 'cli/**'],
    rules: { 'no-restricted-properties': 'off' },
  },
  {
    // supertest answers are `any` by design; tests assert their shape with expect().
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-unsafe-member-access': 'off', '@typescript-eslint/no-unsafe-assignment': 'off' },
  },
  {
    // CommonJS entry points (the CLI's bin, test process entries) load built code with require().
    files: ['**/*.cjs', 'cli/bin/*.js'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['**/*.mjs', '**/*.cjs', '*.js', 'cli/bin/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      parserOptions: { projectService: false, project: null },
      globals: {
        module: 'writable',
        require: 'readonly',
        __dirname: 'readonly',
        process: 'readonly',
        console: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        URL: 'readonly',
        Buffer: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        performance: 'readonly',
      },
    },
  },
);
