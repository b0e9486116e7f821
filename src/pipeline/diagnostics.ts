import { InTotoError, type ErrorCode } from '../errors.js';

/**
 * What `intoto layout check` reports, and what the YAML loader collects before it gives up:
 * every problem of a layout source at once, each with a stable id (tests and scripts match
 * ids, never text), the error code it becomes when thrown, and where it is in the file.
 */

export type Severity = 'error' | 'warning';

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

/** The errors among `diagnostics`. */
export function errorsOf(diagnostics: readonly Diagnostic[]): Diagnostic[] {
  return diagnostics.filter((d) => d.severity === 'error');
}

/**
 * Throws the first error of `diagnostics` (with every error in `details`), or returns when
 * there is none.
 * @throws InTotoError with the first error's code (E_LAYOUT_SOURCE, E_SCHEMA, E_RULE_SYNTAX, ...)
 */
export function throwIfErrors(file: string, diagnostics: readonly Diagnostic[]): void {
  const errors = errorsOf(diagnostics);
  const first = errors[0];
  if (first === undefined) return;
  const more = errors.length > 1 ? ` (and ${errors.length - 1} more error(s))` : '';
  const place = first.line === undefined ? file : `${file}:${first.line}:${first.column ?? 1}`;
  throw new InTotoError(first.code, `${place}: ${first.message}${more}`, {
    details: errors.map((d) => formatDiagnostic(file, d)),
    context: { file, ...(first.path === undefined ? {} : { path: first.path }) },
  });
}
