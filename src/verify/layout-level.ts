import type { Layout } from '../model/layout.js';
import type { Link } from '../model/link.js';
import { alignmentWarnings } from './alignment.js';
import { verifyExpiry } from './expiry.js';
import { verifyItemRules } from './item-rules.js';
import { loadLinks, type StepEvidence } from './link-files.js';
import type { LayoutReport, Mutable, StepReport } from './report.js';
import type { Session } from './session.js';
import { verifySublayout } from './sublayouts.js';
import { verifyLinksAgree, verifyThresholds, type StepLinks } from './thresholds.js';

/**
 * The checks for one layout whose signatures have been verified: the root layout, or a
 * sublayout (whose "signature check" is the functionary's signature on its link file).
 */

export interface Level {
  readonly layout: Layout;
  readonly file: string;
  readonly linkDir: string;
  /** 0 for the root. */
  readonly depth: number;
  /** '' for the root, `<step>.<keyid8>/...` for sublayouts: prefixes messages and timings. */
  readonly label: string;
  readonly report: Mutable<LayoutReport> & { steps: StepReport[]; inspections: LayoutReport['inspections'][number][] };
  /** Left out of the default final product: layout, key files, link directory. */
  readonly exclude: readonly string[];
}

type StepDraft = Mutable<StepReport> & { sublayouts: LayoutReport[] };

/**
 * Runs checks 2 to 10 (see verifySupplyChain) on one layout and returns each step's link
 * (a sublayout's summary link standing for it), which a superlayout summarises.
 * @throws InTotoError with the code of the first check that fails
 */
export async function verifyLevel(level: Level, session: Session): Promise<ReadonlyMap<string, Link>> {
  const { layout, label, report } = level;
  const at = label === '' ? 'root' : label;
  report.expires = layout.expires;
  await session.check('layout-expiry', at, () => verifyExpiry(layout, session.options.now, level.file));

  const evidence = await session.check('links', at, () => loadLinks(layout, level.linkDir, session));
  const drafts = evidence.map((s) => stepDraft(s));
  report.steps.push(...drafts);

  await session.check('thresholds', at, () => verifyThresholds(evidence));

  const stepLinks = await session.check('sublayouts', at, () => resolveSublayouts(level, evidence, drafts, session));

  await session.check('command-alignment', at, () => {
    const warnings = alignmentWarnings(evidence.map((s, i) => ({ step: s.step, links: stepLinks[i]?.links ?? [] })));
    for (const warning of warnings) session.warn(`${label}${warning}`);
  });

  await session.check('links-agree', at, () => verifyLinksAgree(stepLinks));

  // Every link of a step agrees now; the first stands for the step (as reduce_chain_links).
  const reduced = new Map<string, Link>();
  for (const s of stepLinks) {
    const first = s.links[0];
    if (first !== undefined) reduced.set(s.step, first.link);
  }

  await session.check('step-rules', at, () => {
    layout.steps.forEach((step, i) => {
      const link = reduced.get(step.name);
      const draft = drafts[i];
      if (link === undefined || draft === undefined) return;
      const traces = verifyItemRules({ stepOrInspection: 'step', name: step.name }, step, link, (name) => reduced.get(name));
      draft.materials = traces.materials;
      draft.products = traces.products;
    });
  });

  const inspectionLinks = await session.check('inspections', at, async () => {
    if (layout.inspections.length === 0) return new Map<string, Link>();
    // Loaded only when needed: the runner (sandbox, recorder, hashing pool) is a third of our
    // start-up, and most verifications of large chains run no inspection.
    const { runInspections } = await import('./inspections.js');
    return runInspections({ layout, label, session, exclude: level.exclude, reports: report.inspections });
  });

  await session.check('inspection-rules', at, () => {
    const combined = new Map<string, Link>([...reduced, ...inspectionLinks]);
    layout.inspections.forEach((inspection, i) => {
      const link = inspectionLinks.get(inspection.name);
      const draft = report.inspections[i] as Mutable<LayoutReport['inspections'][number]> | undefined;
      if (link === undefined) return;
      const traces = verifyItemRules({ stepOrInspection: 'inspection', name: inspection.name }, inspection, link, (name) => combined.get(name));
      if (draft !== undefined) {
        draft.materials = traces.materials;
        draft.products = traces.products;
      }
    });
  });
  return reduced;
}

function stepDraft(s: StepEvidence): StepDraft {
  return {
    name: s.step.name,
    threshold: s.step.threshold,
    signedBy: s.evidence.map((e) => e.keyid),
    linkFiles: [...new Set(s.evidence.map((e) => e.file))],
    ignored: [...s.ignored],
    sublayouts: [],
    materials: [],
    products: [],
  };
}

/** Check 5: each sublayout verified in turn, replaced by its summary link. */
async function resolveSublayouts(level: Level, evidence: readonly StepEvidence[], drafts: readonly StepDraft[], session: Session): Promise<StepLinks[]> {
  const result: StepLinks[] = [];
  for (const [i, s] of evidence.entries()) {
    const links: { keyid: string; file: string; link: Link }[] = [];
    for (const e of s.evidence) {
      if (e.metadata.type === 'link') {
        links.push({ keyid: e.keyid, file: e.file, link: e.metadata.link });
        continue;
      }
      const sub = await verifySublayout({ parent: level, step: s.step, evidence: e, layout: e.metadata.layout, session, verifyLevel, sublayouts: drafts[i]?.sublayouts ?? [] });
      links.push({ keyid: e.keyid, file: e.file, link: sub });
    }
    result.push({ step: s.step.name, links });
  }
  return result;
}
