// Types for seek-bzip 2 (pure-JavaScript bzip2 decoding; it ships none).
declare module 'seek-bzip' {
  interface OutputStream {
    writeByte(byte: number): void;
    write?(buffer: Uint8Array, offset: number, length: number): number;
    flush?(): void;
  }
  const Bunzip: {
    decode(input: Uint8Array, output: OutputStream | number | undefined, multistream?: boolean): Uint8Array | undefined;
  };
  export default Bunzip;
}
