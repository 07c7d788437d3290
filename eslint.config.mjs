// npm run lint (with prettier --check). Type-aware rules read the program of tsconfig.check.json:
// src, test, bench and scripts.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'bench-results/', 'test/fixtures/', 'test/vectors/', '.tap/', 'eslint.config.mjs'] },
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      parserOptions: { project: './tsconfig.check.json', tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // tap's t.test() returns a promise that tap itself waits for: a subtest is never left floating.
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafePromises: [{ from: 'package', name: 'PromiseWithSubtest', package: '@tapjs/core' }] },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // The KMS SDK is loaded on first use (startup time); package.json is read for --version.
      '@typescript-eslint/no-require-imports': ['error', { allow: ['^@aws-sdk/', '/package\\.json$'] }],
      // A variable read by a callback before its one assignment cannot be const.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },
  {
    // The format layer is pure bytes and node:crypto/node:zlib: it imports nothing of ours but errors
    // (docs/development.md, Layout).
    files: ['src/format/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { regex: '^\\.\\./(?!errors$)', message: 'src/format imports only ../errors (and its own files): the layers point one way.' },
            { regex: '^(?!\\.|node:crypto$|node:zlib$)', message: 'src/format is pure: bytes in, bytes out, with node:crypto and node:zlib only.' },
          ],
        },
      ],
    },
  },
  {
    // The benchmark and the service start-up it shares with the tests are CommonJS run by plain node.
    files: ['**/*.js'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
