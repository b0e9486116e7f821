import { spawnSync } from 'node:child_process';
import { REFERENCE_PYTHON } from './reference.js';

const HELPER = new URL('./pty_run.py', import.meta.url).pathname;

export interface PtyResult {
  /** The exit status, or null when it was killed at the deadline. */
  readonly status: number | null;
  readonly timedOut: boolean;
  /** Everything written to the terminal (stdout and stderr both go there). */
  readonly output: string;
}

/**
 * Runs `argv` at a pseudo-terminal (its controlling terminal), typing nothing: a program that
 * asks for a pass phrase there hangs until `seconds` have passed and is killed. Uses Debian's
 * python3 pty module (test/helpers/pty_run.py).
 */
export function runUnderPty(argv: readonly string[], options: { cwd?: string; seconds?: number } = {}): PtyResult {
  const seconds = options.seconds ?? 20;
  const result = spawnSync(REFERENCE_PYTHON, [HELPER, String(seconds), ...argv], {
    cwd: options.cwd,
    encoding: 'utf8',
    timeout: (seconds + 30) * 1000,
    env: { ...process.env, CI: process.env['CI'] ?? '' },
  });
  if (result.status !== 0) throw new Error(`pty_run.py failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as PtyResult;
}
