import { DecompressError } from './decompress-error.js';

/**
 * A bounded bzip2 decoder for joblib's `bz2` compressor (Node.js has none, and the npm
 * decoders use deprecated Buffer APIs). It follows the format as bzip2 1.0 writes it: per
 * block, a Huffman-coded, move-to-front, run-length-coded Burrows-Wheeler transform, then the
 * initial run-length coding; block and stream CRCs are verified; concatenated streams (which
 * Python's bz2 reads) are decoded in turn. Output stops with an error at `maxOutput` bytes.
 */

class BitReader {
  private pos = 0;
  private bit = 0;
  constructor(private readonly input: Uint8Array) {}

  bits(count: number): number {
    let value = 0;
    for (let i = 0; i < count; i++) {
      if (this.pos >= this.input.length) throw new DecompressError('truncated bzip2 data');
      const b = ((this.input[this.pos] as number) >>> (7 - this.bit)) & 1;
      value = value * 2 + b;
      if (++this.bit === 8) {
        this.bit = 0;
        this.pos++;
      }
    }
    return value;
  }

  /** Moves to the next byte boundary; true when input remains there. */
  align(): boolean {
    if (this.bit !== 0) {
      this.bit = 0;
      this.pos++;
    }
    return this.pos < this.input.length;
  }
}

/** The CRC-32 bzip2 uses (MSB first, polynomial 0x04c11db7). */
const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 24;
    for (let k = 0; k < 8; k++) c = c & 0x80000000 ? (c << 1) ^ 0x04c11db7 : c << 1;
    table[i] = c >>> 0;
  }
  return table;
})();

class Output {
  bytes: Uint8Array;
  length = 0;
  constructor(private readonly max: number) {
    this.bytes = new Uint8Array(Math.min(max, 1 << 20));
  }
  put(byte: number, crc: { value: number }): void {
    if (this.length >= this.bytes.length) {
      if (this.length >= this.max) throw new DecompressError(`decompresses to more than ${this.max} bytes`, true);
      const next = new Uint8Array(Math.min(this.max, this.bytes.length * 2));
      next.set(this.bytes);
      this.bytes = next;
    }
    this.bytes[this.length++] = byte;
    crc.value = ((crc.value << 8) ^ (CRC_TABLE[((crc.value >>> 24) ^ byte) & 0xff] as number)) >>> 0;
  }
}

const BLOCK_MAGIC_HI = 0x314159;
const BLOCK_MAGIC_LO = 0x265359;
const END_MAGIC_HI = 0x177245;
const END_MAGIC_LO = 0x385090;

/** Decodes bzip2 data (one or more streams). @throws DecompressError */
export function decodeBzip2(input: Uint8Array, maxOutput: number): Uint8Array {
  const reader = new BitReader(input);
  const out = new Output(maxOutput);
  let streams = 0;
  do {
    if (reader.bits(8) !== 0x42 || reader.bits(8) !== 0x5a || reader.bits(8) !== 0x68) {
      if (streams > 0) throw new DecompressError('bytes after the bzip2 stream');
      throw new DecompressError('not a bzip2 stream');
    }
    const level = reader.bits(8) - 0x30;
    if (level < 1 || level > 9) throw new DecompressError('invalid bzip2 block size');
    const maxBlock = level * 100000;
    let combined = 0;
    for (;;) {
      const hi = reader.bits(24);
      const lo = reader.bits(24);
      if (hi === END_MAGIC_HI && lo === END_MAGIC_LO) {
        if (reader.bits(32) >>> 0 !== combined) throw new DecompressError('the bzip2 stream CRC does not match');
        break;
      }
      if (hi !== BLOCK_MAGIC_HI || lo !== BLOCK_MAGIC_LO) throw new DecompressError('an invalid bzip2 block header');
      const expected = reader.bits(32) >>> 0;
      const crc = { value: 0xffffffff };
      decodeBlock(reader, maxBlock, out, crc);
      const actual = (crc.value ^ 0xffffffff) >>> 0;
      if (actual !== expected) throw new DecompressError('a bzip2 block CRC does not match');
      combined = (((combined << 1) | (combined >>> 31)) ^ actual) >>> 0;
    }
    streams++;
  } while (reader.align());
  return out.bytes.subarray(0, out.length);
}

function decodeBlock(reader: BitReader, maxBlock: number, out: Output, crc: { value: number }): void {
  if (reader.bits(1) !== 0) throw new DecompressError('randomised bzip2 blocks are not supported');
  const origPtr = reader.bits(24);
  // The symbol map: which byte values occur.
  const used: number[] = [];
  const groups = reader.bits(16);
  for (let i = 0; i < 16; i++) {
    if (groups & (0x8000 >>> i)) {
      const bits = reader.bits(16);
      for (let j = 0; j < 16; j++) if (bits & (0x8000 >>> j)) used.push(i * 16 + j);
    }
  }
  if (used.length === 0) throw new DecompressError('a bzip2 block without symbols');
  const alphaSize = used.length + 2;
  const nGroups = reader.bits(3);
  const nSelectors = reader.bits(15);
  if (nGroups < 2 || nGroups > 6 || nSelectors < 1) throw new DecompressError('invalid bzip2 Huffman tables');
  const mtfGroups = Array.from({ length: nGroups }, (_, i) => i);
  const selectors = new Uint8Array(nSelectors);
  for (let i = 0; i < nSelectors; i++) {
    let j = 0;
    while (reader.bits(1) === 1) if (++j >= nGroups) throw new DecompressError('an invalid bzip2 selector');
    const value = mtfGroups[j] as number;
    mtfGroups.splice(j, 1);
    mtfGroups.unshift(value);
    selectors[i] = value;
  }
  // Code lengths, delta-coded, then canonical Huffman tables.
  const tables: { limit: Int32Array; base: Int32Array; perm: Int32Array; minLen: number; maxLen: number }[] = [];
  for (let t = 0; t < nGroups; t++) {
    const lengths = new Uint8Array(alphaSize);
    let len = reader.bits(5);
    for (let s = 0; s < alphaSize; s++) {
      for (;;) {
        if (len < 1 || len > 20) throw new DecompressError('an invalid bzip2 code length');
        if (reader.bits(1) === 0) break;
        len += reader.bits(1) === 0 ? 1 : -1;
      }
      lengths[s] = len;
    }
    let minLen = 32;
    let maxLen = 0;
    for (const l of lengths) {
      minLen = Math.min(minLen, l);
      maxLen = Math.max(maxLen, l);
    }
    const perm = new Int32Array(alphaSize);
    let p = 0;
    for (let l = minLen; l <= maxLen; l++) for (let s = 0; s < alphaSize; s++) if (lengths[s] === l) perm[p++] = s;
    const limit = new Int32Array(maxLen + 2).fill(-1);
    const base = new Int32Array(maxLen + 2);
    let code = 0;
    let index = 0;
    for (let l = minLen; l <= maxLen; l++) {
      let count = 0;
      for (const x of lengths) if (x === l) count++;
      base[l] = index - code;
      code += count;
      index += count;
      limit[l] = code - 1;
      code <<= 1;
    }
    tables.push({ limit, base, perm, minLen, maxLen });
  }
  // Symbols: run lengths (RUNA, RUNB) and move-to-front indices, to the end-of-block symbol.
  const mtf = used.slice();
  const counts = new Int32Array(256);
  const block = new Uint8Array(maxBlock);
  let length = 0;
  let selector = 0;
  let groupLeft = 0;
  let table = tables[0] as (typeof tables)[number];
  let run = 0;
  let runWeight = 1;
  const endOfBlock = alphaSize - 1;
  const flushRun = (): void => {
    if (run === 0) return;
    if (length + run > maxBlock) throw new DecompressError('a bzip2 block longer than its size');
    const value = mtf[0] as number;
    block.fill(value, length, length + run);
    counts[value] = (counts[value] as number) + run;
    length += run;
    run = 0;
    runWeight = 1;
  };
  for (;;) {
    if (groupLeft === 0) {
      if (selector >= nSelectors) throw new DecompressError('bzip2 selectors run out');
      table = tables[selectors[selector++] as number] as (typeof tables)[number];
      groupLeft = 50;
    }
    groupLeft--;
    let l = table.minLen;
    let code = reader.bits(l);
    while (l <= table.maxLen && code > (table.limit[l] as number)) {
      l++;
      code = code * 2 + reader.bits(1);
    }
    if (l > table.maxLen) throw new DecompressError('an invalid bzip2 Huffman code');
    const symbol = table.perm[(table.base[l] as number) + code] as number;
    if (symbol <= 1) {
      run += runWeight << symbol;
      runWeight <<= 1;
      if (run > maxBlock) throw new DecompressError('a bzip2 run longer than its block');
      continue;
    }
    flushRun();
    if (symbol === endOfBlock) break;
    if (length >= maxBlock) throw new DecompressError('a bzip2 block longer than its size');
    const index = symbol - 1;
    const value = mtf[index] as number;
    mtf.splice(index, 1);
    mtf.unshift(value);
    block[length++] = value;
    counts[value] = (counts[value] as number) + 1;
  }
  if (origPtr >= length) throw new DecompressError('an invalid bzip2 origin pointer');
  // Inverse Burrows-Wheeler transform.
  const starts = new Int32Array(256);
  for (let i = 0, sum = 0; i < 256; i++) {
    starts[i] = sum;
    sum += counts[i] as number;
  }
  const next = new Int32Array(length);
  for (let i = 0; i < length; i++) {
    const b = block[i] as number;
    next[starts[b] as number] = i;
    starts[b] = (starts[b] as number) + 1;
  }
  // Undo the initial run-length coding: four equal bytes are followed by a repeat count.
  let at = next[origPtr] as number;
  let previous = -1;
  let same = 0;
  for (let i = 0; i < length; i++) {
    const byte = block[at] as number;
    at = next[at] as number;
    if (same === 4) {
      for (let k = 0; k < byte; k++) out.put(previous, crc);
      same = 0;
      previous = -1;
      continue;
    }
    if (byte === previous) same++;
    else {
      previous = byte;
      same = 1;
    }
    out.put(byte, crc);
  }
}
