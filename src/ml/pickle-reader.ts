import { InternalError } from '../errors.js';
import type { PickleArgKind } from './pickle-opcodes.js';
import type { ByteSource } from './source.js';

/**
 * Reading a pickle stream: a cursor over the bytes, and the decoding of each opcode's inline
 * argument exactly as CPython's unpickler consumes it, so that the scanner stays in step with
 * the loader. Nothing here copies or allocates in proportion to a length read from the stream:
 * counted arguments are views into the input, checked against what remains before use.
 */

/** An opcode's inline argument; numbers and byte views, interpreted by the machine. */
export type PickleArgument =
  | { readonly kind: 'none' }
  | { readonly kind: 'int'; readonly value: number }
  /** A newline-terminated argument, newline removed. */
  | { readonly kind: 'line'; readonly bytes: Uint8Array }
  /** GLOBAL and INST: module and name, each a line. */
  | { readonly kind: 'pair'; readonly first: Uint8Array; readonly second: Uint8Array }
  /** Counted bytes: the payload of LONG1/4, BINSTRING, BINBYTES, BINUNICODE, BINFLOAT, ... */
  | { readonly kind: 'data'; readonly bytes: Uint8Array }
  /** Counted bytes too long to matter (a tensor's bytes, a long text): skipped, never read. */
  | { readonly kind: 'skipped'; readonly length: number };

/** An argument, or why it could not be read (the stream is truncated or invalid there). */
export type ArgumentResult =
  | { readonly ok: true; readonly arg: PickleArgument }
  | { readonly ok: false; readonly reason: string };

const NEWLINE = 0x0a;
const NO_ARGUMENT: ArgumentResult = { ok: true, arg: { kind: 'none' } };
const EMPTY = new Uint8Array(0);

/** Counted arguments longer than this are skipped: no name or number the scan needs is this long. */
export const KEEP_ARGUMENT_BYTES = 4096;
/** How much a cursor reads from its source at a time. */
const WINDOW_BYTES = 1024 * 1024;
/** The longest text line (protocol 0's arguments) a scan reads; longer ones are a limit. */
export const MAX_LINE_BYTES = 256 * 1024 * 1024;

/**
 * A forward-only cursor over a byte source (or bytes in memory), reading it through a window:
 * every read returns undefined instead of running past the end, and skipped bytes are never
 * read. Offsets are absolute in the source.
 */
export class ByteCursor {
  private bytes: Uint8Array;
  /** Source offset of bytes[0]. */
  private base: number;
  private position = 0;
  private readonly source: ByteSource | undefined;
  private readonly end: number;
  /** Set when a line ran past MAX_LINE_BYTES. */
  lineTooLong = false;

  /** Over `input` from `start` to `end` (default: all of it). */
  constructor(input: Uint8Array | ByteSource, start = 0, end?: number) {
    if (input instanceof Uint8Array) {
      this.source = undefined;
      this.bytes = input;
      this.end = Math.min(end ?? input.length, input.length);
      this.base = 0;
      this.position = Math.min(start, this.end);
    } else {
      this.source = input;
      this.end = Math.min(end ?? input.size, input.size);
      this.bytes = EMPTY;
      this.base = Math.min(start, this.end);
    }
  }

  get offset(): number {
    return this.base + this.position;
  }

  get remaining(): number {
    return this.end - this.offset;
  }

  /** Makes `count` bytes available at the position; false if they run past the end. */
  private ensure(count: number): boolean {
    if (this.position + count <= this.bytes.length && this.base + this.position + count <= this.end) return true;
    if (this.source === undefined || count > this.remaining) return false;
    const offset = this.offset;
    const length = Math.min(Math.max(WINDOW_BYTES, count), this.end - offset);
    this.bytes = this.source.read(offset, length);
    this.base = offset;
    this.position = 0;
    return this.bytes.length >= count;
  }

  nextByte(): number | undefined {
    if (this.position < this.bytes.length && this.base + this.position < this.end) return this.bytes[this.position++];
    if (!this.ensure(1)) return undefined;
    return this.bytes[this.position++];
  }

  take(count: number): Uint8Array | undefined {
    if (!(count >= 0) || !this.ensure(count)) return undefined;
    const view = this.bytes.subarray(this.position, this.position + count);
    this.position += count;
    return view;
  }

  /** Moves past `count` bytes without reading them; false (and no move) if they run past the end. */
  skip(count: number): boolean {
    if (!(count >= 0 && count <= this.remaining)) return false;
    if (this.position + count <= this.bytes.length) {
      this.position += count;
    } else {
      this.base = this.offset + count;
      this.bytes = EMPTY;
      this.position = 0;
    }
    return true;
  }

  /** The bytes up to the next newline (excluded), moving past it; undefined if there is none. */
  line(): Uint8Array | undefined {
    for (;;) {
      const limit = Math.min(this.bytes.length, this.end - this.base);
      const end = this.bytes.subarray(0, limit).indexOf(NEWLINE, this.position);
      if (end !== -1) {
        const view = this.bytes.subarray(this.position, end);
        this.position = end + 1;
        return view;
      }
      const have = limit - this.position;
      if (this.source === undefined || have >= this.remaining) return undefined;
      if (have >= MAX_LINE_BYTES) {
        this.lineTooLong = true;
        return undefined;
      }
      if (!this.ensure(Math.min(this.remaining, Math.max(2 * have, WINDOW_BYTES)))) return undefined;
    }
  }

  /**
   * A little-endian unsigned integer of 1, 2, 4 or 8 bytes. An 8-byte value above 2^53 comes
   * back rounded, which is harmless: it is only ever a length compared with what remains.
   */
  unsigned(size: 1 | 2 | 4 | 8): number | undefined {
    if (!this.ensure(size)) return undefined;
    // Read in place: a subarray per integer argument would dominate the scan's allocations.
    let value = 0;
    for (let i = this.position + size - 1; i >= this.position; i--) value = value * 256 + (this.bytes[i] ?? 0);
    this.position += size;
    return value;
  }

  /** A little-endian signed 32-bit integer (BININT, EXT4, and the lengths of LONG4, BINSTRING). */
  signed32(): number | undefined {
    const value = this.unsigned(4);
    return value === undefined ? undefined : value | 0;
  }
}

/**
 * Reads the inline argument of an opcode whose argument kind is `kind`, advancing the cursor.
 * Never throws: a truncated or negative length is an `ok: false` result.
 */
export function readArgument(cursor: ByteCursor, kind: PickleArgKind): ArgumentResult {
  switch (kind) {
    case 'none':
      return NO_ARGUMENT;
    case 'uint1':
      return integer(cursor.unsigned(1), 1);
    case 'uint2':
      return integer(cursor.unsigned(2), 2);
    case 'uint4':
      return integer(cursor.unsigned(4), 4);
    case 'uint8':
      return integer(cursor.unsigned(8), 8);
    case 'int4':
      return integer(cursor.signed32(), 4);
    case 'float8':
      return counted(cursor, 8);
    case 'decimalnl_short':
    case 'decimalnl_long':
    case 'floatnl':
    case 'stringnl':
    case 'stringnl_noescape':
    case 'unicodestringnl':
      return line(cursor);
    case 'stringnl_noescape_pair': {
      const first = cursor.line();
      const second = first === undefined ? undefined : cursor.line();
      if (first === undefined || second === undefined) return truncatedLine(cursor);
      return { ok: true, arg: { kind: 'pair', first, second } };
    }
    case 'long1':
    case 'string1':
    case 'bytes1':
    case 'unicodestring1':
      return countedBy(cursor, cursor.unsigned(1), 1);
    case 'long4':
    case 'string4':
      // Signed in pickletools and pickle.py, which refuse a negative count. (The C loader
      // reads BINSTRING's count unsigned; a count of 2 GiB or more is refused either way.)
      return countedBy(cursor, cursor.signed32(), 4);
    case 'bytes4':
    case 'unicodestring4':
      return countedBy(cursor, cursor.unsigned(4), 4);
    case 'bytes8':
    case 'bytearray8':
    case 'unicodestring8':
      return countedBy(cursor, cursor.unsigned(8), 8);
  }
}

function integer(value: number | undefined, size: number): ArgumentResult {
  if (value === undefined) return { ok: false, reason: `truncated: a ${size}-byte argument runs past the end` };
  return { ok: true, arg: { kind: 'int', value } };
}

function line(cursor: ByteCursor): ArgumentResult {
  const bytes = cursor.line();
  if (bytes === undefined) return truncatedLine(cursor);
  return { ok: true, arg: { kind: 'line', bytes } };
}

function truncatedLine(cursor: ByteCursor): ArgumentResult {
  if (cursor.lineTooLong) return { ok: false, reason: `a text argument longer than ${MAX_LINE_BYTES} bytes` };
  return { ok: false, reason: 'truncated: a text argument has no terminating newline' };
}

function countedBy(cursor: ByteCursor, count: number | undefined, size: number): ArgumentResult {
  if (count === undefined) return { ok: false, reason: `truncated: the ${size}-byte length runs past the end` };
  if (count < 0) return { ok: false, reason: `negative length ${count}` };
  return counted(cursor, count);
}

function counted(cursor: ByteCursor, count: number): ArgumentResult {
  const remaining = cursor.remaining;
  if (count > KEEP_ARGUMENT_BYTES) {
    if (!cursor.skip(count)) return { ok: false, reason: `truncated: needs ${count} bytes, ${remaining} remain` };
    return { ok: true, arg: { kind: 'skipped', length: count } };
  }
  const bytes = cursor.take(count);
  if (bytes === undefined) {
    return { ok: false, reason: `truncated: needs ${count} bytes, ${remaining} remain` };
  }
  return { ok: true, arg: { kind: 'data', bytes } };
}

// Typed access to a decoded argument. The opcode table fixes each opcode's argument kind, so a
// mismatch is a bug in this module, never a property of the input.

function wrongArgument(op: string): InternalError {
  return new InternalError('E_INTERNAL', `internal error: ${op} was given an argument of the wrong kind`);
}

/** @throws InternalError E_INTERNAL if `arg` is not an integer argument */
export function intOf(arg: PickleArgument, op: string): number {
  if (arg.kind !== 'int') throw wrongArgument(op);
  return arg.value;
}

/** @throws InternalError E_INTERNAL if `arg` is not a line argument */
export function lineOf(arg: PickleArgument, op: string): Uint8Array {
  if (arg.kind !== 'line') throw wrongArgument(op);
  return arg.bytes;
}

/**
 * Counted data, or undefined when it was too long to keep (see KEEP_ARGUMENT_BYTES).
 * @throws InternalError E_INTERNAL if `arg` is not counted data
 */
export function dataOf(arg: PickleArgument, op: string): Uint8Array | undefined {
  if (arg.kind === 'skipped') return undefined;
  if (arg.kind !== 'data') throw wrongArgument(op);
  return arg.bytes;
}

/** @throws InternalError E_INTERNAL if `arg` is not a pair of lines */
export function pairOf(arg: PickleArgument, op: string): readonly [Uint8Array, Uint8Array] {
  if (arg.kind !== 'pair') throw wrongArgument(op);
  return [arg.first, arg.second];
}
