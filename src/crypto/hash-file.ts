import { createHash, hash as hashOnce, type Hash } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, read, readSync } from 'node:fs';
import { IoError, asInTotoError, ioError, isNodeError } from '../errors.js';

/**
 * Hashing files for links: one pass over the bytes feeds every requested algorithm, reading
 * in fixed-size chunks into buffers that are reused from file to file, so memory does not
 * grow with the size or the number of files. Bulk hashing goes through `node:crypto`
 * (OpenSSL, SHA-NI), never a JavaScript implementation.
 *
 * Files are opened with O_NONBLOCK | O_NOFOLLOW and checked with fstat after opening: a FIFO
 * or a symlink swapped in after the directory was read is refused instead of blocking us or
 * being followed (THREATS.md, "Paths and files").
 */

/**
 * Algorithms a file can be hashed with here (a superset of what the runner records; named here
 * rather than imported because crypto/ sits below model/).
 */
export type FileHashAlgorithm = 'sha256' | 'sha384' | 'sha512';

/** Size of one read. 1 MiB keeps a chunk in L2 while it is hashed and the next one is read. */
export const HASH_CHUNK_BYTES = 1 << 20;

/** Scratch memory for one thread: two chunk buffers, the second used only for read-ahead. */
export interface HashBuffers {
  readonly first: Buffer;
  readonly second: Buffer;
}

/** Allocates the buffers one thread reuses for every file it hashes. */
export function createHashBuffers(chunkBytes: number = HASH_CHUNK_BYTES): HashBuffers {
  return { first: Buffer.allocUnsafe(chunkBytes), second: Buffer.allocUnsafe(chunkBytes) };
}

/** A file opened for hashing, or why it was not. */
export type OpenedFile =
  | { readonly kind: 'file'; readonly fd: number; readonly size: number }
  | { readonly kind: 'not-regular'; readonly what: string };

const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW;

/**
 * Opens `path` for hashing without following a final symlink and without blocking on a FIFO,
 * then checks with fstat that what was opened is a regular file. The caller closes `fd`.
 * @throws IoError E_IO when the file cannot be opened or examined (it vanished, no permission)
 */
export function openForHashing(path: string): OpenedFile {
  let fd: number;
  try {
    fd = openSync(path, OPEN_FLAGS);
  } catch (error) {
    // ELOOP: the last component is (now) a symlink. We resolved links before opening, so this
    // one appeared afterwards; it is not followed.
    if (isNodeError(error) && error.code === 'ELOOP') return { kind: 'not-regular', what: 'a symbolic link' };
    throw ioError(path, error);
  }
  try {
    const stat = fstatSync(fd);
    if (stat.isFile()) return { kind: 'file', fd, size: stat.size };
    closeSync(fd);
    return { kind: 'not-regular', what: describeType(stat) };
  } catch (error) {
    closeSync(fd);
    throw ioError(path, error);
  }
}

/** A short description of a non-regular file type, for warnings. */
export function describeType(stat: {
  isDirectory(): boolean;
  isFIFO(): boolean;
  isSocket(): boolean;
  isCharacterDevice(): boolean;
  isBlockDevice(): boolean;
  isSymbolicLink(): boolean;
}): string {
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isSocket()) return 'a socket';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  if (stat.isDirectory()) return 'a directory';
  if (stat.isSymbolicLink()) return 'a symbolic link';
  return 'not a regular file';
}

/**
 * Hashes an open file from its current offset to the end with synchronous reads into
 * `buffer`: the cheapest path for small files, where a thread hop per read costs more than the
 * read. `expectedSize` (from fstat) lets a short read end the loop without one more read.
 * Returns the raw digests in the order of `algorithms`.
 * @throws IoError E_IO on a read error
 */
export function hashOpenFileSync(
  fd: number,
  algorithms: readonly FileHashAlgorithm[],
  buffer: Buffer,
  expectedSize: number,
  file: string,
): Buffer[] {
  let total = 0;
  let hashes: Hash[] | undefined;
  for (;;) {
    let n: number;
    try {
      n = readSync(fd, buffer, 0, buffer.length, null);
    } catch (error) {
      throw ioError(file, error);
    }
    const chunk = buffer.subarray(0, n);
    // On a regular file a short read means end of file; the size check guards a file that
    // was truncated or grew between fstat and now (then we read on until 0).
    const atEnd = n === 0 || (n < buffer.length && total + n >= expectedSize);
    if (hashes === undefined && atEnd) {
      // The whole file fitted in one read: one-shot hashing skips creating Hash objects.
      return algorithms.map((algorithm) => hashOnce(algorithm, chunk, 'buffer'));
    }
    hashes ??= algorithms.map((algorithm) => createHash(algorithm));
    for (const h of hashes) h.update(chunk);
    total += n;
    if (atEnd) return hashes.map((h) => h.digest());
  }
}

function readInto(fd: number, buffer: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    read(fd, buffer, 0, buffer.length, null, (error, bytesRead) => {
      if (error) reject(error);
      else resolve(bytesRead);
    });
  });
}

/**
 * Hashes an open file to its end. While `readAhead()` says so (checked before each read), the
 * next chunk is read on libuv's thread pool as this thread hashes the current one, so a large
 * file costs about its hashing time rather than hashing plus copying; otherwise the chunk is
 * read inline, which costs less CPU when no core is idle to do the copy. Returns the raw digests
 * in the order of `algorithms`.
 * @throws IoError E_IO on a read error
 */
export async function hashOpenFile(
  fd: number,
  algorithms: readonly FileHashAlgorithm[],
  buffers: HashBuffers,
  file: string,
  readAhead: () => boolean = () => true,
): Promise<Buffer[]> {
  const hashes = algorithms.map((algorithm) => createHash(algorithm));
  let current = buffers.first;
  let spare = buffers.second;
  let pending: Promise<number> | undefined;
  const start = (buffer: Buffer): Promise<number> | number => {
    if (readAhead()) return (pending = readInto(fd, buffer));
    return readSync(fd, buffer, 0, buffer.length, null);
  };
  try {
    let next = start(current);
    for (;;) {
      const n: number = typeof next === 'number' ? next : await next;
      pending = undefined;
      if (n === 0) break;
      next = start(spare);
      const chunk = current.subarray(0, n);
      for (const h of hashes) h.update(chunk);
      [current, spare] = [spare, current];
    }
  } catch (error) {
    // Let a read still in flight finish before the caller closes the descriptor or reuses
    // the buffer: a late read into a reused fd number would be someone else's file.
    if (pending !== undefined) await pending.catch(() => 0);
    throw ioError(file, error);
  }
  return hashes.map((h) => h.digest());
}

/** Files up to this size are read synchronously in one go; larger ones get read-ahead. */
export const SYNC_HASH_MAX_BYTES = HASH_CHUNK_BYTES;

/**
 * Hashes the regular file at `path` with every algorithm in one pass (opened with O_NOFOLLOW
 * and O_NONBLOCK, checked with fstat after opening).
 * @throws IoError E_NOT_REGULAR_FILE for a symlink, FIFO, socket, device or directory;
 *   E_IO when it cannot be opened or read
 * @throws InternalError E_INTERNAL for anything else (a bug)
 */
export async function hashFile(
  path: string,
  algorithms: readonly FileHashAlgorithm[] = ['sha256'],
  buffers: HashBuffers = createHashBuffers(),
): Promise<ReadonlyMap<string, string>> {
  const opened = openForHashing(path);
  if (opened.kind !== 'file') {
    throw new IoError('E_NOT_REGULAR_FILE', `${path}: is ${opened.what}, not a regular file`, { context: { file: path } });
  }
  try {
    const digests =
      opened.size <= SYNC_HASH_MAX_BYTES
        ? hashOpenFileSync(opened.fd, algorithms, buffers.first, opened.size, path)
        : await hashOpenFile(opened.fd, algorithms, buffers, path);
    return new Map(algorithms.map((algorithm, i) => [algorithm, digests[i]!.toString('hex')]));
  } catch (error) {
    throw asInTotoError(error);
  } finally {
    closeSync(opened.fd);
  }
}
