import { UNKNOWN, type PickleValue } from './pickle-values.js';

/** Where the stack reports a step the loader would refuse; bound to the current opcode. */
export interface Reporter {
  malformed(reason: string): void;
}

/**
 * The unpickler's stack, MARK stack and memo, with CPython's checks (Modules/_pickle.c): a
 * MARK sets a "fence" that no pop may cross; APPENDS, SETITEMS and ADDITEMS need their target
 * above the enclosing fence; MEMOIZE stores at the memo's current size. Where the loader would
 * raise, the stack reports and carries on with UNKNOWN, never throwing.
 */
export class SymbolicStack {
  private items: PickleValue[] = [];
  /** Stack heights at each MARK, innermost last. Heights never decrease towards the top. */
  private marks: number[] = [];
  /**
   * The memo by index. An array, not a Map: pickles number their memo entries 0, 1, 2, ...,
   * which V8 stores densely (a Map of a million entries is several times slower); a hostile
   * sparse index only makes the array a dictionary, which costs no more than a Map.
   */
  private memo: (PickleValue | undefined)[] = [];
  /** Entries in the memo: MEMOIZE's index, as the loader's memo_len. */
  private memoSize = 0;
  /** False after a PUT whose index we could not read: any memo entry may then be anything. */
  private memoKnown = true;

  /** A fresh stack and marks for the next pickle in the stream; the memo is kept, as a second load() on one Unpickler keeps it. */
  reset(): void {
    this.items = [];
    this.marks = [];
  }

  private get fence(): number {
    return this.marks[this.marks.length - 1] ?? 0;
  }

  get height(): number {
    return this.items.length;
  }

  push(value: PickleValue): void {
    this.items.push(value);
  }

  pushMark(): void {
    this.marks.push(this.items.length);
  }

  /** True when `count` values lie above the fence; otherwise reports an underflow. */
  has(count: number, r: Reporter): boolean {
    if (this.items.length - count >= this.fence) return true;
    r.malformed('stack underflow (nothing to pop above the last MARK)');
    return false;
  }

  pop(r: Reporter): PickleValue {
    return this.has(1, r) ? (this.items.pop() ?? UNKNOWN) : UNKNOWN;
  }

  top(r: Reporter): PickleValue {
    return this.has(1, r) ? (this.items[this.items.length - 1] ?? UNKNOWN) : UNKNOWN;
  }

  /** READONLY_BUFFER, BUILD: the top value becomes `value` (if there is one). */
  replaceTop(value: PickleValue, r: Reporter): void {
    if (this.has(1, r)) this.items[this.items.length - 1] = value;
  }

  /** POP: drops the top value, or the top MARK when nothing was pushed since it (as _pickle.c). */
  popValueOrMark(r: Reporter): void {
    if (this.marks.length > 0 && this.fence === this.items.length) this.marks.pop();
    else this.pop(r);
  }

  /** Pops the top MARK and returns the height it recorded (the current height if none). */
  popMark(r: Reporter): number {
    const mark = this.marks.pop();
    if (mark === undefined) {
      r.malformed('no MARK to pop');
      return this.items.length;
    }
    return mark;
  }

  /** The values from `start` up (a copy), as TUPLE and SETITEMS consume them. */
  itemsFrom(start: number): PickleValue[] {
    return this.items.slice(start);
  }

  /** The value at `index` from the bottom, or UNKNOWN. */
  at(index: number): PickleValue {
    return this.items[index] ?? UNKNOWN;
  }

  /** Drops every value from `height` up. */
  truncate(height: number): void {
    if (height < this.items.length) this.items.length = height;
  }

  /**
   * APPEND(S), SETITEM(S), ADDITEMS: the values from `start` up go into the object just below
   * them, which must lie above the fence (do_append, do_setitems); SETITEM(S) take pairs.
   */
  extend(start: number, group: 1 | 2, r: Reporter): boolean {
    if (start <= this.fence || start > this.items.length) {
      r.malformed('stack underflow (no container below the items)');
      return false;
    }
    if ((this.items.length - start) % group !== 0) r.malformed('odd number of items for SETITEMS');
    return true;
  }

  /** GET, BINGET, LONG_BINGET; `index` undefined when the text form was not plain digits. */
  get(index: number | undefined, r: Reporter): void {
    const value = index === undefined ? undefined : this.memo[index];
    if (value === undefined && this.memoKnown) {
      r.malformed(index === undefined ? 'GET index is not plain digits' : `no memo entry ${index}`);
    }
    this.items.push(value ?? UNKNOWN);
  }

  /** PUT, BINPUT, LONG_BINPUT; an unreadable index leaves the whole memo unknown. */
  put(index: number | undefined, r: Reporter): void {
    const value = this.top(r);
    if (index === undefined) {
      r.malformed('PUT index is not plain digits');
      this.memo = [];
      this.memoSize = 0;
      this.memoKnown = false;
      return;
    }
    if (this.memo[index] === undefined) this.memoSize++;
    this.memo[index] = value;
  }

  /** MEMOIZE stores at the loader's memo size, which we no longer know once the memo is unknown. */
  memoize(r: Reporter): void {
    if (this.memoKnown) this.put(this.memoSize, r);
    else this.top(r);
  }
}
