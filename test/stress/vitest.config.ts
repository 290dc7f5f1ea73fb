import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/**
 * The long hardening suite (`npm run test:stress`): ≥ 100,000 fuzzed frames, bigger floods, default
 * slowloris timeouts, repeated faults and the soak. One file at a time, so that no run measures
 * another's load. The short versions live in test/hardening and run with `npm test`.
 */
export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    include: ['test/stress/**/*.stress.ts'],
    testTimeout: 20 * 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
