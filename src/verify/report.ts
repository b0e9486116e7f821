import { asInTotoError, type ErrorCode, type ErrorContext } from '../errors.js';

/**
 * The verification report: what `intoto-verify --json` prints and what the library returns.
 * It is filled in as the checks run, so a failed verification still shows everything that was
 * checked before the failure (who signed which step, what each rule consumed).
 */

/** The named checks, in the order they run (see verifySupplyChain). */
export type CheckName =
  | 'layout-signatures'
  | 'layout-expiry'
  | 'links'
  | 'thresholds'
  | 'sublayouts'
  | 'command-alignment'
  | 'links-agree'
  | 'step-rules'
  | 'inspections'
  | 'inspection-rules';

/** What one artifact rule consumed (from the rule traces of verify/rules.ts). */
export interface RuleReport {
  readonly rule: string;
  readonly consumed: readonly string[];
  /** Why matching artifacts were left in the queue (hash mismatches, a missing link, ...). */
  readonly notes: readonly string[];
}

export interface StepReport {
  readonly name: string;
  readonly threshold: number;
  /** Layout keyids whose links verified for this step and count toward the threshold. */
  readonly signedBy: readonly string[];
  /** The link files that held those links. */
  readonly linkFiles: readonly string[];
  /** Files found in the step's slots that did not count, with the reason. */
  readonly ignored: readonly string[];
  /** Sublayouts that stood for this step, one per functionary who delegated. */
  readonly sublayouts: readonly LayoutReport[];
  readonly materials: readonly RuleReport[];
  readonly products: readonly RuleReport[];
}

/** How the final product was put into an inspection's scratch directory. */
export interface PlacementReport {
  readonly hardLinked: number;
  readonly boundReadOnly: number;
  readonly copied: number;
  readonly copiedBytes: number;
  readonly symlinks: number;
}

export interface InspectionReport {
  readonly name: string;
  readonly command: readonly string[];
  /** The exit code, or minus the signal number; undefined when the command never ran. */
  readonly exitCode: number | undefined;
  readonly timedOut: boolean;
  readonly sandboxed: boolean;
  readonly placement: PlacementReport | undefined;
  /** The last lines (at most 20 each) the inspection wrote: its own reason when it fails. */
  readonly output: { readonly stdout: readonly string[]; readonly stderr: readonly string[] };
  readonly materials: readonly RuleReport[];
  readonly products: readonly RuleReport[];
}

export interface LayoutReport {
  /** The layout file, or for a sublayout the link file that holds it. */
  readonly file: string;
  /** For a sublayout: the step it stands for. */
  readonly step?: string;
  readonly expires: string | undefined;
  /** Keyids whose signatures on this layout verified. */
  readonly signedBy: readonly string[];
  readonly steps: readonly StepReport[];
  readonly inspections: readonly InspectionReport[];
}

export interface Failure {
  readonly code: ErrorCode;
  readonly message: string;
  readonly context: ErrorContext;
  readonly details: readonly string[];
}

export interface CheckTiming {
  readonly check: CheckName;
  /** Which layout: '' for the root, `step.keyid8/` paths for sublayouts. */
  readonly layout: string;
  readonly ms: number;
}

export interface VerifyReport {
  readonly verdict: 'passed' | 'failed';
  readonly passed: boolean;
  readonly failure: Failure | undefined;
  readonly layout: LayoutReport;
  readonly warnings: readonly string[];
  readonly timing: { readonly totalMs: number; readonly checks: readonly CheckTiming[] };
}

/** Progress reported while verifying (the CLI prints warnings as they come, notes with -v). */
export type VerifyEvent =
  | { readonly kind: 'check'; readonly check: CheckName; readonly layout: string }
  | { readonly kind: 'warning'; readonly message: string }
  | { readonly kind: 'note'; readonly message: string };

/** A writable view used while a report is being filled in. */
export type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** The failure record of an error. Never throws. */
export function failureOf(error: unknown): Failure {
  const e = asInTotoError(error);
  return { code: e.code, message: e.message, context: e.context, details: e.details };
}

/** An empty layout report for `file`, to be filled in. */
export function emptyLayoutReport(file: string, step?: string): Mutable<LayoutReport> & {
  steps: StepReport[];
  inspections: InspectionReport[];
} {
  return { file, ...(step === undefined ? {} : { step }), expires: undefined, signedBy: [], steps: [], inspections: [] };
}

/**
 * A failed report for an error that happened before verification could start (a key file
 * that does not load, in the CLI), so that `--json` always prints a report.
 */
export function failedReport(error: unknown, layoutFile: string): VerifyReport {
  return {
    verdict: 'failed',
    passed: false,
    failure: failureOf(error),
    layout: emptyLayoutReport(layoutFile),
    warnings: [],
    timing: { totalMs: 0, checks: [] },
  };
}
