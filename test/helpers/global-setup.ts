import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, writeFileSync, chmodSync } from 'node:fs';
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
  execFileSync(join(root, 'node_modules', '.bin', 'tsc'), ['-p', join(root, 'tsconfig.json')], { stdio: 'inherit' });
  for (const file of readdirSync(join(root, 'dist', 'bin'))) {
    if (file.endsWith('.js')) chmodSync(join(root, 'dist', 'bin', file), 0o755);
  }
  writeFileSync(stamp, '');
}
