import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Helpers for tests that run the Python steps and oracles as child processes. */

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const STEPS = join(REPO, 'steps');
export const DATASET = join(REPO, 'layouts', 'ml', 'data', 'flowers.csv');
export const SCHEMA = join(REPO, 'layouts', 'ml', 'data', 'schema.json');
export const FIXTURES = join(REPO, 'test', 'fixtures', 'pickles');

/**
 * The interpreters the steps must run under: the default `python3` and Debian's own. Those
 * missing here are left out (the default one must exist: the steps need it).
 */
export const PYTHONS: readonly string[] = ['python3', ...(existsSync('/usr/bin/python3') ? ['/usr/bin/python3'] : [])];

export interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/** Runs `python script args...` in `cwd` with a clean environment; never throws on exit status. */
export function runPython(python: string, args: readonly string[], options: { cwd?: string; input?: Uint8Array } = {}): Run {
  const started = performance.now();
  const result = spawnSync(python, args, {
    cwd: options.cwd ?? REPO,
    input: options.input,
    encoding: 'buffer',
    maxBuffer: 64 * 1024 * 1024,
    timeout: 60_000,
    // No user site-packages or PYTHON* variables: the steps must work from the standard library.
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', PYTHONNOUSERSITE: '1', LANG: 'C.UTF-8' },
  });
  if (result.error) throw result.error;
  return {
    status: result.status,
    stdout: result.stdout.toString('utf8'),
    stderr: result.stderr.toString('utf8'),
    ms: performance.now() - started,
  };
}

/** A fresh temporary directory, removed by the returned function. */
export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
