import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    // End-to-end and interop tests spawn processes (bwrap, the Python reference); give them room.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // @actions/workflow-parser (export tests) imports its JSON schema without an import
    // attribute, which Node's own module loader refuses; vite's transform accepts it.
    server: { deps: { inline: ['@actions/workflow-parser'] } },
  },
});
