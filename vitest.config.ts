import { defineConfig } from 'vitest/config';

/**
 * Tests that measure how well routing learns from a stream of requests (which share of a class's
 * traffic reaches its best model). Their outcome depends on how concurrent requests, feedback and
 * fleet syncs interleave, so on two cores they run after the rest of the suite, one file at a time,
 * not beside files that load the machine. Among the others, in eight full runs, the fleet file
 * failed in two and the demo test in one; alone, the fleet file passed 5 runs of 5 and the demo
 * test 3 of 3 (3 of 3 more with both cores busy).
 */
const LEARNING = ['test/demo/demo.test.ts', 'test/fleet/learning.test.ts', 'test/fleet/unrated-fleet.test.ts', 'test/judge/judge-learning.test.ts'];

export default defineConfig({
  test: {
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'suite',
          include: ['test/**/*.test.ts'],
          exclude: LEARNING,
          // Two cores: keep files from starving each other's timers.
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'learning',
          include: LEARNING,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
