import { describe, expect, it } from 'vitest';
import { scanModelBytes } from '../../src/ml/model-scan.js';
import type { FileScan } from '../../src/ml/model-types.js';
import { zip } from './helpers/zip-writer.js';

/**
 * One test per bypass family in the public advisories of picklescan, modelscan and fickling
 * (2023-2026), each with a file written here from pickle opcodes (none copied from the
 * advisories). The deny-list scanners missed them because a name was not on their list, or
 * because their parser and the loader disagreed; an allow-list over a symbolic unpickler
 * refuses each for the reason given. test/ml/corpus.test.ts proves that the same families,
 * written by make_corpus.py, really run their payload under the real loader.
 */

const enc = new TextEncoder();
const u32 = (n: number): Uint8Array => Uint8Array.from([n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff]);
const cat = (...parts: (Uint8Array | string)[]): Uint8Array => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p)));
/** BINUNICODE. */
const str = (text: string): Uint8Array => cat('X', u32(enc.encode(text).length), enc.encode(text));
/** SHORT_BINBYTES / BINBYTES. */
const bytes = (data: Uint8Array): Uint8Array => cat('B', u32(data.length), data);
const sg = (module: string, name: string): Uint8Array => cat(str(module), str(name), '\x93');
const call = (fn: Uint8Array, ...args: (Uint8Array | string)[]): Uint8Array => cat(fn, '(', ...args, 'tR');
const p4 = (...body: (Uint8Array | string)[]): Uint8Array => cat('\x80\x04', ...body, '.');
const system = (): Uint8Array => call(sg('posix', 'system'), str('touch /marker/x'));

function scan(data: Uint8Array, name = 'model.pkl'): FileScan {
  return scanModelBytes(data, name);
}

/** The findings' globals and kinds, for assertions. */
function named(s: FileScan): string[] {
  return s.findings.map((f) => `${f.kind}:${f.global ?? ''}`);
}

describe('picklescan advisories', () => {
  it('CVE-2025-10157 (GHSA-f7qq-56ww-84cr): a dangerous function through a submodule (asyncio.unix_events) is not its parent module', () => {
    const s = scan(p4(call(sg('asyncio.unix_events', '_UnixSubprocessTransport._start'), 'N', str('id'), '\x88NNNK\x00')));
    expect(s.code).toBe('E_MODEL_UNSAFE');
    expect(named(s)).toContain('call:asyncio.unix_events._UnixSubprocessTransport._start');
    expect(s.findings[0]?.never).toBe(true);
  });

  it('CVE-2025-1716: pip.main installs and runs packages', () => {
    expect(named(scan(p4(call(sg('pip', 'main'), ']'))))).toContain('call:pip.main');
  });

  it('_io.FileIO (fickling PR 210): files written through the io module\'s C twin', () => {
    const s = scan(p4(call(sg('_io', 'FileIO'), str('/etc/cron.d/x'), str('w'))));
    expect(s.code).toBe('E_MODEL_UNSAFE');
    expect(named(s)).toContain('call:_io.FileIO');
  });

  it('functools.partial: the callable wrapped in an allowed-looking object, called by a second REDUCE', () => {
    const s = scan(p4(call(sg('functools', 'partial'), sg('posix', 'system'), str('id')), ')R'));
    expect(named(s)).toEqual(expect.arrayContaining(['call:functools.partial', 'import:posix.system']));
    // The second REDUCE calls the result of a call: refused whatever it is.
    expect(s.findings.some((f) => f.kind === 'call' && f.global === undefined)).toBe(true);
  });

  it('GHSA-m273-6v24-x4m4, GHSA-955r-x9j8-7rhh: operator and _operator getters reach any attribute', () => {
    for (const module of ['operator', '_operator']) {
      for (const getter of ['attrgetter', 'itemgetter', 'methodcaller']) {
        const s = scan(p4(call(call(sg(module, getter), str('system')), sg('sys', 'modules'))));
        expect(named(s), `${module}.${getter}`).toContain(`call:${module}.${getter}`);
      }
    }
  });

  it('GHSA-84r2-jw7c-4r5q: a pickle inside a pickle through _pickle.loads and pickle.loads', () => {
    for (const module of ['_pickle', 'pickle']) {
      const s = scan(p4(call(sg(module, 'loads'), bytes(p4(system())))));
      expect(named(s)).toContain(`call:${module}.loads`);
    }
  });

  it('cloudpickle-style code objects: marshal.loads and types.FunctionType build and run code', () => {
    const s = scan(p4(call(sg('types', 'FunctionType'), call(sg('marshal', 'loads'), bytes(Uint8Array.of(0xe3))), '}'), ')R'));
    expect(named(s)).toEqual(expect.arrayContaining(['call:types.FunctionType', 'call:marshal.loads']));
    expect(named(scan(p4(call(sg('cloudpickle.cloudpickle', '_make_function'), 'N'))))).toContain('call:cloudpickle.cloudpickle._make_function');
  });

  it('GHSA-v7x6-rv5q-mhwc and the August 2025 batch: stdlib helpers that run code strings (timeit, cProfile, pdb, trace, doctest, idlelib, lib2to3, ensurepip, runpy, code)', () => {
    const helpers: [string, string][] = [
      ['timeit', 'timeit'],
      ['cProfile', 'runctx'],
      ['pdb', 'run'],
      ['trace', 'Trace.runctx'],
      ['profile', 'Profile.run'],
      ['doctest', 'debug_script'],
      ['idlelib.pyshell', 'ModifiedInterpreter.runcode'],
      ['lib2to3.pgen2.pgen', 'ParserGenerator.make_label'],
      ['ensurepip', '_run_pip'],
      ['runpy', '_run_code'],
      ['code', 'InteractiveInterpreter.runcode'],
      ['bdb', 'Bdb.run'],
      ['pydoc', 'pipepager'],
      ['venv', 'create'],
    ];
    for (const [module, name] of helpers) {
      const s = scan(p4(call(sg(module, name), str('x'))));
      expect(s.code, `${module}.${name}`).toBe('E_MODEL_UNSAFE');
      expect(s.findings.some((f) => f.never && f.global === `${module}.${name}`), `${module}.${name}`).toBe(true);
    }
  });

  it('torch helpers that run commands or load nested files (collect_env.run, torch.serialization.load, _load_from_bytes, bottleneck, _inductor)', () => {
    for (const [module, name] of [
      ['torch.utils.collect_env', 'run'],
      ['torch.serialization', 'load'],
      ['torch.storage', '_load_from_bytes'],
      ['torch.utils.bottleneck.__main__', 'run_cprofile'],
      ['torch._inductor.codecache', 'compile_file'],
      ['torch.jit.unsupported_tensor_ops', 'execWrapper'],
    ] as const) {
      const s = scan(p4(call(sg(module, name), str('x'))));
      expect(s.findings.some((f) => f.never && f.global === `${module}.${name}`), `${module}.${name}`).toBe(true);
    }
  });

  it('numpy helpers that evaluate strings (numpy.testing runstring, numpy.f2py) or load files (numpy.load)', () => {
    for (const [module, name] of [
      ['numpy.testing._private.utils', 'runstring'],
      ['numpy.f2py.crackfortran', 'getlincoef'],
      ['numpy', 'load'],
      ['numpy.lib.npyio', 'load'],
    ] as const) {
      expect(scan(p4(call(sg(module, name), str('x')))).findings.some((f) => f.never && f.global === `${module}.${name}`)).toBe(true);
    }
  });

  it('the imaginaryCTF / issue 22 memo trick: STACK_GLOBAL operands fetched from the memo, past allowed-looking strings', () => {
    const body = cat(str('posix'), '\x940', str('system'), '\x940', sg('collections', 'OrderedDict'), '0', 'h\x00h\x01\x93');
    const s = scan(p4(call(body, str('id'))));
    expect(named(s)).toContain('import:posix.system');
  });

  it('CVE-2025-10155 (GHSA-jgw4-cr84-mqxg): a protocol 0 pickle behind a PyTorch extension is recognised by content', () => {
    const s = scan(cat('cposix\nsystem\n(Vid\ntR.'), 'pytorch_model.bin');
    expect(s.format).toBe('pickle');
    expect(s.code).toBe('E_MODEL_UNSAFE');
  });

  it('a pickle behind a .safetensors, .onnx or .npy name: refused, and the mismatch named', () => {
    for (const ext of ['safetensors', 'onnx', 'npy']) {
      const s = scan(p4(system()), `model.${ext}`);
      expect(s.code).toBe('E_MODEL_UNSAFE');
      expect(s.findings.some((f) => f.kind === 'mismatch' && /runs code when loaded/.test(f.reason))).toBe(true);
    }
  });

  it('GHSA-9gvj-pp9x-gcfr: a payload followed by bytes that break the disassembler', () => {
    const s = scan(cat('\x80\x04', system(), '\xff\xfe junk'));
    expect(s.code).toBe('E_MODEL_UNSAFE');
    expect(named(s)).toContain('call:posix.system');
  });

  it('malicious6: a payload in a second pickle after the first STOP', () => {
    const s = scan(cat(p4('N'), p4(system())));
    expect(s.code).toBe('E_MODEL_UNSAFE');
    expect(named(s)).toContain('call:posix.system');
  });

  it('GHSA-mjqp-26hc-grxg (CVE-2025-10156): a zip member with a CRC error is still scanned, and the CRC refused', () => {
    const s = scan(zip([{ name: 'archive/data.pkl', data: p4(system()), crc: 0xdeadbeef }]), 'model.pt');
    expect(s.code).toBe('E_MODEL_UNSAFE');
    expect(s.findings.some((f) => f.kind === 'zip' && /CRC/.test(f.reason))).toBe(true);
  });

  it('GHSA-w8jq-xcqf-f792: flag bits in the local header that PyTorch ignores and zipfile refuses', () => {
    for (const flag of [0x1, 0x20, 0x40]) {
      const s = scan(zip([{ name: 'archive/data.pkl', data: p4(system()), localFlags: flag }]), 'model.pt');
      expect(s.code).toBe('E_MODEL_UNSAFE');
      expect(s.findings.some((f) => f.kind === 'zip' && /flags/.test(f.reason))).toBe(true);
    }
  });

  it('GHSA-7q5r-7gvp-wc82: a central directory that names a member otherwise than its local header', () => {
    const s = scan(zip([{ name: 'archive/data.pkl', data: p4(system()), localName: 'archive/dataXpkl' }]), 'model.pt');
    expect(s.code).toBe('E_MODEL_UNSAFE');
    expect(s.findings.some((f) => f.kind === 'zip' && /local header names it/.test(f.reason))).toBe(true);
  });

  it('GHSA-769v-p64c-89pr: a pickle member without a .pkl name is scanned by content', () => {
    expect(scan(zip([{ name: 'weights.dat', data: p4(system()) }]), 'model.zip').code).toBe('E_MODEL_UNSAFE');
  });

  it('encrypted members, duplicate names, path traversal and bombs are refused', () => {
    expect(scan(zip([{ name: 'a.pkl', data: p4('N'), flags: 0x1 }])).findings.some((f) => /encrypted/.test(f.reason))).toBe(true);
    const dup = scan(zip([{ name: 'a.pkl', data: p4('N') }, { name: 'a.pkl', data: p4(system()) }]));
    expect(dup.code).toBe('E_MODEL_UNSAFE');
    expect(dup.findings.some((f) => /same name/.test(f.reason))).toBe(true);
    expect(scan(zip([{ name: '../../x.pkl', data: p4('N') }])).findings.some((f) => /path traversal/.test(f.reason))).toBe(true);
    const bomb = scan(zip([{ name: 'zeros.bin', data: new Uint8Array(16 * 1024 * 1024), deflate: true }]));
    expect(bomb.code).toBe('E_LIMIT');
  });
});

describe('modelscan reports', () => {
  it('issue 330: an attribute walk into numpy.__builtins__ is refused whatever the module', () => {
    const s = scan(p4(call(sg('numpy', '__builtins__'), str('x'))));
    expect(s.code).toBe('E_MODEL_UNSAFE');
    expect(s.findings[0]?.reason).toMatch(/attribute walk/);
  });

  it('issue 85: BUILD on an imported object (numpy.prod) to smuggle names is refused', () => {
    const build = cat(sg('numpy', 'prod'), 'N}', str('a'), str('posix'), 's\x86b0');
    const s = scan(p4(build, 'N'));
    expect(named(s)).toContain('build-global:numpy.prod');
  });

  it('issue 331, picklescan PR 74: importlib.import_module and getattr', () => {
    const s = scan(p4(call(call(sg('builtins', 'getattr'), call(sg('importlib', 'import_module'), str('posix')), str('system')), str('id'))));
    expect(named(s)).toEqual(expect.arrayContaining(['call:builtins.getattr', 'call:importlib.import_module']));
  });

  it('issue 338: alternative primitives (multiprocessing.util.spawnv_passfds, pandas read_csv, mlflow entry points)', () => {
    for (const [module, name] of [
      ['multiprocessing.util', 'spawnv_passfds'],
      ['pandas.io.parsers.readers', 'read_csv'],
      ['mlflow.projects.backend.local', '_run_entry_point'],
      ['urllib.request', 'urlopen'],
    ] as const) {
      expect(scan(p4(call(sg(module, name), str('x')))).findings.some((f) => f.never && f.global === `${module}.${name}`)).toBe(true);
    }
  });

  it('issue 267: nested pickle.loads', () => {
    expect(named(scan(p4(call(sg('pickle', 'loads'), bytes(p4('N'))))))).toContain('call:pickle.loads');
  });
});

describe('fickling advisories', () => {
  it('GHSA-q5qq-mvfm-j35x: the full import name, not only its top-level package, is judged (and a submodule of a never-allowed one is never allowed)', () => {
    const s = scan(p4(call(sg('os.path', 'join'), str('a'))));
    expect(s.findings.some((f) => f.never && f.global === 'os.path.join')).toBe(true);
  });

  it('GHSA-h4rm-mm56-xf63: builtins imports (eval, exec, __import__) are judged like any other', () => {
    for (const name of ['eval', 'exec', '__import__', 'compile', 'getattr', 'open', 'breakpoint']) {
      expect(scan(p4(call(sg('builtins', name), str('x')))).findings.some((f) => f.never)).toBe(true);
    }
  });

  it('GHSA-565g-hwwr-4pp3, GHSA-r7v6-mfhq-g3m2: marshal, types and pty', () => {
    for (const [module, name] of [['marshal', 'loads'], ['types', 'CodeType'], ['pty', 'spawn']] as const) {
      expect(scan(p4(call(sg(module, name), str('x')))).findings.some((f) => f.never && f.global === `${module}.${name}`)).toBe(true);
    }
  });

  it('GHSA-6ggj-6f2q-f7mx, GHSA-m6fh-58r7-x697: private stdlib modules (_xxsubinterpreters, _posixsubprocess), site, atexit', () => {
    for (const [module, name] of [['_xxsubinterpreters', 'run_string'], ['_posixsubprocess', 'fork_exec'], ['site', 'addpackage'], ['atexit', 'register']] as const) {
      expect(scan(p4(call(sg(module, name), str('x')))).findings.some((f) => f.never && f.global === `${module}.${name}`)).toBe(true);
    }
  });

  it('an unknown name that no list mentions is refused too (the allow-list), with how to allow it', () => {
    const s = scan(p4(call(sg('uuid_helpers', 'run'), str('x'))));
    expect(s.code).toBe('E_MODEL_UNSAFE');
    expect(s.findings[0]?.reason).toMatch(/does not list; if you trust this model's source, allow it with --allow uuid_helpers\.run/);
  });
});
