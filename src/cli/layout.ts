import { loadPublicKeyFile, loadSigningKeyFile } from '../crypto/keyfiles.js';
import type { PublicKey } from '../crypto/keys.js';
import type { SigningKey } from '../crypto/signatures.js';
import { writeFileAtomicSync } from '../io/files.js';
import { dsseText, metablockText } from '../model/envelope.js';
import { errorsOf, formatDiagnostic, type Diagnostic } from '../pipeline/diagnostics.js';
import { checkLayoutSource, loadLayoutSource } from '../pipeline/load.js';
import { acceptJson, createOutput, newProgram, usage, verbosityOf, writeJson, type Output } from './common.js';
import { readPassword } from './password.js';

/** Parses `--max-expiry-years`. */
function years(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[0-9]+(\.[0-9]+)?$/.test(value) || Number(value) <= 0) usage(`--max-expiry-years takes a positive number, got ${value}`);
  return Number(value);
}

interface CheckFlags {
  ownerKey?: string[];
  pubkeyDir?: string;
  maxExpiryYears?: string;
  strict?: boolean;
  json?: boolean;
}

/**
 * `intoto layout check FILE [--owner-key PUB]... [--pubkey-dir DIR] [--max-expiry-years N]
 * [--strict] [--json]`: reads a YAML layout source as `layout sign` and `pipeline run` would
 * and prints every error and warning as `FILE:LINE:COL: severity: message [id]`. Exit 0 when
 * there is no error (and, with --strict, no warning), 1 otherwise.
 * @throws UsageError E_USAGE; IoError when the file cannot be read; CryptoError for an owner
 *   key that does not load
 */
export async function layoutCheckMain(argv: string[]): Promise<number> {
  acceptJson();
  const program = newProgram('intoto layout check', 'Check a YAML pipeline layout: errors with line and column, and warnings.')
    .argument('<file>', 'the YAML layout source')
    .option('-k, --owner-key <paths...>', "the layout owner's public key(s), to warn when a functionary uses one")
    .option('--pubkey-dir <dir>', "read functionary NAME's public key from DIR/NAME.pub instead of the path in the YAML")
    .option('--max-expiry-years <n>', 'warn when the layout expires further away than this (default 1)')
    .option('--strict', 'exit 1 on warnings too')
    .option('--json', 'print the diagnostics as JSON on standard output');
  program.parse(argv, { from: 'user' });
  const opts = program.opts<CheckFlags>();
  const [file] = program.args as [string];
  const ownerKeys = (opts.ownerKey ?? []).map((path) => loadPublicKeyFile(path));
  const maxExpiryYears = years(opts.maxExpiryYears);
  const result = checkLayoutSource({
    file,
    ownerKeys,
    ...(opts.pubkeyDir === undefined ? {} : { pubkeyDir: opts.pubkeyDir }),
    ...(maxExpiryYears === undefined ? {} : { maxExpiryYears }),
  });
  const errors = errorsOf(result.diagnostics).length;
  const warnings = result.diagnostics.length - errors;
  const failed = errors > 0 || (opts.strict === true && warnings > 0);
  if (opts.json) {
    writeJson({ file, passed: !failed, errors, warnings, diagnostics: result.diagnostics });
    return failed ? 1 : 0;
  }
  const quiet = verbosityOf(argv) === 'quiet';
  for (const d of result.diagnostics) {
    if (!quiet || d.severity === 'error') process.stdout.write(`${formatDiagnostic(file, d)}\n`);
  }
  if (!quiet) {
    const steps = result.source === undefined ? '' : ` (${result.source.steps.length} step(s), ${result.source.inspections.length} inspection(s), expires ${result.source.expires})`;
    process.stdout.write(`${file}: ${errors} error(s), ${warnings} warning(s)${errors === 0 ? steps : ''}\n`);
  }
  return failed ? 1 : 0;
}

interface SignFlags {
  key?: string[];
  output: string;
  useDsse?: boolean;
  prompt?: boolean;
  pubkeyDir?: string;
  maxExpiryYears?: string;
}

/**
 * `intoto layout sign FILE -k OWNER_KEY... [-o root.layout] [--use-dsse] [-p] [--pubkey-dir DIR]`:
 * compiles a YAML layout source into a standard in-toto layout (the form in-toto 1.3.1 writes)
 * and signs it with the owner key(s). Refuses a source with errors; prints its warnings.
 * @throws UsageError E_USAGE; CryptoError (the owner key); the source's first error (see
 *   loadLayoutSource); IoError writing the output
 */
export async function layoutSignMain(argv: string[]): Promise<number> {
  const program = newProgram('intoto layout sign', 'Compile a YAML pipeline layout into a signed in-toto layout.')
    .argument('<file>', 'the YAML layout source')
    .option('-k, --key <paths...>', "the layout owner's private key file(s)")
    .option('-o, --output <path>', 'where to write the signed layout', 'root.layout')
    .option('--use-dsse', 'write a DSSE envelope instead of the Metablock')
    .option('-p, --prompt', 'prompt for the password of each key')
    .option('--pubkey-dir <dir>', "read functionary NAME's public key from DIR/NAME.pub instead of the path in the YAML")
    .option('--max-expiry-years <n>', 'warn when the layout expires further away than this (default 1)');
  program.parse(argv, { from: 'user' });
  const opts = program.opts<SignFlags>();
  const [file] = program.args as [string];
  const out = createOutput('intoto layout sign', verbosityOf(argv));
  const keyPaths = opts.key ?? [];
  if (keyPaths.length === 0) usage("pass the owner's private key with -k");
  const keys: SigningKey[] = [];
  for (const path of keyPaths) {
    const password = opts.prompt ? await readPassword(`enter password for '${path}' (empty if not encrypted): `) : undefined;
    keys.push(loadSigningKeyFile(path, password ? { password } : {}));
  }
  const maxExpiryYears = years(opts.maxExpiryYears);
  const written = signLayoutSource({
    file,
    keys,
    output: opts.output,
    useDsse: opts.useDsse === true,
    out,
    ...(opts.pubkeyDir === undefined ? {} : { pubkeyDir: opts.pubkeyDir }),
    ...(maxExpiryYears === undefined ? {} : { maxExpiryYears }),
  });
  out.info(`signed layout (${written.steps} step(s), expires ${written.expires}) with ${keys.map((k) => k.keyid.slice(0, 8)).join(', ')} -> ${opts.output}`);
  return 0;
}

/**
 * Loads, compiles and signs a YAML source; prints its warnings through `out`.
 * @throws whatever {@link loadLayoutSource} throws; IoError E_IO writing the output
 */
export function signLayoutSource(options: {
  file: string;
  keys: readonly SigningKey[];
  output: string;
  useDsse: boolean;
  out: Output;
  pubkeyDir?: string;
  maxExpiryYears?: number;
}): { steps: number; expires: string } {
  const owners: PublicKey[] = options.keys.map((k) => k.public);
  const { source, warnings } = loadLayoutSource({
    file: options.file,
    ownerKeys: owners,
    ...(options.pubkeyDir === undefined ? {} : { pubkeyDir: options.pubkeyDir }),
    ...(options.maxExpiryYears === undefined ? {} : { maxExpiryYears: options.maxExpiryYears }),
  });
  printWarnings(options.file, warnings, options.out);
  const text = options.useDsse ? dsseText(source.layoutJson, options.keys) : metablockText(source.layoutJson, options.keys);
  writeFileAtomicSync(options.output, text);
  return { steps: source.steps.length, expires: source.expires };
}

/** Prints the warnings of a source that loaded, one line each. Never throws. */
export function printWarnings(file: string, diagnostics: readonly Diagnostic[], out: Output): void {
  for (const d of diagnostics) if (d.severity === 'warning') out.warn(formatDiagnostic(file, d).replace(/: warning: /, ': '));
}
