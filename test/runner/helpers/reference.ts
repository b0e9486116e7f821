import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The Python the reference's Debian packages are installed for (python3 on PATH may be another). */
export const REFERENCE_PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('./reference.py', import.meta.url));

function ask<T>(request: unknown): T {
  const out = execFileSync(REFERENCE_PYTHON, [SCRIPT], {
    input: JSON.stringify(request),
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    // A clean environment: the reference library must not pick up anything from ours.
    env: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8' },
  });
  return JSON.parse(out) as T;
}

export interface ReferenceRecordCase {
  readonly base: string;
  readonly paths: readonly string[];
  readonly exclude?: readonly string[];
  readonly lstrip?: readonly string[];
}
export type ReferenceRecordResult =
  | { readonly ok: Record<string, Record<string, string>> }
  | { readonly error: string };

/** runlib.record_artifacts_as_dict(follow_symlink_dirs=True) for each case, in one Python run. */
export function referenceRecord(cases: readonly ReferenceRecordCase[]): ReferenceRecordResult[] {
  return ask({ op: 'record', cases });
}

export type PathspecResult = { readonly matches: readonly boolean[] } | { readonly error: string };

/** PathSpec.from_lines('gitwildmatch', patterns).match_file(path) for each case, in one Python run. */
export function referencePathspec(cases: readonly { patterns: readonly string[]; paths: readonly string[] }[]): PathspecResult[] {
  return ask({ op: 'pathspec', cases });
}

/** posixpath.normpath for each path, in one Python run. */
export function referenceNormpath(paths: readonly string[]): string[] {
  return ask({ op: 'normpath', paths });
}
