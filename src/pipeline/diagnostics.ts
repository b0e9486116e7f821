import { InTotoError, type ErrorCode } from '../errors.js';

/**
 * What `intoto layout check` reports, and what the YAML loader collects before it gives up:
 * every problem of a layout source at once, each with a stable id (tests and scripts match
 * ids, never text), the error code it becomes when thrown, and where it is in the file.
 */

export type Severity = 'error' | 'warning';

/**
 * At most this many diagnostics are listed; reading stops once this many errors are found
 * (a file of broken lines is hopeless, and listing a million errors took 38 s and 2 GB).
 */
export const MAX_DIAGNOSTICS = 100;

/**
 * The stable ids. Errors make a source unusable; warnings are advice (`--strict` fails on
 * them). layouts/README.md explains each.
 */
export const DIAGNOSTIC_IDS = [
  // Reading the YAML safely.
  'yaml-syntax',
  'yaml-duplicate-key',
  'yaml-alias',
  'yaml-tag',
  'yaml-merge-key',
  'yaml-complex-key',
  'yaml-multiple-documents',
  'yaml-limit',
  // Shape and values.
  'schema',
  'expires-format',
  'expired',
  'expires-far',
  'expires-soon',
  'key-file',
  'keyid-mismatch',
  'functionary-same-key',
  'functionary-unknown',
  'functionary-unused',
  'functionary-many-steps',
  'owner-is-functionary',
  'step-name',
  'duplicate-name',
  'step-unsignable',
  'threshold-too-high',
  'run-syntax',
  'step-not-run',
  'expected-command-differs',
  // Built-in steps and inspections (uses: model-sign, uses: model-verify).
  'model-sign-key',
  'model-sign-threshold',
  'model-sign-products',
  'model-sign-in-command',
  // Artifact rules and the flow they imply.
  'rule-syntax',
  'no-final-disallow',
  'rule-after-disallow-all',
  'match-unknown-step',
  'match-later-step',
  'match-from-inspection',
  'pipeline-cycle',
  // Pipeline inputs (not part of the signed layout).
  'input-name',
  'input-missing',
  'input-unused',
  // Whatever the verifier's layout reader still refuses in the compiled layout.
  'layout-invalid',
  // The last line when there were more errors than are listed.
  'too-many-errors',
] as const;

export type DiagnosticId = (typeof DIAGNOSTIC_IDS)[number];

export interface Diagnostic {
  readonly severity: Severity;
  readonly id: DiagnosticId;
  /** The error code the diagnostic becomes when a loader throws it. */
  readonly code: ErrorCode;
  readonly message: string;
  /** 1-based line and column in the YAML file, when the problem has a place. */
  readonly line?: number;
  readonly column?: number;
  /** JSON pointer into the YAML document, e.g. /steps/1/materials/0. */
  readonly path?: string;
}

/** A place in the source, as the reader found it. */
export interface Position {
  readonly line: number;
  readonly column: number;
}

/** Builds a diagnostic, dropping an absent position (exactOptionalPropertyTypes). Never throws. */
export function diagnostic(
  severity: Severity,
  id: DiagnosticId,
  code: ErrorCode,
  message: string,
  where: { readonly path?: string; readonly position?: Position | undefined } = {},
): Diagnostic {
  return Object.freeze({
    severity,
    id,
    code,
    message,
    ...(where.position === undefined ? {} : { line: where.position.line, column: where.position.column }),
    ...(where.path === undefined ? {} : { path: where.path }),
  });
}

/** `FILE:LINE:COL: error: message [id]`, the form compilers use (editors jump to it). */
export function formatDiagnostic(file: string, d: Diagnostic): string {
  const place = d.line === undefined ? file : `${file}:${d.line}:${d.column ?? 1}`;
  return `${place}: ${d.severity}: ${d.message} [${d.id}]`;
}

/**
 * The first {@link MAX_DIAGNOSTICS} of `diagnostics`, then, when some were left out or reading
 * stopped early, one `too-many-errors` error that says so. Never throws.
 */
export function capDiagnostics(diagnostics: readonly Diagnostic[], stoppedEarly: boolean): Diagnostic[] {
  const shown = diagnostics.slice(0, MAX_DIAGNOSTICS);
  const left = diagnostics.length - shown.length;
  if (left === 0 && !stoppedEarly) return shown;
  const message =
    left > 0 && !stoppedEarly
      ? `${left} more problem(s) not listed: fix the ones above first`
      : `stopped reading after ${shown.length} problem(s); there may be more: fix the ones above first`;
  return [...shown, diagnostic('error', 'too-many-errors', 'E_LAYOUT_SOURCE', message)];
}

/** The errors among `diagnostics`. */
export function errorsOf(diagnostics: readonly Diagnostic[]): Diagnostic[] {
  return diagnostics.filter((d) => d.severity === 'error');
}

/**
 * Throws the first error of `diagnostics` (the others in `details`), or returns when
 * there is none.
 * @throws InTotoError with the first error's code (E_LAYOUT_SOURCE, E_SCHEMA, E_RULE_SYNTAX, ...)
 */
export function throwIfErrors(file: string, diagnostics: readonly Diagnostic[]): void {
  const errors = errorsOf(diagnostics);
  const first = errors[0];
  if (first === undefined) return;
  const listed = errors.filter((d) => d.id !== 'too-many-errors');
  const others = listed.length - 1;
  const more = listed.length < errors.length ? ` (and more than ${others} other error(s); run intoto layout check)` : others > 0 ? ` (and ${others} more error(s))` : '';
  const place = first.line === undefined ? file : `${file}:${first.line}:${first.column ?? 1}`;
  // The details are the other errors: -v never repeats the message.
  throw new InTotoError(first.code, `${place}: ${first.message}${more}`, {
    details: errors.slice(1).map((d) => formatDiagnostic(file, d)),
    context: { file, ...(first.path === undefined ? {} : { path: first.path }) },
  });
}
