import { importFromStack, importFromText, type ImportContext, type ImportSite } from './pickle-imports.js';
import { HIGHEST_PICKLE_PROTOCOL, type PickleOpcode, type PickleOpName } from './pickle-opcodes.js';
import { dataOf, intOf, lineOf, pairOf, type PickleArgument } from './pickle-reader.js';
import { checkUse } from './pickle-rules.js';
import { SymbolicStack, type Reporter } from './pickle-stack.js';
import type { FindingSink, PickleFindingKind, PickleHooks } from './pickle-types.js';
import {
  DATA,
  EMPTY_TUPLE,
  FALSE,
  MAX_TRACKED_ENTRIES,
  NONE,
  TRUE,
  UNKNOWN,
  binaryUnicodeValue,
  byteStringValue,
  decodeUtf8,
  intValue,
  memoIndex,
  numberLineProblem,
  quotedStringValue,
  strText,
  textUnicodeValue,
  tupleValue,
  type ObjectValue,
  type PickleValue,
} from './pickle-values.js';
import type { ModelPolicy } from './policy.js';

/**
 * A symbolic unpickler: it follows CPython's stack, mark and memo discipline (Modules/_pickle.c,
 * which `pickle.load` uses) opcode by opcode, but its values are only what the verdict needs
 * (strs STACK_GLOBAL may import, small ints, tuples, dicts, imported globals and the objects
 * built from them), and it never imports or calls anything. That is enough to name every
 * import, including STACK_GLOBAL's, whose operands may come through DUP or the memo, and to
 * judge every use of an import: called (REDUCE, INST, OBJ), instantiated (NEWOBJ, NEWOBJ_EX,
 * and the class arguments of the rebuild helpers), or given state (BUILD).
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
  /** A malformation was found at the current opcode (its call, if any, never happens). */
  private opMalformed = false;
  /** After the first STOP: report imports, but not malformations of whatever trails. */
  private trailing = false;
  /** The value STOP returned (what pickle.load gives back), for formats that read it. */
  result: PickleValue = UNKNOWN;

  constructor(
    private readonly policy: ModelPolicy,
    private readonly sink: FindingSink,
    private readonly hooks: PickleHooks = {},
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
    this.opMalformed = true;
    if (this.malformedSeen || this.trailing) return;
    this.malformedSeen = true;
    this.sink.add({ kind: 'malformed', offset, opcode, reason });
  }

  /** A malformation at the current opcode. */
  malformed(reason: string): void {
    this.malformedAt(this.offset, this.opcode, reason);
  }

  /** A safety finding at the current opcode. */
  finding(kind: Exclude<PickleFindingKind, 'malformed' | 'trailing-data' | 'limit'>, reason: string, global?: string, never?: boolean): void {
    const base = { kind, offset: this.offset, opcode: this.opcode, reason };
    const withGlobal = global === undefined ? base : { ...base, global };
    this.sink.add(never ? { ...withGlobal, never: true } : withGlobal);
  }

  /**
   * Executes one opcode whose argument has been read; returns true for STOP.
   * @throws InternalError E_INTERNAL if the argument does not fit the opcode (a bug)
   */
  execute(op: PickleOpcode, arg: PickleArgument, offset: number): boolean {
    this.offset = offset;
    this.opcode = op.name;
    this.opMalformed = false;
    const s = this.stack;
    const name: PickleOpName = op.name;
    switch (name) {
      // Values that are never a str and need no tracking.
      case 'BINFLOAT':
      case 'BINBYTES':
      case 'SHORT_BINBYTES':
      case 'BINBYTES8':
      case 'BYTEARRAY8':
      case 'NEXT_BUFFER':
      case 'EMPTY_LIST':
      case 'EMPTY_SET':
      case 'LONG4':
        s.push(DATA);
        return false;
      case 'NONE':
        s.push(NONE);
        return false;
      case 'NEWTRUE':
        s.push(TRUE);
        return false;
      case 'NEWFALSE':
        s.push(FALSE);
        return false;
      case 'BININT':
      case 'BININT1':
      case 'BININT2':
        s.push(intValue(intOf(arg, name)));
        return false;
      case 'LONG1': {
        const bytes = dataOf(arg, name);
        s.push(bytes === undefined ? DATA : long1Value(bytes));
        return false;
      }
      case 'EMPTY_TUPLE':
        s.push(EMPTY_TUPLE);
        return false;
      case 'EMPTY_DICT':
        s.push({ kind: 'dict', entries: new Map() });
        return false;
      case 'INT':
      case 'LONG':
      case 'FLOAT': {
        const text = lineOf(arg, name);
        const problem = numberLineProblem(name, text);
        if (problem !== undefined) this.malformed(problem);
        s.push(name === 'INT' ? intLineValue(text) : DATA);
        return false;
      }
      // Strings: known text where the decoding is certain.
      case 'SHORT_BINUNICODE':
      case 'BINUNICODE':
      case 'BINUNICODE8': {
        const bytes = dataOf(arg, name);
        s.push(bytes === undefined ? UNKNOWN : binaryUnicodeValue(bytes));
        return false;
      }
      case 'UNICODE':
        s.push(textUnicodeValue(lineOf(arg, name)));
        return false;
      case 'SHORT_BINSTRING':
      case 'BINSTRING': {
        const bytes = dataOf(arg, name);
        s.push(bytes === undefined ? UNKNOWN : byteStringValue(bytes, false));
        return false;
      }
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
        if (!s.has(count, this)) {
          s.push(UNKNOWN);
          return false;
        }
        const items = s.itemsFrom(s.height - count);
        s.truncate(s.height - count);
        s.push(tupleValue(items));
        return false;
      }
      case 'TUPLE': {
        const mark = s.popMark(this);
        const items = s.itemsFrom(mark);
        s.truncate(mark);
        s.push(tupleValue(items));
        return false;
      }
      case 'LIST':
      case 'FROZENSET': {
        s.truncate(s.popMark(this));
        s.push(DATA);
        return false;
      }
      case 'DICT': {
        const mark = s.popMark(this);
        if ((s.height - mark) % 2 !== 0) this.malformed('odd number of items for DICT');
        const dict: PickleValue = { kind: 'dict', entries: new Map() };
        setItems(dict, s.itemsFrom(mark));
        s.truncate(mark);
        s.push(dict);
        return false;
      }
      case 'APPEND':
        if (s.extend(s.height - 1, 1, this)) s.truncate(s.height - 1);
        return false;
      case 'SETITEM': {
        const start = s.height - 2;
        if (s.extend(start, 2, this)) {
          setItems(s.at(start - 1), s.itemsFrom(start));
          s.truncate(start);
        }
        return false;
      }
      case 'APPENDS':
      case 'ADDITEMS': {
        const mark = s.popMark(this);
        if (s.extend(mark, 1, this)) s.truncate(mark);
        return false;
      }
      case 'SETITEMS': {
        const mark = s.popMark(this);
        if (s.extend(mark, 2, this)) {
          setItems(s.at(mark - 1), s.itemsFrom(mark));
          s.truncate(mark);
        }
        return false;
      }
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
        s.push(importFromText(this.imports(), decodeUtf8(module), decodeUtf8(attr)));
        return false;
      }
      case 'INST': {
        const mark = s.popMark(this);
        const [module, attr] = pairOf(arg, name);
        // INST names are ASCII in both loaders; names beyond ASCII are still reported as
        // imports (which no allow-list names), so decoding them as UTF-8 refuses no less.
        const callable = importFromText(this.imports(), decodeUtf8(module), decodeUtf8(attr));
        const args = tupleValue(s.itemsFrom(mark));
        s.truncate(mark);
        s.push(this.call(callable, args));
        return false;
      }
      case 'STACK_GLOBAL':
        // With fewer than two operands the loader fails here, before importing anything.
        if (s.has(2, this)) {
          const attr = s.pop(this);
          s.push(importFromStack(this.imports(), s.pop(this), attr));
        } else {
          s.push(UNKNOWN);
        }
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
      case 'BINPERSID': {
        const id = name === 'BINPERSID' ? s.pop(this) : { kind: 'str', bytes: lineOf(arg, name), encoding: 'ascii' } as const;
        const hook = this.hooks.persistentId;
        if (hook === undefined) {
          this.finding('persistent-id', "asks the loader's persistent_load for an object, which this scan cannot check");
        } else {
          const refused = hook(id, this.offset);
          if (refused !== undefined) this.finding('persistent-id', refused);
        }
        s.push({ kind: 'object', of: undefined, args: id, state: undefined });
        return false;
      }
      // Calls and instantiations: judged by the use the policy allows for the callable.
      case 'REDUCE': {
        if (!s.has(2, this)) {
          s.truncate(Math.max(0, s.height - 1));
          s.push(UNKNOWN);
          return false;
        }
        const args = s.pop(this);
        const callable = s.pop(this);
        s.push(this.call(callable, args));
        return false;
      }
      case 'NEWOBJ':
      case 'NEWOBJ_EX': {
        const count = name === 'NEWOBJ_EX' ? 3 : 2;
        if (!s.has(count, this)) {
          s.push(UNKNOWN);
          return false;
        }
        if (name === 'NEWOBJ_EX') s.pop(this);
        const args = s.pop(this);
        const cls = s.pop(this);
        checkUse(this, cls, 'class', args);
        s.push({ kind: 'object', of: cls.kind === 'global' ? cls : undefined, args, state: undefined });
        return false;
      }
      case 'OBJ': {
        const mark = s.popMark(this);
        if (s.height - mark < 1) {
          this.malformed('stack underflow (OBJ without a class)');
          s.truncate(mark);
          s.push(UNKNOWN);
          return false;
        }
        const callable = s.at(mark);
        const args = tupleValue(s.itemsFrom(mark + 1));
        s.truncate(mark);
        s.push(this.call(callable, args));
        return false;
      }
      case 'BUILD': {
        // Pops the state; the instance stays, whatever it was (a str has no state to set).
        if (!s.has(2, this)) return false;
        const state = s.pop(this);
        const target = s.top(this);
        if (target.kind === 'global') {
          this.finding(
            'build-global',
            `sets attributes on ${target.module}.${target.name} itself (BUILD on an imported object), which changes it for every later use`,
            `${target.module}.${target.name}`,
          );
        } else if (target.kind === 'object') {
          target.state = state;
          this.hooks.afterBuild?.(target, offset);
        }
        return false;
      }
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
        this.result = s.pop(this);
        return true;
    }
  }

  /** REDUCE, INST, OBJ: `callable(*args)`, judged by the policy; the result is an object. */
  private call(callable: PickleValue, args: PickleValue): ObjectValue {
    // Where the opcode itself is malformed (INST or OBJ without a MARK), the loader raises
    // before calling anything (pickle.py imports INST's class first: that is judged).
    if (this.opMalformed) return { kind: 'object', of: undefined, args, state: undefined };
    const made = checkUse(this, callable, 'call', args);
    return { kind: 'object', of: made, args, state: undefined };
  }

  /** The import context for the current opcode. */
  private imports(): ImportContext {
    return { policy: this.policy, sink: this.sink, protocol: this.protocol, at: this };
  }

  /** The policy this machine judges by (for the rules module). */
  get judgedBy(): ModelPolicy {
    return this.policy;
  }
}

/** SETITEM(S), DICT: keeps str-keyed entries of a tracked dict while it stays small. */
function setItems(target: PickleValue, items: readonly PickleValue[]): void {
  if (target.kind !== 'dict' || target.entries === undefined) return;
  for (let i = 0; i + 1 < items.length; i += 2) {
    const key = strText(items[i] as PickleValue);
    if (key === undefined || target.entries.size >= MAX_TRACKED_ENTRIES) {
      target.entries = undefined;
      return;
    }
    target.entries.set(key, items[i + 1] as PickleValue);
  }
}

/** LONG1: a little-endian two's-complement int; tracked when it fits in 6 bytes. */
function long1Value(bytes: Uint8Array): PickleValue {
  if (bytes.length > 6) return DATA;
  let value = 0;
  for (let i = bytes.length - 1; i >= 0; i--) value = value * 256 + (bytes[i] ?? 0);
  if (bytes.length > 0 && ((bytes[bytes.length - 1] ?? 0) & 0x80) !== 0) value -= 2 ** (8 * bytes.length);
  return intValue(value);
}

/** INT's text argument (`01`/`00` are protocol 0's True/False). */
function intLineValue(text: Uint8Array): PickleValue {
  if (text.length === 2 && text[0] === 0x30 && (text[1] === 0x30 || text[1] === 0x31)) return text[1] === 0x31 ? TRUE : FALSE;
  if (text.length > 15) return DATA;
  let value = 0;
  let sign = 1;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] ?? 0;
    if (i === 0 && (c === 0x2d || c === 0x2b)) {
      if (c === 0x2d) sign = -1;
      continue;
    }
    if (c < 0x30 || c > 0x39) return DATA;
    value = value * 10 + (c - 0x30);
  }
  return intValue(sign * value);
}
