// Lint rules that catch real mistakes; formatting is prettier's job.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-eval': 'error',
      'no-implied-eval': 'error',
    },
  },
  {
    // Role folders never import each other; only bin/ composes them.
    files: ['core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            '../server/*',
            '../client/*',
            '../router/*',
            '../cli/*',
            '../../server/*',
            '../../client/*',
            '../../router/*',
            '../../cli/*',
          ],
        },
      ],
    },
  },
  {
    // The web service reads the shared model in core/ only.
    files: ['web/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: ['../server/*', '../client/*', '../router/*', '../cli/*', '../bin/*'] },
      ],
    },
  },
  {
    // The status page's own scripts run in the browser, as ES modules, without a build step.
    files: ['web/static/**/*.js'],
    languageOptions: {
      sourceType: 'module',
      globals: Object.fromEntries(
        ['document', 'window', 'location', 'history', 'EventSource', 'URLSearchParams', 'setTimeout'].map(
          (g) => [g, 'readonly'],
        ),
      ),
    },
  },
);
