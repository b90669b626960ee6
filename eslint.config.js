// Lint for the whole repository (`npm run lint`, run by CI): typescript-eslint's recommended rules
// and the layers of docs/architecture.md as import boundaries. A layer may import the ones below
// it, never the ones above or beside it; each rule says why when it fires.
import tseslint from 'typescript-eslint';

const UPPER = ['stack', 'generator', 'receiver', 'api', 'supervisor', 'cli'];
const STAGES = ['cdc', 'processor', 'sinks', 'backfill', 'dlq'];

/** A rule forbidding relative imports of the named top-level folders of src/. */
function forbid(folders, why) {
  return {
    'no-restricted-imports': ['error', { patterns: [{ regex: `^(\\.\\./)+(${folders.join('|')})/`, message: why }] }],
  };
}

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'data/**', '.stack/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      // A callback registered before the value exists reads it later: `let x; … x = make(…)` is fine.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },
  {
    files: ['src/core/**/*.ts', 'src/config/**/*.ts'],
    rules: forbid(
      ['kafka', 'runtime', ...STAGES, ...UPPER],
      'core and config are the bottom layer: they import only each other.',
    ),
  },
  {
    files: ['src/kafka/**/*.ts', 'src/runtime/**/*.ts'],
    rules: forbid(
      [...STAGES, ...UPPER],
      'kafka and runtime are generic: they never name a stage or a sink (the sink contract is src/core/sink-contract.ts).',
    ),
  },
  {
    files: ['src/cdc/**/*.ts', 'src/processor/**/*.ts', 'src/sinks/**/*.ts'],
    rules: forbid(
      ['cdc', 'processor', 'backfill', 'dlq', ...UPPER],
      'stages never import each other or the layers above them (share through src/core).',
    ),
  },
  {
    // The CDC and the processor do not use the sinks either.
    files: ['src/cdc/**/*.ts', 'src/processor/**/*.ts'],
    rules: forbid(
      ['cdc', 'processor', 'sinks', 'backfill', 'dlq', ...UPPER],
      'stages never import each other or the layers above them (share through src/core).',
    ),
  },
  {
    // The backfill and the DLQ tools compose the processor's transform and the sinks (docs/architecture.md).
    files: ['src/backfill/**/*.ts', 'src/dlq/**/*.ts'],
    rules: forbid(
      ['cdc', ...UPPER],
      'the backfill and the DLQ tools compose the processor and the sinks, never the CDC or the layers above.',
    ),
  },
);
