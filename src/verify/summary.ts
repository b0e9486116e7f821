import type { Layout } from '../model/layout.js';
import { makeLink, type Link } from '../model/link.js';

/**
 * The link a verified sublayout stands for in its superlayout (verifylib.get_summary_link):
 * the materials of its first step's link, the products, byproducts and command of its last
 * step's link, under the name of the step it was delegated for. A sublayout without steps
 * would summarise to an empty link (as the reference, whose empty link then has no name):
 * sublayouts.ts refuses it before it gets here.
 */
export function summaryLink(layout: Layout, linkOf: (step: string) => Link | undefined, name: string): Link {
  const first = layout.steps[0];
  const last = layout.steps[layout.steps.length - 1];
  const firstLink = first === undefined ? undefined : linkOf(first.name);
  const lastLink = last === undefined ? undefined : linkOf(last.name);
  return makeLink({
    name,
    command: lastLink?.command ?? [],
    materials: firstLink?.materials ?? new Map(),
    products: lastLink?.products ?? new Map(),
    byproducts: lastLink?.byproducts ?? {},
  });
}
