import { existsSync } from 'node:fs';
import { defineConfig } from 'vitest/config';

/**
 * Four projects; test/README.md says what goes where and how to run one. `npm test` runs them all.
 *
 * - unit: every test file not listed below. No network, no child processes, no database beyond an
 *   in-memory SQLite (test/helpers/unit-guard.ts refuses connections, servers and processes).
 * - integration: real HTTP on port 0, SQLite files, the SDKs and curl, the built CLI.
 * - external: also PostgreSQL, Redis or Chromium.
 * - learning: how well routing learns from a stream of requests. Concurrent requests, feedback and
 *   fleet syncs interleave differently from run to run, so these files run after the others, one
 *   at a time, never beside files that load the two cores (their bounds are explained in each file).
 */

const INTEGRATION = [
  'test/http/sticky-sessions.test.ts',
  'test/traces/private-files.test.ts',
  'test/cli/bin.test.ts',
  'test/cli/check.test.ts',
  'test/cli/keys.test.ts',
  'test/cli/mistakes.test.ts',
  'test/cli/offline-evidence.test.ts',
  'test/cli/traces-cli.test.ts',
  'test/config/config.test.ts',
  'test/config/overrides.test.ts',
  'test/eval/cli.test.ts',
  'test/http/auth.test.ts',
  'test/http/bad-input.test.ts',
  'test/http/browsers.test.ts',
  'test/http/chat-completions.test.ts',
  'test/http/embeddings.test.ts',
  'test/http/responses.test.ts',
  'test/http/clients.test.ts',
  'test/http/stream-usage.test.ts',
  'test/http/feedback-stats.test.ts',
  'test/http/fuzz.test.ts',
  'test/http/large-answers.test.ts',
  'test/http/limits.test.ts',
  'test/http/metrics.test.ts',
  'test/http/periodic-update.test.ts',
  'test/http/privacy.test.ts',
  'test/http/relayed-secrets.test.ts',
  'test/http/secrets.test.ts',
  'test/http/slow-clients.test.ts',
  'test/judge/judge.test.ts',
  'test/judge/shadow.test.ts',
  'test/routing/contextual-e2e.test.ts',
  'test/routing/learning-e2e.test.ts',
  'test/routing/unrated-traffic.test.ts',
  'test/signals/implicit.test.ts',
  'test/traces/durability.test.ts',
  'test/traces/feedback-source.test.ts',
  'test/traces/purge.test.ts',
  'test/traces/sqlite-store.test.ts',
  'test/traces/store-thread.test.ts',
  'test/traces/trace-arms.test.ts',
  'test/traces/trace-stats.test.ts',
  'test/traces/wal-checkpoint.test.ts',
  'test/upstream/failover.test.ts',
  'test/upstream/upstream-errors.test.ts',
  'test/upstream/stream-attempt.test.ts',
  'test/upstream/whole-attempt.test.ts',
];

const EXTERNAL = [
  'test/fleet/cli.test.ts',
  'test/fleet/durability.test.ts',
  'test/fleet/feedback-push.test.ts',
  'test/fleet/rate-limit.test.ts',
  'test/fleet/sticky-sessions.test.ts',
  'test/http/admin-query-pg.test.ts',
  'test/http/dashboard.test.ts',
  'test/traces/feedback-source-migration.test.ts',
  'test/traces/pg-store.test.ts',
  'test/traces/quality-reads.test.ts',
  'test/traces/quality-record-migration.test.ts',
  'test/traces/store-conformance.test.ts',
  'test/traces/trace-columns.test.ts',
];

const LEARNING = ['test/demo/demo.test.ts', 'test/fleet/learning.test.ts', 'test/fleet/unrated-fleet.test.ts', 'test/judge/judge-learning.test.ts'];

// A renamed or moved test file must not fall silently into `unit`.
for (const file of [...INTEGRATION, ...EXTERNAL, ...LEARNING]) {
  if (!existsSync(new URL(file, import.meta.url))) throw new Error(`vitest.config.ts lists ${file}, which does not exist`);
}

/** unit, integration and external run side by side (group 0), two files at a time: two cores. */
const side = { maxWorkers: 2, sequence: { groupOrder: 0 } };

export default defineConfig({
  test: {
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['test/**/*.test.ts'], exclude: [...INTEGRATION, ...EXTERNAL, ...LEARNING], setupFiles: ['test/helpers/unit-guard.ts'], ...side },
      },
      { extends: true, test: { name: 'integration', include: INTEGRATION, ...side } },
      { extends: true, test: { name: 'external', include: EXTERNAL, ...side } },
      { extends: true, test: { name: 'learning', include: LEARNING, fileParallelism: false, sequence: { groupOrder: 1 } } },
    ],
  },
});
