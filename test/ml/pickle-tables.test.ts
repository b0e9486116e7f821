import { describe, expect, it } from 'vitest';
import { compatTables, importedName } from '../../src/ml/pickle-compat.js';
import { HIGHEST_PICKLE_PROTOCOL, OPCODE_BY_BYTE, PICKLE_OPCODES } from '../../src/ml/pickle-opcodes.js';
import { PYTHONS, runPython } from './python.js';

/** The scanner's tables must be CPython's: checked against every interpreter the steps target. */

const DUMP = `
import json, pickle, pickletools, _compat_pickle
print(json.dumps({
  "opcodes": [[ord(o.code), o.name, o.arg.name if o.arg else "none", o.proto] for o in pickletools.opcodes],
  "names": sorted([m, n, m2, n2] for (m, n), (m2, n2) in _compat_pickle.NAME_MAPPING.items()),
  "modules": sorted([m, m2] for m, m2 in _compat_pickle.IMPORT_MAPPING.items()),
  "highest": pickle.HIGHEST_PROTOCOL,
}))
`;

interface Tables {
  opcodes: [number, string, string, number][];
  names: [string, string, string, string][];
  modules: [string, string][];
  highest: number;
}

describe.each(PYTHONS)('tables match %s', (python) => {
  const run = runPython(python, ['-c', DUMP]);
  const tables = JSON.parse(run.stdout) as Tables;

  it("has every opcode of pickletools, with the same byte, argument kind and protocol", () => {
    expect(PICKLE_OPCODES.map((o) => [o.byte, o.name, o.arg, o.proto])).toEqual(tables.opcodes);
    expect(OPCODE_BY_BYTE.filter((o) => o !== undefined)).toHaveLength(tables.opcodes.length);
  });

  it('reads up to the same highest protocol', () => {
    expect(HIGHEST_PICKLE_PROTOCOL).toBe(tables.highest);
  });

  it("renames Python 2 names with _compat_pickle's tables", () => {
    const ours = compatTables();
    expect([...ours.names].sort()).toEqual(tables.names);
    expect([...ours.modules].sort()).toEqual(tables.modules);
  });
});

describe('importedName', () => {
  it('applies the pair mapping before the module mapping, and only below protocol 3', () => {
    expect(importedName('__builtin__', 'xrange', 2)).toEqual(['builtins', 'range']);
    expect(importedName('__builtin__', 'eval', 0)).toEqual(['builtins', 'eval']);
    expect(importedName('__builtin__', 'eval', 3)).toEqual(['__builtin__', 'eval']);
    expect(importedName('copy_reg', '_reconstructor', 1)).toEqual(['copyreg', '_reconstructor']);
    expect(importedName('__builtin__ xrange', '', 2)).toEqual(['__builtin__ xrange', '']);
  });
});
