import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/**
 * A file tree described as data: a string is a file's content, `{ link }` a symlink with that
 * target (as written, relative or absolute), `{ dir }` an empty directory.
 */
export type TreeSpec = Readonly<Record<string, string | { readonly link: string } | { readonly dir: true }>>;

/** Creates `spec` under `root` (parents as needed). */
export function buildTree(root: string, spec: TreeSpec): void {
  for (const [path, what] of Object.entries(spec)) {
    const full = join(root, path);
    mkdirSync(dirname(full), { recursive: true });
    if (typeof what === 'string') writeFileSync(full, what);
    else if ('link' in what) symlinkSync(what.link, full);
    else mkdirSync(full, { recursive: true });
  }
}

/** A fresh temporary directory; remove it with {@link removeTemp}. */
export function makeTemp(prefix = 'intoto-record-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function removeTemp(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** A map of name -> sha256 from our HashDict map, as a plain sorted object for comparisons. */
export function sha256Of(map: ReadonlyMap<string, ReadonlyMap<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of [...map.keys()].sort()) out[name] = map.get(name)!.get('sha256')!;
  return out;
}
