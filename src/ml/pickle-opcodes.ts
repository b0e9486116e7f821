/**
 * Every pickle opcode of protocols 0 to 5, as CPython's `pickletools.opcodes` lists them: the
 * byte, the name, how its argument is encoded and the protocol that introduced it. A test
 * compares this table with the live `pickletools` table of the installed Python.
 */

/** How an opcode's inline argument is encoded (pickletools' ArgumentDescriptor names). */
export type PickleArgKind =
  | 'none'
  | 'uint1'
  | 'uint2'
  | 'uint4'
  | 'uint8'
  | 'int4'
  | 'float8'
  | 'decimalnl_short'
  | 'decimalnl_long'
  | 'floatnl'
  | 'stringnl'
  | 'stringnl_noescape'
  | 'stringnl_noescape_pair'
  | 'unicodestringnl'
  | 'long1'
  | 'long4'
  | 'string1'
  | 'string4'
  | 'bytes1'
  | 'bytes4'
  | 'bytes8'
  | 'bytearray8'
  | 'unicodestring1'
  | 'unicodestring4'
  | 'unicodestring8';

const TABLE = [
  [0x49, 'INT', 'decimalnl_short', 0],
  [0x4a, 'BININT', 'int4', 1],
  [0x4b, 'BININT1', 'uint1', 1],
  [0x4d, 'BININT2', 'uint2', 1],
  [0x4c, 'LONG', 'decimalnl_long', 0],
  [0x8a, 'LONG1', 'long1', 2],
  [0x8b, 'LONG4', 'long4', 2],
  [0x53, 'STRING', 'stringnl', 0],
  [0x54, 'BINSTRING', 'string4', 1],
  [0x55, 'SHORT_BINSTRING', 'string1', 1],
  [0x42, 'BINBYTES', 'bytes4', 3],
  [0x43, 'SHORT_BINBYTES', 'bytes1', 3],
  [0x8e, 'BINBYTES8', 'bytes8', 4],
  [0x96, 'BYTEARRAY8', 'bytearray8', 5],
  [0x97, 'NEXT_BUFFER', 'none', 5],
  [0x98, 'READONLY_BUFFER', 'none', 5],
  [0x4e, 'NONE', 'none', 0],
  [0x88, 'NEWTRUE', 'none', 2],
  [0x89, 'NEWFALSE', 'none', 2],
  [0x56, 'UNICODE', 'unicodestringnl', 0],
  [0x8c, 'SHORT_BINUNICODE', 'unicodestring1', 4],
  [0x58, 'BINUNICODE', 'unicodestring4', 1],
  [0x8d, 'BINUNICODE8', 'unicodestring8', 4],
  [0x46, 'FLOAT', 'floatnl', 0],
  [0x47, 'BINFLOAT', 'float8', 1],
  [0x5d, 'EMPTY_LIST', 'none', 1],
  [0x61, 'APPEND', 'none', 0],
  [0x65, 'APPENDS', 'none', 1],
  [0x6c, 'LIST', 'none', 0],
  [0x29, 'EMPTY_TUPLE', 'none', 1],
  [0x74, 'TUPLE', 'none', 0],
  [0x85, 'TUPLE1', 'none', 2],
  [0x86, 'TUPLE2', 'none', 2],
  [0x87, 'TUPLE3', 'none', 2],
  [0x7d, 'EMPTY_DICT', 'none', 1],
  [0x64, 'DICT', 'none', 0],
  [0x73, 'SETITEM', 'none', 0],
  [0x75, 'SETITEMS', 'none', 1],
  [0x8f, 'EMPTY_SET', 'none', 4],
  [0x90, 'ADDITEMS', 'none', 4],
  [0x91, 'FROZENSET', 'none', 4],
  [0x30, 'POP', 'none', 0],
  [0x32, 'DUP', 'none', 0],
  [0x28, 'MARK', 'none', 0],
  [0x31, 'POP_MARK', 'none', 1],
  [0x67, 'GET', 'decimalnl_short', 0],
  [0x68, 'BINGET', 'uint1', 1],
  [0x6a, 'LONG_BINGET', 'uint4', 1],
  [0x70, 'PUT', 'decimalnl_short', 0],
  [0x71, 'BINPUT', 'uint1', 1],
  [0x72, 'LONG_BINPUT', 'uint4', 1],
  [0x94, 'MEMOIZE', 'none', 4],
  [0x82, 'EXT1', 'uint1', 2],
  [0x83, 'EXT2', 'uint2', 2],
  [0x84, 'EXT4', 'int4', 2],
  [0x63, 'GLOBAL', 'stringnl_noescape_pair', 0],
  [0x93, 'STACK_GLOBAL', 'none', 4],
  [0x52, 'REDUCE', 'none', 0],
  [0x62, 'BUILD', 'none', 0],
  [0x69, 'INST', 'stringnl_noescape_pair', 0],
  [0x6f, 'OBJ', 'none', 1],
  [0x81, 'NEWOBJ', 'none', 2],
  [0x92, 'NEWOBJ_EX', 'none', 4],
  [0x80, 'PROTO', 'uint1', 2],
  [0x2e, 'STOP', 'none', 0],
  [0x95, 'FRAME', 'uint8', 4],
  [0x50, 'PERSID', 'stringnl_noescape', 0],
  [0x51, 'BINPERSID', 'none', 1],
] as const satisfies readonly (readonly [number, string, PickleArgKind, number])[];

/** An opcode name, such as `STACK_GLOBAL`. */
export type PickleOpName = (typeof TABLE)[number][1];

/** One row of the opcode table. */
export interface PickleOpcode {
  readonly byte: number;
  readonly name: PickleOpName;
  readonly arg: PickleArgKind;
  /** The protocol that introduced the opcode. */
  readonly proto: number;
}

/** Every opcode, in pickletools order. */
export const PICKLE_OPCODES: readonly PickleOpcode[] = TABLE.map(([byte, name, arg, proto]) => ({
  byte,
  name,
  arg,
  proto,
}));

/** The opcode for each byte value, or undefined for the bytes that are no opcode. */
export const OPCODE_BY_BYTE: readonly (PickleOpcode | undefined)[] = (() => {
  const table: (PickleOpcode | undefined)[] = new Array<PickleOpcode | undefined>(256).fill(undefined);
  for (const op of PICKLE_OPCODES) table[op.byte] = op;
  return table;
})();

/** The highest protocol CPython reads (pickle.HIGHEST_PROTOCOL); PROTO above it is refused. */
export const HIGHEST_PICKLE_PROTOCOL = 5;
