import { existsSync, lstatSync, realpathSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, sep } from 'node:path';
import { ByteCursor } from './pickle-reader.js';
import type { ScanContext } from './scan-context.js';
import type { ByteSource } from './source.js';

/**
 * ONNX models are protobuf (onnx.proto's ModelProto); loading one runs no Python code, but
 * `onnx.load` reads each tensor's `external_data` from the file its `location` names, relative
 * to the model's directory, and before onnx 1.13 (CVE-2022-25882) it followed `..` and
 * absolute paths: a model could pull any readable file into its weights. So every
 * `location` must be a relative path that stays inside the model's directory (no `..`, no
 * absolute path, no symlink out), naming a file that holds the bytes `offset` and `length`
 * ask for. The walk reads messages through a cursor and skips tensor data unread.
 *
 * Also here: recognising a SentencePiece tokenizer model (`spiece.model`), another protobuf,
 * which is inert.
 */

const WIRE_VARINT = 0;
const WIRE_64 = 1;
const WIRE_LEN = 2;
const WIRE_32 = 5;
const MAX_DEPTH = 64;

interface Field {
  readonly number: number;
  readonly wire: number;
  /** Varint value (wire 0). */
  readonly value: number;
  /** Start and end of a length-delimited payload (wire 2), in the source. */
  readonly start: number;
  readonly end: number;
}

/** Reads a varint; undefined when truncated or longer than 10 bytes. */
function varint(cursor: ByteCursor): number | undefined {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    const b = cursor.nextByte();
    if (b === undefined) return undefined;
    value += (b & 0x7f) * scale;
    if ((b & 0x80) === 0) return value;
    scale *= 128;
  }
  return undefined;
}

/**
 * The fields of the message in [start, end), calling `visit` for each; false when the bytes
 * are not a well-formed message (a bad tag, wire type or length).
 */
function walkMessage(source: ByteSource, start: number, end: number, visit: (f: Field) => boolean): boolean {
  const cursor = new ByteCursor(source, start, end);
  while (cursor.remaining > 0) {
    const tag = varint(cursor);
    if (tag === undefined) return false;
    const number = Math.floor(tag / 8);
    const wire = tag % 8;
    if (number === 0) return false;
    let value = 0;
    let payloadStart = cursor.offset;
    let payloadEnd = cursor.offset;
    if (wire === WIRE_VARINT) {
      const v = varint(cursor);
      if (v === undefined) return false;
      value = v;
    } else if (wire === WIRE_64 || wire === WIRE_32) {
      if (!cursor.skip(wire === WIRE_64 ? 8 : 4)) return false;
    } else if (wire === WIRE_LEN) {
      const length = varint(cursor);
      if (length === undefined || length > cursor.remaining) return false;
      payloadStart = cursor.offset;
      payloadEnd = payloadStart + length;
      cursor.skip(length);
    } else {
      return false; // groups (3, 4) are not used by onnx.proto; 6 and 7 do not exist
    }
    if (!visit({ number, wire, value, start: payloadStart, end: payloadEnd })) return false;
  }
  return true;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function text(source: ByteSource, f: Field): string | undefined {
  try {
    return utf8.decode(source.read(f.start, f.end - f.start));
  } catch {
    return undefined;
  }
}

/**
 * True when the file looks like an ONNX ModelProto: a well-formed message with an IR version,
 * a graph and an opset import (the three a model must have; protobuf has no end marker, so
 * these are also what tells a whole model from a truncated one).
 */
export function looksLikeOnnx(source: ByteSource): boolean {
  let irVersion = false;
  let graph = false;
  let opset = false;
  const ok = walkMessage(source, 0, source.size, (f) => {
    if (f.number === 1 && f.wire === WIRE_VARINT) irVersion = true;
    if (f.number === 7 && f.wire === WIRE_LEN) graph = true;
    if (f.number === 8 && f.wire === WIRE_LEN) opset = true;
    return true;
  });
  return ok && irVersion && graph && opset;
}

/** True for a SentencePiece ModelProto: pieces (field 1) and specs (2-5), nothing else. */
export function looksLikeSentencePiece(source: ByteSource): boolean {
  let pieces = 0;
  const ok = walkMessage(source, 0, source.size, (f) => {
    if (f.wire !== WIRE_LEN || f.number < 1 || f.number > 5) return false;
    if (f.number === 1) pieces++;
    return true;
  });
  return ok && pieces > 0;
}

/** Scans an ONNX model: every tensor's external data must stay inside the model's directory. */
export function scanOnnx(ctx: ScanContext, source: ByteSource, member: string): void {
  const bad = (reason: string): void => ctx.finding(member, 'header', 'E_MODEL_MALFORMED', reason);
  let tensors = 0;
  let external = 0;
  const tensor = (start: number, end: number): boolean => {
    tensors++;
    let location: string | undefined;
    let offset: number | undefined;
    let length: number | undefined;
    let dataLocation = 0;
    let name = '';
    const entries: [string | undefined, string | undefined][] = [];
    const ok = walkMessage(source, start, end, (f) => {
      if (f.number === 8 && f.wire === WIRE_LEN) name = text(source, f) ?? '';
      if (f.number === 14 && f.wire === WIRE_VARINT) dataLocation = f.value;
      if (f.number === 13 && f.wire === WIRE_LEN) {
        let key: string | undefined;
        let value: string | undefined;
        const entryOk = walkMessage(source, f.start, f.end, (g) => {
          if (g.number === 1 && g.wire === WIRE_LEN) key = text(source, g);
          if (g.number === 2 && g.wire === WIRE_LEN) value = text(source, g);
          return true;
        });
        if (!entryOk) return false;
        entries.push([key, value]);
      }
      return true;
    });
    if (!ok) return false;
    for (const [key, value] of entries) {
      if (key === 'location') location = value;
      if (key === 'offset') offset = value === undefined || !/^\d+$/.test(value) ? Number.NaN : Number(value);
      if (key === 'length') length = value === undefined || !/^\d+$/.test(value) ? Number.NaN : Number(value);
    }
    if (dataLocation !== 1 && entries.length === 0) return true;
    external++;
    const label = `tensor ${JSON.stringify(name)}`;
    if (dataLocation !== 1) bad(`${label} has external_data but its data_location is not EXTERNAL`);
    if (location === undefined) {
      bad(`${label} is stored externally without a location`);
      return true;
    }
    if (Number.isNaN(offset) || Number.isNaN(length)) bad(`${label}: external data offset or length is not a non-negative integer`);
    checkLocation(ctx, member, label, location, offset ?? 0, length);
    return true;
  };
  const graph = (start: number, end: number, depth: number): boolean => {
    if (depth > MAX_DEPTH) return false;
    return walkMessage(source, start, end, (f) => {
      if (f.wire !== WIRE_LEN) return true;
      if (f.number === 5) return tensor(f.start, f.end); // initializer
      if (f.number === 15) return sparse(f.start, f.end); // sparse_initializer
      if (f.number === 1) return node(f.start, f.end, depth); // node
      return true;
    });
  };
  const sparse = (start: number, end: number): boolean =>
    walkMessage(source, start, end, (f) => (f.wire === WIRE_LEN && (f.number === 1 || f.number === 2) ? tensor(f.start, f.end) : true));
  const attribute = (start: number, end: number, depth: number): boolean =>
    walkMessage(source, start, end, (f) => {
      if (f.wire !== WIRE_LEN) return true;
      if (f.number === 5 || f.number === 10) return tensor(f.start, f.end); // t, tensors
      if (f.number === 6 || f.number === 11) return graph(f.start, f.end, depth + 1); // g, graphs
      if (f.number === 22 || f.number === 23) return sparse(f.start, f.end); // sparse_tensor(s)
      return true;
    });
  const node = (start: number, end: number, depth: number): boolean =>
    walkMessage(source, start, end, (f) => (f.wire === WIRE_LEN && f.number === 5 ? attribute(f.start, f.end, depth) : true));
  const ok = walkMessage(source, 0, source.size, (f) => {
    if (f.wire !== WIRE_LEN) return true;
    if (f.number === 7) return graph(f.start, f.end, 0); // graph
    if (f.number === 25) {
      // functions: FunctionProto.node (7), attribute_proto (11)
      return walkMessage(source, f.start, f.end, (g) => {
        if (g.wire !== WIRE_LEN) return true;
        if (g.number === 7) return node(g.start, g.end, 1);
        if (g.number === 11) return attribute(g.start, g.end, 1);
        return true;
      });
    }
    if (f.number === 20) {
      // training_info: initialization (1) and algorithm (2) graphs
      return walkMessage(source, f.start, f.end, (g) => (g.wire === WIRE_LEN && (g.number === 1 || g.number === 2) ? graph(g.start, g.end, 1) : true));
    }
    return true;
  });
  if (!ok) bad('not a well-formed ONNX protobuf (a bad tag, wire type or length, or graphs nested too deep)');
  ctx.member({ name: `${member || '(file)'}: ${tensors} tensors${external > 0 ? `, ${external} with external data` : ''}`, format: 'onnx', size: source.size });
}

/** Why an external-data location is unsafe, or undefined (then also checks the file on disk). */
function checkLocation(ctx: ScanContext, member: string, label: string, location: string, offset: number, length: number | undefined): void {
  const unsafe = (reason: string): void => ctx.finding(member, 'external-data', 'E_MODEL_UNSAFE', `${label}: external data location ${JSON.stringify(location)} ${reason}`);
  if (location === '') return unsafe('is empty');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f]/.test(location)) return unsafe('holds a control character');
  if (isAbsolute(location) || location.startsWith('/') || /^[A-Za-z]:/.test(location) || location.startsWith('\\')) {
    return unsafe("is an absolute path: onnx.load before 1.13 reads it wherever it points (CVE-2022-25882)");
  }
  if (location.includes('\\')) return unsafe('holds a backslash (a path separator on Windows)');
  if (location.split('/').includes('..')) return unsafe("climbs out of the model's directory with '..' (CVE-2022-25882)");
  const dir = ctx.directory;
  if (dir === undefined || member !== '') {
    ctx.note('external data inside an archive cannot be checked on disk');
    return;
  }
  const path = join(dir, location);
  if (!existsSync(path)) {
    ctx.finding(member, 'external-data', 'E_MODEL_MALFORMED', `${label}: external data file ${JSON.stringify(location)} does not exist beside the model`);
    return;
  }
  let real: string;
  let realDir: string;
  try {
    real = realpathSync(path);
    realDir = realpathSync(dir);
  } catch {
    return unsafe('cannot be resolved');
  }
  const rel = relative(realDir, real);
  if (rel === '' || rel.startsWith(`..${sep}`) || rel === '..' || isAbsolute(rel)) {
    return unsafe(`resolves through a symbolic link to ${real}, outside the model's directory`);
  }
  if (lstatSync(path).isSymbolicLink()) ctx.note(`external data ${location} is a symbolic link inside the model's directory`);
  const stat = statSync(real);
  if (!stat.isFile()) return unsafe('is not a regular file');
  if (!ctx.externalData.includes(real)) ctx.externalData.push(real);
  const end = length === undefined ? offset : offset + length;
  if (end > stat.size) {
    ctx.finding(member, 'external-data', 'E_MODEL_MALFORMED', `${label}: external data [${offset}, ${end}) runs past the ${stat.size} bytes of ${location}`);
  }
}
