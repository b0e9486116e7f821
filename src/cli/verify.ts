import { resolve } from 'node:path';
import { loadPublicKeyFile } from '../crypto/keyfiles.js';
import type { PublicKey } from '../crypto/keys.js';
import { asInTotoError, InTotoError } from '../errors.js';
import { setActivity } from '../io/interrupt.js';
import { checkKeyFileReadable, parseTimeoutSeconds, TIMEOUT_RULE } from '../runner/step-files.js';
import { failedReport, type LayoutReport, type RuleReport, type VerifyReport } from '../verify/report.js';
import { verifySupplyChain } from '../verify/verify.js';
import { DEFAULT_VERIFIER_ID } from '../attest/vsa.js';
import { acceptJson, checkDirectoryFlag, createOutput, expectedTypeOption, programName, reportError, writeJson, keyTypesByPosition, newProgram, paramsOf, repeatable, sandboxModeOf, usage, verbosityOf, type Output } from './common.js';

interface VerifyCliOptions {
  layout: string;
  layoutKeys?: string[];
  verificationKeys?: string[];
  vsa?: string;
  vsaKey?: string;
  verifierId?: string;
  resourceUri?: string;
  keyTypes?: string[];
  gpg?: string[] | boolean;
  gpgHome?: string;
  linkDir: string;
  layoutThreshold?: string;
  param: string[];
  json?: boolean;
  inspectionTimeout?: string;
  allowSublayoutInspections?: boolean;
  finalProducts?: string[];
  sandbox: string;
}

/**
 * `intoto-verify -l LAYOUT -k KEY... [-t TYPE...] [--link-dir DIR] [-v|-q]`, the command line
 * of `in-toto-verify` 1.3.1, plus `--layout-threshold`, `--param`, `--json`,
 * `--inspection-timeout`, `--allow-sublayout-inspections`, `--final-products`, `--sandbox`.
 * Exit status 0 when verification passes, 1 when it fails for any reason (unreadable or
 * malformed files included), 2 for bad usage.
 * @throws UsageError E_USAGE (exit 2)
 */
export async function verifyMain(argv: string[]): Promise<number> {
  acceptJson();
  const program = newProgram('intoto-verify', 'Verify an in-toto supply chain: layout, links, rules and inspections.')
    .requiredOption('-l, --layout <path>', 'the root layout')
    .option('-k, --layout-keys <paths...>', 'public key files of the layout owner(s)')
    .option('--verification-keys <paths...>', 'the same, as in-toto 2.x/3.x name it (PEM public keys; both forms may be combined)')
    .option('-t, --key-types <types...>', 'types of the layout keys, by position (checked against the files)')
    .option('-g, --gpg [ids...]', 'GPG keys (not supported)')
    .option('--gpg-home <path>', 'GPG home directory (not supported)')
    .option('--link-dir <path>', 'directory holding the link files', '.')
    .option('--layout-threshold <n>', 'how many distinct layout keys must have signed (default: all given)')
    .option('--param <KEY=VALUE>', 'a parameter substituted into the layout (repeatable)', repeatable, [])
    .option('--json', 'print the verification report as JSON on stdout')
    .option('--inspection-timeout <seconds>', 'stop an inspection after this many seconds (default: no limit)')
    .option('--allow-sublayout-inspections', "run the inspections of sublayouts (commands chosen by functionaries)")
    .option('--final-products <paths...>', 'what inspections see (default: this directory minus layout, links and keys)')
    .option('--sandbox <mode>', 'inspection isolation: auto, bwrap or none', 'auto')
    .option('--vsa <file>', 'write a signed SLSA Verification Summary Attestation (VSA v1) to FILE, whether the verification passes or fails')
    .option('--vsa-key <path>', 'the private key that signs the VSA (read after the verification; hidden from inspections)')
    .option('--verifier-id <uri>', `the VSA's verifier id (default ${DEFAULT_VERIFIER_ID})`)
    .option('--resource-uri <uri>', "the VSA's resourceUri: the artifact verified (default: the final product's file: URI)");
  program.parse(argv, { from: 'user' });
  const opts = program.opts<VerifyCliOptions>();
  const out = createOutput('intoto-verify', verbosityOf(argv));

  if (opts.gpg !== undefined || opts.gpgHome !== undefined) usage('GPG keys are not supported; pass public key files with -k (ed25519, RSA or ECDSA)');
  const keyPaths = [...(opts.layoutKeys ?? []), ...(opts.verificationKeys ?? [])];
  if (keyPaths.length === 0) usage('pass at least one layout key with -k/--layout-keys (or --verification-keys)');
  // -t pairs with -k by position, as in-toto-verify; --verification-keys are detected.
  const types = [...keyTypesByPosition(opts.keyTypes, (opts.layoutKeys ?? []).length), ...(opts.verificationKeys ?? []).map(() => undefined)];
  const vsa = vsaOptionsOf(opts);
  const sandbox = sandboxModeOf(opts.sandbox);
  const threshold = opts.layoutThreshold === undefined ? undefined : positiveInteger('--layout-threshold', opts.layoutThreshold);
  const timeout = opts.inspectionTimeout === undefined ? undefined : seconds('--inspection-timeout', opts.inspectionTimeout);
  const params = paramsOf(opts.param);

  let keys: PublicKey[];
  try {
    keys = keyPaths.map((path, i) => loadPublicKeyFile(path, expectedTypeOption(types[i])));
    // Else every step would be reported as a missing link, which sends the user looking for the wrong thing.
    checkDirectoryFlag('--link-dir', opts.linkDir);
  } catch (error) {
    // A key that does not load is a failed verification (exit 1), reported like any other.
    if (!(error instanceof InTotoError) || error.code === 'E_USAGE') throw error;
    const failed = failedReport(error, opts.layout);
    return finish(failed, opts, out, await writeVsa(vsa, failed, opts, keyPaths, out));
  }

  const report = await verifySupplyChain({
    layoutPath: opts.layout,
    layoutKeys: keys,
    linkDir: opts.linkDir,
    params,
    excludeFromFinalProducts: keyPaths,
    sandbox,
    allowSublayoutInspections: opts.allowSublayoutInspections ?? false,
    ...(threshold === undefined ? {} : { layoutThreshold: threshold }),
    ...(timeout === undefined ? {} : { inspectionTimeoutSeconds: timeout }),
    ...(opts.finalProducts === undefined ? {} : { finalProducts: opts.finalProducts }),
    ...(vsa === undefined ? {} : { hide: [vsa.keyPath] }),
    onEvent: (event) => {
      if (event.kind === 'warning') out.warn(event.message);
      else if (event.kind === 'note') out.debug(event.message);
      else {
        setActivity(event.check === 'inspections' ? `running the inspections of the ${event.layout} layout` : `checking the ${event.check} of the ${event.layout} layout`);
        out.debug(`check: ${event.check} (${event.layout})`);
      }
    },
  });
  return finish(report, opts, out, await writeVsa(vsa, report, opts, keyPaths, out));
}

interface VsaRequest {
  readonly file: string;
  readonly keyPath: string;
  readonly verifierId: string;
  readonly resourceUri: string | undefined;
}

const URI = /^[A-Za-z][A-Za-z0-9+.-]*:[^\s]+$/;

/**
 * --vsa and its companions, checked before anything is verified (the key file must be there,
 * but it is read only after the verification, so no inspection runs while it is in memory).
 * @throws UsageError E_USAGE; IoError (the key file cannot be opened)
 */
function vsaOptionsOf(opts: VerifyCliOptions): VsaRequest | undefined {
  if (opts.vsa === undefined) {
    for (const [flag, value] of [['--vsa-key', opts.vsaKey], ['--verifier-id', opts.verifierId], ['--resource-uri', opts.resourceUri]] as const) {
      if (value !== undefined) usage(`${flag} is for the VSA: give --vsa FILE too`);
    }
    return undefined;
  }
  if (opts.vsaKey === undefined) usage('--vsa needs --vsa-key: the private key that signs the VSA');
  for (const [flag, value] of [['--verifier-id', opts.verifierId], ['--resource-uri', opts.resourceUri]] as const) {
    if (value !== undefined && !URI.test(value)) usage(`${flag} must be a URI (scheme:...), not ${JSON.stringify(value)}`);
  }
  checkKeyFileReadable(opts.vsaKey);
  return { file: opts.vsa, keyPath: opts.vsaKey, verifierId: opts.verifierId ?? DEFAULT_VERIFIER_ID, resourceUri: opts.resourceUri };
}

/**
 * Writes the VSA of `report`, PASSED or FAILED. Returns the error that kept it from being
 * written, if any (the verification's own verdict is reported either way).
 */
async function writeVsa(vsa: VsaRequest | undefined, report: VerifyReport, opts: VerifyCliOptions, keyPaths: readonly string[], out: Output): Promise<InTotoError | undefined> {
  if (vsa === undefined) return undefined;
  try {
    const { writeVerificationSummary } = await import('../attest/write-vsa.js');
    await writeVerificationSummary({
      file: vsa.file,
      keyPath: vsa.keyPath,
      report,
      layoutPath: resolve(opts.layout),
      cwd: process.cwd(),
      finalProducts: opts.finalProducts,
      exclude: [opts.layout, opts.linkDir, ...keyPaths, vsa.file, vsa.keyPath],
      verifierId: vsa.verifierId,
      ...(vsa.resourceUri === undefined ? {} : { resourceUri: vsa.resourceUri }),
    });
    out.info(`${programName('intoto-verify')}: wrote the VSA (${report.passed ? 'PASSED' : 'FAILED'}) to ${vsa.file}`);
    return undefined;
  } catch (error) {
    return asInTotoError(error).withContext(`no VSA written to ${vsa.file}`, { file: vsa.file });
  }
}

function finish(report: VerifyReport, opts: VerifyCliOptions, out: Output, vsaError?: InTotoError): number {
  const status = finishReport(report, opts, out);
  if (vsaError === undefined) return status;
  // A gate that asked for a VSA must not see success without one.
  reportError('intoto-verify', vsaError, out.verbosity);
  return 1;
}

function finishReport(report: VerifyReport, opts: VerifyCliOptions, out: Output): number {
  if (opts.json) writeJson(report, 1);
  if (out.verbosity === 'verbose') for (const line of traceLines(report.layout, '')) out.debug(line);
  const failure = report.failure;
  if (failure === undefined) {
    if (!opts.json && out.verbosity !== 'quiet') process.stdout.write(`PASS: ${report.layout.file} (${summary(report.layout)})\n`);
    return 0;
  }
  process.stderr.write(`FAIL ${failure.code}: ${failure.message}\n`);
  if (out.verbosity === 'verbose') for (const line of failure.details) if (line !== failure.message) process.stderr.write(`  ${line}\n`);
  return 1;
}

function summary(layout: LayoutReport): string {
  const steps = layout.steps.length;
  const inspections = layout.inspections.length;
  return `${steps} step(s), ${inspections} inspection(s) verified`;
}

/** The rule-by-rule trace of a report, for -v. */
export function traceLines(layout: LayoutReport, indent: string): string[] {
  const lines = [`${indent}layout ${layout.file}${layout.step === undefined ? '' : ` (step '${layout.step}')`}: signed by ${layout.signedBy.map((k) => k.slice(0, 8)).join(', ') || 'nobody verified'}, expires ${layout.expires ?? '?'}`];
  for (const step of layout.steps) {
    lines.push(`${indent}  step '${step.name}': threshold ${step.threshold}, links by ${step.signedBy.map((k) => k.slice(0, 8)).join(', ') || 'none'}`);
    for (const reason of step.ignored) lines.push(`${indent}    ignored ${reason}`);
    for (const sub of step.sublayouts) lines.push(...traceLines(sub, `${indent}    `));
    lines.push(...ruleLines('materials', step.materials, `${indent}    `), ...ruleLines('products', step.products, `${indent}    `));
  }
  for (const inspection of layout.inspections) {
    const sandbox = inspection.sandboxed ? 'sandboxed' : 'NOT sandboxed';
    lines.push(`${indent}  inspection '${inspection.name}': ${JSON.stringify(inspection.command)} exited ${inspection.exitCode ?? '-'} (${sandbox})`);
    lines.push(...ruleLines('materials', inspection.materials, `${indent}    `), ...ruleLines('products', inspection.products, `${indent}    `));
  }
  return lines;
}

function ruleLines(kind: string, rules: readonly RuleReport[], indent: string): string[] {
  return rules.flatMap((r) => {
    const names = r.consumed.slice(0, 5).join(', ') + (r.consumed.length > 5 ? `, ... (${r.consumed.length - 5} more)` : '');
    return [`${indent}${kind} '${r.rule}': consumed ${r.consumed.length}${r.consumed.length > 0 ? `: ${names}` : ''}`, ...r.notes.map((n) => `${indent}  ${n}`)];
  });
}


function positiveInteger(flag: string, text: string): number {
  const n = /^[0-9]{1,6}$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1) usage(`${flag} must be a positive integer, not ${JSON.stringify(text)}`);
  return n;
}

function seconds(flag: string, text: string): number {
  const n = parseTimeoutSeconds(text);
  if (n === undefined) usage(`${flag} must be ${TIMEOUT_RULE}, not ${JSON.stringify(text)}`);
  return n;
}
