import { gunzipSync, inflateSync } from 'node:zlib';
import { decodeBzip2 } from './bzip2.js';
import { DecompressError } from './decompress-error.js';
import { decodeLzmaAlone, decodeXz } from './lzma.js';

/**
 * joblib's compressors (joblib/compressor.py), recognised by the prefixes joblib itself uses
 * to pick a decompressor: zlib, gzip, bz2, lzma (the "alone" format) and xz. Each is decoded
 * whole into memory, never past `max` bytes. lz4 (an optional joblib dependency) and the
 * pre-0.10 "ZF" format are recognised but not supported.
 */

export type Compression = 'zlib' | 'gzip' | 'bz2' | 'lzma' | 'xz' | 'lz4' | 'joblib-zfile';

/** The compression a joblib file starts with, by joblib's own prefixes. */
export function compressionOf(head: Uint8Array): Compression | undefined {
  const starts = (...bytes: number[]): boolean => bytes.every((b, i) => head[i] === b);
  if (starts(0x5a, 0x46)) return 'joblib-zfile'; // 'ZF'
  // zlib: 0x78, with a header whose check bits hold (so that no other 'x' file matches).
  if (head[0] === 0x78 && head.length >= 2 && ((head[0] << 8) | (head[1] as number)) % 31 === 0) return 'zlib';
  if (starts(0x1f, 0x8b)) return 'gzip';
  if (starts(0x42, 0x5a, 0x68)) return 'bz2'; // 'BZh'
  if (starts(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)) return 'xz';
  if (starts(0x5d, 0x00, 0x00)) return 'lzma';
  if (starts(0x04, 0x22, 0x4d, 0x18)) return 'lz4';
  return undefined;
}

/**
 * Decompresses `input` (a whole joblib file) with `kind`, to at most `max` bytes.
 * @throws DecompressError
 */
export function decompress(kind: Compression, input: Uint8Array, max: number): Uint8Array {
  try {
    switch (kind) {
      case 'zlib':
        return inflateSync(input, { maxOutputLength: max });
      case 'gzip':
        return gunzipSync(input, { maxOutputLength: max });
      case 'bz2':
        return decodeBzip2(input, max);
      case 'lzma':
        return decodeLzmaAlone(input, max);
      case 'xz':
        return decodeXz(input, max);
      case 'lz4':
      case 'joblib-zfile':
        throw new DecompressError(`${kind} is not supported`, false);
    }
  } catch (error) {
    if (error instanceof DecompressError) throw error;
    if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || error instanceof RangeError) {
      throw new DecompressError(`decompresses to more than ${max} bytes`, true);
    }
    throw new DecompressError(error instanceof Error ? error.message : String(error), false);
  }
}
