import { crc32, deflateRawSync } from 'node:zlib';

/**
 * A zip writer for tests: stored (or deflated) members, with the tricks the scanner must
 * refuse (a wrong CRC, flag bits or a name that differ between the local header and the central
 * directory, duplicate names).
 */

export interface Member {
  readonly name: string;
  readonly data: Uint8Array;
  readonly crc?: number;
  readonly flags?: number;
  readonly localFlags?: number;
  readonly localName?: string;
  readonly deflate?: boolean;
}

const enc = new TextEncoder();
const u16 = (n: number): Uint8Array => Uint8Array.of(n & 0xff, n >>> 8);
const u32 = (n: number): Uint8Array => Uint8Array.of(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff);
const cat = (...parts: Uint8Array[]): Uint8Array => Buffer.concat(parts);

export function zip(members: readonly Member[], options: { prefix?: Uint8Array; trailer?: Uint8Array } = {}): Uint8Array {
  const locals: Uint8Array[] = options.prefix ? [options.prefix] : [];
  const centrals: Uint8Array[] = [];
  let offset = options.prefix?.length ?? 0;
  for (const m of members) {
    const body = m.deflate ? new Uint8Array(deflateRawSync(m.data)) : m.data;
    const crc = m.crc ?? crc32(m.data) >>> 0;
    const flags = m.flags ?? 0;
    const method = m.deflate ? 8 : 0;
    const name = enc.encode(m.name);
    const localName = enc.encode(m.localName ?? m.name);
    const local = cat(u32(0x04034b50), u16(20), u16(m.localFlags ?? flags), u16(method), u16(0), u16(0), u32(crc), u32(body.length), u32(m.data.length), u16(localName.length), u16(0), localName, body);
    centrals.push(cat(u32(0x02014b50), u16(20), u16(20), u16(flags), u16(method), u16(0), u16(0), u32(crc), u32(body.length), u32(m.data.length), u16(name.length), u16(0), u16(0), u16(0), u16(0), u32(0), u32(offset), name));
    locals.push(local);
    offset += local.length;
  }
  const cd = cat(...centrals);
  return cat(...locals, cd, u32(0x06054b50), u16(0), u16(0), u16(members.length), u16(members.length), u32(cd.length), u32(offset), u16(0), options.trailer ?? new Uint8Array(0));
}
