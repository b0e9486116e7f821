import type { ArtifactMap } from '../model/artifacts.js';
import type { ArtifactRule } from '../model/rules.js';
import type { RuleReport } from './report.js';
import { applyRules, type RuleSubject } from './rules.js';

/**
 * Checks 8 and 10: the artifact rules of each step and inspection (verifylib.
 * verify_all_item_rules), materials first, then products, against the step's own (reduced)
 * link and, for MATCH, the links of other steps (and, for inspections, of inspections).
 */

export interface ItemRulesInput {
  readonly who: RuleSubject;
  readonly expectedMaterials: readonly ArtifactRule[];
  readonly expectedProducts: readonly ArtifactRule[];
  readonly materials: ArtifactMap;
  readonly products: ArtifactMap;
  readonly linkOf: (name: string) => { materials: ArtifactMap; products: ArtifactMap } | undefined;
}

/**
 * Applies both rule lists; returns what each rule consumed.
 * @throws VerificationError E_RULE_DISALLOW, E_RULE_REQUIRE (from applyRules)
 */
export function verifyItemRules(input: ItemRulesInput): { materials: RuleReport[]; products: RuleReport[] } {
  const ctx = { materials: input.materials, products: input.products, linkOf: input.linkOf };
  const materials = applyRules('materials', input.expectedMaterials, ctx, input.who).trace;
  const products = applyRules('products', input.expectedProducts, ctx, input.who).trace;
  return { materials: [...materials], products: [...products] };
}
