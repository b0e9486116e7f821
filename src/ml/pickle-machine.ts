import { importFromStack, importFromText, type ImportContext, type ImportSite } from './pickle-imports.js';
import { HIGHEST_PICKLE_PROTOCOL, type PickleOpcode, type PickleOpName } from './pickle-opcodes.js';
import { dataOf, intOf, lineOf, pairOf, type PickleArgument } from './pickle-reader.js';
import { SymbolicStack, type Reporter } from './pickle-stack.js';
import type { FindingSink, PickleFindingKind } from './pickle-types.js';
import {
  DATA,
  UNKNOWN,
  binaryUnicodeValue,
  byteStringValue,
  decodeUtf8,
  memoIndex,
  numberLineProblem,
  quotedStringValue,
  textUnicodeValue,
} from './pickle-values.js';

/**
 * A symbolic unpickler: it follows CPython's stack, mark and memo discipline (Modules/_pickle.c,
 * which `pickle.load` uses) opcode by opcode, but its values are only "a str with this text",
 * "not a str" or "unknown", and it never imports or calls anything. That is enough to name
 * every import, including STACK_GLOBAL's, whose operands may come through DUP or the memo.
 *
 * Where the loader would raise (a stack underflow, a missing MARK or memo entry), the machine
 * reports `malformed` and carries on with UNKNOWN values, so that imports further on are still
 * named; the file is refused either way.
 */
export class PickleMachine implements Reporter, ImportSite {
  private readonly stack = new SymbolicStack();
  /** The opcode being executed, where findings are reported. */
  private offset = 0;
  private opcode: PickleOpName = 'PROTO';
  private protocol = 0;
  private malformedSeen = false;
  /** After the first STOP: report imports, but not malformations of whatever trails. */
  private trailing = false;

  constructor(
    private readonly allow: ReadonlySet<string>,
    private readonly sink: FindingSink,
  ) {}

  /**
   * Starts the next pickle after a STOP, as a second `Unpickler.load()` would: a fresh stack,
   * marks and protocol, the same memo.
   */
  startTrailingPickle(): void {
    this.stack.reset();
    this.protocol = 0;
    this.trailing = true;
  }

  /** Reports a malformation at `offset`, once per pickle: the loader stops at the first. */
  malformedAt(offset: number, opcode: string, reason: string): void {
    if (this.malformedSeen || this.trailing) return;
    this.malformedSeen = true;
    this.sink.add({ kind: 'malformed', offset, opcode, reason });
  }

  /** A malformation at the current opcode. */
  malformed(reason: string): void {
    this.malformedAt(this.offset, this.opcode, reason);
  }

  /** A safety finding at the current opcode. */
  finding(kind: Exclude<PickleFindingKind, 'malformed' | 'trailing-data' | 'limit'>, reason: string, global?: string): void {
    const base = { kind, offset: this.offset, opcode: this.opcode, reason };
    this.sink.add(global === undefined ? base : { ...base, global });
  }

  /**
   * Executes one opcode whose argument has been read; returns true for STOP.
   * @throws InternalError E_INTERNAL if the argument does not fit the opcode (a bug)
   */
  execute(op: PickleOpcode, arg: PickleArgument, offset: number): boolean {
    this.offset = offset;
    this.opcode = op.name;
    const s = this.stack;
    const name: PickleOpName = op.name;
    switch (name) {
      // Values that are never a str.
      case 'NONE':
      case 'NEWTRUE':
      case 'NEWFALSE':
      case 'BININT':
      case 'BININT1':
      case 'BININT2':
      case 'LONG1':
      case 'LONG4':
      case 'BINFLOAT':
      case 'BINBYTES':
      case 'SHORT_BINBYTES':
      case 'BINBYTES8':
      case 'BYTEARRAY8':
      case 'NEXT_BUFFER':
      case 'EMPTY_LIST':
      case 'EMPTY_TUPLE':
      case 'EMPTY_DICT':
      case 'EMPTY_SET':
        s.push(DATA);
        return false;
      case 'INT':
      case 'LONG':
      case 'FLOAT': {
        const problem = numberLineProblem(name, lineOf(arg, name));
        if (problem !== undefined) this.malformed(problem);
        s.push(DATA);
        return false;
      }
      // Strings: known text where the decoding is certain.
      case 'SHORT_BINUNICODE':
      case 'BINUNICODE':
      case 'BINUNICODE8':
        s.push(binaryUnicodeValue(dataOf(arg, name)));
        return false;
      case 'UNICODE':
        s.push(textUnicodeValue(lineOf(arg, name)));
        return false;
      case 'SHORT_BINSTRING':
      case 'BINSTRING':
        s.push(byteStringValue(dataOf(arg, name), false));
        return false;
      case 'STRING': {
        const value = quotedStringValue(lineOf(arg, name));
        if (value === undefined) this.malformed('the STRING argument is not quoted');
        s.push(value ?? UNKNOWN);
        return false;
      }
      // Containers.
      case 'TUPLE1':
      case 'TUPLE2':
      case 'TUPLE3': {
        const count = name === 'TUPLE1' ? 1 : name === 'TUPLE2' ? 2 : 3;
        if (s.has(count, this)) s.truncate(s.height - count);
        s.push(DATA);
        return false;
      }
      case 'TUPLE':
      case 'LIST':
      case 'FROZENSET':
      case 'DICT': {
        const mark = s.popMark(this);
        if (name === 'DICT' && (s.height - mark) % 2 !== 0) this.malformed('odd number of items for DICT');
        s.truncate(mark);
        s.push(DATA);
        return false;
      }
      case 'APPEND':
        s.extend(s.height - 1, 1, this);
        return false;
      case 'SETITEM':
        s.extend(s.height - 2, 2, this);
        return false;
      case 'APPENDS':
      case 'ADDITEMS':
        s.extend(s.popMark(this), 1, this);
        return false;
      case 'SETITEMS':
        s.extend(s.popMark(this), 2, this);
        return false;
      // Stack and memo.
      case 'MARK':
        s.pushMark();
        return false;
      case 'POP':
        s.popValueOrMark(this);
        return false;
      case 'POP_MARK':
        s.truncate(s.popMark(this));
        return false;
      case 'DUP':
        s.push(s.top(this));
        return false;
      case 'GET':
        s.get(memoIndex(lineOf(arg, name)), this);
        return false;
      case 'BINGET':
      case 'LONG_BINGET':
        s.get(intOf(arg, name), this);
        return false;
      case 'PUT':
        s.put(memoIndex(lineOf(arg, name)), this);
        return false;
      case 'BINPUT':
      case 'LONG_BINPUT':
        s.put(intOf(arg, name), this);
        return false;
      case 'MEMOIZE':
        s.memoize(this);
        return false;
      // Imports: the only way a pickle reaches code.
      case 'GLOBAL': {
        const [module, attr] = pairOf(arg, name);
        importFromText(this.imports(), decodeUtf8(module), decodeUtf8(attr));
        s.push(UNKNOWN);
        return false;
      }
      case 'INST': {
        const mark = s.popMark(this);
        const [module, attr] = pairOf(arg, name);
        // INST names are ASCII in both loaders; names beyond ASCII are still reported as
        // imports (which no allow-list names), so decoding them as UTF-8 refuses no less.
        importFromText(this.imports(), decodeUtf8(module), decodeUtf8(attr));
        s.truncate(mark);
        s.push(UNKNOWN);
        return false;
      }
      case 'STACK_GLOBAL':
        // With fewer than two operands the loader fails here, before importing anything.
        if (s.has(2, this)) {
          const attr = s.pop(this);
          importFromStack(this.imports(), s.pop(this), attr);
        }
        s.push(UNKNOWN);
        return false;
      case 'EXT1':
      case 'EXT2':
      case 'EXT4':
        this.finding(
          'extension',
          `loads extension code ${intOf(arg, name)} from the copyreg registry, an import that cannot be checked`,
        );
        s.push(UNKNOWN);
        return false;
      case 'PERSID':
      case 'BINPERSID':
        if (name === 'BINPERSID') s.pop(this);
        this.finding('persistent-id', "asks the loader's persistent_load for an object, which this scan cannot check");
        s.push(UNKNOWN);
        return false;
      // Calls: as dangerous as the callable, which came from an import judged above.
      case 'REDUCE':
      case 'NEWOBJ':
      case 'NEWOBJ_EX': {
        const count = name === 'NEWOBJ_EX' ? 3 : 2;
        for (let i = 0; i < count; i++) s.pop(this);
        s.push(UNKNOWN);
        return false;
      }
      case 'OBJ': {
        const mark = s.popMark(this);
        if (s.height - mark < 1) this.malformed('stack underflow (OBJ without a class)');
        s.truncate(mark);
        s.push(UNKNOWN);
        return false;
      }
      case 'BUILD':
        // Pops the state; the instance stays, whatever it was (a str has no state to set).
        if (s.has(2, this)) s.pop(this);
        return false;
      case 'READONLY_BUFFER':
        s.replaceTop(DATA, this); // a memoryview, never a str
        return false;
      // Framing and the end.
      case 'PROTO': {
        const protocol = intOf(arg, name);
        if (protocol > HIGHEST_PICKLE_PROTOCOL) this.malformed(`unsupported pickle protocol ${protocol}`);
        this.protocol = protocol;
        return false;
      }
      case 'FRAME': // a length hint; the scan loop checks that the frame is all there
        return false;
      case 'STOP':
        s.pop(this);
        return true;
    }
  }

  /** The import context for the current opcode. */
  private imports(): ImportContext {
    return { allow: this.allow, sink: this.sink, protocol: this.protocol, at: this };
  }
}
