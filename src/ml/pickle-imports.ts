import { importedName } from './pickle-compat.js';
import type { FindingSink, PickleFindingKind } from './pickle-types.js';
import { strText, UNKNOWN, type GlobalValue, type PickleValue } from './pickle-values.js';
import { fullName, isDottedIdentifier, judgeImport, type ModelPolicy } from './policy.js';

/** Where an import is judged: the opcode, which reports findings and malformations. */
export interface ImportSite {
  malformed(reason: string): void;
  finding(kind: Exclude<PickleFindingKind, 'malformed' | 'trailing-data' | 'limit'>, reason: string, global?: string, never?: boolean): void;
}

/** What judging an import needs: the policy, where to report, and the stream's state. */
export interface ImportContext {
  readonly policy: ModelPolicy;
  readonly sink: FindingSink;
  /** The stream's protocol at this opcode: below 3, Python 2 names are renamed. */
  readonly protocol: number;
  readonly at: ImportSite;
}

/** GLOBAL and INST: module and name read from the stream's text (undefined: not UTF-8). */
export function importFromText(ctx: ImportContext, module: string | undefined, attr: string | undefined): PickleValue {
  if (module === undefined || attr === undefined || module === '' || attr === '') {
    ctx.at.malformed('module or name is empty or not valid UTF-8');
    return UNKNOWN;
  }
  return judge(ctx, module, attr);
}

/**
 * STACK_GLOBAL: the two values it popped. Two known strs name the import; a value that is
 * certainly not a str makes the loader fail first; anything else is an import decided at load
 * time, which no scan can check.
 */
export function importFromStack(ctx: ImportContext, module: PickleValue, attr: PickleValue): PickleValue {
  if (certainlyNotStr(module) || certainlyNotStr(attr)) {
    ctx.at.malformed('STACK_GLOBAL requires two strs');
    return UNKNOWN;
  }
  const moduleText = strText(module);
  const attrText = strText(attr);
  if (moduleText !== undefined && attrText !== undefined) return judge(ctx, moduleText, attrText);
  ctx.at.finding(
    'unresolved-import',
    'imports a name computed while loading (STACK_GLOBAL on values that are not literal strings), which cannot be checked',
    `${moduleText ?? '?'}.${attrText ?? '?'}`,
  );
  return UNKNOWN;
}

/** Values STACK_GLOBAL refuses: anything that cannot be a str. */
function certainlyNotStr(value: PickleValue): boolean {
  switch (value.kind) {
    case 'str':
    case 'unknown':
    case 'object': // a call may return a str
    case 'global': // a module attribute may be a str (os.sep)
      return false;
    default:
      return true;
  }
}

function judge(ctx: ImportContext, module: string, attr: string): PickleValue {
  const [mappedModule, mappedAttr] = importedName(module, attr, ctx.protocol);
  const full = fullName(mappedModule, mappedAttr);
  // A name that is not dotted identifiers cannot be imported: the loader fails (a CSV line
  // read as INST's operands is not an import of anything).
  if (!isDottedIdentifier(mappedModule) || !isDottedIdentifier(mappedAttr)) {
    ctx.at.malformed(`${JSON.stringify(full.length > 80 ? `${full.slice(0, 77)}...` : full)} is not a module and name Python can import`);
    return UNKNOWN;
  }
  ctx.sink.noteImport(mappedModule, mappedAttr);
  const verdict = judgeImport(ctx.policy, mappedModule, mappedAttr);
  const value: GlobalValue = { kind: 'global', module: mappedModule, name: mappedAttr, entry: verdict.allowed ? verdict.entry : undefined };
  if (verdict.allowed) return value;
  const written = fullName(module, attr);
  const note = written === full ? '' : ` (written as ${written}, renamed by fix_imports at protocol ${ctx.protocol})`;
  ctx.at.finding('import', verdict.reason + note, full, verdict.never);
  return value;
}
