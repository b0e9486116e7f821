import { readSync } from 'node:fs';
import { loadPublicKeyFile } from '../crypto/keyfiles.js';
import { pullModel } from '../gate/pull.js';
import type { SignerOption } from '../gate/signature.js';
import { removeWorkspace, type Workspace } from '../gate/workspace.js';
import { dockerConfigCredentials, type Credentials } from '../oci/auth.js';
import { RegistryClient, type ClientOptions } from '../oci/client.js';
import { pushModel } from '../oci/push.js';
import { formatReference, parseReference, type Reference } from '../oci/reference.js';
import { listVersions } from '../oci/versions.js';
import { createOutput, newProgram, repeatable, sandboxModeOf, usage, verbosityOf, type Output } from './common.js';
import type { Command } from 'commander';

/**
 * `intoto push`, `intoto pull` and `intoto versions`: the registry commands. Parsing and
 * printing only; the work is in src/oci (client, packing, push, versions) and src/gate (pull).
 */

export interface ConnectionOptions {
  insecure?: boolean;
  username?: string;
  passwordStdin?: boolean;
  caFile?: string;
  timeout?: string;
}

/**
 * The registry connection options. `timeoutFlag` names the answer timeout (`--timeout`, or
 * `--store-timeout` for commands whose `--timeout` is a step's time limit).
 */
export function connectionOptions(program: Command, timeoutFlag = '--timeout'): Command {
  return program
    .option('--insecure', 'allow plain HTTP to a registry that is not on this machine (loopback registries always use HTTP)')
    .option('--username <name>', 'registry user name (the password comes from --password-stdin)')
    .option('--password-stdin', 'read the registry password or token from standard input')
    .option('--ca-file <pem>', 'also trust these CA certificates for HTTPS (besides the system bundle)')
    .option(`${timeoutFlag} <seconds>`, 'longest wait for a registry answer, or inside one (default 300)');
}

/** The client for a reference's registry, with credentials from the flags or ~/.docker/config.json. */
export function clientFor(reference: Pick<Reference, 'registry'>, opts: ConnectionOptions, out: Output): RegistryClient {
  let credentials: Credentials | undefined;
  if (opts.passwordStdin && opts.username === undefined) usage('--password-stdin needs --username');
  if (opts.username !== undefined) {
    if (!opts.passwordStdin) usage('--username needs --password-stdin (passwords are never taken on the command line)');
    credentials = { kind: 'basic', username: opts.username, password: readStdinSecret() };
  } else {
    credentials = dockerConfigCredentials(reference.registry.authority, { warn: (line) => out.warn(line) });
  }
  let timeoutMs: number | undefined;
  if (opts.timeout !== undefined) {
    const seconds = /^[0-9]+(\.[0-9]+)?$/.test(opts.timeout) ? Number(opts.timeout) : Number.NaN;
    if (!(seconds > 0 && seconds <= 86_400)) usage(`--timeout must be a positive number of seconds, not ${JSON.stringify(opts.timeout)}`);
    timeoutMs = Math.round(seconds * 1000);
  }
  const options: ClientOptions = {
    insecure: opts.insecure === true,
    credentials,
    warn: (line) => out.warn(line),
    ...(opts.caFile === undefined ? {} : { caFile: opts.caFile }),
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  };
  return new RegistryClient(reference.registry, options);
}

/** Standard input, whole (at most 64 KiB), one trailing newline removed; never echoed. */
function readStdinSecret(): string {
  const buffer = Buffer.alloc(64 * 1024 + 1);
  let total = 0;
  for (;;) {
    let n: number;
    try {
      n = readSync(0, buffer, total, buffer.length - total, null);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EAGAIN') continue;
      if ((error as NodeJS.ErrnoException).code === 'EOF') break;
      throw error;
    }
    if (n === 0) break;
    total += n;
    if (total > 64 * 1024) usage('--password-stdin: standard input is over 64 KiB');
  }
  const secret = buffer.subarray(0, total).toString('utf8').replace(/\r?\n$/, '');
  if (secret === '') usage('--password-stdin: standard input is empty');
  return secret;
}

/**
 * `intoto push MODEL HOST[:PORT]/REPO:TAG [--signature SIG] [--attach FILE...]`.
 * Prints `HOST/REPO@sha256:...` on standard output.
 */
export async function pushMain(argv: string[]): Promise<number> {
  const program = connectionOptions(
    newProgram('intoto push', 'Push a model directory as an immutable ModelPack version, with its signature and attestations attached.')
      .argument('<model>', 'the model directory')
      .argument('<target>', 'HOST[:PORT]/REPO:TAG')
      .option('--signature <bundle>', 'the OpenSSF Model Signing signature (a Sigstore bundle) to attach')
      .option('--attach <file>', 'an in-toto link, layout or attestation to attach (repeatable)', repeatable, [] as string[]),
  );
  program.parse(argv, { from: 'user' });
  const opts = program.opts<ConnectionOptions & { signature?: string; attach: string[] }>();
  const [model, targetText] = program.args as [string, string];
  const target = parseReference(targetText);
  if (target.tag === undefined || target.digest !== undefined) usage(`${targetText}: push needs HOST/REPO:TAG, a version tag (and no @digest)`);
  const out = createOutput('intoto push', verbosityOf(argv));
  const client = clientFor(target, opts, out);
  try {
    const result = await pushModel(client, { modelDir: model, target, signature: opts.signature, attach: opts.attach, onEvent: (line) => out.debug(line) });
    const pinned = `${target.registry.authority}/${result.repository}@${result.digest}`;
    out.info(
      result.tagWritten
        ? `pushed ${result.files} file(s) as ${target.repository}:${target.tag} (${result.uploadedBlobs} blob(s), ${result.uploadedBytes} bytes uploaded, ${result.referrers.length} attachment(s))`
        : `${target.repository}:${target.tag} already is this model; ${result.uploadedBlobs === 0 ? 'nothing uploaded' : `${result.uploadedBlobs} blob(s) uploaded`}`,
    );
    process.stdout.write(`${pinned}\n`);
    return 0;
  } finally {
    await client.close();
  }
}

interface PullCliOptions extends ConnectionOptions {
  output: string;
  key?: string;
  certificateChain?: string[];
  identity?: string;
  issuer?: string;
  layout?: string;
  layoutKey?: string[];
  scan?: boolean;
  expectDigest?: string;
  sandbox: string;
}

/**
 * `intoto pull REF -o DIR (-k SIGNER.pub | --certificate-chain PEM... | --identity ID --issuer URL)
 * [--layout NAME --layout-key OWNER.pub...] [--scan] [--expect-digest D]`: the deployment gate.
 * Prints the pinned reference it verified (`HOST/REPO@sha256:...`) on standard output.
 */
export async function pullMain(argv: string[]): Promise<number> {
  const program = connectionOptions(
    newProgram('intoto pull', 'Pull a model through the deployment gate: only what verifies reaches the output directory.')
      .argument('<reference>', 'HOST[:PORT]/REPO:TAG or HOST[:PORT]/REPO@sha256:...')
      .requiredOption('-o, --output <dir>', 'the directory to create with the verified model')
      .option('-k, --key <pem>', 'the signer\'s public key (OpenSSF Model Signing key method)')
      .option('--certificate-chain <pem...>', 'the certificate chain to verify the signer\'s certificate against')
      .option('--identity <identity>', 'the Sigstore signer identity (with --issuer)')
      .option('--issuer <url>', 'the Sigstore OIDC issuer (with --identity)')
      .option('--layout <name>', 'also verify this in-toto layout (an attached layout by file name, else a local file) against the attached links')
      .option('--layout-key <pem...>', 'the layout owner\'s public key(s) (with --layout)')
      .option('--scan', 'also scan the model files (pickles are refused unless every import is allow-listed)')
      .option('--expect-digest <digest>', 'refuse unless the reference resolves to this sha256 digest')
      .option('--sandbox <mode>', 'isolation of the layout\'s inspections: auto, bwrap or none', 'auto'),
  );
  program.parse(argv, { from: 'user' });
  const opts = program.opts<PullCliOptions>();
  const reference = parseReference(program.args[0]!, { requireTagOrDigest: true });
  const signer = signerOf(opts);
  if ((opts.layout === undefined) !== (opts.layoutKey === undefined)) usage('--layout and --layout-key go together');
  const sandbox = sandboxModeOf(opts.sandbox);
  const layoutKeys = (opts.layoutKey ?? []).map((path) => loadPublicKeyFile(path));
  const out = createOutput('intoto pull', verbosityOf(argv));
  const client = clientFor(reference, opts, out);
  let workspace: Workspace | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (workspace !== undefined) removeWorkspace(workspace);
    process.stderr.write(`intoto pull: interrupted (${signal}); nothing was written\n`);
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const result = await pullModel(client, {
      reference,
      destination: opts.output,
      signer,
      expectDigest: opts.expectDigest,
      ...(opts.layout === undefined ? {} : { layout: { name: opts.layout, keys: layoutKeys, sandbox } }),
      scan: opts.scan === true,
      onWorkspace: (w) => (workspace = w),
      onEvent: (event) => {
        if (event.kind === 'resolved') out.info(`${event.reference} is ${event.digest}`);
        else if (event.kind === 'note') out.warn(event.message);
        else out.debug(`check ${event.check}: ${event.ms} ms`);
      },
    });
    const checks = ['digests', `signature (key ${result.signature.keyId.slice(0, 16)}...)`, ...(result.layoutVerified ? ['in-toto layout'] : []), ...(opts.scan ? [`scan (${result.scanned} pickle(s))`] : [])];
    out.info(`verified ${result.files.length} file(s): ${checks.join(', ')}; written to ${opts.output}`);
    process.stdout.write(`${reference.registry.authority}/${result.repository}@${result.digest}\n`);
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await client.close();
  }
}

/** Exactly one signer method; none at all is refused (the gate never pulls unsigned). */
function signerOf(opts: PullCliOptions): SignerOption {
  const methods = [opts.key !== undefined, opts.certificateChain !== undefined, opts.identity !== undefined || opts.issuer !== undefined].filter(Boolean).length;
  if (methods === 0) usage('say who must have signed the model: -k SIGNER.pub, --certificate-chain PEM..., or --identity ID --issuer URL (the gate never pulls an unsigned model)');
  if (methods > 1) usage('give one signer method: -k, --certificate-chain, or --identity with --issuer');
  if (opts.key !== undefined) return { kind: 'key', path: opts.key };
  if (opts.certificateChain !== undefined) return { kind: 'certificate-chain', paths: opts.certificateChain };
  if (opts.identity === undefined || opts.issuer === undefined) usage('--identity and --issuer go together');
  return { kind: 'sigstore', identity: opts.identity, issuer: opts.issuer };
}

/** `intoto versions HOST[:PORT]/REPO [--json]`: each tag, its digest, its claimed signer and its attachments. */
export async function versionsMain(argv: string[]): Promise<number> {
  const program = connectionOptions(
    newProgram('intoto versions', 'List the versions of a model repository: tag, digest, signer, attachments.')
      .argument('<repository>', 'HOST[:PORT]/REPO')
      .option('--json', 'print the list as JSON on standard output'),
  );
  program.parse(argv, { from: 'user' });
  const opts = program.opts<ConnectionOptions & { json?: boolean }>();
  const reference = parseReference(program.args[0]!);
  if (reference.tag !== undefined || reference.digest !== undefined) usage(`${formatReference(reference)}: name the repository only (HOST/REPO)`);
  const out = createOutput('intoto versions', verbosityOf(argv));
  const client = clientFor(reference, opts, out);
  try {
    const versions = await listVersions(client, reference.repository);
    if (opts.json) {
      process.stdout.write(`${JSON.stringify({ repository: `${reference.registry.authority}/${reference.repository}`, versions }, null, 2)}\n`);
      return 0;
    }
    if (versions.length === 0) out.info(`${formatReference(reference)}: no versions`);
    for (const v of versions) {
      if (v.error !== undefined) {
        process.stdout.write(`${v.tag}\t-\tunreadable: ${v.error}\n`);
        continue;
      }
      const signers = v.signers.length === 0 ? 'unsigned' : v.signers.map((s) => `${s.kind === 'certificate' && s.identity !== undefined ? `${s.identity} ` : ''}key ${s.keyId === undefined ? '?' : s.keyId.slice(0, 16)}`).join(', ');
      const attached = v.attachments.length === 0 ? 'nothing attached' : v.attachments.map((a) => a.name ?? a.artifactType).join(', ');
      process.stdout.write(`${v.tag}\t${v.digest}\tsigned by ${signers}\t${attached}\n`);
    }
    return 0;
  } finally {
    await client.close();
  }
}
