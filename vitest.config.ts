import { defineConfig } from 'vitest/config';

/**
 * Three tiers, run together by `npm test` and one at a time by `npm run test:<tier>`:
 *
 * - `unit`: in-process only, no child processes and no sockets (config, docs, the memory store, and
 *   fake-clock tests). Milliseconds each.
 * - `integration`: real servers (in-process or as processes), real WebSockets, redis-server and
 *   mediasoup workers, libwebrtc peers.
 * - `e2e`: Chromium (playwright-core) and coturn. `npm test` runs this tier after the other two,
 *   not beside them: real-time media in three Chromium pages starved of CPU by the integration
 *   tier's processes (package builds, node clusters) timed out in CI, behaviour unchanged. It runs
 *   one file at a time (its own `maxWorkers`, below), with a longer cap per test.
 *
 * None of them asserts speed: timing bounds live in `npm run test:stress` (test/stress) and `bench/`.
 * The long hardening suite has its own config (test/stress/vitest.config.ts).
 */
export default defineConfig({
  test: {
    // Caps that catch a hang, not speed bounds: generous, because CI may share the machine.
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Most files wait on sockets, child processes and timers rather than compute, so more files
    // than cores run at once (vitest's default here would be cores - 1 = 1 on a 2-core machine).
    // Safe because no default-suite test asserts speed.
    maxWorkers: Number(process.env.VITEST_MAX_WORKERS ?? 3),
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'] },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          exclude: ['test/unit/**', 'test/e2e/**'],
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          // One file at a time. A project's own maxWorkers wins over the root's and over the command
          // line's `--maxWorkers` (vitest 4), so this project inherited the root's 3 until it said
          // so here: three files of Chromium pages encoding and decoding 720p video on two cores
          // timed out in CI (Dec 2), behaviour unchanged. VITEST_E2E_MAX_WORKERS overrides it.
          maxWorkers: Number(process.env.VITEST_E2E_MAX_WORKERS ?? 1),
          // A test here launches up to five Chromium processes; with two or three such files at once
          // on a 2-core CI machine a page takes 6–10 s to open, and a test that takes 4.4 s alone
          // took 30 s in CI (Dec 2) and hit the 30 s cap. Still a hang cap, not a speed bound:
          // Playwright's own 30 s per wait names the step that hangs well before it.
          testTimeout: 90_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
