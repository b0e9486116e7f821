import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadSigningKeyFile } from '../crypto/keyfiles.js';
import { CryptoError, IoError } from '../errors.js';
import { performedByPipeline, type PipelineSource, type PipelineStep } from './source.js';

/**
 * Which functionaries run each step of `pipeline run`, and their keys: chosen from the key
 * directory, loaded and compared with the layout before anything runs.
 */

/**
 * Who runs each step that has a `run` or is built in: in YAML order, the functionaries whose
 * private key is in `keyDir`, as many as the threshold asks (no entry for a step performed elsewhere).
 * @throws IoError E_IO when fewer keys than a threshold are there (a missing key file is a
 *   missing file, exit status 1, whether private or public)
 */
export function chooseRunners(steps: readonly PipelineStep[], keyDir: string): ReadonlyMap<string, readonly string[]> {
  const runners = new Map<string, readonly string[]>();
  for (const step of steps) {
    if (!performedByPipeline(step)) continue;
    const held = step.functionaries.filter((name) => existsSync(join(keyDir, name)));
    if (held.length < step.threshold) {
      const missing = step.functionaries.filter((name) => !held.includes(name)).map((name) => join(keyDir, name));
      const which = held.length === 0 ? 'none of them is there' : `only ${held.length} is there`;
      throw new IoError('E_IO', `step '${step.name}' needs the private key of ${step.threshold} of its functionaries in ${keyDir} and ${which}: no such file ${missing.join(', ')}`, {
        context: { step: step.name, file: missing[0] ?? keyDir },
      });
    }
    runners.set(step.name, held.slice(0, step.threshold));
  }
  return runners;
}

/** The password option for `functionary`'s key: empty when none was given. */
export function passwordFor(passwords: ReadonlyMap<string, string> | undefined, functionary: string): { password?: string } {
  const password = passwords?.get(functionary);
  return password === undefined ? {} : { password };
}

/**
 * Loads the private key of every functionary in `runners` (with its password, if any) and
 * checks it is the key the layout names for that functionary.
 * @throws CryptoError E_KEYID_MISMATCH, E_KEY_PASSWORD and the key file's other errors; IoError
 */
export function checkFunctionaryKeys(
  source: PipelineSource,
  keyDir: string,
  runners: ReadonlyMap<string, readonly string[]>,
  passwords: ReadonlyMap<string, string> | undefined,
): void {
  for (const name of new Set([...runners.values()].flat())) {
    const path = join(keyDir, name);
    const key = loadSigningKeyFile(path, passwordFor(passwords, name));
    const expected = source.functionaries.get(name);
    if (expected !== undefined && key.public.identity !== expected.key.identity) {
      throw new CryptoError('E_KEYID_MISMATCH', `${path} holds key ${key.keyid}, but the layout names ${expected.keyFile} (${expected.key.keyid}) for functionary '${name}'`, { context: { file: path, keyid: key.keyid } });
    }
  }
}
