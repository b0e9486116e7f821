import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * Calls the Python reference (Debian's /usr/bin/python3 with in-toto 1.3.1) through
 * reference_driver.py, one process per batch of cases.
 */

const PYTHON = '/usr/bin/python3';
const DRIVER = fileURLToPath(new URL('./reference_driver.py', import.meta.url));

/** True when the reference is installed; differential tests are skipped otherwise. */
export const hasReference: boolean = (() => {
  const probe = spawnSync(PYTHON, ['-c', 'import in_toto.verifylib, in_toto.rulelib'], { stdio: 'ignore' });
  return probe.status === 0;
})();

export function reference<T>(mode: 'fnmatch' | 'shlex' | 'unpack' | 'rules', cases: readonly unknown[]): T[] {
  const out = execFileSync(PYTHON, [DRIVER, mode], {
    input: JSON.stringify(cases),
    maxBuffer: 256 * 1024 * 1024,
    encoding: 'utf8',
  });
  const results = JSON.parse(out) as T[];
  if (results.length !== cases.length) throw new Error(`reference returned ${results.length} results for ${cases.length} cases`);
  return results;
}
