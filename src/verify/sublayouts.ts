import { lstatSync } from 'node:fs';
import { join, relative } from 'node:path';
import { InTotoError, IoError, VerificationError } from '../errors.js';
import type { Layout, Step } from '../model/layout.js';
import type { Link } from '../model/link.js';
import { stepNameProblem } from '../model/names.js';
import type { Level } from './layout-level.js';
import type { Evidence } from './link-files.js';
import { emptyLayoutReport, type LayoutReport } from './report.js';
import { VERIFY_LIMITS, type Session } from './session.js';
import { summaryLink } from './summary.js';

/**
 * Check 5: sublayouts (verifylib.verify_sublayouts). A "link" whose payload is a layout
 * delegates the step to a layout signed by the functionary. It is verified with the same
 * checks as the root, with the functionary's key as its layout key (its signature already
 * verified when the file was attributed), its own expiry, and its links in the directory
 * `<linkdir>/<step>.<keyid[:8]>/`; then it is replaced by its summary link (summary.ts).
 *
 * Stricter than the reference: the directory name must be one safe path segment and the
 * directory must not be a symbolic link, so nothing is read outside the link directory
 * (E_SUBLAYOUT_NAME); nesting is capped; parameters (`--param`) are not substituted into
 * sublayouts (as the reference); a sublayout's inspections, commands chosen by a functionary,
 * are refused unless `allowSublayoutInspections`; a sublayout with no steps, whose summary
 * link would be empty, is refused (E_SUBLAYOUT_EMPTY).
 */

const KEYID = /^[0-9a-f]{64}$/;

export interface SublayoutInput {
  readonly parent: Level;
  readonly step: Step;
  readonly evidence: Evidence;
  readonly layout: Layout;
  readonly session: Session;
  /** The level verifier (passed in to keep the import graph acyclic). */
  readonly verifyLevel: (level: Level, session: Session) => Promise<ReadonlyMap<string, Link>>;
  /** The step report's list of sublayouts; this one's report is appended. */
  readonly sublayouts: LayoutReport[];
}

/**
 * Verifies one sublayout and returns its summary link.
 * @throws VerificationError E_SUBLAYOUT_NAME, E_SUBLAYOUT_EMPTY, E_INSPECTION_REFUSED; IoError E_LIMIT,
 *   E_NOT_REGULAR_FILE; whatever the sublayout's own checks throw, its message prefixed with
 *   where the sublayout stands
 */
export async function verifySublayout(input: SublayoutInput): Promise<Link> {
  const { parent, step, evidence, layout, session } = input;
  const keyid8 = evidence.keyid.slice(0, 8);
  const where = `sublayout for step '${step.name}' (signed by ${keyid8}, ${evidence.file})`;
  try {
    if (parent.depth + 1 > VERIFY_LIMITS.sublayoutDepth) {
      throw new IoError('E_LIMIT', `sublayouts nested more than ${VERIFY_LIMITS.sublayoutDepth} deep`, { context: { step: step.name } });
    }
    session.countLayout(evidence.file);
    // Its summary link would take the first step's materials and the last step's products:
    // with no steps, an empty link that any rule list without REQUIRE lets through.
    if (layout.steps.length === 0) {
      throw new VerificationError('E_SUBLAYOUT_EMPTY', `has no steps: it would stand for the step's link while vouching for nothing`, {
        context: { step: step.name },
      });
    }
    if (layout.inspections.length > 0 && !session.options.allowSublayoutInspections) {
      throw new VerificationError(
        'E_INSPECTION_REFUSED',
        `defines inspection(s) ${layout.inspections.map((i) => `'${i.name}'`).join(', ')}: commands chosen by a functionary, not run unless --allow-sublayout-inspections`,
        { context: { step: step.name, ...(layout.inspections[0] ? { inspection: layout.inspections[0].name } : {}) } },
      );
    }
    const linkDir = sublayoutDir(parent.linkDir, step.name, evidence.keyid);
    const report = emptyLayoutReport(evidence.file, step.name);
    report.signedBy = [evidence.keyid];
    input.sublayouts.push(report);
    const level: Level = {
      layout,
      file: evidence.file,
      linkDir,
      depth: parent.depth + 1,
      label: `${parent.label}${step.name}.${keyid8}/`,
      report,
      exclude: parent.exclude,
    };
    const links = await input.verifyLevel(level, session);
    return summaryLink(layout, (name) => links.get(name), step.name);
  } catch (error) {
    if (error instanceof InTotoError) throw error.withContext(where, error.context.step === undefined ? { step: step.name } : {});
    throw error;
  }
}

/**
 * `<linkDir>/<step>.<keyid[:8]>`, after checking that it is one safe path segment directly
 * inside `linkDir` and, when it exists, a real directory (not a symbolic link).
 * @throws VerificationError E_SUBLAYOUT_NAME; IoError E_NOT_REGULAR_FILE
 */
export function sublayoutDir(linkDir: string, step: string, keyid: string): string {
  const name = `${step}.${keyid.slice(0, 8)}`;
  const problem = stepNameProblem(step) ?? (KEYID.test(keyid) ? stepNameProblem(name) : 'has a keyid that is not 64 hex digits');
  const dir = join(linkDir, name);
  if (problem !== undefined || relative(linkDir, dir) !== name) {
    throw new VerificationError('E_SUBLAYOUT_NAME', `sublayout directory name ${JSON.stringify(name)} ${problem ?? 'is not one path segment'}`, {
      context: { step },
    });
  }
  let isLink = false;
  let isDir = true;
  try {
    const stat = lstatSync(dir);
    isLink = stat.isSymbolicLink();
    isDir = stat.isDirectory();
  } catch {
    // absent: its links are reported missing when looked for
  }
  if (isLink || !isDir) {
    throw new IoError('E_NOT_REGULAR_FILE', `${dir}: sublayout link directory is ${isLink ? 'a symbolic link, which is not followed' : 'not a directory'}`, {
      context: { file: dir },
    });
  }
  return dir;
}
