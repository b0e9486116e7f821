import { UsageError } from '../errors.js';

/**
 * Names in exported workflows: step and functionary names allow characters that GitHub job
 * ids, secret names and Kubernetes object names do not, so each export maps them, refusing
 * (never silently merging) two names that would map to one.
 */

/**
 * Maps each of `names` through `convert` to an id unique among them: a clash gets `-2`, `-3`,
 * ... (for ids we invent, like job ids, where a suffix harms nobody). Never throws.
 */
export function uniqueIds(names: readonly string[], convert: (name: string) => string): Map<string, string> {
  const ids = new Map<string, string>();
  const taken = new Set<string>();
  for (const name of names) {
    const base = convert(name);
    let id = base;
    for (let n = 2; taken.has(id); n++) id = `${base}-${n}`;
    taken.add(id);
    ids.set(name, id);
  }
  return ids;
}

/**
 * Maps each functionary to a name someone must create (a secret, an environment, a label),
 * refusing two functionaries that would share one: a clash there would hand one
 * functionary's key to the other.
 * @throws UsageError E_USAGE naming both functionaries and the name
 */
export function distinctNames(functionaries: readonly string[], convert: (name: string) => string, what: string): Map<string, string> {
  const names = new Map<string, string>();
  const owners = new Map<string, string>();
  for (const functionary of functionaries) {
    const name = convert(functionary);
    const other = owners.get(name);
    if (other !== undefined && other !== functionary) {
      throw new UsageError('E_USAGE', `functionaries '${other}' and '${functionary}' would share the ${what} '${name}'; rename one of them in the layout`);
    }
    owners.set(name, functionary);
    names.set(functionary, name);
  }
  return names;
}

/** A GitHub Actions job id: letters, digits, '_' and '-', starting with a letter or '_'. Never throws. */
export function githubJobId(key: string): string {
  const id = key.replace(/[^A-Za-z0-9_-]+/g, '_').slice(0, 90);
  return /^[A-Za-z_]/.test(id) ? id : `_${id}`;
}

/** A GitHub secret name: upper-case letters, digits and '_', e.g. INTOTO_KEY_TRAINER_A. Never throws. */
export function githubSecretName(functionary: string): string {
  return `INTOTO_KEY_${functionary.toUpperCase().replace(/[^A-Z0-9]+/g, '_')}`;
}

/**
 * A Kubernetes/Argo name: lower-case letters, digits and '-', starting and ending with a
 * letter or digit, at most `max` characters. Never throws.
 */
export function kubeName(text: string, max = 63): string {
  const name = text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, max)
    .replace(/-+$/g, '');
  return name === '' ? 'x' : name;
}
