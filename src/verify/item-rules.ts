import type { ArtifactMap } from '../model/artifacts.js';
import type { ArtifactRule } from '../model/rules.js';
import type { RuleReport } from './report.js';
import { applyRules, type RuleSubject } from './rules.js';

/**
 * Checks 8 and 10: the artifact rules of each step and inspection (verifylib.
 * verify_all_item_rules), materials first, then products, against the step's own (reduced)
 * link and, for MATCH, the links of other steps (and, for inspections, of inspections).
 */

type Artifacts = { readonly materials: ArtifactMap; readonly products: ArtifactMap };

/** A step or an inspection: both carry the two rule lists. */
export interface RuleLists {
  readonly expectedMaterials: readonly ArtifactRule[];
  readonly expectedProducts: readonly ArtifactRule[];
}

/**
 * Applies both rule lists of `item` to its own (reduced) `link`, materials first; MATCH rules
 * read other links through `linkOf`. Returns what each rule consumed.
 * @throws VerificationError E_RULE_DISALLOW, E_RULE_REQUIRE (from applyRules)
 */
export function verifyItemRules(
  who: RuleSubject,
  item: RuleLists,
  link: Artifacts,
  linkOf: (name: string) => Artifacts | undefined,
): { materials: RuleReport[]; products: RuleReport[] } {
  const ctx = { materials: link.materials, products: link.products, linkOf };
  const materials = applyRules('materials', item.expectedMaterials, ctx, who).trace;
  const products = applyRules('products', item.expectedProducts, ctx, who).trace;
  return { materials: [...materials], products: [...products] };
}
