import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { DecompressError } from './decompress-error.js';

/**
 * A bounded LZMA decoder for joblib's `lzma` (the .lzma "alone" format) and `xz` (the .xz
 * container with LZMA2) compressors, which Node.js lacks. It follows the LZMA specification
 * (Igor Pavlov's LzmaSpec.cpp) and the .xz file format 1.0.4; it decodes into memory and
 * stops with an error at `maxOutput` bytes, so a bomb costs at most that. Only what Python's
 * lzma module writes is accepted: in .xz, LZMA2 as the only filter, CRC32/CRC64/SHA-256
 * checks (verified), concatenated streams.
 */

const PROB_INIT = 1024;

class Output {
  bytes: Uint8Array;
  length = 0;
  /** Matches may not reach before this (an LZMA2 dictionary reset). */
  dictStart = 0;
  constructor(private readonly max: number) {
    this.bytes = new Uint8Array(Math.min(max, 1 << 20));
  }

  private grow(need: number): void {
    if (need > this.max) throw new DecompressError(`decompresses to more than ${this.max} bytes`, true);
    let size = this.bytes.length;
    while (size < need) size = Math.min(this.max, size * 2);
    const next = new Uint8Array(size);
    next.set(this.bytes.subarray(0, this.length));
    this.bytes = next;
  }

  put(byte: number): void {
    if (this.length >= this.bytes.length) this.grow(this.length + 1);
    this.bytes[this.length++] = byte;
  }

  copy(distance: number, length: number): void {
    if (distance > this.length - this.dictStart || distance <= 0) throw new DecompressError('a match reaches before the start of the dictionary');
    if (this.length + length > this.bytes.length) this.grow(this.length + length);
    let from = this.length - distance;
    for (let i = 0; i < length; i++) this.bytes[this.length++] = this.bytes[from++] as number;
  }

  back(distance: number): number {
    const at = this.length - distance;
    return at >= this.dictStart ? (this.bytes[at] as number) : 0;
  }

  append(data: Uint8Array): void {
    if (this.length + data.length > this.bytes.length) this.grow(this.length + data.length);
    this.bytes.set(data, this.length);
    this.length += data.length;
  }
}

class RangeDecoder {
  private range = 0xffffffff;
  private code = 0;
  pos: number;
  constructor(
    private readonly input: Uint8Array,
    start: number,
    private readonly end: number,
  ) {
    this.pos = start;
    if (this.byte() !== 0) throw new DecompressError('the range coder does not start with 0');
    for (let i = 0; i < 4; i++) this.code = ((this.code << 8) | this.byte()) >>> 0;
    if (this.code === this.range) throw new DecompressError('the range coder starts with an invalid code');
  }

  private byte(): number {
    if (this.pos >= this.end) throw new DecompressError('truncated compressed data');
    return this.input[this.pos++] as number;
  }

  get finishedOk(): boolean {
    return this.code === 0;
  }

  private normalize(): void {
    if (this.range < 0x1000000) {
      this.range = (this.range << 8) >>> 0;
      this.code = ((this.code << 8) | this.byte()) >>> 0;
    }
  }

  bit(probs: Uint16Array, i: number): number {
    const p = probs[i] as number;
    const bound = (this.range >>> 11) * p;
    let bit: number;
    if (this.code < bound) {
      this.range = bound;
      probs[i] = p + ((2048 - p) >>> 5);
      bit = 0;
    } else {
      this.range -= bound;
      this.code -= bound;
      probs[i] = p - (p >>> 5);
      bit = 1;
    }
    this.normalize();
    return bit;
  }

  direct(count: number): number {
    let result = 0;
    for (let i = 0; i < count; i++) {
      this.range >>>= 1;
      let bit = 0;
      if (this.code >= this.range) {
        this.code -= this.range;
        bit = 1;
      }
      result = ((result << 1) | bit) >>> 0;
      this.normalize();
    }
    return result;
  }

  tree(probs: Uint16Array, offset: number, bits: number): number {
    let m = 1;
    for (let i = 0; i < bits; i++) m = (m << 1) + this.bit(probs, offset + m);
    return m - (1 << bits);
  }

  reverse(probs: Uint16Array, offset: number, bits: number): number {
    let m = 1;
    let symbol = 0;
    for (let i = 0; i < bits; i++) {
      const bit = this.bit(probs, offset + m);
      m = (m << 1) + bit;
      symbol |= bit << i;
    }
    return symbol;
  }
}

class LenDecoder {
  readonly probs = new Uint16Array(2 + 16 * 8 + 16 * 8 + 256 + 1).fill(PROB_INIT);
  decode(rc: RangeDecoder, posState: number): number {
    if (rc.bit(this.probs, 0) === 0) return rc.tree(this.probs, 2 + posState * 8, 3);
    if (rc.bit(this.probs, 1) === 0) return 8 + rc.tree(this.probs, 2 + 128 + posState * 8, 3);
    return 16 + rc.tree(this.probs, 2 + 256, 8);
  }
}

/** The LZMA decoder state: probabilities, state and reps (kept across LZMA2 chunks). */
class LzmaDecoder {
  lc = 0;
  lp = 0;
  pb = 0;
  private literal = new Uint16Array(0);
  private readonly isMatch = new Uint16Array(12 << 4);
  private readonly isRep = new Uint16Array(12);
  private readonly isRepG0 = new Uint16Array(12);
  private readonly isRepG1 = new Uint16Array(12);
  private readonly isRepG2 = new Uint16Array(12);
  private readonly isRep0Long = new Uint16Array(12 << 4);
  private readonly posSlot = new Uint16Array(4 << 6);
  private readonly posDecoders = new Uint16Array(1 + 128 - 14);
  private readonly align = new Uint16Array(1 << 4);
  private len = new LenDecoder();
  private repLen = new LenDecoder();
  private state = 0;
  private reps = [0, 0, 0, 0];

  setProperties(byte: number): void {
    if (byte >= 9 * 5 * 5) throw new DecompressError(`invalid LZMA properties byte ${byte}`);
    this.lc = byte % 9;
    this.lp = Math.floor(byte / 9) % 5;
    this.pb = Math.floor(byte / 45);
  }

  reset(): void {
    this.literal = new Uint16Array(0x300 << (this.lc + this.lp)).fill(PROB_INIT);
    for (const a of [this.isMatch, this.isRep, this.isRepG0, this.isRepG1, this.isRepG2, this.isRep0Long, this.posSlot, this.posDecoders, this.align]) a.fill(PROB_INIT);
    this.len = new LenDecoder();
    this.repLen = new LenDecoder();
    this.state = 0;
    this.reps = [0, 0, 0, 0];
  }

  /**
   * Decodes until `size` more bytes were produced (or, when size is undefined, until the end
   * marker). Returns true if an end marker was read.
   */
  decode(rc: RangeDecoder, out: Output, size: number | undefined, allowEndMarker: boolean): boolean {
    const target = size === undefined ? Infinity : out.length + size;
    const pbMask = (1 << this.pb) - 1;
    const lpMask = (1 << this.lp) - 1;
    while (out.length < target) {
      const posState = out.length & pbMask;
      const s = this.state;
      if (rc.bit(this.isMatch, (s << 4) + posState) === 0) {
        const prev = out.back(1);
        const base = 0x300 * (((out.length & lpMask) << this.lc) + (prev >>> (8 - this.lc)));
        let symbol = 1;
        if (s >= 7) {
          let matchByte = out.back(this.reps[0]! + 1);
          do {
            const matchBit = (matchByte >>> 7) & 1;
            matchByte <<= 1;
            const bit = rc.bit(this.literal, base + ((1 + matchBit) << 8) + symbol);
            symbol = (symbol << 1) | bit;
            if (matchBit !== bit) break;
          } while (symbol < 0x100);
        }
        while (symbol < 0x100) symbol = (symbol << 1) | rc.bit(this.literal, base + symbol);
        out.put(symbol - 0x100);
        this.state = s < 4 ? 0 : s < 10 ? s - 3 : s - 6;
        continue;
      }
      let length: number;
      if (rc.bit(this.isRep, s) !== 0) {
        if (out.length === out.dictStart) throw new DecompressError('a repeated match before any data');
        if (rc.bit(this.isRepG0, s) === 0) {
          if (rc.bit(this.isRep0Long, (s << 4) + posState) === 0) {
            this.state = s < 7 ? 9 : 11;
            out.copy(this.reps[0]! + 1, 1);
            continue;
          }
        } else {
          let dist: number;
          if (rc.bit(this.isRepG1, s) === 0) {
            dist = this.reps[1]!;
          } else {
            if (rc.bit(this.isRepG2, s) === 0) {
              dist = this.reps[2]!;
            } else {
              dist = this.reps[3]!;
              this.reps[3] = this.reps[2]!;
            }
            this.reps[2] = this.reps[1]!;
          }
          this.reps[1] = this.reps[0]!;
          this.reps[0] = dist;
        }
        length = this.repLen.decode(rc, posState);
        this.state = s < 7 ? 8 : 11;
      } else {
        this.reps[3] = this.reps[2]!;
        this.reps[2] = this.reps[1]!;
        this.reps[1] = this.reps[0]!;
        length = this.len.decode(rc, posState);
        this.state = s < 7 ? 7 : 10;
        const dist = this.distance(rc, length);
        if (dist === 0xffffffff) {
          if (!allowEndMarker) throw new DecompressError('an end marker where none may be');
          return true;
        }
        this.reps[0] = dist;
      }
      const count = length + 2;
      if (out.length + count > target) throw new DecompressError('a match runs past the declared size');
      out.copy(this.reps[0]! + 1, count);
    }
    return false;
  }

  private distance(rc: RangeDecoder, length: number): number {
    const lenState = Math.min(length, 3);
    const slot = rc.tree(this.posSlot, lenState << 6, 6);
    if (slot < 4) return slot;
    const bits = (slot >>> 1) - 1;
    let dist = ((2 | (slot & 1)) << bits) >>> 0;
    if (slot < 14) {
      dist = (dist + rc.reverse(this.posDecoders, dist - slot, bits)) >>> 0;
    } else {
      dist = (dist + ((rc.direct(bits - 4) << 4) >>> 0)) >>> 0;
      dist = (dist + rc.reverse(this.align, 0, 4)) >>> 0;
    }
    return dist;
  }
}

/** Decodes the .lzma "alone" format (Python's lzma.FORMAT_ALONE). */
export function decodeLzmaAlone(input: Uint8Array, maxOutput: number): Uint8Array {
  if (input.length < 13) throw new DecompressError('truncated .lzma header');
  const decoder = new LzmaDecoder();
  decoder.setProperties(input[0] as number);
  let size: number | undefined = 0;
  let unknown = true;
  for (let i = 0; i < 8; i++) if (input[5 + i] !== 0xff) unknown = false;
  if (!unknown) {
    size = 0;
    for (let i = 7; i >= 0; i--) size = size * 256 + (input[5 + i] as number);
    if (size > maxOutput) throw new DecompressError(`declares ${size} bytes, over the limit of ${maxOutput}`, true);
  }
  decoder.reset();
  const out = new Output(maxOutput);
  const rc = new RangeDecoder(input, 13, input.length);
  const marker = decoder.decode(rc, out, unknown ? undefined : size, true);
  if (unknown && !marker) throw new DecompressError('no end marker');
  if (!rc.finishedOk) throw new DecompressError('corrupt data (the range coder did not end cleanly)');
  if (rc.pos !== input.length) throw new DecompressError(`${input.length - rc.pos} bytes after the compressed data`);
  return out.bytes.subarray(0, out.length);
}

function readVarint(input: Uint8Array, at: { pos: number }, end: number): number {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 9; i++) {
    if (at.pos >= end) throw new DecompressError('truncated .xz header');
    const b = input[at.pos++] as number;
    value += (b & 0x7f) * scale;
    if ((b & 0x80) === 0) return value;
    scale *= 128;
  }
  throw new DecompressError('an invalid .xz number');
}

function u32le(b: Uint8Array, at: number): number {
  return ((b[at] as number) | ((b[at + 1] as number) << 8) | ((b[at + 2] as number) << 16) | ((b[at + 3] as number) << 24)) >>> 0;
}

/** CRC-64/XZ (ECMA-182, reflected), as two 32-bit halves. */
const CRC64_TABLE = (() => {
  const lo = new Uint32Array(256);
  const hi = new Uint32Array(256);
  const polyLo = 0xd7870f42;
  const polyHi = 0xc96c5795;
  for (let i = 0; i < 256; i++) {
    let l = i;
    let h = 0;
    for (let k = 0; k < 8; k++) {
      const carry = l & 1;
      l = ((l >>> 1) | ((h & 1) << 31)) >>> 0;
      h >>>= 1;
      if (carry) {
        l = (l ^ polyLo) >>> 0;
        h = (h ^ polyHi) >>> 0;
      }
    }
    lo[i] = l;
    hi[i] = h;
  }
  return { lo, hi };
})();

function crc64(data: Uint8Array): [number, number] {
  let l = 0xffffffff;
  let h = 0xffffffff;
  for (let i = 0; i < data.length; i++) {
    const index = (l ^ (data[i] as number)) & 0xff;
    l = (((l >>> 8) | ((h & 0xff) << 24)) ^ (CRC64_TABLE.lo[index] as number)) >>> 0;
    h = ((h >>> 8) ^ (CRC64_TABLE.hi[index] as number)) >>> 0;
  }
  return [(l ^ 0xffffffff) >>> 0, (h ^ 0xffffffff) >>> 0];
}

/** Decodes an .xz file (Python's lzma.FORMAT_XZ), concatenated streams included. */
export function decodeXz(input: Uint8Array, maxOutput: number): Uint8Array {
  const out = new Output(maxOutput);
  let pos = 0;
  const magic = [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00];
  let streams = 0;
  while (pos < input.length) {
    // Stream padding (multiples of four zero bytes) between streams.
    if (streams > 0 && input[pos] === 0) {
      while (pos < input.length && input[pos] === 0) pos++;
      if (pos % 4 !== 0) throw new DecompressError('stream padding is not a multiple of four bytes');
      if (pos === input.length) break;
    }
    if (pos + 12 > input.length || !magic.every((b, i) => input[pos + i] === b)) throw new DecompressError('not an .xz stream header');
    const flags = input.subarray(pos + 6, pos + 8);
    if (flags[0] !== 0 || (flags[1] as number) > 0x0f) throw new DecompressError('unsupported .xz stream flags');
    if ((crc32(flags) >>> 0) !== u32le(input, pos + 8)) throw new DecompressError('the .xz stream header CRC does not match');
    const check = flags[1] as number;
    const checkSize = check === 0 ? 0 : check === 1 ? 4 : check === 4 ? 8 : check === 10 ? 32 : -1;
    if (checkSize < 0) throw new DecompressError(`unsupported .xz check type ${check}`);
    pos += 12;
    const decoder = new LzmaDecoder();
    for (;;) {
      const headerSize = input[pos];
      if (headerSize === undefined) throw new DecompressError('truncated .xz stream');
      if (headerSize === 0) break; // the index
      const realSize = (headerSize + 1) * 4;
      if (pos + realSize > input.length) throw new DecompressError('truncated .xz block header');
      if ((crc32(input.subarray(pos, pos + realSize - 4)) >>> 0) !== u32le(input, pos + realSize - 4)) throw new DecompressError('an .xz block header CRC does not match');
      const blockFlags = input[pos + 1] as number;
      if ((blockFlags & 0x3c) !== 0) throw new DecompressError('reserved .xz block flags');
      const at = { pos: pos + 2 };
      const headerEnd = pos + realSize - 4;
      if (blockFlags & 0x40) readVarint(input, at, headerEnd);
      if (blockFlags & 0x80) readVarint(input, at, headerEnd);
      if ((blockFlags & 0x03) !== 0) throw new DecompressError('an .xz filter chain other than LZMA2 alone');
      const filter = readVarint(input, at, headerEnd);
      const propsSize = readVarint(input, at, headerEnd);
      if (filter !== 0x21 || propsSize !== 1) throw new DecompressError(`.xz filter 0x${filter.toString(16)} is not LZMA2`);
      at.pos += 1; // dictionary size: the whole output is kept, so it does not matter
      pos += realSize;
      const blockStart = out.length;
      pos = decodeLzma2(input, pos, decoder, out);
      while (pos % 4 !== 0) if (input[pos++] !== 0) throw new DecompressError('non-zero .xz block padding');
      if (pos + checkSize > input.length) throw new DecompressError('truncated .xz check');
      const data = out.bytes.subarray(blockStart, out.length);
      const expected = input.subarray(pos, pos + checkSize);
      if (check === 1 && (crc32(data) >>> 0) !== u32le(expected, 0)) throw new DecompressError('the .xz CRC32 check does not match');
      if (check === 4) {
        const [l, h] = crc64(data);
        if (l !== u32le(expected, 0) || h !== u32le(expected, 4)) throw new DecompressError('the .xz CRC64 check does not match');
      }
      if (check === 10 && !createHash('sha256').update(data).digest().equals(expected)) throw new DecompressError('the .xz SHA-256 check does not match');
      pos += checkSize;
    }
    // The index, then the stream footer.
    const indexStart = pos;
    const at = { pos: pos + 1 };
    const records = readVarint(input, at, input.length);
    for (let i = 0; i < records; i++) {
      readVarint(input, at, input.length);
      readVarint(input, at, input.length);
    }
    while (at.pos % 4 !== 0) if (input[at.pos++] !== 0) throw new DecompressError('non-zero .xz index padding');
    if (at.pos + 4 > input.length || (crc32(input.subarray(indexStart, at.pos)) >>> 0) !== u32le(input, at.pos)) throw new DecompressError('the .xz index CRC does not match');
    pos = at.pos + 4;
    if (pos + 12 > input.length || input[pos + 10] !== 0x59 || input[pos + 11] !== 0x5a) throw new DecompressError('no .xz stream footer');
    pos += 12;
    streams++;
  }
  if (streams === 0) throw new DecompressError('no .xz stream');
  return out.bytes.subarray(0, out.length);
}

/** Decodes LZMA2 chunks from `pos` to their end marker; returns the position after it. */
function decodeLzma2(input: Uint8Array, pos: number, decoder: LzmaDecoder, out: Output): number {
  let needProps = true;
  let needDictReset = true;
  for (;;) {
    const control = input[pos++];
    if (control === undefined) throw new DecompressError('truncated LZMA2 data');
    if (control === 0x00) return pos;
    if (control === 0x01 || control === 0x02) {
      if (control === 0x01) {
        out.dictStart = out.length;
        needDictReset = false;
      } else if (needDictReset) throw new DecompressError('LZMA2 data without a dictionary reset');
      if (pos + 2 > input.length) throw new DecompressError('truncated LZMA2 chunk');
      const size = (((input[pos] as number) << 8) | (input[pos + 1] as number)) + 1;
      pos += 2;
      if (pos + size > input.length) throw new DecompressError('truncated LZMA2 chunk');
      out.append(input.subarray(pos, pos + size));
      pos += size;
      continue;
    }
    if (control < 0x80) throw new DecompressError(`invalid LZMA2 control byte 0x${control.toString(16)}`);
    if (pos + 4 > input.length) throw new DecompressError('truncated LZMA2 chunk');
    const unpacked = ((control & 0x1f) << 16) + ((input[pos] as number) << 8) + (input[pos + 1] as number) + 1;
    const packed = (((input[pos + 2] as number) << 8) | (input[pos + 3] as number)) + 1;
    pos += 4;
    const reset = (control >>> 5) & 0x03;
    if (reset === 3) {
      out.dictStart = out.length;
      needDictReset = false;
    } else if (needDictReset) throw new DecompressError('LZMA2 data without a dictionary reset');
    if (reset >= 2) {
      const props = input[pos++];
      if (props === undefined) throw new DecompressError('truncated LZMA2 chunk');
      decoder.setProperties(props);
      if (decoder.lc + decoder.lp > 4) throw new DecompressError('LZMA2 properties with lc + lp over 4');
      needProps = false;
    } else if (needProps) throw new DecompressError('an LZMA2 chunk without properties');
    if (reset >= 1) decoder.reset();
    if (pos + packed > input.length) throw new DecompressError('truncated LZMA2 chunk');
    const rc = new RangeDecoder(input, pos, pos + packed);
    decoder.decode(rc, out, unpacked, false);
    if (rc.pos !== pos + packed) throw new DecompressError('an LZMA2 chunk whose compressed size does not match');
    pos += packed;
  }
}
