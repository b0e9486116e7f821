import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ModelError } from '../../src/errors.js';
import {
  STRICT_POLICY,
  assertSafePickle,
  assertSafePickleFile,
  formatPickleFinding,
  scanPickle,
  scanPickleFile,
  type PickleScanOptions,
  type PickleScanResult,
} from '../../src/ml/pickle.js';
import { FIXTURES, tempDir } from './python.js';
import { codeOf } from '../helpers/errors.js';

/** Bytes from a string whose characters are all below U+0100 (one byte each). */
const b = (text: string): Uint8Array => Buffer.from(text, 'latin1');
const cat = (...parts: (string | Uint8Array)[]): Uint8Array =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? b(p) : p)));
const fixture = (name: string): Uint8Array => readFileSync(join(FIXTURES, name));

function verdict(bytes: Uint8Array, options?: PickleScanOptions): string | undefined {
  return codeOf(() => assertSafePickle(bytes, 'model.pkl', options));
}

const kinds = (result: PickleScanResult): string[] => result.findings.map((f) => f.kind);
/** The globals findings name, each once, in order. */
const flagged = (result: PickleScanResult): (string | undefined)[] => [...new Set(result.findings.map((f) => f.global))];

const PROTOCOLS = [0, 1, 2, 3, 4, 5] as const;

describe('pickles CPython writes for plain data pass', () => {
  it.each(PROTOCOLS)("train.py's model pickled at protocol %i has no findings and imports nothing", (p) => {
    const result = scanPickle(fixture(`model-p${p}.pkl`));
    expect(result.findings).toEqual([]);
    expect(result.globals).toEqual([]);
    expect(result.protocol).toBe(p >= 2 ? p : undefined);
    expect(result.opcodeCount).toBeGreaterThan(100);
  });

  it.each(PROTOCOLS)('OrderedDict, set, frozenset and complex at protocol %i pass under the strict policy', (p) => {
    const result = assertSafePickle(fixture(`containers-p${p}.pkl`), 'containers.pkl', { policy: STRICT_POLICY });
    expect(result.globals).toContain('collections.OrderedDict');
    expect(result.globals).toContain('builtins.complex');
    // Protocols 0-2 write set as `__builtin__.set`, which fix_imports renames.
    if (p < 4) expect(result.globals).toEqual(expect.arrayContaining(['builtins.set', 'builtins.frozenset']));
  });

  it('bytes at protocol 2 (written through _codecs.encode with latin1) pass the default policy, not the strict one', () => {
    const bytes = fixture('bytes-p2.pkl');
    expect(verdict(bytes)).toBeUndefined();
    expect(flagged(scanPickle(bytes, { policy: STRICT_POLICY }))).toEqual(['_codecs.encode']);
    // Any other codec picks other code to run: refused even where _codecs.encode is allowed.
    const rot13 = cat('\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00aX\x05\x00\x00\x00rot13\x86R.');
    expect(kinds(scanPickle(rot13))).toEqual(['argument']);
  });
});

describe('attacks: code execution through imports', () => {
  it.each(PROTOCOLS)('malicious model.pkl with os.system __reduce__ is rejected before loading (protocol %i)', (p) => {
    const bytes = fixture(`os-system-reduce-p${p}.pkl`);
    expect(verdict(bytes)).toBe('E_MODEL_UNSAFE');
    expect(flagged(scanPickle(bytes))).toEqual(['posix.system']);
    expect(scanPickle(bytes).findings[0]?.opcode).toBe(p >= 4 ? 'STACK_GLOBAL' : 'GLOBAL');
  });

  it.each([
    ['subprocess.Popen via __reduce__', 'subprocess-popen-p4.pkl', 'subprocess.Popen'],
    ['builtins.eval via __reduce__ (protocol 4)', 'builtins-eval-p4.pkl', 'builtins.eval'],
    ['builtins.eval written as __builtin__.eval at protocol 2', 'builtins-eval-p2.pkl', 'builtins.eval'],
    ['a hand-written __builtin__.eval GLOBAL at protocol 2', 'handmade-builtin-eval-p2.pkl', 'builtins.eval'],
    ['builtins.getattr, the gadget that reaches anything', 'builtins-getattr-p4.pkl', 'builtins.getattr'],
    ['os.system in the protocol-0 GLOBAL text form', 'handmade-os-system-global-p0.pkl', 'os.system'],
    ['posix.system through INST', 'handmade-posix-system-inst-p0.pkl', 'posix.system'],
    ['STACK_GLOBAL whose module CPython fetched from the memo (BINGET)', 'memo-stack-global-p4.pkl', 'posix.system'],
    ['STACK_GLOBAL on strings MEMOIZEd, popped, and fetched back', 'handmade-memo-stack-global-p4.pkl', 'os.system'],
    ['STACK_GLOBAL through LONG_BINPUT, text PUT/GET and DUP/POP', 'handmade-obfuscated-stack-global-p4.pkl', 'posix.system'],
    ['os.system nested deep inside a model-looking dict', 'nested-model-p4.pkl', 'posix.system'],
  ])('%s is rejected', (_title, file, global) => {
    const bytes = fixture(file);
    expect(verdict(bytes)).toBe('E_MODEL_UNSAFE');
    const result = scanPickle(bytes);
    // The import (which runs the module's code) and the call (which runs the function).
    expect(kinds(result)).toEqual(['import', 'call']);
    expect(flagged(result)).toEqual([global]);
  });

  it('STACK_GLOBAL on an escaped STRING operand cannot be resolved and is rejected', () => {
    const result = scanPickle(fixture('handmade-unresolvable-stack-global-p4.pkl'));
    // The import cannot be named, so neither can what REDUCE then calls.
    expect(kinds(result)).toEqual(['unresolved-import', 'call']);
    expect(flagged(result)).toEqual(['?.system', undefined]);
    expect(verdict(fixture('handmade-unresolvable-stack-global-p4.pkl'))).toBe('E_MODEL_UNSAFE');
  });

  it('STACK_GLOBAL on the result of an allowed call is unresolvable', () => {
    // builtins.str('os') would give "os": allowed here on purpose, yet its result is unknown.
    const bytes = cat('\x80\x04cbuiltins\nstr\n(\x8c\x02ost', 'R\x8c\x06system\x93N\x85R.');
    const result = scanPickle(bytes, { allow: new Set(['builtins.str']) });
    expect(kinds(result)).toEqual(['unresolved-import', 'call']);
  });

  it('STACK_GLOBAL on non-ASCII BINSTRING operands is unresolvable (their decoding depends on the loader)', () => {
    const bytes = cat('\x80\x04U\x03os\xff\x8c\x06system\x93.');
    expect(kinds(scanPickle(bytes))).toEqual(['unresolved-import']);
  });

  it('imports through the copyreg extension registry (EXT1, EXT2, EXT4) are rejected', () => {
    expect(kinds(scanPickle(fixture('extension-p2.pkl')))).toEqual(['extension', 'call']);
    for (const ext of ['\x82\x01', '\x83\x01\x00', '\x84\x01\x00\x00\x00']) {
      const bytes = cat('\x80\x02', ext, ')R.');
      expect(kinds(scanPickle(bytes))).toEqual(['extension', 'call']);
      expect(verdict(bytes)).toBe('E_MODEL_UNSAFE');
    }
  });

  it.each(['persistent-id-p0.pkl', 'persistent-id-p4.pkl'])('persistent ids are rejected (%s)', (file) => {
    expect(kinds(scanPickle(fixture(file)))).toEqual(['persistent-id']);
    expect(verdict(fixture(file))).toBe('E_MODEL_UNSAFE');
  });

  it('never-allowed imports cannot be allowed: naming one is a usage error', () => {
    for (const name of ['posix.system', 'os.system', 'builtins.eval', 'os.path.join']) {
      expect(codeOf(() => scanPickle(fixture('os-system-reduce-p4.pkl'), { allow: new Set([name]) }))).toBe('E_USAGE');
    }
    expect(scanPickle(cat('cos.path\njoin\n.')).findings[0]?.reason).toMatch(/never allowed/);
  });

  it('an empty policy refuses even plain containers', () => {
    const empty = { label: 'empty', entries: new Map() };
    expect(verdict(fixture('containers-p4.pkl'), { policy: empty })).toBe('E_MODEL_UNSAFE');
    expect(verdict(fixture('model-p4.pkl'), { policy: empty })).toBeUndefined();
  });

  it('an attribute path (protocol 4 dotted name) does not match the allowed name it starts with', () => {
    const bytes = cat('\x80\x04\x8c\x08builtins\x8c\x0ddict.fromkeys\x93.');
    expect(flagged(scanPickle(bytes))).toEqual(['builtins.dict.fromkeys']);
  });

  it('fix_imports follows the current protocol, including a PROTO switched mid-stream', () => {
    // At protocol 3 `__builtin__` is not renamed (the import would fail): not builtins.set.
    expect(flagged(scanPickle(cat('\x80\x03c__builtin__\nset\n.')))).toEqual(['__builtin__.set']);
    expect(scanPickle(cat('\x80\x02c__builtin__\nset\n.')).findings).toEqual([]);
    const switched = scanPickle(cat('\x80\x03\x80\x02c__builtin__\neval\n.'));
    expect(flagged(switched)).toEqual(['builtins.eval']);
    expect(switched.protocol).toBe(3);
  });
});

describe('malformed and suspicious streams', () => {
  it.each([
    ['a truncated protocol-4 model', 'truncated-model-p4.pkl'],
    ['a truncated protocol-2 model', 'truncated-model-p2.pkl'],
    ['a protocol-4 model without its STOP', 'no-stop-model-p4.pkl'],
    ['a protocol-2 model without its STOP', 'no-stop-model-p2.pkl'],
    ['an empty file', 'empty.pkl'],
  ])('%s is E_MODEL_MALFORMED', (_title, file) => {
    const result = scanPickle(fixture(file));
    expect(kinds(result)).toEqual(['malformed']);
    expect(verdict(fixture(file))).toBe('E_MODEL_MALFORMED');
  });

  it('a truncated frame that still holds an os.system call is unsafe, not merely malformed', () => {
    // The C loader refuses a short frame at once, but pickle.py would run the call first.
    const result = scanPickle(fixture('truncated-frame-os-system-p4.pkl'));
    expect(kinds(result)).toEqual(['malformed', 'import', 'call']);
    expect(verdict(fixture('truncated-frame-os-system-p4.pkl'))).toBe('E_MODEL_UNSAFE');
  });

  it('trailing data after STOP is rejected, and the trailing pickle is read on to name its imports', () => {
    const bytes = fixture('trailing-data-model-p4.pkl');
    const result = scanPickle(bytes);
    expect(kinds(result)).toEqual(['trailing-data', 'import', 'call']);
    expect(flagged(result)).toEqual([undefined, 'posix.system']);
    expect(verdict(bytes)).toBe('E_MODEL_UNSAFE');
    // Even harmless trailing bytes are a finding: pickle.load ignores them, a polyglot reader may not.
    expect(kinds(scanPickle(cat('N.', 'garbage')))).toEqual(['trailing-data']);
    expect(kinds(scanPickle(cat('N.N.')))).toEqual(['trailing-data']);
  });

  it.each([
    ['an unknown opcode', '\x80\x04\xff.', '0xff'],
    ['an unsupported protocol', '\x80\x06N.', 'PROTO'],
    ['a stack underflow', '\x80\x04\x93.', 'STACK_GLOBAL'],
    ['a pop through a MARK', '(\x8c\x02os0\x8c\x06system(\x93.', 'STACK_GLOBAL'],
    ['a missing memo entry', '\x80\x04h\x05.', 'BINGET'],
    ['an unquoted STRING', "Sabc\n.", 'STRING'],
    ['an INT that pickle never writes', 'I0x10\n.', 'INT'],
    ['a negative LONG4 length', '\x8b\xff\xff\xff\xff.', 'LONG4'],
    ['a negative BINSTRING length', 'T\xff\xff\xff\xff.', 'BINSTRING'],
    ['a BINBYTES8 length of 2^64-1', '\x8e\xff\xff\xff\xff\xff\xff\xff\xff.', 'BINBYTES8'],
    ['a GLOBAL without its second line', 'cos\nsystem', 'GLOBAL'],
    ['a GLOBAL with invalid UTF-8', 'c\xff\nsystem\n.', 'GLOBAL'],
    ['STACK_GLOBAL on two ints', 'K\x01K\x02\x93.', 'STACK_GLOBAL'],
    ['SETITEMS with an odd number of items', '}(K\x01u.', 'SETITEMS'],
    ['STOP on an empty stack', '.', 'STOP'],
  ])('%s is E_MODEL_MALFORMED', (_title, text, opcode) => {
    const result = scanPickle(b(text));
    expect(kinds(result)).toEqual(['malformed']);
    expect(result.findings[0]?.opcode).toBe(opcode);
    expect(verdict(b(text))).toBe('E_MODEL_MALFORMED');
  });

  it('a PUT index we cannot read leaves the memo unknown: a later STACK_GLOBAL through GET is unresolvable', () => {
    const bytes = cat('\x80\x04\x8c\x02osp 1\n\x8c\x06system\x94g1\nh0\x93.');
    const result = scanPickle(bytes);
    expect(kinds(result)).toEqual(['malformed', 'unresolved-import']);
    expect(verdict(bytes)).toBe('E_MODEL_UNSAFE');
  });
});

describe('bounded work', () => {
  it('refuses to scan input over maxBytes', () => {
    const result = scanPickle(fixture('model-p4.pkl'), { maxBytes: 100 });
    expect(kinds(result)).toEqual(['limit']);
    expect(result.opcodeCount).toBe(0);
  });

  it('stops after maxOps opcodes with a limit finding', () => {
    const result = scanPickle(fixture('model-p4.pkl'), { maxOps: 10 });
    expect(kinds(result)).toEqual(['limit']);
    expect(result.opcodeCount).toBe(10);
    expect(verdict(fixture('model-p4.pkl'), { maxOps: 10 })).toBe('E_LIMIT');
  });

  it('caps the findings it records', () => {
    const bytes = cat('(', 'cos\nsystem\n0'.repeat(2000), '1N.');
    const result = scanPickle(bytes);
    expect(result.findings.length).toBe(1001);
    expect(result.findings.at(-1)?.kind).toBe('limit');
  });

  it('scans a million opcodes in well under two seconds', () => {
    const bytes = cat('\x80\x04]', '(', 'K\x01'.repeat(1_000_000), 'e.');
    const started = performance.now();
    const result = scanPickle(bytes);
    expect(result.findings).toEqual([]);
    expect(result.opcodeCount).toBe(1_000_005);
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('refuses options that are not non-negative integers', () => {
    expect(codeOf(() => scanPickle(b('N.'), { maxOps: -1 }))).toBe('E_USAGE');
    expect(codeOf(() => scanPickle(b('N.'), { maxBytes: Number.NaN }))).toBe('E_USAGE');
  });
});

describe('assertSafePickle and the file API', () => {
  const { dir, cleanup } = tempDir('intoto-pickle-files-');
  afterAll(cleanup);

  it('returns the scan of a safe pickle', () => {
    expect(assertSafePickle(fixture('model-p4.pkl'), 'model.pkl').opcodeCount).toBeGreaterThan(0);
  });

  it('lists every finding in the error details', () => {
    try {
      assertSafePickle(fixture('trailing-data-model-p4.pkl'), 'model.pkl');
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ModelError);
      const e = error as ModelError;
      // The most telling finding leads: the call of a never-allowed function in the trailing pickle.
      expect(e.message).toMatch(/^model\.pkl: unsafe pickle: offset \d+ \(REDUCE\): calls posix\.system .*\(2 more findings\)$/);
      expect(e.details).toHaveLength(3);
      expect(e.details[0]).toMatch(/^offset 636 \(STOP\): 79 bytes follow the STOP/);
      expect(e.details[1]).toMatch(/^offset \d+ \(STACK_GLOBAL\): imports posix\.system/);
    }
  });

  it('formats a finding on one line', () => {
    const finding = scanPickle(fixture('handmade-os-system-global-p0.pkl')).findings[0];
    expect(finding && formatPickleFinding(finding)).toBe(
      'offset 0 (GLOBAL): imports os.system, which runs commands and touches files; never allowed',
    );
  });

  it('reads files with their size checked first, and reports I/O failures as IoError', () => {
    expect(scanPickleFile(join(FIXTURES, 'model-p2.pkl')).findings).toEqual([]);
    expect(codeOf(() => scanPickleFile(join(FIXTURES, 'model-p2.pkl'), { maxBytes: 10 }))).toBe('E_FILE_TOO_LARGE');
    expect(codeOf(() => scanPickleFile(join(dir, 'missing.pkl')))).toBe('E_IO');
    mkdirSync(join(dir, 'a-directory.pkl'));
    expect(codeOf(() => assertSafePickleFile(join(dir, 'a-directory.pkl')))).toBe('E_NOT_REGULAR_FILE');
    expect(codeOf(() => assertSafePickleFile(join(FIXTURES, 'os-system-reduce-p0.pkl')))).toBe('E_MODEL_UNSAFE');
  });
});
