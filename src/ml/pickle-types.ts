/** The public shapes of a pickle scan (re-exported by `pickle.ts`). */

import type { ModelPolicy } from './policy.js';
import type { ObjectValue, PickleValue } from './pickle-values.js';

/** Options of `scanPickle`; every field is optional. */
export interface PickleScanOptions {
  /** The allow-list policy; defaults to the default policy (policy.ts). */
  readonly policy?: ModelPolicy;
  /**
   * Extra names (`module.name`, after Python 2 names are mapped) allowed for every use, on top
   * of `policy`. Names in NEVER_ALLOWED stay refused.
   */
  readonly allow?: ReadonlySet<string>;
  /** Larger inputs are not scanned (a `limit` finding). Default 1 GiB. */
  readonly maxBytes?: number;
  /** The scan stops with a `limit` finding after this many opcodes. Default 20 million. */
  readonly maxOps?: number;
}

/**
 * What a finding is about. `malformed`: the stream is truncated or invalid (the loader would
 * fail too, but possibly after running something). Every other kind is a safety verdict.
 */
export type PickleFindingKind =
  | 'import' // an import outside the allow-list, or one that is never allowed
  | 'call' // REDUCE, INST or OBJ on something the policy does not allow to be called
  | 'instantiate' // NEWOBJ (or a rebuild helper) on something the policy does not list as a class
  | 'argument' // a rebuild helper given arguments outside what it may take
  | 'build-global' // BUILD on an imported object itself: it would set attributes on a class or function
  | 'nested-pickle' // a pickle inside the data (an object array, ...) that is unsafe or unreadable
  | 'unresolved-import' // STACK_GLOBAL on operands that are not literal strings
  | 'extension' // EXT1/EXT2/EXT4: an import through the copyreg extension registry
  | 'persistent-id' // PERSID/BINPERSID: an object supplied by the loader's persistent_load
  | 'trailing-data' // bytes after the STOP that ends the pickle
  | 'limit' // a cap on size, opcodes or findings stopped the scan: the rest is unchecked
  | 'malformed';

/** One reason the pickle is not safe to load (or cannot be read). */
export interface PickleFinding {
  /** Byte offset of the opcode (or of the first trailing byte). */
  readonly offset: number;
  /** The opcode name, `0xNN` for a byte that is no opcode, or `<stream>` for the whole input. */
  readonly opcode: string;
  /** The import concerned, as `module.name` after Python 2 names were mapped. */
  readonly global?: string;
  readonly reason: string;
  readonly kind: PickleFindingKind;
  /** A never-allowed name is concerned (ranks the finding first). */
  readonly never?: boolean;
}

/** What a scan found; the pickle is safe to load exactly when `findings` is empty. */
export interface PickleScanResult {
  /** The argument of the first PROTO opcode, or undefined (protocols 0 and 1 have none). */
  readonly protocol: number | undefined;
  /** Every distinct import the stream makes, allowed or not, in order of first appearance. */
  readonly globals: readonly string[];
  /** Empty exactly when the pickle is safe to load under the allow-list. */
  readonly findings: readonly PickleFinding[];
  /** Opcodes read, including any after the first STOP. */
  readonly opcodeCount: number;
}

/** Where the machine reports; implemented by the scan loop. */
export interface FindingSink {
  add(finding: PickleFinding): void;
  noteImport(module: string, name: string): void;
}

/**
 * How the file format around a pickle changes what the loader does with it (torch's
 * persistent ids, joblib's array buffers), as hooks the machine calls.
 */
export interface PickleHooks {
  /**
   * The loader has a persistent_load of its own (torch's storages): a persistent id is then
   * handed to it with this value. Without the hook, persistent ids are findings. Returns a
   * reason if the id is not one the loader accepts.
   */
  persistentId?(id: PickleValue, offset: number): string | undefined;
  /** After BUILD gave `object` its state (joblib reads array data right there). */
  afterBuild?(object: ObjectValue, offset: number): void;
}
