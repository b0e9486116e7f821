import { dirname, resolve } from 'node:path';
import type { PublicKey } from '../crypto/keys.js';
import { checkSource } from './check.js';
import { compileSource } from './compile.js';
import { capDiagnostics, errorsOf, throwIfErrors, type Diagnostic } from './diagnostics.js';
import { schemaDiagnostics } from './source-schema.js';
import type { PipelineSource } from './source.js';
import { readYamlFile } from './yaml-source.js';

/**
 * Reading a YAML layout source end to end: safe YAML -> source schema -> compiled layout
 * (read back by the verifier's layout reader) -> the checks of `intoto layout check`.
 * Each stage runs only when the one before found no error, so a message is never a
 * consequence of an earlier one.
 */

export interface LoadSourceOptions {
  /** The YAML file. Relative paths inside it are resolved against its directory. */
  readonly file: string;
  /** Read functionary NAME's public key from `DIR/NAME.pub` instead of the path in the YAML. */
  readonly pubkeyDir?: string;
  /** Milliseconds since the epoch; default now. */
  readonly now?: number;
  /** The layout owner's public keys, for the `owner-is-functionary` warning. */
  readonly ownerKeys?: readonly PublicKey[];
  /** Warn when the layout expires further away than this (default 1 year). */
  readonly maxExpiryYears?: number;
}

export interface LoadSourceResult {
  /** Present when there is no error. */
  readonly source: PipelineSource | undefined;
  /**
   * Errors and warnings, in file order within each stage: at most MAX_DIAGNOSTICS, then one
   * `too-many-errors` error when more were found or reading stopped early.
   */
  readonly diagnostics: readonly Diagnostic[];
}

/**
 * Reads and checks a YAML layout source, returning every problem found.
 * @throws IoError E_IO, E_NOT_REGULAR_FILE, E_FILE_TOO_LARGE when the file itself cannot be
 *   read; never for its content
 */
export function checkLayoutSource(options: LoadSourceOptions): LoadSourceResult {
  const now = options.now ?? Date.now();
  const read = readYamlFile(options.file);
  if (!read.ok) return { source: undefined, diagnostics: capDiagnostics(sortByPlace(read.diagnostics), read.stoppedEarly) };
  const schema = schemaDiagnostics(read.tree);
  if (schema.length > 0) return { source: undefined, diagnostics: capDiagnostics(sortByPlace(schema), false) };
  const compiled = compileSource(read.tree, {
    file: options.file,
    baseDir: dirname(resolve(options.file)),
    now,
    ...(options.pubkeyDir === undefined ? {} : { pubkeyDir: options.pubkeyDir }),
  });
  if (compiled.source === undefined) return { source: undefined, diagnostics: capDiagnostics(sortByPlace(compiled.diagnostics), false) };
  const checks = checkSource(compiled.source, read.tree, {
    now,
    ...(options.ownerKeys === undefined ? {} : { ownerKeys: options.ownerKeys }),
    ...(options.maxExpiryYears === undefined ? {} : { maxExpiryYears: options.maxExpiryYears }),
  });
  const diagnostics = capDiagnostics(sortByPlace([...compiled.diagnostics, ...checks]), false);
  return { source: errorsOf(diagnostics).length === 0 ? compiled.source : undefined, diagnostics };
}

/**
 * Reads a YAML layout source for use (signing, running): throws on the first error, returns
 * the source and its warnings otherwise.
 * @throws IoError (the file); InTotoError with the first error's code: E_LAYOUT_SOURCE (unsafe
 *   or malformed YAML), E_SCHEMA, E_EXPIRES_FORMAT, E_RULE_SYNTAX, E_RULE_UNKNOWN_STEP,
 *   E_THRESHOLD, E_LAYOUT_KEYS, E_LAYOUT_EXPIRED, E_PIPELINE_CYCLE, a key file's CryptoError
 *   code, ...; every error is in `details`
 */
export function loadLayoutSource(options: LoadSourceOptions): { source: PipelineSource; warnings: readonly Diagnostic[] } {
  const result = checkLayoutSource(options);
  throwIfErrors(options.file, result.diagnostics);
  return { source: result.source as PipelineSource, warnings: result.diagnostics };
}

function sortByPlace(diagnostics: readonly Diagnostic[]): Diagnostic[] {
  return [...diagnostics].sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
}
