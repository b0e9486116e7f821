import { importedName } from './pickle-compat.js';
import { judgeImport } from './pickle-policy.js';
import type { FindingSink } from './pickle-types.js';
import { strText, type PickleValue } from './pickle-values.js';

/** Where an import is judged: the opcode, which reports findings and malformations. */
export interface ImportSite {
  malformed(reason: string): void;
  finding(kind: 'import' | 'unresolved-import', reason: string, global?: string): void;
}

/** What judging an import needs: the policy, where to report, and the stream's state. */
export interface ImportContext {
  readonly allow: ReadonlySet<string>;
  readonly sink: FindingSink;
  /** The stream's protocol at this opcode: below 3, Python 2 names are renamed. */
  readonly protocol: number;
  readonly at: ImportSite;
}

/** GLOBAL and INST: module and name read from the stream's text (undefined: not UTF-8). */
export function importFromText(ctx: ImportContext, module: string | undefined, attr: string | undefined): void {
  if (module === undefined || attr === undefined || module === '' || attr === '') {
    ctx.at.malformed('module or name is empty or not valid UTF-8');
    return;
  }
  judge(ctx, module, attr);
}

/**
 * STACK_GLOBAL: the two values it popped. Two known strs name the import; a value that is
 * certainly not a str makes the loader fail first; anything else is an import decided at load
 * time, which no scan can check.
 */
export function importFromStack(ctx: ImportContext, module: PickleValue, attr: PickleValue): void {
  if (module.kind === 'data' || attr.kind === 'data') {
    ctx.at.malformed('STACK_GLOBAL requires two strs');
    return;
  }
  const moduleText = strText(module);
  const attrText = strText(attr);
  if (moduleText !== undefined && attrText !== undefined) {
    judge(ctx, moduleText, attrText);
    return;
  }
  ctx.at.finding(
    'unresolved-import',
    'imports a name computed while loading (STACK_GLOBAL on values that are not literal strings), which cannot be checked',
    `${moduleText ?? '?'}.${attrText ?? '?'}`,
  );
}

function judge(ctx: ImportContext, module: string, attr: string): void {
  const [mappedModule, mappedAttr] = importedName(module, attr, ctx.protocol);
  const fullName = `${mappedModule}.${mappedAttr}`;
  ctx.sink.noteImport(fullName);
  const verdict = judgeImport(fullName, ctx.allow);
  if (verdict.allowed) return;
  const written = `${module}.${attr}`;
  const note = written === fullName ? '' : ` (written as ${written}, renamed by fix_imports at protocol ${ctx.protocol})`;
  ctx.at.finding('import', verdict.reason + note, fullName);
}
