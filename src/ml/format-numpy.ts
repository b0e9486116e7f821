import { scanPickleSource } from './format-pickle.js';
import type { ScanContext } from './scan-context.js';
import { SliceSource, type ByteSource } from './source.js';

/**
 * numpy's `.npy`: the magic `\x93NUMPY`, a version, a header length, and a header that is a
 * Python dict literal (`{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }`), read
 * here by a small literal parser (numpy uses ast.literal_eval, which runs no code). Then the
 * array's bytes, exactly shape x item size of them; or, for an object dtype, a pickle of the
 * array, which `np.load(..., allow_pickle=True)` unpickles: that pickle is scanned like any.
 * (`.npz` is a zip of `.npy` members, read as a zip.)
 */

export const NPY_MAGIC = Uint8Array.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]);
/** numpy 1.24's np.load refuses longer headers (max_header_size). */
const MAX_NPY_HEADER = 10_000;

type Literal = string | number | boolean | null | Literal[] | { readonly [key: string]: Literal };

/** Parses the Python literals an npy header holds; undefined on anything else. */
export function parsePythonLiteral(text: string): Literal | undefined {
  let i = 0;
  const space = (): void => {
    while (i < text.length && /\s/.test(text[i] as string)) i++;
  };
  const value = (depth: number): Literal | undefined => {
    if (depth > 16) return undefined;
    space();
    const c = text[i];
    if (c === "'" || c === '"') {
      const end = text.indexOf(c, i + 1);
      if (end === -1) return undefined;
      const s = text.slice(i + 1, end);
      if (s.includes('\\')) return undefined;
      i = end + 1;
      return s;
    }
    if (c === '(' || c === '[' || c === '{') {
      const close = c === '(' ? ')' : c === '[' ? ']' : '}';
      i++;
      const items: Literal[] = [];
      const dict: Record<string, Literal> = Object.create(null) as Record<string, Literal>;
      for (;;) {
        space();
        if (text[i] === close) {
          i++;
          return c === '{' ? dict : items;
        }
        const item = value(depth + 1);
        if (item === undefined) return undefined;
        if (c === '{') {
          space();
          if (text[i] !== ':' || typeof item !== 'string' || item in dict) return undefined;
          i++;
          const v = value(depth + 1);
          if (v === undefined) return undefined;
          dict[item] = v;
        } else {
          items.push(item);
        }
        space();
        if (text[i] === ',') i++;
        else if (text[i] !== close) return undefined;
      }
    }
    const word = /^(True|False|None|-?\d+)/.exec(text.slice(i, i + 24));
    if (word?.[1] === undefined) return undefined;
    i += word[1].length;
    if (word[1] === 'True') return true;
    if (word[1] === 'False') return false;
    if (word[1] === 'None') return null;
    const n = Number(word[1]);
    return Number.isSafeInteger(n) ? n : undefined;
  };
  const result = value(0);
  space();
  return i === text.length ? result : undefined;
}

/** Item size and object-ness of an npy descr (a type string, or a structured list). */
export function descrOf(descr: Literal): { itemSize: number; hasObject: boolean } | undefined {
  if (typeof descr === 'string') {
    // dtype.str as numpy writes it: byte order, kind, size (and a unit for datetimes).
    const m = /^[<>|=]?([biufcmMOSUV?])(\d*)(\[[A-Za-z0-9]+\])?$/.exec(descr);
    if (m === null) return undefined;
    const kind = m[1] as string;
    if (kind === 'O') return m[2] === '' || m[2] === '8' ? { itemSize: 8, hasObject: true } : undefined;
    if (kind === '?') return { itemSize: 1, hasObject: false };
    const n = m[2] === '' ? undefined : Number(m[2]);
    const sizes: Record<string, readonly number[]> = { b: [1], i: [1, 2, 4, 8], u: [1, 2, 4, 8], f: [2, 4, 8, 12, 16], c: [8, 16, 24, 32], m: [8], M: [8] };
    if (n === undefined || (sizes[kind] !== undefined && !sizes[kind].includes(n))) return undefined;
    if ((m[3] !== undefined) !== (kind === 'm' || kind === 'M') && m[3] !== undefined) return undefined;
    return { itemSize: kind === 'U' ? 4 * n : n, hasObject: false };
  }
  if (!Array.isArray(descr) || descr.length === 0) return undefined;
  let itemSize = 0;
  let hasObject = false;
  for (const field of descr) {
    if (!Array.isArray(field) || field.length < 2 || field.length > 3) return undefined;
    const sub = descrOf(field[1] as Literal);
    if (sub === undefined) return undefined;
    let count = 1;
    if (field.length === 3) {
      const shape = field[2];
      const dims = Array.isArray(shape) ? shape : [shape];
      for (const d of dims) {
        if (typeof d !== 'number' || d < 0) return undefined;
        count *= d;
      }
    }
    itemSize += sub.itemSize * count;
    hasObject ||= sub.hasObject;
  }
  return { itemSize, hasObject };
}

/** Scans an `.npy` file or member. */
export function scanNpy(ctx: ScanContext, source: ByteSource, member: string): void {
  const bad = (reason: string): void => ctx.finding(member, 'header', 'E_MODEL_MALFORMED', reason);
  const head = source.read(0, 12);
  const major = head[6];
  if (head.length < 10 || (major !== 1 && major !== 2 && major !== 3)) return bad(`npy version ${major ?? '?'}.${head[7] ?? '?'} is not one numpy writes`);
  const lengthSize = major === 1 ? 2 : 4;
  const headerLength = lengthSize === 2 ? (head[8] ?? 0) | ((head[9] ?? 0) << 8) : ((head[8] ?? 0) | ((head[9] ?? 0) << 8) | ((head[10] ?? 0) << 16)) + (head[11] ?? 0) * 2 ** 24;
  const start = 8 + lengthSize;
  if (headerLength > MAX_NPY_HEADER) return bad(`a header of ${headerLength} bytes, over numpy's limit of ${MAX_NPY_HEADER}`);
  if (start + headerLength > source.size) return bad('truncated: the header runs past the end');
  const raw = source.read(start, headerLength);
  let text: string;
  try {
    text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1', { fatal: true }).decode(raw);
  } catch {
    return bad('the header is not valid text');
  }
  if (major !== 3 && /[^\x20-\x7e\n]/.test(text)) return bad('the header is not ASCII');
  if (!text.endsWith('\n')) return bad('the header does not end with a newline');
  const header = parsePythonLiteral(text);
  if (header === undefined || header === null || typeof header !== 'object' || Array.isArray(header)) return bad('the header is not a dict literal');
  const keys = Object.keys(header).sort();
  if (keys.join(',') !== 'descr,fortran_order,shape') return bad(`the header has keys ${keys.join(', ')}, not descr, fortran_order, shape`);
  const dict = header as { readonly [key: string]: Literal };
  const descr = descrOf(dict['descr'] as Literal);
  if (descr === undefined) return bad(`descr ${JSON.stringify(dict['descr'])} is not a dtype numpy writes`);
  if (typeof dict['fortran_order'] !== 'boolean') return bad('fortran_order is not a bool');
  const shape = dict['shape'];
  if (!Array.isArray(shape) || !shape.every((d) => typeof d === 'number' && d >= 0)) return bad('shape is not a tuple of non-negative ints');
  const count = (shape as number[]).reduce((a, b) => a * b, 1);
  const dataStart = start + headerLength;
  if (descr.hasObject) {
    ctx.note('an object array: np.load needs allow_pickle=True, and unpickles the array (scanned)');
    ctx.member({ name: `${member || '(file)'}: object array pickle`, format: 'pickle', size: source.size - dataStart });
    scanPickleSource(ctx, new SliceSource(source, dataStart, source.size - dataStart), member === '' ? 'object array pickle' : `${member}: object array pickle`, false);
    return;
  }
  const bytes = count * descr.itemSize;
  if (!Number.isSafeInteger(bytes)) return bad('the shape is too large');
  const have = source.size - dataStart;
  ctx.member({ name: `${member || '(file)'}: array data (not read)`, format: 'array-data', size: Math.min(have, bytes) });
  if (have < bytes) return bad(`truncated: the shape needs ${bytes} bytes of data, ${have} follow the header`);
  if (have > bytes) ctx.finding(member, 'trailing-data', 'E_MODEL_MALFORMED', `${have - bytes} bytes after the array data, which np.load ignores`);
}
