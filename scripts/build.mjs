#!/usr/bin/env node
// Builds dist/ (used by `make build` and by the tests' global setup, so both build the same way):
//
//   1. tsc compiles src/ to dist/: the library (`exports`), the bench, and the modules the
//      tests import.
//   2. esbuild bundles each command (dist/bin/*.js) into one file in place, with the hashing
//      worker beside them (dist/bin/hash-worker.js, where the bundled hash pool looks for it).
//      One file instead of about 40 ES modules saves the module loader's resolve, read and link
//      per module: intoto-run with nothing to hash went from 0.34 s to 0.28 s of wall time and
//      from 0.36 s to 0.27 s of CPU (medians of 15 alternating runs, docs/BENCHMARKS.md).
//      The input is tsc's JavaScript, so the bundle runs exactly the code the tests import.
//      Packages stay bundled too, except what is loaded through createRequire (ajv, only
//      when a schema has no precompiled validator), which resolves from node_modules.
//   3. the commands are made executable and dist/.build-stamp is touched.
import { execFileSync } from 'node:child_process';
import { chmodSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('../', import.meta.url));
const dist = join(root, 'dist');
const binDir = join(dist, 'bin');

execFileSync(join(root, 'node_modules', '.bin', 'tsc'), ['-p', join(root, 'tsconfig.json')], { stdio: 'inherit' });

const commands = readdirSync(binDir).filter((file) => file.endsWith('.js'));
const entryPoints = Object.fromEntries(commands.map((file) => [file.slice(0, -'.js'.length), join(binDir, file)]));
entryPoints['hash-worker'] = join(dist, 'runner', 'hash-worker.js');

await build({
  entryPoints,
  outdir: binDir,
  allowOverwrite: true,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: true,
  // Bundled CommonJS packages (commander) call require() for Node's own modules.
  banner: { js: "import { createRequire as __intotoCreateRequire } from 'node:module';\nconst require = __intotoCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});

for (const file of commands) chmodSync(join(binDir, file), 0o755);
writeFileSync(join(dist, '.build-stamp'), '');
