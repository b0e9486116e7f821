/**
 * Why decompressing failed: over the cap, or invalid data. Its own module so that the
 * decoders (bzip2.ts, lzma.ts) and decompress.ts, which imports them, can all throw it.
 */
export class DecompressError extends Error {
  constructor(
    message: string,
    /** The output cap was reached (a limit, not a malformation). */
    readonly limit = false,
  ) {
    super(message);
  }
}
