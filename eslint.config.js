// Lint rules that keep review comments from recurring: no `any`, no deep imports into a sibling package's src.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', '**/src/gen/**', 'extension/**/*.js'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['@skein/*/src/*', '@skein/*/dist/*', '../../runtime/*', '../../proto/*', '../../placement/*'], message: "Import a sibling package's public entry, not its files." }] },
      ],
    },
  },
);
