import { lstatSync, realpathSync, statSync, type Dirent, type Stats } from 'node:fs';
import { join, resolve } from 'node:path';
import { FormatError, IoError, RunError, ioError, isNodeError } from '../errors.js';
import { describeType } from '../crypto/hash-file.js';
import {
  assertRecordableName,
  childName,
  climbsOut,
  isWellFormedUnicode,
  lstripCovers,
  lstripName,
  pythonNormpath,
} from './artifact-names.js';
import type { ExcludeFilter } from './exclude.js';
import { readDirectory, type Listed } from './list-directory.js';

/**
 * Phase one of recording: turn the given paths into the list of files to hash and the names
 * to record them under, as the reference's `record_artifacts_as_dict` walks them (os.walk,
 * exclude patterns on every walked path, pruned directories not descended), but confined to
 * the base path: symlinks are resolved with realpath and followed only when their target
 * stays inside; loops, FIFOs, sockets, devices and dangling links are skipped with a warning.
 * Runs synchronously on purpose: the walk is cheap next to hashing, and a sequential walk in
 * sorted order gives the same warnings and the same first error on every run.
 */

/** One file to hash: the name it is recorded under and the real path to open. */
export interface FileJob {
  readonly name: string;
  readonly openPath: string;
}

/** What the walk needs: where it is confined, what it skips, how it names, and its caps. */
export interface WalkOptions {
  /** Absolute base path as given (resolved against the cwd, not through symlinks). */
  readonly basePath: string;
  /** realpath of the base path: where symlink targets must stay. */
  readonly realBase: string;
  readonly filter: ExcludeFilter;
  readonly lstripPaths: readonly string[];
  readonly followSymlinkDirs: boolean;
  readonly maxArtifacts: number;
  readonly maxDepth: number;
  readonly warn: (message: string) => void;
}

/** Ancestors of a directory being walked, by device and inode, to stop symlink loops. */
interface Chain {
  readonly key: string;
  readonly up: Chain | undefined;
}

interface Frame {
  readonly real: string;
  readonly name: string;
  readonly depth: number;
  readonly chain: Chain;
}

/** True when `path` is `root` or below it (both absolute and free of `.`/`..`). */
function within(path: string, root: string): boolean {
  if (root === '/') return path.startsWith('/');
  return path === root || path.startsWith(`${root}/`);
}

function inChain(chain: Chain | undefined, key: string): boolean {
  for (let c = chain; c !== undefined; c = c.up) if (c.key === key) return true;
  return false;
}

const identity = (stat: Stats): string => `${stat.dev}:${stat.ino}`;

/**
 * Collects the files under `paths`, in a deterministic order, without reading any content.
 * @throws FormatError E_ARTIFACT_NAME for a name the verifier would refuse (absolute, `..`,
 *   control characters, not NFC, not UTF-8 on disk, a backslash)
 * @throws RunError E_PATH_OUTSIDE_BASE for a path outside the base path not covered by
 *   --lstrip-paths; E_LSTRIP when two files would be recorded under one name
 * @throws IoError E_LIMIT when the artifact count or directory depth cap is exceeded; E_IO
 *   when a directory cannot be read
 */
export function collectFiles(paths: readonly string[], options: WalkOptions): FileJob[] {
  const roots = topLevelPaths(paths, options.filter);
  // One root walked without --lstrip-paths cannot name a file twice (each name is its own
  // path in the tree), so the map of names is kept only when it can catch something; for
  // 20,000 files it costs 10 to 20 ms of fresh memory.
  const walker = new Walker(options, roots.length > 1 || options.lstripPaths.length > 0);
  for (const root of roots) walker.addRoot(root);
  return walker.jobs;
}

/** The given paths normalised, de-duplicated, filtered and sorted, as the reference does. */
function topLevelPaths(paths: readonly string[], filter: ExcludeFilter): string[] {
  const normalized = new Set<string>();
  for (const path of paths) {
    if (!isWellFormedUnicode(path) || path.includes('\0')) {
      throw new FormatError('E_ARTIFACT_NAME', `artifact path ${JSON.stringify(path)} is not a valid file name`, {
        context: { artifact: path },
      });
    }
    normalized.add(pythonNormpath(path));
  }
  return [...normalized].filter((path) => !filter.excludes(path)).sort();
}

class Walker {
  readonly jobs: FileJob[] = [];
  /** Name -> path of every file so far, when names can repeat (see collectFiles). */
  private readonly recorded: Map<string, string> | undefined;

  constructor(
    private readonly options: WalkOptions,
    namesCanRepeat: boolean,
  ) {
    this.recorded = namesCanRepeat ? new Map() : undefined;
  }

  addRoot(norm: string): void {
    const { basePath, realBase, lstripPaths } = this.options;
    const absolute = norm.startsWith('/');
    // resolve() also folds the `//` prefix Python's normpath keeps.
    const onDisk = absolute ? resolve(norm) : join(basePath, norm);
    const inside = absolute ? within(onDisk, basePath) || within(onDisk, realBase) : !climbsOut(norm);
    if (!lstripCovers(norm, lstripPaths)) {
      if (absolute && inside) {
        // The reference would record an absolute name, which no verifier should accept.
        assertRecordableName(norm, norm);
      }
      if (!inside) {
        throw new RunError('E_PATH_OUTSIDE_BASE', `${norm}: is outside the base path ${basePath}; name a path inside it, or strip its prefix with --lstrip-paths`, {
          context: { file: norm },
        });
      }
    }
    let containment = realBase;
    if (!inside) {
      // Named explicitly outside the base path (and covered by --lstrip-paths): links inside
      // it must stay inside it.
      const real = this.resolve(onDisk, norm);
      if (real === undefined) return;
      containment = real;
    }
    this.visit(onDisk, norm, containment, undefined, true);
  }

  /** realpath, or undefined after a warning when the path is dangling, missing or a loop. */
  private resolve(onDisk: string, name: string): string | undefined {
    try {
      return realpathSync.native(onDisk);
    } catch (error) {
      const code = isNodeError(error) ? error.code : undefined;
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        const dangling = isSymlink(onDisk);
        this.options.warn(dangling ? `${name}: dangling symbolic link, skipped` : `${name}: does not exist, skipped`);
        return undefined;
      }
      if (code === 'ELOOP') {
        this.options.warn(`${name}: symbolic link loop, skipped`);
        return undefined;
      }
      throw ioError(name, error, 'cannot resolve');
    }
  }

  /**
   * Records or descends into a path whose type is not yet known (a root, or a symlink met
   * while walking): resolve it, keep it inside `containment`, then act on the target's type.
   */
  private visit(onDisk: string, name: string, containment: string, parent: Frame | undefined, isRoot: boolean): void {
    const real = this.resolve(onDisk, name);
    if (real === undefined) return;
    if (!within(real, containment)) {
      const where = containment === this.options.realBase ? 'the base path' : containment;
      this.options.warn(`${name}: resolves to ${real}, outside ${where}; not followed`);
      return;
    }
    let stat: Stats;
    try {
      stat = statSync(real);
    } catch (error) {
      throw ioError(name, error);
    }
    if (stat.isFile()) {
      this.addFile(name, real);
    } else if (stat.isDirectory()) {
      // A symlinked directory met while walking is descended only when following is on; a
      // root is always walked (os.walk lists the directory a top-level link points to).
      if (isRoot) this.walk({ real, name, depth: 0, chain: { key: identity(stat), up: undefined } }, containment);
      else if (this.options.followSymlinkDirs && parent !== undefined) this.descend(real, name, parent, stat);
    } else {
      this.options.warn(`${name}: is ${describeType(stat)}, skipped`);
    }
  }

  /** Directories waiting to be listed (depth first; the order only fixes which error comes first). */
  private pending: Frame[] = [];

  private walk(root: Frame, containment: string): void {
    this.pending = [root];
    for (let frame = this.pending.pop(); frame !== undefined; frame = this.pending.pop()) {
      for (const entry of readDirectory(frame)) this.entry(frame, entry, containment);
    }
  }

  private entry(frame: Frame, listed: Listed, containment: string): void {
    const { filter, warn } = this.options;
    const { entry, text, valid } = listed;
    const name = childName(frame.name, text);
    if (filter.excludes(name)) return;
    if (!valid) {
      throw new FormatError('E_ARTIFACT_NAME', `${name}: file name is not valid UTF-8`, { context: { file: name } });
    }
    const onDisk = frame.real.endsWith('/') ? frame.real + text : `${frame.real}/${text}`;
    let kind: Dirent<string | Buffer> | Stats = entry;
    if (!(entry.isFile() || entry.isDirectory() || entry.isSymbolicLink() || entry.isFIFO() || entry.isSocket() || entry.isCharacterDevice() || entry.isBlockDevice())) {
      kind = lstatOrThrow(onDisk, name); // DT_UNKNOWN on some file systems
    }
    if (kind.isFile()) this.addFile(name, onDisk);
    else if (kind.isDirectory()) this.descend(onDisk, name, frame, undefined);
    else if (kind.isSymbolicLink()) this.visit(onDisk, name, containment, frame, false);
    else warn(`${name}: is ${describeType(kind)}, skipped`);
  }

  private descend(real: string, name: string, parent: Frame, known: Stats | undefined): void {
    const depth = parent.depth + 1;
    if (depth > this.options.maxDepth) {
      throw new IoError('E_LIMIT', `${name}: directory depth exceeds the limit of ${this.options.maxDepth}`, { context: { file: name } });
    }
    const stat = known ?? statOrThrow(real, name);
    const key = identity(stat);
    if (inChain(parent.chain, key)) {
      this.options.warn(`${name}: leads back to a directory above it (a symbolic link loop); not followed`);
      return;
    }
    this.pending.push({ real, name, depth, chain: { key, up: parent.chain } });
  }

  private addFile(path: string, openPath: string): void {
    const { lstripPaths, maxArtifacts } = this.options;
    const name = lstripName(path, lstripPaths);
    assertRecordableName(name, path);
    const previous = this.recorded?.get(name);
    if (previous !== undefined) {
      // Without --lstrip-paths one name is one path, so this is the same file named twice
      // (`-p . sub`). With it, the reference refuses any repeat; so do we.
      if (lstripPaths.length === 0) return;
      throw new RunError('E_LSTRIP', `${path}: --lstrip-paths makes its name ${JSON.stringify(name)} collide with ${previous}`, {
        context: { artifact: name, file: path },
      });
    }
    if (this.jobs.length >= maxArtifacts) {
      throw new IoError('E_LIMIT', `more than ${maxArtifacts} artifacts to record (at ${path})`, { context: { file: path } });
    }
    this.recorded?.set(name, path);
    this.jobs.push({ name, openPath });
  }
}

function isSymlink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

function lstatOrThrow(path: string, name: string): Stats {
  try {
    return lstatSync(path);
  } catch (error) {
    throw ioError(name, error);
  }
}

function statOrThrow(path: string, name: string): Stats {
  try {
    return statSync(path);
  } catch (error) {
    throw ioError(name, error);
  }
}
