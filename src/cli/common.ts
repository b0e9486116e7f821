import { statSync } from 'node:fs';
import { Command, type Help, type Option, type ParseOptionsResult } from 'commander';
import { helpEntry } from './argparse.js';
import { reshapeArgv } from './argv-shape.js';
import type { KeyType } from '../crypto/keys.js';
import { IoError } from '../errors.js';
import { parseParams } from '../model/params.js';
import type { SandboxMode } from '../runner/sandbox.js';
import { usage, VERSION } from './main.js';

/**
 * The commander setup shared by programs that parse with commander (intoto-sign,
 * intoto-keygen, ...): usage errors reported our way instead of commander exiting on its own.
 * Output, errors and exit statuses live in cli/main.ts (re-exported here).
 */

export { VERSION, acceptJson, createOutput, programName, reportError, runMain, usage, verbosityOf, writeJson, type Output, type Verbosity } from './main.js';

/**
 * The long flags of the reference programs that ours mirror (in-toto 1.3.1, and the 2.x/3.x
 * flags we also take): an abbreviation that fits exactly one of them means it, as there.
 */
const REFERENCE_FLAGS: ReadonlyMap<string, ReadonlySet<string>> = new Map([
  ['intoto-verify', new Set(['--layout', '--layout-keys', '--verification-keys', '--key-types', '--gpg', '--gpg-home', '--link-dir', '--inspection-timeout', '--verbose', '--quiet', '--version', '--help'])],
  ['intoto-sign', new Set(['--file', '--key', '--key-type', '--prompt', '--gpg', '--gpg-home', '--output', '--append', '--verify', '--verbose', '--quiet', '--version', '--help'])],
  ['intoto-keygen', new Set(['--prompt', '--type', '--bits', '--version', '--help'])],
]);

/**
 * commander, with the command line reshaped first as argparse would read it (cli/argv-shape.ts):
 * unique prefixes of long options, and list options that leave the positionals alone.
 */
class ArgparseCommand extends Command {
  override parseOptions(argv: string[]): ParseOptionsResult {
    const options = [
      ...this.options.map((o) => ({ long: o.long, short: o.short, required: o.required, optional: o.optional, variadic: o.variadic })),
      { long: '--help', short: '-h', required: false, optional: false, variadic: false },
    ];
    const requiredPositionals = this.registeredArguments.filter((a) => a.required).length;
    const referenceFlags = REFERENCE_FLAGS.get(this.name());
    return super.parseOptions(reshapeArgv(argv, { options, requiredPositionals, ...(referenceFlags === undefined ? {} : { referenceFlags }) }));
  }
}

/** A commander program configured to throw instead of exiting, with -v/-q/--version. */
export function newProgram(name: string, description: string): Command {
  return new ArgparseCommand(name)
    .description(description)
    .exitOverride()
    .configureOutput({ writeErr: () => undefined, outputError: () => undefined })
    .configureHelp({ formatHelp: argparseStyleHelp })
    .option('-v, --verbose', 'show more output')
    .option('-q, --quiet', 'suppress all output but errors')
    .version(VERSION, '--version', "show program's version number and exit")
    .helpOption('-h, --help', 'show this help message and exit')
    .allowExcessArguments(false);
}

/**
 * --help for the commander programs laid out as the argparse ones (intoto-run, ...) are:
 * `usage:`, the description, the positional arguments, then the options with -h first; a
 * default is shown once, and only when the option's own text does not already say it.
 */
function argparseStyleHelp(cmd: Command, helper: Help): string {
  const out = [`usage: ${helper.commandUsage(cmd)}`, '', helper.commandDescription(cmd), ''];
  const args = helper.visibleArguments(cmd);
  if (args.length > 0) {
    out.push('Positional Arguments:');
    for (const arg of args) out.push(...helpEntry(helper.argumentTerm(arg), arg.description));
    out.push('');
  }
  const options = [...helper.visibleOptions(cmd)].sort((a, b) => Number(b.long === '--help') - Number(a.long === '--help'));
  out.push('Options:');
  for (const option of options) out.push(...helpEntry(helper.optionTerm(option), optionText(option)));
  return `${out.join('\n').trimEnd()}\n`;
}

function optionText(option: Option): string {
  const value: unknown = option.defaultValue;
  const shown = value === undefined || value === false || (Array.isArray(value) && value.length === 0) || /default/i.test(option.description);
  return shown ? option.description : `${option.description} (default: ${String(value)})`;
}

const KEY_TYPES: readonly string[] = ['ed25519', 'rsa', 'ecdsa'];

/**
 * The `-t` values given for `-k` keys, one per key by position (one value applies to all);
 * undefined entries where none was given (the type is detected from the file).
 * @throws UsageError E_USAGE for an unknown type or a count that does not fit
 */
export function keyTypesByPosition(given: readonly string[] | undefined, count: number): (KeyType | undefined)[] {
  if (given === undefined) return new Array<undefined>(count).fill(undefined);
  for (const type of given) if (!KEY_TYPES.includes(type)) usage(`-t must name one of ${KEY_TYPES.join(', ')}, got ${type}`);
  if (given.length === 1 && count > 1) return new Array<KeyType>(count).fill(given[0] as KeyType);
  if (given.length !== count) usage(`${given.length} key types for ${count} keys: give one per key, by position`);
  return given as KeyType[];
}

/** The key-loading option for a `-t` value (checked against the type found in the file). */
export function expectedTypeOption(type: KeyType | undefined): { expectedType?: KeyType } {
  return type === undefined ? {} : { expectedType: type };
}

/** Collects a repeatable commander option into a list. */
export function repeatable(value: string, all: string[]): string[] {
  return [...all, value];
}

/**
 * The `--param KEY=VALUE` values, parsed.
 * @throws UsageError E_USAGE for a malformed or repeated parameter
 */
export function paramsOf(assignments: readonly string[]): ReadonlyMap<string, string> {
  try {
    return parseParams(assignments);
  } catch (error) {
    return usage((error as Error).message);
  }
}

/**
 * The directory a flag names (`--keys`, `--link-dir`) exists and is a directory.
 * @throws IoError E_IO "FLAG DIR: no such directory" / "FLAG DIR: not a directory"
 */
export function checkDirectoryFlag(flag: string, dir: string): void {
  const stat = statSync(dir, { throwIfNoEntry: false });
  if (stat === undefined) throw new IoError('E_IO', `${flag} ${dir}: no such directory`, { context: { file: dir } });
  if (!stat.isDirectory()) throw new IoError('E_IO', `${flag} ${dir}: not a directory`, { context: { file: dir } });
}

const SANDBOX_MODES: readonly string[] = ['auto', 'bwrap', 'none'];

/**
 * A `--sandbox` value, checked.
 * @throws UsageError E_USAGE for anything but auto, bwrap or none
 */
export function sandboxModeOf(value: string): SandboxMode {
  if (!SANDBOX_MODES.includes(value)) usage(`--sandbox must be auto, bwrap or none, not ${value}`);
  return value as SandboxMode;
}
