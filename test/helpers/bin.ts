import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { join } from 'node:path';

/** Paths and a runner for the built command-line programs (dist/bin). */
export const ROOT = new URL('../../', import.meta.url).pathname;

export function binPath(name: string): string {
  return join(ROOT, 'dist', 'bin', `${name}.js`);
}

export interface BinOptions {
  readonly cwd?: string;
  readonly input?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly timeout?: number;
}

/** Runs one of our binaries with `node`; never throws on a non-zero exit. */
export function runBin(name: string, args: readonly string[], options: BinOptions = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [binPath(name), ...args], {
    encoding: 'utf8',
    cwd: options.cwd,
    input: options.input ?? '',
    env: options.env ?? { ...process.env, CI: process.env['CI'] ?? '' },
    timeout: options.timeout ?? 120_000,
  });
}
