import { spawnSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeBzip2 } from '../../src/ml/bzip2.js';
import { decodeLzmaAlone, decodeXz } from '../../src/ml/lzma.js';
import { scanModelBytes, scanModelPaths } from '../../src/ml/model-scan.js';
import type { FileScan } from '../../src/ml/model-types.js';
import { DEFAULT_POLICY, STRICT_POLICY, judgeImport, parseAllowedName, walksAttributes } from '../../src/ml/policy.js';
import { codeOf } from '../helpers/errors.js';
import { DEBIAN_PYTHON, mlPythonAvailable } from './corpus.js';
import { zip } from './helpers/zip-writer.js';
import { tempDir } from './python.js';

/** Each format's checks on inputs written here (the corpus test covers what the libraries write). */

const enc = new TextEncoder();
const cat = (...parts: (Uint8Array | string)[]): Uint8Array => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p)));
const reasons = (s: FileScan): string => s.findings.map((f) => f.reason).join(' | ');

function safetensors(header: unknown, data: Uint8Array, pad = true): Uint8Array {
  let text = JSON.stringify(header);
  if (pad) text += ' '.repeat((8 - (text.length % 8)) % 8);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(enc.encode(text).length));
  return cat(length, enc.encode(text), data);
}

describe('safetensors', () => {
  const data = new Uint8Array(24);
  const good = { __metadata__: { format: 'pt' }, a: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] }, b: { dtype: 'I16', shape: [4], data_offsets: [16, 24] } };

  it('a well-formed file is safe, read by its header only', () => {
    const s = scanModelBytes(safetensors(good, data), 'model.safetensors');
    expect(s.format).toBe('safetensors');
    expect(s.code).toBeUndefined();
  });

  it.each([
    ['offsets past the end', { a: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] }, b: { dtype: 'I16', shape: [8], data_offsets: [16, 32] } }, /run past/],
    ['shape x dtype not the span', { a: { dtype: 'F32', shape: [3], data_offsets: [0, 16] }, b: { dtype: 'I16', shape: [4], data_offsets: [16, 24] } }, /12 bytes, data_offsets/],
    ['overlapping tensors', { a: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] }, b: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] } }, /overlaps/],
    ['a gap', { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'I16', shape: [4], data_offsets: [16, 24] } }, /belong to no tensor/],
    ['a dtype outside the list', { a: { dtype: 'OBJECT', shape: [2, 2], data_offsets: [0, 16] }, b: { dtype: 'I16', shape: [4], data_offsets: [16, 24] } }, /dtype "OBJECT"/],
    ['an extra field', { a: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16], loader: 'pickle' }, b: { dtype: 'I16', shape: [4], data_offsets: [16, 24] } }, /not exactly dtype/],
    ['__metadata__ with a non-string', { __metadata__: { n: 1 }, a: good.a, b: good.b }, /map of strings/],
    ['a negative dimension', { a: { dtype: 'F32', shape: [-2, -2], data_offsets: [0, 16] }, b: good.b }, /non-negative/],
  ])('refuses %s', (_title, header, reason) => {
    const s = scanModelBytes(safetensors(header, data), 'model.safetensors');
    expect(s.code).toBe('E_MODEL_MALFORMED');
    expect(reasons(s)).toMatch(reason);
  });

  it('refuses an absurd header length, duplicate keys and trailing data', () => {
    const absurd = cat(Buffer.from([0, 0, 0, 0, 0, 0, 0, 0x40]), '{}');
    expect(scanModelBytes(absurd, 'm.safetensors').code).toBe('E_MODEL_MALFORMED');
    const dup = cat(Buffer.from([22, 0, 0, 0, 0, 0, 0, 0]), '{"__metadata__":{},"__metadata__":{}}'.slice(0, 22));
    expect(scanModelBytes(dup, 'm.safetensors').code).toBe('E_MODEL_MALFORMED');
    expect(reasons(scanModelBytes(safetensors(good, new Uint8Array(25)), 'm.safetensors'))).toMatch(/after the last tensor/);
  });
});

describe('numpy .npy', () => {
  const npy = (header: string, data: Uint8Array): Uint8Array => {
    const h = header + ' '.repeat((64 - ((10 + header.length + 1) % 64)) % 64) + '\n';
    return cat('\x93NUMPY\x01\x00', Buffer.from([h.length & 0xff, h.length >> 8]), h, data);
  };

  it('reads the header literal and checks the data length, never the data', () => {
    const s = scanModelBytes(npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", new Uint8Array(48)), 'a.npy');
    expect(s.code).toBeUndefined();
    expect(scanModelBytes(npy("{'descr': [('x', '<f4'), ('y', '<i8', (2,))], 'fortran_order': False, 'shape': (2,), }", new Uint8Array(40)), 's.npy').code).toBeUndefined();
    expect(scanModelBytes(npy("{'descr': '<U5', 'fortran_order': True, 'shape': (3,), }", new Uint8Array(60)), 'u.npy').code).toBeUndefined();
  });

  it.each([
    ['short data', "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", 40, /truncated/],
    ['trailing data', "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", 56, /after the array data/],
    ['an unknown key', "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), 'x': 1}", 16, /keys/],
    ['a call in the header', "{'descr': __import__('os'), 'fortran_order': False, 'shape': (2,)}", 16, /not a dict literal/],
    ['a bad descr', "{'descr': '<q9', 'fortran_order': False, 'shape': (2,)}", 16, /not a dtype/],
  ])('refuses %s', (_title, header, size, reason) => {
    const s = scanModelBytes(npy(header, new Uint8Array(size)), 'a.npy');
    expect(s.code).toBe('E_MODEL_MALFORMED');
    expect(reasons(s)).toMatch(reason);
  });

  it('scans the pickle inside an object array', () => {
    const evil = cat('\x80\x02cposix\nsystem\nX\x02\x00\x00\x00id\x85R.');
    const s = scanModelBytes(npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", evil), 'o.npy');
    expect(s.code).toBe('E_MODEL_UNSAFE');
    const plain = scanModelBytes(npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", cat('\x80\x02]q\x00X\x01\x00\x00\x00aa.')), 'o.npy');
    expect(plain.code).toBeUndefined();
    expect(plain.notes.join(' ')).toMatch(/allow_pickle=True/);
  });
});

describe('inert files and recognition by content', () => {
  it.each([
    ['config.json', '{"hidden_size": 16, "initializer_range": 0.02}', 'json'],
    ['README.md', '# Model\n\nFor tests \u2014 only.\n', 'text'],
    ['eval.csv', 'id,label\n1,setosa\n', 'text'],
    ['python_env.yaml', 'python: 3.11.2\nbuild_dependencies:\n- pip\n', 'text'],
    ['MLmodel', 'flavors:\n  sklearn:\n    pickled_model: model.pkl\n', 'text'],
    ['empty.txt', '', 'empty'],
    ['labels.txt', 'cat\ndog\nbird\n', 'text'],
  ])('%s is %s, and safe', (name, text, format) => {
    const s = scanModelBytes(enc.encode(text), name);
    expect(s.format).toBe(format);
    expect(s.code).toBeUndefined();
  });

  it('PNG and JPEG by their signatures', () => {
    expect(scanModelBytes(cat('\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR', new Uint8Array(20)), 'a.png').format).toBe('png');
    expect(scanModelBytes(cat('\xff\xd8\xff\xe0\x00\x10JFIF\x00', new Uint8Array(20)), 'a.jpg').format).toBe('jpeg');
  });

  it('a protocol 0 pickle that is also ASCII text is judged as the pickle it is, even when it breaks after its payload', () => {
    for (const text of ["cos\nsystem\n(S'id'\ntR.", "cos\nsystem\n(S'id'\ntR and then prose", 'cantigravity\nx\nprose']) {
      const s = scanModelBytes(cat(text), 'notes.txt');
      expect(s.format, text).toBe('pickle');
      expect(s.code, text).toBe('E_MODEL_UNSAFE');
    }
  });

  it('binary content of no known format is E_MODEL_FORMAT, never safe', () => {
    const s = scanModelBytes(Uint8Array.of(0x00, 0x01, 0xfe, 0x11, 0x42), 'model.h5');
    expect(s.format).toBe('unknown');
    expect(s.code).toBe('E_MODEL_FORMAT');
  });

  it('a Git LFS pointer in place of the weights is named as such', () => {
    const pointer = 'version https://git-lfs.github.com/spec/v1\noid sha256:4d7a\nsize 438\n';
    const s = scanModelBytes(enc.encode(pointer), 'pytorch_model.bin');
    expect(s.code).toBe('E_MODEL_FORMAT');
    expect(reasons(s)).toMatch(/Git LFS pointer/);
  });

  it('lz4 and the pre-0.10 joblib format are recognised but not supported', () => {
    expect(reasons(scanModelBytes(Uint8Array.of(0x04, 0x22, 0x4d, 0x18, 0, 0), 'm.joblib'))).toMatch(/lz4 compression is not supported/);
    expect(scanModelBytes(cat('ZF0x1234'), 'm.pkl').code).toBe('E_MODEL_FORMAT');
  });
});

describe('joblib array data', () => {
  const str = (t: string): Uint8Array => cat('X', Uint8Array.of(t.length, 0, 0, 0), t);
  const sg = (m: string, n: string): Uint8Array => cat(str(m), str(n), '\x93');
  // numpy.dtype('u1', False, True)'s BUILD state, as numpy pickles it.
  const dtypeState = cat('(K\x03', str('|'), 'NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb');
  /** A NumpyArrayWrapper record for `n` bytes of u1 data; `aligned` adds joblib 1.2's padding field. */
  const wrapper = (n: number, aligned: boolean): Uint8Array =>
    cat(
      sg('joblib.numpy_pickle', 'NumpyArrayWrapper'), ')\x81}(',
      str('subclass'), sg('numpy', 'ndarray'),
      str('shape'), 'K', Uint8Array.of(n), '\x85',
      str('order'), str('C'),
      str('dtype'), cat(sg('numpy', 'dtype'), str('u1'), '\x89\x88\x87R', dtypeState),
      str('allow_mmap'), '\x88',
      ...(aligned ? [str('numpy_array_alignment_bytes'), 'K\x10'] : []),
      'ub',
    );

  it('skips the array data unread, padding included, and reads the opcodes after it', () => {
    const data = cat('\x80\x04]', wrapper(4, true), '\x03\xff\xff\xff', 'abcd', 'a.');
    const s = scanModelBytes(data, 'm.joblib');
    expect(s.format).toBe('joblib');
    expect(s.code, reasons(s)).toBeUndefined();
    const evil = cat('\x80\x04]', wrapper(4, true), '\x03\xff\xff\xff', 'abcd', 'a', cat(sg('posix', 'system'), str('id'), '\x85R'), '0.');
    expect(scanModelBytes(evil, 'm.joblib').code).toBe('E_MODEL_UNSAFE');
  });

  it('what pickle.load would run from the array data is reported too (joblib reads it as data)', () => {
    const payload = cat('cposix\nsystem\n(S\'id\'\ntR');
    const data = cat('\x80\x04]', wrapper(payload.length, false), payload, 'a.');
    const s = scanModelBytes(data, 'm.joblib');
    expect(s.code).toBe('E_MODEL_UNSAFE');
    expect(reasons(s)).toMatch(/read by pickle\.load \(not joblib\.load\)/);
  });

  it('array data inside a pickle frame is refused (joblib reads it from after the frame)', () => {
    const body = cat(']', wrapper(4, false), 'abcd', 'a.');
    const frame = Buffer.alloc(8);
    frame.writeBigUInt64LE(BigInt(body.length));
    const s = scanModelBytes(cat('\x80\x04\x95', frame, body), 'm.joblib');
    expect(s.code).toBe('E_MODEL_MALFORMED');
    expect(reasons(s)).toMatch(/inside a pickle frame/);
  });
});

describe('zip containers', () => {
  const pickle = cat('\x80\x04N.');
  it('a plain zip of inert and safe members is safe, each member scanned by content', () => {
    const s = scanModelBytes(zip([{ name: 'a/config.json', data: enc.encode('{}') }, { name: 'a/w.pkl', data: pickle, deflate: true }]), 'bundle.zip');
    expect(s.code, reasons(s)).toBeUndefined();
    expect(s.members.map((m) => [m.name, m.format])).toEqual([
      ['a/config.json', 'json'],
      ['a/w.pkl', 'pickle'],
    ]);
  });

  it.each([
    ['bytes before the first entry (a hidden local header)', zip([{ name: 'a.pkl', data: pickle }], { prefix: enc.encode('PK\x03\x04hidden') }), /belong to no entry/],
    ['bytes after the end record', zip([{ name: 'a.pkl', data: pickle }], { trailer: enc.encode('xx') }), /end-of-central-directory/],
    ['a backslash name', zip([{ name: 'a\\..\\b.pkl', data: pickle }]), /backslash/],
    ['an absolute name', zip([{ name: '/etc/b.pkl', data: pickle }]), /absolute/],
    ['a CRC error', zip([{ name: 'a.pkl', data: pickle, crc: 1 }]), /CRC/],
    ['different flags in the local header', zip([{ name: 'a.pkl', data: pickle, localFlags: 0x8 }]), /flags/],
  ])('refuses %s', (_title, bytes, reason) => {
    const s = scanModelBytes(bytes, 'x.zip');
    expect(s.code).toBe('E_MODEL_MALFORMED');
    expect(reasons(s)).toMatch(reason);
  });

  it('nested archives are scanned to a bounded depth', () => {
    let inner: Uint8Array = zip([{ name: 'deep.pkl', data: cat('\x80\x04cposix\nsystem\n.') }]);
    expect(scanModelBytes(zip([{ name: 'in.zip', data: inner }]), 'x.zip').code).toBe('E_MODEL_UNSAFE');
    for (let i = 0; i < 6; i++) inner = zip([{ name: `l${i}.zip`, data: inner }]);
    expect(scanModelBytes(inner, 'x.zip').code).toBe('E_LIMIT');
  });
});

describe('the policy', () => {
  it('matches module and qualname exactly, split where pickle split them', () => {
    expect(judgeImport(DEFAULT_POLICY, 'numpy.core.multiarray', '_reconstruct').allowed).toBe(true);
    expect(judgeImport(DEFAULT_POLICY, 'numpy', 'core.multiarray._reconstruct').allowed).toBe(false);
    expect(judgeImport(DEFAULT_POLICY, 'builtins', 'dict.fromkeys').allowed).toBe(false);
    expect(judgeImport(STRICT_POLICY, 'numpy', 'dtype').allowed).toBe(false);
  });

  it('never-allowed entries win over every allow, submodules included', () => {
    for (const [m, n] of [['asyncio.unix_events', 'x'], ['os.path', 'join'], ['torch.hub', 'load'], ['numpy.testing', 'x'], ['functools', 'partial'], ['_operator', 'attrgetter']] as const) {
      const v = judgeImport(DEFAULT_POLICY, m, n);
      expect(v.allowed).toBe(false);
      expect(!v.allowed && v.never).toBe(true);
      expect(codeOf(() => parseAllowedName(`${m}.${n}`))).toBe('E_USAGE');
    }
  });

  it('a dunder component walks attributes and is refused, except copyreg.__newobj__', () => {
    expect(walksAttributes('numpy', '__builtins__')).toBe(true);
    expect(walksAttributes('sklearn', 'base.BaseEstimator.__reduce__')).toBe(true);
    expect(walksAttributes('copyreg', '__newobj__')).toBe(false);
    expect(walksAttributes('numpy.random._pickle', '__randomstate_ctor')).toBe(false);
  });

  it('--allow names parse as MODULE.NAME or MODULE:QUAL.NAME', () => {
    expect(parseAllowedName('mypkg.models.Net')).toMatchObject({ module: 'mypkg.models', name: 'Net' });
    expect(parseAllowedName('mypkg.models:Outer.Inner')).toMatchObject({ module: 'mypkg.models', name: 'Outer.Inner' });
    for (const bad of ['Net', 'a..b', 'a.b c', '.x', 'x.']) expect(codeOf(() => parseAllowedName(bad)), bad).toBe('E_USAGE');
  });

  it('the default covers the strict policy', () => {
    for (const e of STRICT_POLICY.entries.values()) expect(judgeImport(DEFAULT_POLICY, e.module, e.name).allowed).toBe(true);
  });
});

describe('directories', () => {
  const { dir, cleanup } = tempDir('intoto-model-dir-');
  afterAll(cleanup);

  it('walks recursively in name order, reports symbolic links instead of following them, and skips .git', () => {
    mkdirSync(join(dir, 'm', 'sub'), { recursive: true });
    mkdirSync(join(dir, 'm', '.git', 'objects'), { recursive: true });
    writeFileSync(join(dir, 'm', 'config.json'), '{}');
    writeFileSync(join(dir, 'm', 'sub', 'w.pkl'), cat('\x80\x04N.'));
    writeFileSync(join(dir, 'm', '.git', 'objects', 'x'), Uint8Array.of(0x78, 0x01, 0x00));
    writeFileSync(join(dir, 'outside.pkl'), cat('\x80\x04cposix\nsystem\n.'));
    symlinkSync(join(dir, 'outside.pkl'), join(dir, 'm', 'link.pkl'));
    const scans = scanModelPaths([join(dir, 'm')]);
    expect(scans.map((s) => [s.file.slice(dir.length + 1), s.format, s.code ?? 'safe'])).toEqual([
      ['m/config.json', 'json', 'safe'],
      ['m/link.pkl', 'unknown', 'E_MODEL_FORMAT'],
      ['m/sub/w.pkl', 'pickle', 'safe'],
    ]);
    // Named explicitly, the link is followed.
    expect(scanModelPaths([join(dir, 'm', 'link.pkl')])[0]?.code).toBe('E_MODEL_UNSAFE');
  });

  it('a FIFO is reported, never opened', () => {
    const fifo = join(dir, 'pipe.pkl');
    if (spawnSync('mkfifo', [fifo]).status !== 0) return;
    expect(scanModelPaths([dir]).find((s) => s.file === fifo)?.code).toBe('E_MODEL_FORMAT');
  });
});

describe.skipIf(!mlPythonAvailable())('decoders against Python\'s own compressors', () => {
  const payload = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7919) % 251 < 40 ? 65 : (i * 31) % 256));
  const python = (code: string): Buffer => {
    const run = spawnSync(DEBIAN_PYTHON, ['-c', code], { input: payload, maxBuffer: 64 * 1024 * 1024 });
    if (run.status !== 0) throw new Error(run.stderr.toString());
    return run.stdout;
  };

  it('bzip2 (one and two streams) decodes to the same bytes, and a flipped bit is refused', () => {
    const one = python('import bz2,sys; sys.stdout.buffer.write(bz2.compress(sys.stdin.buffer.read(), 9))');
    expect(Buffer.from(decodeBzip2(one, 1 << 30)).equals(payload)).toBe(true);
    const two = Buffer.concat([one, one]);
    expect(Buffer.from(decodeBzip2(two, 1 << 30)).equals(Buffer.concat([payload, payload]))).toBe(true);
    const bad = Buffer.from(one);
    bad[bad.length >> 1] = (bad[bad.length >> 1] as number) ^ 0x10;
    expect(() => decodeBzip2(bad, 1 << 30)).toThrow();
    expect(() => decodeBzip2(one, 1000)).toThrow(/more than 1000 bytes/);
  });

  it('xz (CRC64, CRC32, SHA-256 checks) and .lzma decode to the same bytes', () => {
    for (const check of ['CHECK_CRC64', 'CHECK_CRC32', 'CHECK_SHA256', 'CHECK_NONE']) {
      const xz = python(`import lzma,sys; sys.stdout.buffer.write(lzma.compress(sys.stdin.buffer.read(), format=lzma.FORMAT_XZ, check=lzma.${check}))`);
      expect(Buffer.from(decodeXz(xz, 1 << 30)).equals(payload), check).toBe(true);
    }
    const alone = python('import lzma,sys; sys.stdout.buffer.write(lzma.compress(sys.stdin.buffer.read(), format=lzma.FORMAT_ALONE))');
    expect(Buffer.from(decodeLzmaAlone(alone, 1 << 30)).equals(payload)).toBe(true);
    const bad = Buffer.from(alone);
    bad[bad.length - 10] = (bad[bad.length - 10] as number) ^ 0xff;
    expect(() => decodeLzmaAlone(bad, 1 << 30)).toThrow();
    expect(() => decodeXz(python('import lzma,sys; sys.stdout.buffer.write(lzma.compress(sys.stdin.buffer.read()))'), 5000)).toThrow(/more than 5000 bytes/);
  });

  it('a joblib file of each compressor scans like the plain one', () => {
    const dir = tempDir('intoto-joblib-').dir;
    const code = `import joblib, numpy as np; [joblib.dump({'w': np.arange(1000.0), 'n': 'x'}, '${dir}/m.joblib' + ext, compress=c) for ext, c in [('', 0), ('.z', 3), ('.gz', ('gzip', 3)), ('.bz2', ('bz2', 3)), ('.lzma', ('lzma', 3)), ('.xz', ('xz', 3))]]`;
    expect(spawnSync(DEBIAN_PYTHON, ['-c', code]).status).toBe(0);
    const scans = scanModelPaths([dir]);
    expect(scans.map((s) => [s.format, s.code ?? 'safe'])).toEqual([
      ['joblib', 'safe'],
      ['joblib-bz2', 'safe'],
      ['joblib-gzip', 'safe'],
      ['joblib-lzma', 'safe'],
      ['joblib-xz', 'safe'],
      ['joblib-zlib', 'safe'],
    ]);
  });
});
