/**
 * UTF-8 bytes built from many small pieces, straight into one buffer, never as a string.
 * `+=` over the 100,000 pieces of a large link builds a rope of as many nodes, which is then
 * flattened and encoded once more: three copies of the text, and a busy garbage collector.
 * Here the text exists once, as bytes; with a sink it never exists whole, only chunk by chunk.
 */

/** Receives each full chunk (and the last, partial one at `finish`); the bytes are reused afterwards. */
export type ByteSink = (chunk: Uint8Array) => void;

const DEFAULT_CHUNK_BYTES = 1 << 20;
const DEFAULT_INITIAL_BYTES = 64 * 1024;

export class ByteWriter {
  private buffer: Buffer;
  private pos = 0;

  /**
   * @param sink where full chunks go, in a buffer of `bytes` that is reused; without a sink the
   *   buffer starts at `bytes` and grows, and `finish` returns everything written
   */
  constructor(
    private readonly sink?: ByteSink,
    bytes: number = sink === undefined ? DEFAULT_INITIAL_BYTES : DEFAULT_CHUNK_BYTES,
  ) {
    this.buffer = Buffer.allocUnsafe(bytes);
  }

  byte(b: number): void {
    this.ensure(1);
    this.buffer[this.pos++] = b;
  }

  /** Text known to be ASCII (one byte per unit). */
  ascii(text: string): void {
    this.ensure(text.length);
    this.pos += this.buffer.write(text, this.pos, 'latin1');
  }

  /**
   * Text whose every unit is below 0x100, one byte per unit, copied by a loop (the caller has
   * checked: for ASCII this is the UTF-8). For the short pieces of a large link a loop the JIT
   * compiles costs less than a native call per piece.
   */
  latin1(text: string): void {
    this.ensure(text.length);
    const buffer = this.buffer;
    let p = this.pos;
    for (let i = 0; i < text.length; i++) buffer[p++] = text.charCodeAt(i);
    this.pos = p;
  }

  /** Any text, as UTF-8 (a lone surrogate becomes U+FFFD: callers refuse those first). */
  utf8(text: string): void {
    // Three bytes per UTF-16 unit is the most UTF-8 needs (an astral character: 4 for 2 units).
    this.ensure(text.length * 3);
    this.pos += this.buffer.write(text, this.pos, 'utf8');
  }

  /**
   * Writes `"text"` and returns true when every unit of `text` lies in `lowest..highest` (both
   * ASCII) and none is a quote or a backslash: then no encoder would escape anything. Otherwise
   * writes nothing and returns false, and the caller quotes it the long way. A loop the JIT
   * compiles: the strings of a link are short (names, algorithms, digests), and a native call
   * per string costs more.
   */
  plainQuoted(text: string, lowest: number, highest: number): boolean {
    this.ensure(text.length + 2);
    const buffer = this.buffer;
    let p = this.pos;
    buffer[p++] = 0x22;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c < lowest || c > highest || c === 0x22 || c === 0x5c) return false;
      buffer[p++] = c;
    }
    buffer[p++] = 0x22;
    this.pos = p;
    return true;
  }

  /**
   * Ends the output. Without a sink: the bytes written (a view of the buffer, not a copy). With
   * a sink: hands it the last chunk and returns an empty array.
   */
  finish(): Uint8Array {
    if (this.sink === undefined) return new Uint8Array(this.buffer.buffer, this.buffer.byteOffset, this.pos);
    this.flush();
    return new Uint8Array(0);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buffer.length) return;
    if (this.sink !== undefined) {
      this.flush();
      if (n > this.buffer.length) this.buffer = Buffer.allocUnsafe(n);
      return;
    }
    const grown = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.pos + n));
    this.buffer.copy(grown, 0, 0, this.pos);
    this.buffer = grown;
  }

  private flush(): void {
    if (this.pos === 0) return;
    this.sink?.(this.buffer.subarray(0, this.pos));
    this.pos = 0;
  }
}
