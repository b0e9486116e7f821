import { lstatSync, readdirSync, realpathSync, statSync, type Dirent, type Stats } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, resolve } from 'node:path';
import { describeType } from '../crypto/hash-file.js';
import { FormatError, IoError, ioError, isNodeError } from '../errors.js';
import { hashFiles } from '../runner/hash-pool.js';
import { problemError } from '../runner/hash-job.js';
import { isUnder } from './paths.js';

/**
 * The files of a model as OMS enumerates them (spec §6.1): every regular file under the model
 * directory (or the one file of a single-file model), named by its path relative to the root
 * with `/`, minus the ignored paths (each an exact relative path, which also drops what lies
 * below it). Symbolic links are followed only with `allowSymlinks`, and then only when their
 * target stays inside the model; anything that is not a regular file or directory (a FIFO, a
 * socket, a device, a disallowed or escaping symlink) is reported, never opened.
 */

export interface ModelFile {
  /** Model-relative name (for a single-file model, its base name). */
  readonly name: string;
  /** What to open (the symlink's target when one was followed). */
  readonly path: string;
}

/** A path that is not a regular file we may hash, and what it is. */
export interface IrregularPath {
  readonly name: string;
  readonly what: string;
}

export interface ModelListing {
  /** The model is one file (its name is the file's base name). */
  readonly single: boolean;
  readonly files: readonly ModelFile[];
  readonly irregular: readonly IrregularPath[];
}

export interface ListOptions {
  /** Model-relative paths to leave out (with everything below them). */
  readonly ignore: readonly string[];
  readonly allowSymlinks: boolean;
  readonly maxFiles?: number;
  readonly maxDepth?: number;
}

export const MODEL_LIMITS = { maxFiles: 1_000_000, maxDepth: 256 } as const;

interface Frame {
  readonly real: string;
  readonly name: string;
  readonly depth: number;
  readonly chain: readonly string[];
}

const identity = (s: Stats): string => `${s.dev}:${s.ino}`;

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
const lossyUtf8 = new TextDecoder('utf-8');

/**
 * A directory's entries with their names as text and whether they were valid UTF-8 on disk,
 * unsorted (the resources are sorted once at the end). Node turns bytes that are not UTF-8 into
 * U+FFFD, so only a directory with a U+FFFD in a name is listed again as bytes.
 */
function listDirectory(real: string, name: string): { entry: Dirent<string | Buffer>; text: string; valid: boolean }[] {
  try {
    const entries = readdirSync(real, { withFileTypes: true });
    if (!entries.some((e) => e.name.includes('\ufffd'))) return entries.map((entry) => ({ entry, text: entry.name, valid: true }));
    return readdirSync(real, { withFileTypes: true, encoding: 'buffer' }).map((entry) => {
      try {
        return { entry, text: strictUtf8.decode(entry.name), valid: true };
      } catch {
        return { entry, text: lossyUtf8.decode(entry.name), valid: false };
      }
    });
  } catch (error) {
    throw ioError(name, error, 'cannot list directory');
  }
}

/** True when `model` is (or links to) a regular file. @throws IoError E_IO when it cannot be read */
export function isSingleFile(model: string): boolean {
  try {
    return statSync(model).isFile();
  } catch (error) {
    throw ioError(model, error, 'cannot read the model');
  }
}

/**
 * Lists the model at `model` (a directory or one file).
 * @throws IoError E_IO (missing or unreadable), E_LIMIT; FormatError E_ARTIFACT_NAME for a
 *   name that is not valid UTF-8 (it could not be written into a payload)
 */
export function listModel(model: string, options: ListOptions): ModelListing {
  const maxFiles = options.maxFiles ?? MODEL_LIMITS.maxFiles;
  const maxDepth = options.maxDepth ?? MODEL_LIMITS.maxDepth;
  let rootReal: string;
  let rootStat: Stats;
  try {
    rootReal = realpathSync.native(model);
    rootStat = statSync(rootReal);
  } catch (error) {
    throw ioError(model, error, 'cannot read the model');
  }
  if (rootStat.isFile()) return { single: true, files: [{ name: basename(resolve(model)), path: rootReal }], irregular: [] };
  if (!rootStat.isDirectory()) throw new IoError('E_NOT_REGULAR_FILE', `${model}: the model is ${describeType(rootStat)}, not a file or directory`, { context: { file: model } });

  const files: ModelFile[] = [];
  const irregular: IrregularPath[] = [];
  // Exact names suffice: an ignored directory is never descended, so nothing below it is met.
  const ignoreSet = new Set(options.ignore);
  const ignored = (name: string): boolean => ignoreSet.has(name);
  const pending: Frame[] = [{ real: rootReal, name: '', depth: 0, chain: [identity(rootStat)] }];
  const addFile = (name: string, path: string): void => {
    if (files.length >= maxFiles) throw new IoError('E_LIMIT', `${model}: more than ${maxFiles} files`, { context: { file: model } });
    files.push({ name, path });
  };
  const descend = (frame: Frame, real: string, name: string, stat: Stats | undefined): void => {
    if (frame.depth + 1 > maxDepth) throw new IoError('E_LIMIT', `${model}/${name}: deeper than ${maxDepth} directories`, { context: { file: name } });
    const s = stat ?? statSync(real);
    if (frame.chain.includes(identity(s))) {
      irregular.push({ name, what: 'a symbolic link loop' });
      return;
    }
    pending.push({ real, name, depth: frame.depth + 1, chain: [...frame.chain, identity(s)] });
  };
  for (let frame = pending.pop(); frame !== undefined; frame = pending.pop()) {
    const current = frame;
    for (const { entry, text, valid } of listDirectory(current.real, current.name === '' ? model : `${model}/${current.name}`)) {
      const name = current.name === '' ? text : `${current.name}/${text}`;
      if (ignored(name)) continue;
      if (!valid) throw new FormatError('E_ARTIFACT_NAME', `${model}/${name}: file name is not valid UTF-8`, { context: { file: name } });
      const onDisk = `${current.real}/${text}`;
      let kind: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean } = entry;
      if (!(entry.isFile() || entry.isDirectory() || entry.isSymbolicLink() || entry.isFIFO() || entry.isSocket() || entry.isCharacterDevice() || entry.isBlockDevice())) {
        kind = lstatSync(onDisk); // DT_UNKNOWN on some file systems
      }
      if (kind.isFile()) addFile(name, onDisk);
      else if (kind.isDirectory()) descend(current, onDisk, name, undefined);
      else if (kind.isSymbolicLink()) followLink(current, onDisk, name);
      else irregular.push({ name, what: describeType(lstatSync(onDisk)) });
    }
  }
  return { single: false, files, irregular };

  function followLink(frame: Frame, onDisk: string, name: string): void {
    if (!options.allowSymlinks) {
      irregular.push({ name, what: 'a symbolic link (not followed without --allow-symlinks)' });
      return;
    }
    let target: string;
    try {
      target = realpathSync.native(onDisk);
    } catch (error) {
      const code = isNodeError(error) ? error.code : undefined;
      irregular.push({ name, what: code === 'ELOOP' ? 'a symbolic link loop' : 'a dangling symbolic link' });
      return;
    }
    if (!isUnder(target, rootReal) || target === rootReal) {
      irregular.push({ name, what: `a symbolic link to ${target}, outside the model` });
      return;
    }
    const stat = statSync(target);
    if (stat.isFile()) addFile(name, target);
    else if (stat.isDirectory()) descend(frame, target, name, stat);
    else irregular.push({ name, what: `a symbolic link to ${describeType(stat)}` });
  }
}

/** Up to this many files, sizes are looked up so the largest start first (see hashModelFiles). */
const SIZE_PLANNING_MAX_FILES = 4096;
/** Below this much work besides the largest file, a worker thread costs more than it saves. */
const PARALLEL_MIN_BYTES = 64 * 1024 * 1024;

/**
 * SHA-256 of each file (hex, in the order given), on every core with the recorder's hashing
 * pool: streamed in 1 MiB chunks, at most two buffers per thread. A file that stopped being a
 * regular file since it was listed comes back as undefined.
 * @throws IoError when a file cannot be read; InternalError if a hashing thread dies
 */
export async function hashModelFiles(files: readonly ModelFile[], threads: number = availableParallelism()): Promise<(string | undefined)[]> {
  const order = files.map((_, i) => i);
  let useThreads = files.length <= 1 ? 1 : threads;
  if (files.length > 1 && files.length <= SIZE_PLANNING_MAX_FILES) {
    const sizes = files.map((f) => {
      try {
        return statSync(f.path).size;
      } catch {
        return 0; // a scheduling hint only; opening the file reports the real problem
      }
    });
    order.sort((a, b) => sizes[b]! - sizes[a]! || a - b);
    const rest = sizes.reduce((sum, size) => sum + size, 0) - sizes[order[0]!]!;
    if (rest < PARALLEL_MIN_BYTES) useThreads = 1;
  }
  const results = await hashFiles(
    order.map((i) => files[i]!.path),
    ['sha256'],
    { threads: useThreads },
  );
  const digests = new Array<string | undefined>(files.length);
  let firstError: { at: number; error: Error } | undefined;
  order.forEach((fileIndex, k) => {
    if (results.hashed(k)) {
      digests[fileIndex] = results.hex(k, 0);
      return;
    }
    const problem = results.problem(k);
    if (problem?.kind === 'error' && (firstError === undefined || fileIndex < firstError.at)) firstError = { at: fileIndex, error: problemError(problem) };
  });
  if (firstError !== undefined) throw firstError.error;
  return digests;
}
