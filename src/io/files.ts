import { constants, openSync, fstatSync, readSync, closeSync, mkdirSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { dirname, basename, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { IoError, ioError } from '../errors.js';

/** Caps on what we read into memory (THREATS.md invariant 3: bounded work). */
export const LIMITS = {
  /** A layout or link file. A link with 1,000,000 artifacts is about 100 MB. */
  metadataBytes: 256 * 1024 * 1024,
  /**
   * A DSSE payload, decoded (checked on its base64 length before decoding). As much as a
   * metadata file at its limit can carry, so an envelope read from a file never meets it
   * first; it bounds envelopes that come from elsewhere (a bundle, a registry) alike.
   */
  dssePayloadBytes: 192 * 1024 * 1024,
  /** A key file. */
  keyBytes: 64 * 1024,
  /** A YAML layout source. */
  yamlBytes: 4 * 1024 * 1024,
} as const;

export interface ReadOptions {
  readonly maxBytes: number;
  /** Refuse a symlink at the final path component (O_NOFOLLOW). */
  readonly noFollow?: boolean;
  /** What the file is, for messages ("layout", "link", "key"). */
  readonly what?: string;
  /**
   * Read into this buffer instead of a new one: the bytes returned stay valid until the next
   * read into it (see {@link ReadBuffer}).
   */
  readonly into?: ReadBuffer;
}

/**
 * A buffer that reads reuse, one file at a time: reading many large files (link files of tens
 * of megabytes) touches new memory only for the largest, where a new buffer per file costs a
 * page fault every 4 KiB of every file. What a read returned is overwritten by the next read.
 */
export class ReadBuffer {
  private buffer = Buffer.alloc(0);

  /** A buffer of at least `size` bytes: the last one when it is large enough. */
  take(size: number): Buffer {
    if (this.buffer.length < size) {
      releaseMemory(this.buffer);
      // Never from Node's shared pool: the buffer owns its memory (see releaseMemory).
      this.buffer = Buffer.allocUnsafeSlow(size);
    }
    return this.buffer;
  }

  /** Gives the memory back (the next take allocates again); what take returned is then empty. */
  release(): void {
    releaseMemory(this.buffer);
    this.buffer = Buffer.alloc(0);
  }
}

/**
 * Gives back the memory of a buffer that is no longer used, when it owns its whole
 * ArrayBuffer (not a slice of Node's shared pool), by transferring the ArrayBuffer to a copy
 * that nothing keeps: its memory is freed at the next minor garbage collection, where a large
 * buffer that has lived a while would stay resident until the next full one (a link of
 * 1,000,000 artifacts: 233 MB held through the whole rule check). Every view of it is empty
 * afterwards.
 */
export function releaseMemory(bytes: Uint8Array | Int32Array): void {
  const buffer = bytes.buffer;
  if (bytes.byteOffset !== 0 || bytes.byteLength !== buffer.byteLength || buffer.byteLength < 1 << 20 || !(buffer instanceof ArrayBuffer)) return;
  structuredClone(buffer, { transfer: [buffer] });
}

/**
 * Reads a regular file whole, checking its type and size before reading. Opened with
 * O_NONBLOCK so that a FIFO in place of the file cannot hang us, and optionally O_NOFOLLOW.
 * @throws IoError E_IO, E_NOT_REGULAR_FILE, E_FILE_TOO_LARGE
 */
export function readRegularFileSync(path: string, options: ReadOptions): Buffer {
  const what = options.what ?? 'file';
  let flags = constants.O_RDONLY | constants.O_NONBLOCK;
  if (options.noFollow) flags |= constants.O_NOFOLLOW;
  let fd: number;
  try {
    fd = openSync(path, flags);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ELOOP') {
      throw new IoError('E_NOT_REGULAR_FILE', `${path}: ${what} is a symbolic link, which is not followed here`, {
        context: { file: path },
      });
    }
    throw ioError(path, error);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) {
      throw new IoError('E_NOT_REGULAR_FILE', `${path}: ${what} is not a regular file`, { context: { file: path } });
    }
    if (stat.size > options.maxBytes) {
      throw new IoError(
        'E_FILE_TOO_LARGE',
        `${path}: ${what} is ${stat.size} bytes, over the limit of ${options.maxBytes}`,
        { context: { file: path } },
      );
    }
    // Read at most maxBytes + 1 so that a file growing while we read is still caught.
    const size = Math.min(stat.size, options.maxBytes) + 1;
    const buffer = options.into === undefined ? Buffer.allocUnsafe(size) : options.into.take(size).subarray(0, size);
    let total = 0;
    for (;;) {
      const n = readSync(fd, buffer, total, buffer.length - total, null);
      if (n === 0) break;
      total += n;
      if (total === buffer.length) {
        if (total > options.maxBytes) {
          throw new IoError('E_FILE_TOO_LARGE', `${path}: ${what} grew past the limit of ${options.maxBytes} bytes`, {
            context: { file: path },
          });
        }
        break;
      }
    }
    return buffer.subarray(0, total);
  } catch (error) {
    if (error instanceof IoError) throw error;
    throw ioError(path, error);
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes a file atomically: a temporary file in the same directory, then a rename, so that a
 * crash never leaves a half-written link or layout and an existing file is replaced whole.
 * `data` may be a function that writes the content in chunks (a large link is never held
 * whole in memory); if it throws, the temporary file is removed and the error passes through.
 * @throws IoError E_IO; whatever `data` throws
 */
export function writeFileAtomicSync(
  path: string,
  data: string | Uint8Array | ((write: (chunk: Uint8Array) => void) => void),
  mode = 0o644,
): void {
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  let fd: number | undefined;
  try {
    fd = openSync(temp, 'wx', mode);
    const target = fd;
    if (typeof data !== 'function') writeAll(target, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
    else {
      try {
        data((chunk) => writeAll(target, chunk));
      } catch (error) {
        // What the producer threw (our typed errors) passes through; a failed write is E_IO.
        throw error instanceof WriteFailure ? error : new ProducerFailure(error);
      }
    }
    closeSync(fd);
    fd = undefined;
    renameSync(temp, path);
  } catch (error) {
    if (fd !== undefined) closeQuietly(fd);
    rmSync(temp, { force: true });
    if (error instanceof ProducerFailure) throw error.cause;
    throw ioError(path, error instanceof WriteFailure ? error.cause : error, 'cannot write');
  }
}

/** Wrappers that tell, in the catch above, a producer's error from a write's. */
class WriteFailure {
  constructor(readonly cause: unknown) {}
}
class ProducerFailure {
  constructor(readonly cause: unknown) {}
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // The write already failed; that is the error to report.
  }
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let offset = 0;
  try {
    while (offset < bytes.length) offset += writeSync(fd, bytes, offset, bytes.length - offset);
  } catch (error) {
    throw new WriteFailure(error);
  }
}

/**
 * Makes a directory and its missing parents, like `mkdir -p`, one level at a time. Node's own
 * `mkdirSync(path, { recursive: true })` loops for ever at 100% CPU where a parent exists but
 * refuses children (`/proc/nope`); here that is an error.
 * @throws IoError E_IO (a parent that is a file, a directory that cannot be made)
 */
export function makeDirectorySync(path: string): void {
  const missing: string[] = [];
  for (let dir = resolve(path); ; ) {
    let isDirectory: boolean;
    try {
      isDirectory = statSync(dir).isDirectory();
    } catch (error) {
      const parent = dirname(dir);
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || parent === dir) throw ioError(dir, error, 'cannot use as a directory');
      missing.push(dir);
      dir = parent;
      continue;
    }
    if (!isDirectory) throw new IoError('E_IO', `${dir}: not a directory`, { context: { file: dir } });
    break;
  }
  for (const dir of missing.reverse()) {
    try {
      mkdirSync(dir);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' && statSync(dir, { throwIfNoEntry: false })?.isDirectory() === true) continue;
      throw new IoError('E_IO', `${dir}: cannot create the directory (${code ?? 'error'})`, { cause: error, context: { file: dir } });
    }
  }
}
