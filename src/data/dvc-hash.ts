import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { pythonJsonDumps } from '../canonical/encode.js';
import { compareCodePoints } from '../canonical/json.js';
import { ioError } from '../errors.js';

/**
 * DVC's digests, byte for byte as dvc-data computes them (dvc_data/hashfile/hash.py, tree.py):
 * - `md5`: the md5 of the file's bytes (DVC 3, outputs recorded with `hash: md5`);
 * - `md5-dos2unix` (outputs recorded by DVC 2, without `hash:`): the file read in 1 MiB chunks,
 *   each chunk whose first 512 bytes look like text has its CRLFs turned into LFs before it is
 *   hashed (chunk by chunk: a CR ending one chunk and the LF starting the next are left alone,
 *   as DVC leaves them);
 * - a directory: `md5(json.dumps(entries, sort_keys=True)) + ".dir"`, entries
 *   `{"md5": ..., "relpath": ...}` sorted by relpath in code-point order, Python's separators
 *   (`, ` and `: `) and ASCII-only escapes.
 */

export type DvcHashName = 'md5' | 'md5-dos2unix';

const CHUNK = 1 << 20;
const TEXT_PROBE = 512;

/** dvc-data's istextblock: no NUL, and at most 30% of bytes outside printable ASCII and \n\r\t\f\b. */
export function isTextBlock(block: Uint8Array): boolean {
  if (block.length === 0) return true;
  let nontext = 0;
  for (const c of block) {
    if (c === 0) return false;
    const text = (c >= 32 && c < 127) || c === 0x0a || c === 0x0d || c === 0x09 || c === 0x0c || c === 0x08;
    if (!text) nontext++;
  }
  return nontext / block.length <= 0.3;
}

function dos2unix(chunk: Buffer): Buffer {
  if (!chunk.includes(0x0d)) return chunk;
  const out = Buffer.allocUnsafe(chunk.length);
  let n = 0;
  for (let i = 0; i < chunk.length; i++) {
    if (chunk[i] === 0x0d && chunk[i + 1] === 0x0a) continue;
    out[n++] = chunk[i]!;
  }
  return out.subarray(0, n);
}

/** The md5 DVC records for the file at `path`, and its size. @throws IoError E_IO */
export function dvcFileMd5(path: string, name: DvcHashName): { md5: string; size: number } {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    throw ioError(path, error);
  }
  try {
    const hash = createHash('md5');
    const buffer = Buffer.allocUnsafe(CHUNK);
    let size = 0;
    for (;;) {
      // Fill a whole chunk as Python's read(n) does on a regular file.
      let filled = 0;
      while (filled < CHUNK) {
        const n = readSync(fd, buffer, filled, CHUNK - filled, null);
        if (n === 0) break;
        filled += n;
      }
      if (filled === 0) break;
      size += filled;
      const chunk = buffer.subarray(0, filled);
      hash.update(name === 'md5-dos2unix' && isTextBlock(chunk.subarray(0, TEXT_PROBE)) ? dos2unix(chunk) : chunk);
      if (filled < CHUNK) break;
    }
    return { md5: hash.digest('hex'), size };
  } catch (error) {
    throw ioError(path, error);
  } finally {
    closeSync(fd);
  }
}

export interface DirEntry {
  readonly relpath: string;
  readonly md5: string;
}

/**
 * The `.dir` object's bytes (Tree.as_bytes). Each string is quoted by {@link pythonJsonDumps}
 * (ensure_ascii escapes); the separators are DVC's, which that function's compact form lacks.
 * @throws ParseError E_CANONICAL for a lone surrogate, which a directory listing never yields
 */
export function dirListingBytes(entries: readonly DirEntry[]): Buffer {
  const sorted = [...entries].sort((a, b) => compareCodePoints(a.relpath, b.relpath));
  const quote = (s: string): string => pythonJsonDumps(s, null);
  return Buffer.from(`[${sorted.map((e) => `{"md5": ${quote(e.md5)}, "relpath": ${quote(e.relpath)}}`).join(', ')}]`, 'utf8');
}

/** The `.dir` digest DVC records for a directory with these entries. */
export function dirMd5(entries: readonly DirEntry[]): string {
  return `${createHash('md5').update(dirListingBytes(entries)).digest('hex')}.dir`;
}
