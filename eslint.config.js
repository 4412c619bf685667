import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import layers from './scripts/eslint-layers.js';

// The layers of src/ (ARCHITECTURE.md), lowest first: a module imports its own layer or a lower one, never a higher
// one, and the two edges (actions, cli) not each other. Type-only and dynamic imports count too.
export const LAYER_RANKS = { lib: 0, io: 1, stages: 2, settings: 3, actions: 4, cli: 4 };

// Upward imports that exist today, each to be removed by the change named in `why`. The rule reports an entry that
// no longer occurs, so the list only shrinks: delete the entry in the commit that removes the import.
export const LAYER_EXCEPTIONS = [];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'test/fixtures/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        URL: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        NodeJS: 'readonly',
        AbortController: 'readonly',
        fetch: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-imports': 'off',
    },
  },
  {
    files: ['src/**/*.ts'],
    plugins: { layers },
    rules: { 'layers/downward': ['error', { ranks: LAYER_RANKS, exceptions: LAYER_EXCEPTIONS }] },
  },
  {
    // src/lib is pure logic: no GitHub Actions toolkit, no processes, no network, no file system.
    files: ['src/lib/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['@actions/*'], message: 'src/lib is pure: use @actions/* in src/actions or src/io' },
            {
              group: ['node:child_process', 'node:fs', 'node:fs/*', 'node:net', 'node:http', 'node:https'],
              message: 'src/lib has no I/O: put it in src/io',
            },
          ],
        },
      ],
    },
  },
);
