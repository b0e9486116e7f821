import { lstatSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { InTotoError, VerificationError } from '../errors.js';
import { hashFile } from '../crypto/hash-file.js';
import type { HashDict } from '../model/artifacts.js';
import type { Inspection, Layout } from '../model/layout.js';
import { makeLink, type Link } from '../model/link.js';
import { executeCommand, type ExecResult } from '../runner/exec.js';
import { recordArtifacts } from '../runner/record.js';
import { resolveSandbox } from '../runner/sandbox.js';
import { placeFinalProducts, type Placement } from './final-product.js';
import type { InspectionReport, Mutable } from './report.js';
import type { Session } from './session.js';

/**
 * Check 9: the layout's inspections (verifylib.run_all_inspections), each run through the
 * runner's sandbox in a scratch directory that holds only the final product (see
 * final-product.ts), never in the verifier's working directory. Materials are recorded
 * before and products after the command, over the scratch directory, into an unsigned link
 * that the inspection's rules (check 10) then read. A non-zero exit, a timeout or a command
 * that cannot start fails verification. Unlike the reference, no `<inspection>.link` file is
 * written into the working directory.
 */

const OUTPUT_TAIL_LINES = 20;

export interface InspectionsInput {
  readonly layout: Layout;
  /** Which layout, for messages: '' for the root. */
  readonly label: string;
  readonly session: Session;
  /** Files left out of the default final product (layout file, key files, link directory). */
  readonly exclude: readonly string[];
  /** Each inspection's report is pushed here as soon as it exists. */
  readonly reports: InspectionReport[];
}

/**
 * Runs every inspection in order and returns inspection name -> its link.
 * @throws VerificationError E_INSPECTION_FAILED; RunError E_SANDBOX_UNAVAILABLE (`bwrap`
 *   required and missing); IoError for a final product that cannot be placed or recorded
 */
export async function runInspections(input: InspectionsInput): Promise<Map<string, Link>> {
  const links = new Map<string, Link>();
  if (input.layout.inspections.length === 0) return links;
  const { session } = input;
  const sandboxed = await resolveSandbox(session.options.sandbox, (message) => session.warn(`inspections: ${message}`));
  const scratch = session.scratchDir();
  const placement = placeFinalProducts({
    scratch,
    cwd: session.options.cwd,
    finalProducts: session.options.finalProducts,
    exclude: [...input.exclude, dirname(scratch)],
    sandboxed,
    note: (m) => session.note(m),
    warn: (m) => session.warn(m),
  });
  const p = placement.report;
  session.note(
    `${input.label}inspections run in ${scratch} (${sandboxed ? 'sandboxed with bwrap' : 'NOT sandboxed'}); final product: ` +
      `${p.hardLinked} hard-linked, ${p.boundReadOnly} bound read-only, ${p.copied} copied (${p.copiedBytes} bytes), ${p.symlinks} symbolic links`,
  );
  for (const inspection of input.layout.inspections) {
    links.set(inspection.name, await runOne(inspection, scratch, sandboxed, placement, input));
  }
  return links;
}

async function runOne(inspection: Inspection, scratch: string, sandboxed: boolean, placement: Placement, input: InspectionsInput): Promise<Link> {
  const { session } = input;
  const report: Mutable<InspectionReport> = {
    name: inspection.name,
    command: inspection.run,
    exitCode: undefined,
    timedOut: false,
    sandboxed,
    placement: placement.report,
    output: { stdout: [], stderr: [] },
    materials: [],
    products: [],
  };
  input.reports.push(report);
  const who = `${input.label}inspection '${inspection.name}'`;
  const materials = await record(scratch, placement);
  let result: ExecResult;
  try {
    result = await executeCommand({
      argv: inspection.run,
      cwd: scratch,
      writable: [scratch],
      sandbox: sandboxed ? 'bwrap' : 'none',
      readOnlyBinds: placement.binds,
      ...(session.options.hide === undefined || session.options.hide.length === 0 ? {} : { hidden: session.options.hide }),
      recordStreams: true,
      echo: false,
      warn: (m) => session.warn(`${who}: ${m}`),
      ...(session.options.inspectionTimeoutSeconds === undefined ? {} : { timeoutSeconds: session.options.inspectionTimeoutSeconds }),
    });
  } catch (error) {
    if (error instanceof InTotoError && error.code === 'E_SANDBOX_UNAVAILABLE') throw error;
    const message = error instanceof Error ? error.message : String(error);
    throw new VerificationError('E_INSPECTION_FAILED', `${who}: cannot run ${JSON.stringify(inspection.run)}: ${message}`, {
      cause: error,
      context: { inspection: inspection.name },
    });
  }
  report.exitCode = result.returnValue;
  report.timedOut = result.timedOut;
  report.output = { stdout: tail(result.stdout), stderr: tail(result.stderr) };
  if (result.timedOut || result.returnValue !== 0) {
    const why = result.timedOut ? `timed out after ${session.options.inspectionTimeoutSeconds ?? 0} s` : `exited with ${result.returnValue}`;
    // The inspection's own last words are its reason (scan-pickle's "model.pkl: UNSAFE: ..."):
    // stderr's last line, or stdout's when it wrote nothing on stderr.
    const last = report.output.stderr.findLast((l) => l.trim() !== '') ?? report.output.stdout.findLast((l) => l.trim() !== '');
    throw new VerificationError('E_INSPECTION_FAILED', `${who}: ${JSON.stringify(inspection.run)} ${why}${last === undefined ? '' : `: ${last.trim()}`}`, {
      context: { inspection: inspection.name },
      details: [...report.output.stdout.map((l) => `stdout: ${l}`), ...report.output.stderr.map((l) => `stderr: ${l}`)],
    });
  }
  const products = await record(scratch, placement);
  checkNoWriteThrough(placement, materials, products, scratch, who, inspection.name);
  return makeLink({
    name: inspection.name,
    command: inspection.run,
    materials,
    products,
    byproducts: { 'return-value': result.returnValue, stdout: result.stdout, stderr: result.stderr },
  });
}

/** The scratch directory's artifacts, with each read-only bind's placeholder replaced by the original's digests. */
async function record(scratch: string, placement: Placement): Promise<Map<string, HashDict>> {
  const artifacts = await recordArtifacts(['.'], { basePath: scratch });
  for (const [name, source] of placement.boundSources) {
    if (artifacts.has(name)) artifacts.set(name, await hashFile(source));
  }
  return artifacts;
}

/**
 * A hard link shares its content with the original: an inspection that writes into a
 * final-product file in place (instead of replacing it) changes the original too. We cannot
 * undo that, but we never let it pass unnoticed.
 * @throws VerificationError E_INSPECTION_FAILED
 */
function checkNoWriteThrough(
  placement: Placement,
  before: ReadonlyMap<string, HashDict>,
  after: ReadonlyMap<string, HashDict>,
  scratch: string,
  who: string,
  inspection: string,
): void {
  for (const [name, source] of placement.hardLinked) {
    const a = before.get(name)?.get('sha256');
    const b = after.get(name)?.get('sha256');
    if (a === undefined || b === undefined || a === b) continue;
    let same = false;
    try {
      const [x, y] = [lstatSync(join(scratch, name)), statSync(source)];
      same = x.ino === y.ino && x.dev === y.dev;
    } catch {
      same = false;
    }
    if (same) {
      throw new VerificationError('E_INSPECTION_FAILED', `${who}: wrote into the final product ${name} in place, which changed the original ${source}`, {
        context: { inspection, artifact: name },
      });
    }
  }
}

/** The last {@link OUTPUT_TAIL_LINES} lines of a stream, each cut at 500 characters. */
function tail(text: string): string[] {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines.slice(-OUTPUT_TAIL_LINES).map((line) => (line.length > 500 ? `${line.slice(0, 500)}...` : line));
}
