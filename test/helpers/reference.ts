import { execFileSync, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

/**
 * The Python reference (in-toto 1.3.1) as a test peer. When it is missing, interop tests are
 * skipped on a developer machine but FAIL under CI=true: CI installs it (.ci/run), so a
 * missing reference there means the check did not run.
 */
export function referenceAvailable(): boolean {
  const found = spawnSync('in-toto-run', ['--version'], { encoding: 'utf8' }).status === 0;
  if (!found && process.env['CI'] === 'true') {
    throw new Error('CI=true but the reference tools (in-toto-run, Debian package in-toto) are not installed');
  }
  return found;
}

/** Same policy for bubblewrap. */
export function bwrapAvailable(): boolean {
  const found = spawnSync('bwrap', ['--version'], { encoding: 'utf8' }).status === 0;
  if (!found && process.env['CI'] === 'true') {
    throw new Error('CI=true but bubblewrap (bwrap) is not installed');
  }
  return found;
}

/** Debian's python3, the one the reference library imports under. */
export const REFERENCE_PYTHON = '/usr/bin/python3';

/** Runs a command; returns its result without throwing on a non-zero exit. */
export function run(command: string, args: readonly string[], options: { cwd?: string; input?: string; env?: NodeJS.ProcessEnv } = {}): SpawnSyncReturns<string> {
  return spawnSync(command, [...args], { encoding: 'utf8', cwd: options.cwd, input: options.input, env: options.env ?? process.env, timeout: 120_000 });
}

/** Runs a command that must succeed; returns stdout. */
export function runOk(command: string, args: readonly string[], options: { cwd?: string; input?: string } = {}): string {
  return execFileSync(command, [...args], { encoding: 'utf8', cwd: options.cwd, input: options.input, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** A temporary directory removed after the test file. */
export function tempDir(prefix = 'intoto-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
