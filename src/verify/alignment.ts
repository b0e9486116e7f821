import type { Step } from '../model/layout.js';
import { returnValueOf, type Link } from '../model/link.js';

/**
 * Check 6: command alignment (verifylib.verify_all_steps_command_alignment). As in the spec
 * (§4.3.1) and the reference, a link whose command differs from the step's expected_command
 * is a warning, never a failure: a functionary can alias any command, so alignment proves
 * nothing. A link whose recorded `return-value` is non-zero is also a warning: the reference
 * accepts such links without a word; we say so, and leave the verdict to the artifact rules.
 */

export interface AlignmentInput {
  readonly step: Step;
  readonly links: readonly { readonly keyid: string; readonly file: string; readonly link: Link }[];
}

/** Returns the warnings for these steps' links. Never throws. */
export function alignmentWarnings(steps: readonly AlignmentInput[]): string[] {
  const warnings: string[] = [];
  for (const { step, links } of steps) {
    for (const { keyid, link } of links) {
      const by = `step '${step.name}' (link by ${keyid.slice(0, 8)})`;
      if (!sameCommand(link.command, step.expectedCommand)) {
        warnings.push(`${by}: ran ${showCommand(link.command)}, expected ${showCommand(step.expectedCommand)}`);
      }
      const returnValue = returnValueOf(link);
      if (returnValue !== undefined && returnValue !== 0) {
        warnings.push(`${by}: the recorded command exited with ${returnValue} (accepted, as by the reference)`);
      }
    }
  }
  return warnings;
}

function sameCommand(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((arg, i) => arg === b[i]);
}

function showCommand(command: readonly string[]): string {
  const text = JSON.stringify(command);
  return text.length > 200 ? `${text.slice(0, 200)}...]` : text;
}
