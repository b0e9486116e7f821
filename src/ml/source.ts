import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { IoError, ioError } from '../errors.js';

/**
 * Random access to the bytes of a model file (or of a member inside one) without reading it
 * whole: a scan reads headers and pickle streams and skips tensor data, so a 1 GiB checkpoint
 * costs a few small reads. Every read is bounded by the caller.
 */
export interface ByteSource {
  /** Total size in bytes. */
  readonly size: number;
  /**
   * The bytes at [offset, offset + length), clipped to the end (shorter only there).
   * @throws IoError E_IO when the underlying file cannot be read
   */
  read(offset: number, length: number): Uint8Array;
}

/** Bytes already in memory. */
export class BufferSource implements ByteSource {
  readonly size: number;
  constructor(readonly bytes: Uint8Array) {
    this.size = bytes.length;
  }

  read(offset: number, length: number): Uint8Array {
    const start = Math.min(Math.max(0, offset), this.size);
    return this.bytes.subarray(start, Math.min(this.size, start + Math.max(0, length)));
  }
}

/** A window [start, start + size) of another source (a stored zip member). */
export class SliceSource implements ByteSource {
  constructor(
    private readonly parent: ByteSource,
    private readonly start: number,
    readonly size: number,
  ) {}

  read(offset: number, length: number): Uint8Array {
    const from = Math.min(Math.max(0, offset), this.size);
    return this.parent.read(this.start + from, Math.min(this.size - from, Math.max(0, length)));
  }
}

/**
 * A regular file opened for positional reads (O_NONBLOCK, so a FIFO in its place cannot hang
 * us; the caller checks the type first). Close it when done.
 */
export class FileSource implements ByteSource {
  readonly size: number;
  private fd: number | undefined;

  /** @throws IoError E_IO, E_NOT_REGULAR_FILE */
  constructor(readonly path: string) {
    let fd: number;
    try {
      fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
    } catch (error) {
      throw ioError(path, error);
    }
    try {
      const stat = fstatSync(fd);
      if (!stat.isFile()) throw new IoError('E_NOT_REGULAR_FILE', `${path}: not a regular file`, { context: { file: path } });
      this.size = stat.size;
    } catch (error) {
      closeSync(fd);
      throw error instanceof IoError ? error : ioError(path, error);
    }
    this.fd = fd;
  }

  read(offset: number, length: number): Uint8Array {
    const start = Math.min(Math.max(0, offset), this.size);
    const want = Math.min(this.size - start, Math.max(0, length));
    const buffer = new Uint8Array(want);
    let total = 0;
    try {
      while (total < want) {
        if (this.fd === undefined) throw new Error('file closed');
        const n = readSync(this.fd, buffer, total, want - total, start + total);
        if (n === 0) break; // the file shrank while we read: the caller sees a short read
        total += n;
      }
    } catch (error) {
      throw ioError(this.path, error);
    }
    return total === want ? buffer : buffer.subarray(0, total);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
