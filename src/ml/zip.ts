import { crc32, inflateRawSync } from 'node:zlib';
import type { ScanContext } from './scan-context.js';
import { BufferSource, SliceSource, type ByteSource } from './source.js';

/**
 * Zip containers (PyTorch checkpoints, npz, and any zip found in a model directory), read
 * from the central directory and checked against every local header, because the readers
 * that load models disagree about which one counts: Python's zipfile reads the central
 * directory and refuses CRC errors and some flag bits, PyTorch's reader (miniz) ignores both,
 * streaming readers walk the local headers. A zip on which they could disagree is refused:
 * local header and central directory must agree (name, flags, method, CRC, sizes), no two
 * entries may share a name, names may not climb out of the archive, encrypted entries are
 * refused, entries may not overlap, and every byte before the central directory must belong
 * to an entry (no hidden local headers). Counts, sizes and compression ratios are capped.
 *
 * Only what a scan needs is read: entries are located from headers, and members are read
 * (and their CRC checked) only when their content is scanned; tensor storages never are.
 */

export interface ZipEntry {
  readonly name: string;
  readonly flags: number;
  readonly method: number;
  readonly crc: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly headerOffset: number;
  /** Where the member's (compressed) data starts. */
  readonly dataOffset: number;
  readonly isDirectory: boolean;
}

export interface ZipArchive {
  readonly entries: readonly ZipEntry[];
  readonly byName: ReadonlyMap<string, ZipEntry>;
}

const LOCAL = 0x04034b50;
const CENTRAL = 0x02014b50;
const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const DESCRIPTOR = 0x08074b50;

/** Flag bits a reader may see: 1-2 deflate options, 3 data descriptor, 11 UTF-8 names. */
const KNOWN_FLAGS = 0x0002 | 0x0004 | 0x0008 | 0x0800;
const ENCRYPTED_FLAGS = 0x0001 | 0x0040;

function u16(b: Uint8Array, at: number): number {
  return (b[at] ?? 0) | ((b[at + 1] ?? 0) << 8);
}
function u32(b: Uint8Array, at: number): number {
  return ((b[at] ?? 0) | ((b[at + 1] ?? 0) << 8) | ((b[at + 2] ?? 0) << 16) | ((b[at + 3] ?? 0) << 24)) >>> 0;
}
function u64(b: Uint8Array, at: number): number {
  return u32(b, at) + u32(b, at + 4) * 2 ** 32;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A member name, decoded, or why it is refused. */
function decodeName(bytes: Uint8Array, flags: number): { name?: string; problem?: string } {
  let name: string;
  if (bytes.every((c) => c < 0x80)) {
    name = String.fromCharCode(...bytes);
  } else if ((flags & 0x0800) !== 0) {
    try {
      name = utf8.decode(bytes);
    } catch {
      return { problem: 'its name is not valid UTF-8' };
    }
  } else {
    // Readers disagree here (zipfile decodes cp437, miniz keeps bytes): refuse.
    return { problem: 'its name is neither ASCII nor flagged UTF-8 (readers decode it differently)' };
  }
  return { name };
}

/** Why a member name is unsafe, or undefined. */
export function unsafeName(name: string): string | undefined {
  if (name.length === 0) return 'an empty name';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'a control character in the name';
  if (name.includes('\\')) return 'a backslash in the name (a path separator on Windows)';
  if (name.startsWith('/')) return 'an absolute path';
  if (/^[A-Za-z]:/.test(name)) return 'a drive letter';
  const parts = name.split('/');
  const inner = name.endsWith('/') ? parts.slice(0, -1) : parts;
  if (inner.some((p) => p === '..')) return 'a ".." component that climbs out of the archive';
  if (inner.some((p) => p === '.' || p === '')) return 'an empty or "." path component';
  return undefined;
}

/**
 * Reads and checks a zip's structure; every problem is a finding on `ctx` (the archive is
 * still returned with the entries that could be read, so that their content is scanned too).
 * Returns undefined when not even the central directory can be read.
 * @throws IoError E_IO when the file cannot be read
 */
export function readZip(source: ByteSource, ctx: ScanContext, member: string): ZipArchive | undefined {
  const bad = (reason: string): void => ctx.finding(member, 'zip', 'E_MODEL_MALFORMED', reason);
  const limit = (reason: string): void => ctx.finding(member, 'zip', 'E_LIMIT', reason);
  const size = source.size;
  // The end of central directory record: 22 bytes, then a comment of up to 65,535 bytes.
  const tailLength = Math.min(size, 22 + 65535);
  const tail = source.read(size - tailLength, tailLength);
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (u32(tail, i) === EOCD && i + 22 + u16(tail, i + 20) === tail.length) {
      eocd = i;
      break;
    }
  }
  if (eocd === -1) {
    bad('no end-of-central-directory record whose comment ends the file');
    return undefined;
  }
  const eocdOffset = size - tailLength + eocd;
  let count = u16(tail, eocd + 10);
  let cdSize = u32(tail, eocd + 12);
  let cdOffset = u32(tail, eocd + 16);
  if (u16(tail, eocd + 4) !== 0 || u16(tail, eocd + 6) !== 0 || u16(tail, eocd + 8) !== count) {
    bad('a multi-disk archive');
    return undefined;
  }
  let cdEnd = eocdOffset;
  // Zip64: the locator sits just before the end record.
  if (eocdOffset >= 20) {
    const locator = source.read(eocdOffset - 20, 20);
    if (u32(locator, 0) === ZIP64_LOCATOR) {
      const at = u64(locator, 8);
      const record = source.read(at, 56);
      if (record.length < 56 || u32(record, 0) !== ZIP64_EOCD) {
        bad('a zip64 locator that points at no zip64 end record');
        return undefined;
      }
      count = u64(record, 32);
      cdSize = u64(record, 40);
      cdOffset = u64(record, 48);
      cdEnd = at;
    }
  }
  if (count > ctx.limits.maxZipEntries) {
    limit(`${count} entries, over the limit of ${ctx.limits.maxZipEntries}`);
    return undefined;
  }
  if (cdOffset + cdSize !== cdEnd) {
    bad(`the central directory (${cdSize} bytes at ${cdOffset}) does not end where the end record starts (${cdEnd})`);
    if (cdOffset + cdSize > cdEnd) return undefined;
  }
  const cd = source.read(cdOffset, cdSize);
  if (cd.length !== cdSize) {
    bad('the central directory runs past the end of the file');
    return undefined;
  }

  const entries: ZipEntry[] = [];
  const byName = new Map<string, ZipEntry>();
  /** Where each entry's bytes end (data, and its descriptor). */
  const spans = new Map<ZipEntry, number>();
  let at = 0;
  let total = 0;
  for (let i = 0; i < count; i++) {
    if (at + 46 > cd.length || u32(cd, at) !== CENTRAL) {
      bad(`central directory record ${i + 1} of ${count} is missing or damaged`);
      break;
    }
    const flags = u16(cd, at + 8);
    const method = u16(cd, at + 10);
    const crc = u32(cd, at + 16);
    let compressedSize = u32(cd, at + 20);
    let uncompressed = u32(cd, at + 24);
    const nameLength = u16(cd, at + 28);
    const extraLength = u16(cd, at + 30);
    const commentLength = u16(cd, at + 32);
    let headerOffset = u32(cd, at + 42);
    const nameBytes = cd.subarray(at + 46, at + 46 + nameLength);
    const extra = cd.subarray(at + 46 + nameLength, at + 46 + nameLength + extraLength);
    at += 46 + nameLength + extraLength + commentLength;
    if (at > cd.length) {
      bad(`central directory record ${i + 1} runs past the directory`);
      break;
    }
    // Zip64 extra field: the 8-byte values replace those saturated at 0xffffffff, in order.
    const z64 = findExtra(extra, 0x0001);
    if (z64 !== undefined) {
      let p = 0;
      if (uncompressed === 0xffffffff && p + 8 <= z64.length) (uncompressed = u64(z64, p)), (p += 8);
      if (compressedSize === 0xffffffff && p + 8 <= z64.length) (compressedSize = u64(z64, p)), (p += 8);
      if (headerOffset === 0xffffffff && p + 8 <= z64.length) headerOffset = u64(z64, p);
    }
    const decoded = decodeName(nameBytes, flags);
    const label = decoded.name ?? `entry ${i + 1}`;
    const where = (reason: string): string => `${label}: ${reason}`;
    if (decoded.problem !== undefined) bad(where(decoded.problem));
    const name = decoded.name ?? `\u0000entry-${i}`;
    const unsafe = decoded.name === undefined ? undefined : unsafeName(name);
    if (unsafe !== undefined) bad(where(`${unsafe} (path traversal)`));
    if ((flags & ENCRYPTED_FLAGS) !== 0) bad(where('an encrypted entry, which cannot be scanned'));
    else if ((flags & ~KNOWN_FLAGS) !== 0) bad(where(`flag bits 0x${(flags & ~KNOWN_FLAGS).toString(16)} that readers treat differently`));
    if (method !== 0 && method !== 8) bad(where(`compression method ${method} (only stored and deflate are read)`));
    if (method === 0 && compressedSize !== uncompressed) bad(where(`stored, yet its compressed size ${compressedSize} is not its size ${uncompressed}`));
    if (method === 8 && uncompressed > 1024 * 1024 && uncompressed > compressedSize * ctx.limits.maxCompressionRatio) {
      limit(where(`compression ratio over ${ctx.limits.maxCompressionRatio}:1 (${compressedSize} bytes expand to ${uncompressed})`));
    }
    total += uncompressed;
    if (byName.has(name)) bad(where('two entries with the same name (readers pick different ones)'));

    // The local header must say the same.
    const local = source.read(headerOffset, 30);
    if (local.length < 30 || u32(local, 0) !== LOCAL) {
      bad(where(`no local header at offset ${headerOffset}`));
      continue;
    }
    const localFlags = u16(local, 6);
    const localNameLength = u16(local, 26);
    const localExtraLength = u16(local, 28);
    const localName = source.read(headerOffset + 30, localNameLength);
    const dataOffset = headerOffset + 30 + localNameLength + localExtraLength;
    if (!bytesEqual(localName, nameBytes)) bad(where(`the local header names it ${JSON.stringify(Buffer.from(localName).toString('latin1'))}`));
    if (localFlags !== flags) bad(where(`flags 0x${flags.toString(16)} in the central directory, 0x${localFlags.toString(16)} in the local header`));
    if (u16(local, 8) !== method) bad(where('the local header gives another compression method'));
    if ((flags & 0x0008) === 0) {
      let localCompressed = u32(local, 18);
      let localSize = u32(local, 22);
      if (localCompressed === 0xffffffff || localSize === 0xffffffff) {
        const localExtra = source.read(headerOffset + 30 + localNameLength, localExtraLength);
        const lz = findExtra(localExtra, 0x0001);
        if (lz !== undefined && lz.length >= 16) (localSize = u64(lz, 0)), (localCompressed = u64(lz, 8));
      }
      if (u32(local, 14) !== crc) bad(where(`CRC 0x${crc.toString(16)} in the central directory, 0x${u32(local, 14).toString(16)} in the local header`));
      if (localCompressed !== compressedSize || localSize !== uncompressed) bad(where('the local header gives other sizes'));
    }
    let end = dataOffset + compressedSize;
    if ((flags & 0x0008) !== 0) end = checkDescriptor(source, end, { crc, compressedSize, uncompressed }, (r) => bad(where(r)));
    if (end > cdOffset) bad(where('its data runs into the central directory or past the end'));
    const entry: ZipEntry = {
      name,
      flags,
      method,
      crc,
      compressedSize,
      size: uncompressed,
      headerOffset,
      dataOffset,
      isDirectory: name.endsWith('/'),
    };
    entries.push(entry);
    if (!byName.has(name)) byName.set(name, entry);
    spans.set(entry, end);
  }
  if (entries.length === count && at !== cd.length) bad('bytes after the last central directory record');
  if (total > ctx.limits.maxZipTotalBytes) limit(`its entries add up to ${total} bytes, over the limit of ${ctx.limits.maxZipTotalBytes}`);
  // Every byte before the central directory belongs to exactly one entry, in order.
  const sorted = [...entries].sort((a, b) => a.headerOffset - b.headerOffset);
  let covered = 0;
  for (const e of sorted) {
    if (e.headerOffset < covered) bad(`${e.name}: overlaps the entry before it`);
    else if (e.headerOffset > covered) bad(`${e.headerOffset - covered} bytes at offset ${covered} belong to no entry (hidden data that streaming readers would see)`);
    covered = Math.max(covered, spans.get(e) ?? e.dataOffset + e.compressedSize);
  }
  if (entries.length === count && covered < cdOffset) bad(`${cdOffset - covered} bytes before the central directory belong to no entry`);
  return { entries, byName };
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function findExtra(extra: Uint8Array, id: number): Uint8Array | undefined {
  let p = 0;
  while (p + 4 <= extra.length) {
    const tag = u16(extra, p);
    const length = u16(extra, p + 2);
    if (tag === id) return extra.subarray(p + 4, p + 4 + length);
    p += 4 + length;
  }
  return undefined;
}

/** A data descriptor after the data: its values must match the central directory's. */
function checkDescriptor(
  source: ByteSource,
  at: number,
  expected: { crc: number; compressedSize: number; uncompressed: number },
  bad: (reason: string) => void,
): number {
  const d = source.read(at, 24);
  const signed = d.length >= 4 && u32(d, 0) === DESCRIPTOR ? 4 : 0;
  const zip64 = expected.compressedSize >= 0xffffffff || expected.uncompressed >= 0xffffffff;
  const length = signed + 4 + (zip64 ? 16 : 8);
  if (d.length < length) {
    bad('its data descriptor runs past the end');
    return at + length;
  }
  const crc = u32(d, signed);
  const compressed = zip64 ? u64(d, signed + 4) : u32(d, signed + 4);
  const size = zip64 ? u64(d, signed + 12) : u32(d, signed + 8);
  if (crc !== expected.crc || compressed !== expected.compressedSize || size !== expected.uncompressed) {
    bad('its data descriptor disagrees with the central directory');
  }
  return at + length;
}

/**
 * The member's bytes as a source: a window of the archive when stored (nothing read yet), or
 * inflated in memory (capped) when deflated. Reading it whole checks the CRC.
 * @returns undefined with a finding when it cannot be read
 */
export function memberSource(source: ByteSource, entry: ZipEntry, ctx: ScanContext, member: string): ByteSource | undefined {
  if (entry.method === 0) return new SliceSource(source, entry.dataOffset, entry.compressedSize);
  if (entry.method !== 8) return undefined;
  if (entry.size > ctx.limits.maxDecompressedBytes) {
    ctx.finding(member, 'zip', 'E_LIMIT', `inflates to ${entry.size} bytes, over the limit of ${ctx.limits.maxDecompressedBytes}; not scanned`);
    return undefined;
  }
  try {
    const data = inflateRawSync(source.read(entry.dataOffset, entry.compressedSize), { maxOutputLength: Math.max(1, entry.size + 1) });
    if (data.length !== entry.size) {
      ctx.finding(member, 'zip', 'E_MODEL_MALFORMED', `inflates to ${data.length} bytes, the directory says ${entry.size}`);
    }
    return new BufferSource(new Uint8Array(data.buffer, data.byteOffset, data.length));
  } catch (error) {
    const tooBig = (error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
    ctx.finding(member, 'zip', 'E_MODEL_MALFORMED', tooBig ? `inflates to more than the ${entry.size} bytes the directory says` : `its deflate data is invalid (${(error as Error).message})`);
    return undefined;
  }
}

/**
 * Reads a member whole (at most `max` bytes) and checks its CRC: Python's zipfile refuses a
 * CRC error, PyTorch's reader does not, so a mismatch is a finding whatever the content.
 */
export function readMember(source: ByteSource, entry: ZipEntry, ctx: ScanContext, member: string, max: number): Uint8Array | undefined {
  if (entry.size > max) {
    ctx.finding(member, 'zip', 'E_LIMIT', `${entry.size} bytes, over the limit of ${max} for a member read whole; not scanned`);
    return undefined;
  }
  const src = memberSource(source, entry, ctx, member);
  if (src === undefined) return undefined;
  const bytes = src.read(0, src.size);
  if (bytes.length !== entry.size) {
    ctx.finding(member, 'zip', 'E_MODEL_MALFORMED', 'its data runs past the end of the archive');
  }
  checkMemberCrc(bytes, entry, ctx, member);
  return bytes;
}

/** Python's zipfile checks a member's CRC when it reads it; PyTorch's reader does not. */
export function checkMemberCrc(bytes: Uint8Array, entry: ZipEntry, ctx: ScanContext, member: string): void {
  const actual = crc32(bytes) >>> 0;
  if (actual !== entry.crc) {
    ctx.finding(member, 'zip', 'E_MODEL_MALFORMED', `CRC mismatch: the directory says 0x${entry.crc.toString(16)}, the data has 0x${actual.toString(16)} (Python's zipfile refuses it, PyTorch's reader does not)`);
  }
}
