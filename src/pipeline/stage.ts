import { constants, copyFileSync, realpathSync } from 'node:fs';
import { dirname, isAbsolute, join, relative } from 'node:path';
import { IoError, ioError } from '../errors.js';
import { makeDirectorySync } from '../io/files.js';
import type { Link } from '../model/link.js';
import type { ArtifactRule } from '../model/rules.js';
import { compilePattern } from '../verify/pattern.js';

/**
 * Staging: what a step's fresh workspace holds before its command runs. Exactly what its
 * material rules let in, walked in order with the verifier's queue semantics (an artifact
 * taken by one rule is not seen by later ones):
 * - `MATCH <pattern> [IN <src>] WITH PRODUCTS|MATERIALS [IN <dst>] FROM <step>` stages every
 *   artifact the earlier step's link recorded under `<dst>` whose remainder matches the
 *   pattern, at `<src>/<remainder>`: the inverse of the check the verifier will make;
 * - `ALLOW`, `MODIFY`, `DELETE` stage the pipeline inputs their pattern matches (these rules
 *   permit an artifact without tying it to a step, so only inputs can satisfy them);
 * - `DISALLOW` keeps the inputs it matches out for good; `CREATE` and `REQUIRE` stage nothing.
 * Inputs no rule names stay out, even when the list lacks a final `DISALLOW *`.
 */

/** What a finished step offers to the steps after it. */
export interface StepOutcome {
  readonly name: string;
  /** The link of the first functionary's run (the others agree with it). */
  readonly link: Link;
  /** The run's workspace, where its products are. */
  readonly workspace: string;
  /** Material name -> a file with the content it had before the step ran (its staging source). */
  readonly materialFiles: ReadonlyMap<string, StagedFile>;
}

export interface StagedFile {
  readonly file: string;
  /** An earlier step's workspace (confined to the workspace root), or a pipeline input. */
  readonly from: 'step' | 'input';
}

export interface StagePlan {
  /** Artifact name in the new workspace -> the file to copy there, and where it comes from. */
  readonly files: ReadonlyMap<string, StagedFile>;
  /** Rules that could stage nothing, and why (shown with -v). */
  readonly notes: readonly string[];
}

function dir(prefix: string): string {
  return prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`;
}

/** Where one material of a new workspace comes from: a pipeline input, or an earlier step's recorded artifact. */
export type MaterialSource =
  | { readonly from: 'input'; readonly name: string }
  | { readonly from: 'step'; readonly step: string; readonly type: 'materials' | 'products'; readonly artifact: string };

export interface MaterialSelection {
  /** Artifact name in the new workspace -> where its content comes from. */
  readonly sources: ReadonlyMap<string, MaterialSource>;
  /** Rules that could stage nothing, and why (shown with -v). */
  readonly notes: readonly string[];
}

/**
 * Decides a step's materials from its rules, the names of the pipeline inputs and the links
 * of the earlier steps, whatever holds their content: files in local workspaces
 * ({@link planMaterials}) or blobs in a store (the engines' `pipeline step`). `available`
 * says whether an earlier step's recorded material can be staged at all (default: always).
 * Never throws.
 */
export function selectMaterials(
  rules: readonly ArtifactRule[],
  inputs: Iterable<string>,
  links: ReadonlyMap<string, Link>,
  available: (step: string, artifact: string) => boolean = () => true,
): MaterialSelection {
  const sources = new Map<string, MaterialSource>();
  const settled = new Set<string>(); // inputs taken or refused by an earlier rule
  const notes: string[] = [];
  const inputNames = [...inputs];
  for (const rule of rules) {
    if (rule.kind === 'MATCH') {
      const link = links.get(rule.destStep);
      if (link === undefined) {
        notes.push(`'${rule.text}': step '${rule.destStep}' did not run in this pipeline, so nothing is staged from it`);
        continue;
      }
      const artifacts = rule.destType === 'products' ? link.products : link.materials;
      const [from, to] = [dir(rule.sourcePrefix), dir(rule.destPrefix)];
      const pattern = compilePattern(rule.pattern);
      for (const destName of artifacts.keys()) {
        if (!destName.startsWith(to)) continue;
        const rel = destName.slice(to.length);
        const name = from + rel;
        if (!pattern.matches(rel) || sources.has(name)) continue;
        if (rule.destType === 'materials' && !available(rule.destStep, destName)) continue;
        sources.set(name, { from: 'step', step: rule.destStep, type: rule.destType, artifact: destName });
        settled.add(name);
      }
      continue;
    }
    if (rule.kind === 'REQUIRE' || rule.kind === 'CREATE') continue;
    const pattern = compilePattern(rule.pattern);
    for (const name of inputNames) {
      if (settled.has(name) || !pattern.matches(name)) continue;
      settled.add(name);
      if (rule.kind !== 'DISALLOW') sources.set(name, { from: 'input', name });
    }
  }
  return { sources, notes };
}

/** Decides a step's materials from its rules, the pipeline inputs and the earlier outcomes (local files). Never throws. */
export function planMaterials(
  rules: readonly ArtifactRule[],
  inputs: ReadonlyMap<string, string>,
  outcomes: ReadonlyMap<string, StepOutcome>,
): StagePlan {
  const links = new Map([...outcomes].map(([name, outcome]) => [name, outcome.link]));
  const selection = selectMaterials(rules, inputs.keys(), links, (step, artifact) => outcomes.get(step)?.materialFiles.has(artifact) === true);
  const files = new Map<string, StagedFile>();
  for (const [name, source] of selection.sources) {
    if (source.from === 'input') {
      files.set(name, { file: inputs.get(source.name) as string, from: 'input' });
      continue;
    }
    const outcome = outcomes.get(source.step) as StepOutcome;
    const staged = source.type === 'products' ? { file: join(outcome.workspace, source.artifact), from: 'step' as const } : outcome.materialFiles.get(source.artifact);
    if (staged !== undefined) files.set(name, staged);
  }
  return { files, notes: selection.notes };
}

/** The input names some rule of `rules` would stage (for the `input-unused` warning). Never throws. */
export function inputsTaken(rules: readonly ArtifactRule[], inputs: ReadonlyMap<string, string>): Set<string> {
  const plan = planMaterials(rules, inputs, new Map());
  return new Set([...plan.files.keys()].filter((name) => inputs.has(name)));
}

/**
 * Copies the planned files into `workspace` (which must be new and empty). Copies, not hard
 * links: a step writes in its workspace, and through a hard link it could rewrite an earlier
 * step's recorded product in place. `COPYFILE_FICLONE` makes it a reflink where the file
 * system can (no bytes copied), a plain copy elsewhere.
 * A file from an earlier step that resolves outside `workspaceRoot` (a product that is a
 * symlink out of its workspace) is refused; inputs may live anywhere the YAML points.
 * Returns the number of files staged.
 * @throws IoError E_IO naming the file
 */
export function populateWorkspace(workspace: string, plan: StagePlan, workspaceRoot: string): number {
  const root = safeRealpath(workspaceRoot);
  let count = 0;
  for (const [name, { file: source, from }] of plan.files) {
    const real = safeRealpath(source);
    if (from === 'step' && !inside(root, real)) {
      throw new IoError('E_IO', `${source}: refusing to stage '${name}': it resolves to ${real}, outside the pipeline's workspaces`, {
        context: { file: source, artifact: name },
      });
    }
    const target = join(workspace, name);
    try {
      makeDirectorySync(dirname(target));
      copyFileSync(real, target, constants.COPYFILE_FICLONE | constants.COPYFILE_EXCL);
    } catch (error) {
      throw ioError(target, error, `cannot stage '${name}' from ${source}`);
    }
    count++;
  }
  return count;
}

function safeRealpath(path: string): string {
  try {
    return realpathSync(path);
  } catch (error) {
    throw ioError(path, error);
  }
}

function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}
