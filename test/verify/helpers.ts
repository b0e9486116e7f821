import { createHash } from 'node:crypto';
import type { ArtifactMap, HashDict } from '../../src/model/artifacts.js';
import { parseRule } from '../../src/model/rules.js';
import { applyRules, type RuleContext, type RuleTrace } from '../../src/verify/rules.js';
import { InTotoError } from '../../src/errors.js';

/** The sha256 of `content`, as a link records it. */
export function sha256(content: string): string {
  return createHash('sha256').update(content).digest('hex');
}

/** A digest dict holding the sha256 of `content`. */
export function digests(content: string): HashDict {
  return new Map([['sha256', sha256(content)]]);
}

/** Artifacts from name -> content (hashed with sha256) or name -> explicit digest dict. */
export function artifacts(entries: Record<string, string | HashDict>): ArtifactMap {
  return new Map(Object.entries(entries).map(([name, v]) => [name, typeof v === 'string' ? digests(v) : v]));
}

export interface LinkArtifacts {
  materials: ArtifactMap;
  products: ArtifactMap;
}

/** A RuleContext for step `self` among `links` (which include `self`). */
export function context(self: string, links: Record<string, LinkArtifacts>): RuleContext {
  const table = new Map(Object.entries(links));
  const own = table.get(self) ?? { materials: new Map(), products: new Map() };
  return { materials: own.materials, products: own.products, linkOf: (step) => table.get(step) };
}

export type Verdict =
  | { ok: true; trace: readonly RuleTrace[] }
  | { ok: false; code: string; message: string; details: readonly string[] };

/** Applies rules given in JSON token form and reports the verdict instead of throwing. */
export function verdict(
  kind: 'materials' | 'products',
  rules: readonly (readonly string[])[],
  ctx: RuleContext,
  name = 'train',
): Verdict {
  try {
    const parsed = rules.map((tokens, i) => parseRule(tokens, `step '${name}' expected_${kind}[${i}]`));
    return { ok: true, trace: applyRules(kind, parsed, ctx, { stepOrInspection: 'step', name }).trace };
  } catch (error) {
    if (error instanceof InTotoError) return { ok: false, code: error.code, message: error.message, details: error.details };
    throw error;
  }
}
