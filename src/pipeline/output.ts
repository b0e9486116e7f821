import { mkdtempSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { ioError, IoError, UsageError } from '../errors.js';
import { makeDirectorySync } from '../io/files.js';
import { onInterrupt } from '../io/interrupt.js';

/**
 * The output directory of `pipeline run` (`--out`) is either untouched or complete: the final
 * products, the links and `root.layout` are written into a hidden staging directory beside it,
 * which is renamed into place in one step once everything is there. A failed or interrupted run
 * removes the staging directory and leaves `--out` as it was.
 */

export interface StagedOutput {
  /** Where to write everything that goes into the output directory. */
  readonly staging: string;
  /** Renames the staging directory into place (replacing an old output with `force`). @throws IoError E_IO */
  publish(): void;
  /** Removes the staging directory if it was not published. Never throws. */
  discard(): void;
}

/** What kind of directory is staged: `--out`, or the attestations beside it. */
export type OutputKind = 'output' | 'attestations';

/** How an earlier directory of each kind is recognised, so that `--force` replaces only that. */
const EARLIER: Readonly<Record<OutputKind, { readonly test: (entries: readonly string[]) => boolean; readonly lacks: string }>> = {
  output: { test: (entries) => entries.includes('root.layout'), lacks: 'holds no root.layout' },
  attestations: { test: (entries) => entries.every((e) => e.endsWith('.intoto.json')), lacks: 'holds files other than attestations (*.intoto.json)' },
};

/**
 * `--force` deletes the old output directory whole, so it only replaces what is plainly an
 * earlier output (it holds `root.layout`; an attestation directory holds only `*.intoto.json`),
 * and never a directory that holds the current directory, the layout source, the keys, the
 * workspace or an input.
 * @throws UsageError E_USAGE
 */
function refuseToReplace(outDir: string, out: string, entries: readonly string[], keep: readonly string[], kind: OutputKind): void {
  if (!EARLIER[kind].test(entries)) {
    throw new UsageError('E_USAGE', `--force replaces only an earlier pipeline output, and ${outDir} ${EARLIER[kind].lacks}: remove it yourself if it is to go`);
  }
  for (const path of [process.cwd(), ...keep]) {
    const rel = relative(out, resolve(path));
    if (rel === '' || (!rel.startsWith('..') && !isAbsolute(rel))) {
      throw new UsageError('E_USAGE', `--force would delete ${path}, which is inside ${outDir}: choose another ${kind === 'output' ? '--out' : '--attestations'}`);
    }
  }
}

/**
 * Checks the output directory before any step runs and makes the staging directory beside it
 * (so that a directory that cannot be written, such as `/proc/x`, fails now, not after an hour
 * of training).
 * `keep`: paths `force` must never delete (the source, the keys, the workspace, the inputs).
 * @throws UsageError E_USAGE (a non-empty directory without `force`, or one `force` must not
 *   replace); IoError E_IO (a file in
 *   its place, a parent that cannot be made or written)
 */
export function stageOutput(outDir: string, force: boolean, keep: readonly string[], kind: OutputKind = 'output'): StagedOutput {
  const out = resolve(outDir);
  const existing = statSync(out, { throwIfNoEntry: false });
  if (existing !== undefined && !existing.isDirectory()) throw new IoError('E_IO', `${outDir}: exists and is not a directory`, { context: { file: outDir } });
  const entries = existing === undefined ? [] : readdirSync(out);
  if (entries.length > 0 && !force) {
    throw new UsageError('E_USAGE', `${outDir} is not empty: give a new or empty directory, or --force to replace it (old links or products there would mislead verification)`);
  }
  if (entries.length > 0) refuseToReplace(outDir, out, entries, keep, kind);
  makeDirectorySync(dirname(out));
  let staging: string;
  try {
    staging = mkdtempSync(join(dirname(out), `.${basename(out)}.partial-`));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new IoError('E_IO', `${outDir}: cannot create the output directory there (${code})`, { cause: error, context: { file: outDir } });
  }
  let published = false;
  const removeUndo = onInterrupt(() => {
    rmSync(staging, { recursive: true, force: true });
    // The attestations follow --out, whose own note says what happened to the output.
    return kind === 'output' ? `${outDir} left untouched` : undefined;
  });
  return {
    staging,
    publish(): void {
      // rename(2) replaces an empty directory in one step; a non-empty one (--force) is moved
      // aside first, and removed once the new output is in place.
      const old = statSync(out, { throwIfNoEntry: false }) !== undefined && readdirSync(out).length > 0 ? `${staging}.old` : undefined;
      try {
        if (old !== undefined) renameSync(out, old);
        renameSync(staging, out);
      } catch (error) {
        throw ioError(outDir, error, 'cannot move the finished output into place');
      }
      published = true;
      removeUndo();
      if (old !== undefined) rmSync(old, { recursive: true, force: true });
    },
    discard(): void {
      if (published) return;
      removeUndo();
      rmSync(staging, { recursive: true, force: true });
    },
  };
}
