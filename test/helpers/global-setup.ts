import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * End-to-end tests drive the built binaries in dist/. `make test` builds first; this setup
 * rebuilds when a source file is newer than the last build, so `npx vitest` alone never
 * tests stale binaries.
 */
const root = new URL('../../', import.meta.url).pathname;
const stamp = join(root, 'dist', '.build-stamp');

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs);
  }
  return newest;
}

export default function setup(): void {
  const built = existsSync(stamp) ? statSync(stamp).mtimeMs : 0;
  if (newestSource(join(root, 'src')) <= built) return;
  // The same build as `make build` (tsc, then one-file commands); it writes the stamp.
  execFileSync(process.execPath, [join(root, 'scripts', 'build.mjs')], { stdio: 'inherit' });
}
