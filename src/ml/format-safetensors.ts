import { parseJson } from '../canonical/parse.js';
import { InTotoError } from '../errors.js';
import type { JsonValue } from '../canonical/json.js';
import type { ScanContext } from './scan-context.js';
import type { ByteSource } from './source.js';

/**
 * safetensors: an 8-byte little-endian header length N, N bytes of JSON, then the tensor data.
 * Loading runs no code; the danger is a reader trusting the header. So the header is held to
 * what the reference implementation (huggingface/safetensors) accepts, and stricter: N capped
 * and within the file; strict JSON (no duplicate keys); each tensor exactly `dtype`, `shape`,
 * `data_offsets`; the dtype from a fixed list; `shape x dtype size` equal to the offsets'
 * span; offsets in bounds, contiguous from 0 and covering the data exactly (no gap, overlap
 * or trailing byte); `__metadata__` a map of strings. Only the header is read.
 */

/** dtype -> size in bits. */
const DTYPE_BITS: ReadonlyMap<string, number> = new Map([
  ['BOOL', 8],
  ['U8', 8],
  ['I8', 8],
  ['F8_E5M2', 8],
  ['F8_E4M3', 8],
  ['F8_E8M0', 8],
  ['I16', 16],
  ['U16', 16],
  ['F16', 16],
  ['BF16', 16],
  ['I32', 32],
  ['U32', 32],
  ['F32', 32],
  ['C64', 64],
  ['F64', 64],
  ['I64', 64],
  ['U64', 64],
  ['F4', 4],
  ['F6_E2M3', 6],
  ['F6_E3M2', 6],
]);

function u64le(b: Uint8Array): number {
  let v = 0;
  for (let i = 7; i >= 0; i--) v = v * 256 + (b[i] ?? 0);
  return v;
}

/** The header length a file starts with, if it could be safetensors (`{` at byte 8). */
export function safetensorsHeaderLength(head: Uint8Array): number | undefined {
  return head.length >= 9 && head[8] === 0x7b ? u64le(head) : undefined;
}

/** Scans a safetensors file or member; reads only its header. */
export function scanSafetensors(ctx: ScanContext, source: ByteSource, member: string): void {
  const bad = (reason: string): void => ctx.finding(member, 'header', 'E_MODEL_MALFORMED', reason);
  const n = u64le(source.read(0, 8));
  if (8 + n > source.size) return bad(`a header length of ${n} bytes, past the end of the ${source.size}-byte file`);
  if (n > ctx.limits.maxHeaderBytes) {
    ctx.finding(member, 'header', 'E_LIMIT', `a header of ${n} bytes, over the limit of ${ctx.limits.maxHeaderBytes}`);
    return;
  }
  let header: JsonValue;
  try {
    header = parseJson(source.read(8, n), { source: 'safetensors header', maxDepth: 8 });
  } catch (error) {
    return bad(`the header is not strict JSON: ${error instanceof InTotoError ? error.message : String(error)}`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) return bad('the header is not a JSON object');
  const dataLength = source.size - 8 - n;
  const spans: { name: string; begin: number; end: number }[] = [];
  let problems = 0;
  const fail = (reason: string): void => {
    if (problems++ < 20) bad(reason);
  };
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (info === null || typeof info !== 'object' || Array.isArray(info) || !Object.values(info).every((v) => typeof v === 'string')) {
        fail('__metadata__ is not a map of strings');
      }
      continue;
    }
    if (info === null || typeof info !== 'object' || Array.isArray(info)) {
      fail(`tensor ${JSON.stringify(name)} is not an object`);
      continue;
    }
    const keys = Object.keys(info).sort().join(',');
    if (keys !== 'data_offsets,dtype,shape') {
      fail(`tensor ${JSON.stringify(name)} has fields ${keys}, not exactly dtype, shape, data_offsets`);
      continue;
    }
    const { dtype, shape, data_offsets: offsets } = info as { dtype: JsonValue; shape: JsonValue; data_offsets: JsonValue };
    const bits = typeof dtype === 'string' ? DTYPE_BITS.get(dtype) : undefined;
    if (bits === undefined) {
      fail(`tensor ${JSON.stringify(name)}: dtype ${JSON.stringify(dtype)} is not in the dtype list`);
      continue;
    }
    if (!Array.isArray(shape) || !shape.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
      fail(`tensor ${JSON.stringify(name)}: shape is not a list of non-negative integers`);
      continue;
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
      fail(`tensor ${JSON.stringify(name)}: data_offsets is not two non-negative integers`);
      continue;
    }
    const [begin, end] = offsets as [number, number];
    const elements = (shape as number[]).reduce((a, b) => a * b, 1);
    const totalBits = elements * bits;
    if (!Number.isSafeInteger(totalBits) || totalBits % 8 !== 0) {
      fail(`tensor ${JSON.stringify(name)}: shape x dtype is not a whole number of bytes`);
      continue;
    }
    if (end < begin || end - begin !== totalBits / 8) {
      fail(`tensor ${JSON.stringify(name)}: shape ${JSON.stringify(shape)} x ${dtype as string} is ${totalBits / 8} bytes, data_offsets [${begin}, ${end}] span ${end - begin}`);
      continue;
    }
    if (end > dataLength) {
      fail(`tensor ${JSON.stringify(name)}: data_offsets [${begin}, ${end}] run past the ${dataLength} bytes of data`);
      continue;
    }
    spans.push({ name, begin, end });
  }
  if (problems > 0) return;
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (const s of spans) {
    if (s.begin < at) return bad(`tensor ${JSON.stringify(s.name)} overlaps the tensor before it (data_offsets start at ${s.begin}, before ${at})`);
    if (s.begin > at) return bad(`${s.begin - at} bytes of data at offset ${at} belong to no tensor`);
    at = s.end;
  }
  if (at !== dataLength) return bad(`${dataLength - at} bytes of data after the last tensor belong to no tensor`);
  ctx.member({ name: `${member || '(file)'}: ${spans.length} tensors (not read)`, format: 'array-data', size: dataLength });
}
