import type { KeyidForm, KeyType } from '../crypto/keys.js';
import type { RecordableHashAlgorithm } from '../model/artifacts.js';
import { DEVICE_PATH, ENV_NAME, type SandboxMode } from '../runner/sandbox.js';
import { parseTimeoutSeconds, TIMEOUT_RULE } from '../runner/step-files.js';
import { listValue, optionName, stringValue, type OptionSpec, type Parsed } from './argparse.js';
import { usage, type Verbosity } from './main.js';

/**
 * The options intoto-run, intoto-record and intoto-mock share, spelled and parsed as in-toto
 * 1.3.1's common_args.py spells them, plus ours (sandbox, timeout, environment, hashes, DSSE),
 * and the checks that turn parsed values into library options.
 */

/** -n/--step-name (required). */
export const STEP_NAME: OptionSpec = {
  dest: 'stepName',
  flags: ['-n', '--step-name'],
  kind: 'value',
  metavar: '<name>',
  required: true,
  named: true,
  help: "name for the resulting link metadata file, which is written to '<name>.<keyid prefix>.link'. It is also used to associate the link with a step defined in an in-toto layout.",
};
/** -k/--key: the private key file. */
export const KEY: OptionSpec = {
  dest: 'key',
  flags: ['-k', '--key'],
  kind: 'value',
  metavar: '<path>',
  named: true,
  help: "path to a private key file to sign the resulting link metadata (securesystemslib JSON or PEM; the type is detected). The keyid prefix is used as an infix for the link metadata filename. The key is read only after the command has exited, and the command cannot see the file under the sandbox.",
};
/** --signing-key: in-toto 2.x/3.x's key option (a PEM key; its keyid in their form). */
export const SIGNING_KEY: OptionSpec = {
  dest: 'signingKey',
  flags: ['--signing-key'],
  kind: 'value',
  metavar: '<path>',
  named: true,
  help: "path to a private key file, as in-toto 2.x and 3.x take it (PEM; any key file -k reads is accepted). The link is named and signed with the keyid those versions compute (see --keyid-form). Exclusive with -k.",
};
/** --keyid-form legacy|standard (ours). */
export const KEYID_FORM: OptionSpec = {
  dest: 'keyidForm',
  flags: ['--keyid-form'],
  kind: 'value',
  choices: ['legacy', 'standard'],
  extension: true,
  help: "which keyid names and signs the link: 'legacy' (in-toto 1.3.1's) or 'standard' (in-toto 2.x/3.x's for PEM keys); use the one the layout lists for the key. Default: legacy with -k, standard with --signing-key.",
};
/** -g/--gpg: parsed as the reference parses it, only to refuse it clearly. */
export const GPG: OptionSpec = { dest: 'gpg', flags: ['-g', '--gpg'], kind: 'optional-value', metavar: '<id>', named: true, help: 'GPG keys are not supported (accepted for the error message only).' };
/** -t/--key-type: checked against the key file when given. */
export const KEY_TYPE: OptionSpec = {
  dest: 'keyType',
  flags: ['-t', '--key-type'],
  kind: 'value',
  choices: ['rsa', 'ed25519', 'ecdsa'],
  help: "type of the key given with '--key'. Detected from the file when omitted; when given, the file must hold a key of this type.",
};
/** -P/--password [<password>]: bare -P prompts. */
export const PASSWORD: OptionSpec = {
  dest: 'password',
  flags: ['-P', '--password'],
  kind: 'optional-value',
  metavar: '<password>',
  help: "password for an encrypted key given with '--key'. '-P' without <password> prompts, before any work starts. (Do not confuse with '-p/--products'!)",
};
/** --gpg-home: accepted and ignored (with a warning). */
export const GPG_HOME: OptionSpec = { dest: 'gpgHome', flags: ['--gpg-home'], kind: 'value', metavar: '<path>', help: 'GPG home directory (GPG is not supported; ignored).' };
/** --exclude PATTERN... */
export const EXCLUDE: OptionSpec = {
  dest: 'exclude',
  flags: ['--exclude'],
  kind: 'list',
  metavar: '<pattern>',
  help: "gitignore-style patterns of paths not to record as materials or products. They replace the defaults ('*.link*', '.git', '*.pyc', '*~'). Nothing is read from environment variables or rc files.",
};
/** --base-path PATH. */
export const BASE_PATH: OptionSpec = {
  dest: 'basePath',
  flags: ['--base-path'],
  kind: 'value',
  metavar: '<path>',
  help: 'base path for relative paths passed via --materials and --products; not included in the link. It is the only writable directory in the sandbox. Default is the current working directory.',
};
/** --lstrip-paths PREFIX... */
export const LSTRIP_PATHS: OptionSpec = {
  dest: 'lstripPaths',
  flags: ['--lstrip-paths'],
  kind: 'list',
  metavar: '<path>',
  help: 'path prefixes to left-strip from artifact paths before they are stored in the link. No prefix may be a left substring of another.',
};
/** -d/--metadata-directory DIR. */
export const METADATA_DIRECTORY: OptionSpec = {
  dest: 'metadataDirectory',
  flags: ['-d', '--metadata-directory'],
  kind: 'value',
  metavar: '<directory>',
  help: 'directory to write the link to. Default is the current working directory.',
};
/** -v/--verbose. */
export const VERBOSE: OptionSpec = { dest: 'verbose', flags: ['-v', '--verbose'], kind: 'flag', help: 'show more output' };
/** -q/--quiet (also hides the command's output). */
export const QUIET: OptionSpec = { dest: 'quiet', flags: ['-q', '--quiet'], kind: 'flag', help: "suppress all output but errors, the command's output included" };
/** --attest (ours): the link also as an in-toto Statement (link predicate v0.3) in DSSE. */
export const ATTEST: OptionSpec = {
  dest: 'attest',
  flags: ['--attest'],
  kind: 'flag',
  extension: true,
  help: "also write the link as an in-toto attestation: a Statement v1 with the link predicate (https://in-toto.io/attestation/link/v0.3), subjects = the products, signed in DSSE, to '<name>.<keyid prefix>.intoto.json' beside the link.",
};
/** -q/--quiet for the tools that run no command (record, match-products). */
export const QUIET_NO_COMMAND: OptionSpec = { ...QUIET, help: 'suppress all output but errors' };
/** --base-path for the tools that run no command (nothing is sandboxed there). */
export const BASE_PATH_NO_COMMAND: OptionSpec = {
  ...BASE_PATH,
  help: 'base path for the relative paths given; not included in the artifact names. Default is the current working directory.',
};
/** -k/--key for intoto-record, which runs no command. */
export const KEY_NO_COMMAND: OptionSpec = {
  ...KEY,
  help: "path to a private key file to sign the link metadata (securesystemslib JSON or PEM; the type is detected). The keyid prefix is used as an infix for the link metadata filename; give the same key to start and stop.",
};
/** --use-dsse (in-toto 2.x/3.x). */
export const USE_DSSE: OptionSpec = { dest: 'useDsse', flags: ['--use-dsse'], kind: 'flag', help: 'write a DSSE envelope instead of the Metablock (in-toto 1.3.1 cannot read it)' };
/** --hash sha256|sha512, repeatable (ours). */
export const HASH: OptionSpec = {
  extension: true,
  dest: 'hash',
  flags: ['--hash'],
  kind: 'append',
  choices: ['sha256', 'sha512'],
  help: 'hash algorithm to record artifacts with; repeat for several. Default sha256.',
};
/** --timeout SECONDS (ours; no limit by default). */
export const TIMEOUT: OptionSpec = { extension: true, dest: 'timeout', flags: ['--timeout'], kind: 'value', metavar: '<seconds>', help: 'stop the command (and everything it started) after this many seconds; the link is still written and the exit status is 1. Default: no limit.' };
/** --sandbox auto|bwrap|none (ours). */
export const SANDBOX: OptionSpec = {
  extension: true,
  dest: 'sandbox',
  flags: ['--sandbox'],
  kind: 'value',
  choices: ['auto', 'bwrap', 'none'],
  help: "isolation of the command: 'bwrap' requires bubblewrap (read-only host, writable base path, private /tmp, no network, key hidden); 'auto' (default) uses it when available and warns otherwise; 'none' runs it directly. The environment is reduced to PATH, HOME, LANG, TERM and --env names in every mode.",
};
/** --env NAME, repeatable (ours). */
export const ENV: OptionSpec = { extension: true, dest: 'env', flags: ['--env'], kind: 'append', metavar: '<name>', help: 'pass this environment variable through to the command; repeat for several. It must be set; its name (never its value) is recorded in the link.' };
/** --share-net (ours). */
export const SHARE_NET: OptionSpec = { extension: true, dest: 'shareNet', flags: ['--share-net'], kind: 'flag', help: 'let the command use the network under the sandbox (recorded in the link)' };
/** --device PATH, repeatable (ours). */
export const DEVICE: OptionSpec = {
  extension: true,
  dest: 'device',
  flags: ['--device'],
  kind: 'append',
  metavar: '<path>',
  help: 'make this device file (such as /dev/nvidia0) visible to the command under the sandbox; repeat for several. It must exist here; it is recorded in the link.',
};
/** -h/--help. */
export const HELP: OptionSpec = { dest: 'help', flags: ['-h', '--help'], kind: 'flag', action: 'help', help: 'show this help message and exit' };
/** --version. */
export const VERSION_OPTION: OptionSpec = { dest: 'version', flags: ['--version'], kind: 'flag', action: 'version', help: "show program's version number and exit" };

/** The options of the command's execution, shared by intoto-run and intoto-mock. */
export const EXECUTION_OPTIONS: readonly OptionSpec[] = [TIMEOUT, SANDBOX, ENV, SHARE_NET, DEVICE];

/** Verbosity from parsed -v/-q. */
export function verbosity(parsed: Parsed): Verbosity {
  if (parsed.values.get('verbose') === true) return 'verbose';
  if (parsed.values.get('quiet') === true) return 'quiet';
  return 'normal';
}

/**
 * Refuses a list option given twice: argparse keeps only the last list, silently dropping the
 * first paths (`-m a -m b` records only b), which is never what was meant.
 */
export function refuseRepeatedLists(parsed: Parsed, options: readonly OptionSpec[]): void {
  for (const option of options) {
    if (option.kind === 'list' && (parsed.counts.get(option.dest) ?? 0) > 1) {
      usage(`${optionName(option)} given more than once; list every value after one ${option.flags[0]} (in-toto 1.3.1 would keep only the last list)`);
    }
  }
}

/** The key file (-k, or in-toto 2.x/3.x's --signing-key), refusing GPG. */
export function keyPathOf(parsed: Parsed): string {
  if (parsed.values.has('gpg')) usage('GPG keys (-g/--gpg) are not supported; sign with a key file (-k/--key or --signing-key: ed25519, RSA or ECDSA)');
  const key = stringValue(parsed, 'key');
  const signingKey = stringValue(parsed, 'signingKey');
  if (key !== undefined && signingKey !== undefined) usage('give -k/--key or --signing-key, not both');
  const path = key ?? signingKey;
  if (path === undefined) usage('-k/--key (or --signing-key) is required: the path of the private key file that signs the link');
  if (path === '') usage(`${key === undefined ? '--signing-key' : '-k/--key'}: the key path is empty`);
  return path;
}

/** The keyid form: --keyid-form, else standard with --signing-key (as in-toto 2.x/3.x), legacy with -k. */
export function keyidFormOf(parsed: Parsed): KeyidForm {
  const given = stringValue(parsed, 'keyidForm');
  if (given !== undefined) return given as KeyidForm;
  return parsed.values.has('signingKey') ? 'standard' : 'legacy';
}

/** -t as a key type, when given. */
export function keyTypeOf(parsed: Parsed): KeyType | undefined {
  return stringValue(parsed, 'keyType') as KeyType | undefined;
}

/**
 * The password: `-P pw` as given, bare `-P` prompts (an empty answer means no password, as in
 * the reference), absent means none.
 */
export async function passwordOf(parsed: Parsed, keyPath: string): Promise<string | undefined> {
  const value = parsed.values.get('password');
  if (value === undefined) return undefined;
  // node:readline is only loaded when there is something to read.
  const password = value === true ? await (await import('./password.js')).readPassword(`enter password for '${keyPath}' (empty if not encrypted): `) : String(value);
  return password === '' ? undefined : password;
}

/** --hash values (deduplicated, in order), or undefined for the default. */
export function algorithmsOf(parsed: Parsed): RecordableHashAlgorithm[] | undefined {
  const given = listValue(parsed, 'hash');
  return given === undefined ? undefined : [...new Set(given)] as RecordableHashAlgorithm[];
}

/** --timeout as seconds, or undefined. */
export function timeoutOf(parsed: Parsed): number | undefined {
  const text = stringValue(parsed, 'timeout');
  if (text === undefined) return undefined;
  const seconds = parseTimeoutSeconds(text);
  if (seconds === undefined) usage(`--timeout must be ${TIMEOUT_RULE}, not '${text}'`);
  return seconds;
}

/** --env names, checked to be variable names. */
export function passEnvOf(parsed: Parsed): string[] | undefined {
  const names = listValue(parsed, 'env');
  if (names === undefined) return undefined;
  for (const name of names) if (!ENV_NAME.test(name)) usage(`--env: ${JSON.stringify(name)} is not an environment variable name`);
  return [...names];
}

/** --device paths, checked to be paths under /dev. */
export function devicesOf(parsed: Parsed): string[] | undefined {
  const paths = listValue(parsed, 'device');
  if (paths === undefined) return undefined;
  for (const path of paths) if (!DEVICE_PATH.test(path)) usage(`--device: ${JSON.stringify(path)} is not a device path (a path under /dev, such as /dev/nvidia0)`);
  return [...paths];
}

/** --sandbox, default auto. */
export function sandboxOf(parsed: Parsed): SandboxMode {
  return (stringValue(parsed, 'sandbox') ?? 'auto') as SandboxMode;
}

/** Spreads `{ [key]: value }` only when the value is defined (exactOptionalPropertyTypes). */
export function defined<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

/**
 * The command, from what argparse would have made of the command line, refusing the forms
 * where argparse silently does something else than was meant:
 * - everything after the first `--` is the command, verbatim (later `--` included);
 * - without `--`, trailing words that no option consumed are the command (as argparse takes
 *   them), but only when no option follows them: in `-n a -k k echo -n hi` argparse renames
 *   the step to "hi" and runs `echo`;
 * - words both before and after `--` (argparse glues them together) are refused;
 * - words after a list option (`-m a b make`) are paths, as in argparse: the hint says so.
 * Returns [] when there is no command.
 */
export function commandOf(parsed: Parsed, program: string): string[] {
  const { positionals, afterDashDash, optionAfterPositional } = parsed;
  if (positionals.length > 0 && optionAfterPositional !== undefined) {
    usage(`option ${optionAfterPositional} comes after the command word '${positionals[0]!}': put the command after '--' (${program} [options] -- COMMAND [ARGS...])`);
  }
  if (positionals.length > 0 && afterDashDash !== undefined) {
    usage(`command words both before and after '--' (${positionals.join(' ')} -- ...): put the whole command after '--'`);
  }
  return [...(afterDashDash ?? positionals)];
}

/** Why no command was found, with a hint when list options may have taken it as paths. */
export function noCommandMessage(parsed: Parsed, program: string): string {
  const lists = ['materials', 'products', 'exclude', 'lstripPaths'].some((dest) => parsed.values.has(dest));
  const hint = lists && parsed.afterDashDash === undefined ? " (words after -m, -p, --exclude and --lstrip-paths are taken as paths, so a command after them needs '--')" : '';
  return `no command given: put it after '--' (${program} [options] -- COMMAND [ARGS...]), or pass -x/--no-command${hint}`;
}
