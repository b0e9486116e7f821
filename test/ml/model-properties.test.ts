import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { InTotoError } from '../../src/errors.js';
import { scanModelBytes } from '../../src/ml/model-scan.js';
import { scanPickle } from '../../src/ml/pickle.js';
import { corpus, mlPythonAvailable, prepareCorpus } from './corpus.js';

/**
 * Properties of the scanner over generated input:
 * - a pickle built only from operations the policy allows (containers, numbers, strings, the
 *   memo, and calls of allowed rebuild helpers with the arguments they take) never crashes
 *   the scanner, and is judged safe;
 * - any input at all gives a verdict or one of our typed errors, never another exception;
 * - a real model truncated at any offset is never judged safe (the cut always gives a typed
 *   code: malformed, or unsafe when what precedes the cut would already run).
 */

const enc = new TextEncoder();
const u32 = (n: number): number[] => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];

/** A pickle program as opcodes that leave exactly one value on the stack. */
type Program = number[];

const str = (text: string): Program => {
  const bytes = [...enc.encode(text)];
  return bytes.length < 256 ? [0x8c, bytes.length, ...bytes] : [0x58, ...u32(bytes.length), ...bytes];
};
const global = (module: string, name: string): Program => [...str(module), ...str(name), 0x93];

/** Values built from allowed operations, nested to a bounded depth. */
function value(depth: number): fc.Arbitrary<Program> {
  const leaf = fc.oneof(
    fc.integer({ min: 0, max: 255 }).map((n) => [0x4b, n]), // BININT1
    fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }).map((n) => [0x4a, ...u32(n)]), // BININT
    fc.double({ noNaN: false }).map((d) => {
      const b = Buffer.alloc(8);
      b.writeDoubleBE(d);
      return [0x47, ...b]; // BINFLOAT
    }),
    fc.string({ maxLength: 40 }).map(str),
    fc.uint8Array({ maxLength: 40 }).map((b) => [0x43, b.length, ...b]), // SHORT_BINBYTES
    fc.constantFrom(0x4e, 0x88, 0x89, 0x29, 0x5d, 0x7d).map((op): Program => [op]), // None, True, False, (), [], {}
  );
  if (depth <= 0) return leaf;
  const inner = value(depth - 1);
  return fc.oneof(
    { weight: 3, arbitrary: leaf },
    fc.array(inner, { maxLength: 4 }).map((items) => [0x5d, 0x28, ...items.flat(), 0x65]), // list, APPENDS
    fc.array(inner, { maxLength: 4 }).map((items) => [0x28, ...items.flat(), 0x74]), // TUPLE
    fc.array(fc.tuple(fc.string({ maxLength: 8 }), inner), { maxLength: 4 }).map((pairs) => [0x7d, 0x28, ...pairs.flatMap(([k, v]) => [...str(k), ...v]), 0x75]), // dict, SETITEMS
    inner.map((v) => [...v, 0x94]), // MEMOIZE (value stays)
    inner.map((v) => [...v, 0x32, 0x30]), // DUP, POP
    fc.array(inner, { maxLength: 3 }).map((items) => [...global('collections', 'OrderedDict'), 0x29, 0x52, 0x28, ...items.flat(), 0x31]), // OrderedDict() (REDUCE); items built, dropped by POP_MARK
    fc.constant<Program>([...global('numpy', 'dtype'), ...str('f8'), 0x89, 0x88, 0x87, 0x52]), // numpy.dtype('f8', False, True)
    inner.map((v) => [...global('builtins', 'set'), 0x5d, 0x85, 0x52, 0x30, ...v]), // set([]) dropped, then v
  );
}

const allowedPickle = fc.tuple(fc.integer({ min: 2, max: 5 }), value(3)).map(([protocol, body]) => Uint8Array.from([0x80, protocol, ...body, 0x2e]));

describe('properties', () => {
  it('pickles built from allowed operations never crash the scanner and are judged safe', () => {
    fc.assert(
      fc.property(allowedPickle, (bytes) => {
        const result = scanPickle(bytes);
        expect(result.findings).toEqual([]);
        const file = scanModelBytes(bytes, 'model.pkl');
        expect(file.code).toBeUndefined();
      }),
      { numRuns: 2000, seed: 1313 },
    );
  });

  it('any bytes give a verdict or a typed error, under any name', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.constantFrom('model.pkl', 'model.safetensors', 'm.onnx', 'a.npy', 'x.zip', 'y.bin'), (bytes, name) => {
        try {
          scanModelBytes(bytes, name);
        } catch (error) {
          expect(error).toBeInstanceOf(InTotoError);
        }
      }),
      { numRuns: 3000, seed: 77 },
    );
  });

  it('headers of every format with random tails give a verdict or a typed error', () => {
    const heads = [
      [0x50, 0x4b, 0x03, 0x04],
      [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0x01, 0x00],
      [0x10, 0, 0, 0, 0, 0, 0, 0, 0x7b],
      [0x78, 0x9c],
      [0x1f, 0x8b, 0x08],
      [0x42, 0x5a, 0x68, 0x39],
      [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0x00, 0x04],
      [0x5d, 0x00, 0x00, 0x80, 0x00],
      [0x08, 0x07, 0x3a, 0x05],
      [0x0a, 0x03],
      [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e],
    ];
    fc.assert(
      fc.property(fc.constantFrom(...heads), fc.uint8Array({ maxLength: 400 }), (head, tail) => {
        const bytes = Uint8Array.from([...head, ...tail]);
        try {
          const scan = scanModelBytes(bytes, 'model.bin');
          // Random tails after a real header are never a safe model of a code-running format.
          if (['pickle', 'joblib', 'pytorch-zip', 'pytorch-legacy', 'torchscript'].includes(scan.format)) expect(scan.code).toBeDefined();
        } catch (error) {
          expect(error).toBeInstanceOf(InTotoError);
        }
      }),
      { numRuns: 3000, seed: 99 },
    );
  });
});

const ml = mlPythonAvailable();

describe.skipIf(!ml)('truncating real models', () => {
  beforeAll(async () => {
    await prepareCorpus();
  }, 600_000);
  const files = [
    'honest/sklearn/logistic-regression-p4.pkl',
    'honest/sklearn/decision-tree-p2.pkl',
    'honest/joblib/arrays.joblib',
    'honest/joblib/random-forest.joblib.zlib',
    'honest/joblib/random-forest.joblib.bz2',
    'honest/joblib/random-forest.joblib.xz',
    'honest/joblib/random-forest.joblib.lzma',
    'honest/torch/state_dict.pt',
    'honest/torch/state_dict-legacy.pt',
    'honest/torch/torchscript.pt',
    'honest/numpy/structured.npy',
    'honest/numpy/arrays.npz',
    'honest/torch/model.safetensors',
    'honest/onnx/model.onnx',
  ];

  it.each(files)('%s cut at every offset is never judged safe, and only typed codes come out', (file) => {
    const bytes = readFileSync(join(corpus().dir, file));
    // As the file is named (joblib names its compressed files model.joblib.<compressor>).
    const name = file.split('/').pop() as string;
    expect(scanModelBytes(bytes, name).code).toBeUndefined();
    // Every offset for small files; for larger ones, every offset in the first and last 4 KiB
    // and 2,000 spread over the middle.
    const offsets = new Set<number>();
    if (bytes.length <= 12_000) for (let i = 1; i < bytes.length; i++) offsets.add(i);
    else {
      for (let i = 1; i < 4096; i++) offsets.add(i);
      for (let i = bytes.length - 4096; i < bytes.length; i++) offsets.add(i);
      for (let k = 0; k < 2000; k++) offsets.add(Math.floor((bytes.length * k) / 2000) || 1);
    }
    const safe: number[] = [];
    for (const cut of offsets) {
      const scan = scanModelBytes(bytes.subarray(0, cut), name);
      if (scan.code === undefined) safe.push(cut);
    }
    expect(safe).toEqual([]);
  }, 600_000);
});
