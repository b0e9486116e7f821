import { readSync } from 'node:fs';
import { loadPublicKeyFile } from '../crypto/keyfiles.js';
import { pullModel } from '../gate/pull.js';
import { setActivity } from '../io/interrupt.js';
import { dockerConfigCredentials, type Credentials } from '../oci/auth.js';
import { RegistryClient, type ClientOptions } from '../oci/client.js';
import { pushModel } from '../oci/push.js';
import { formatReference, parseReference, type Reference } from '../oci/reference.js';
import { listVersions } from '../oci/versions.js';
import { acceptJson, createOutput, newProgram, repeatable, sandboxModeOf, usage, verbosityOf, writeJson, type Output } from './common.js';
import { trustOf, trustOptions, type TrustCliOptions } from './model-trust.js';
import { policyOf } from './scan-model.js';
import type { Command } from 'commander';

/**
 * `intoto push`, `intoto pull` and `intoto versions`: the registry commands. Parsing and
 * printing only; the work is in src/oci (client, packing, push, versions) and src/gate (pull).
 * Each takes --json: then every outcome, a failure or a usage error included, is one JSON
 * document on standard output (`passed` says which).
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
    .option('--insecure', 'allow plain HTTP to a registry that is not on this machine (a loopback registry uses HTTP unless --ca-file is given)')
    .option('--username <name>', 'registry user name (the password comes from --password-stdin)')
    .option('--password-stdin', 'read the registry password or token from standard input')
    .option('--ca-file <pem>', 'also trust these CA certificates for HTTPS (besides the system bundle); a loopback registry is then spoken to over HTTPS too')
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
  acceptJson();
  const program = connectionOptions(
    newProgram('intoto push', 'Push a model directory as an immutable ModelPack version, with its signature and attestations attached.')
      .argument('<model>', 'the model directory')
      .argument('<target>', 'HOST[:PORT]/REPO:TAG')
      .option('--signature <bundle>', 'the OpenSSF Model Signing signature (a Sigstore bundle) to attach')
      .option('--attach <file>', 'an in-toto link, layout or attestation to attach (repeatable)', repeatable, [] as string[])
      .option('--json', 'print the result as JSON on standard output'),
  );
  program.parse(argv, { from: 'user' });
  const opts = program.opts<ConnectionOptions & { signature?: string; attach: string[]; json?: boolean }>();
  const [model, targetText] = program.args as [string, string];
  const target = parseReference(targetText);
  if (target.tag === undefined || target.digest !== undefined) usage(`${targetText}: push needs HOST/REPO:TAG, a version tag (and no @digest)`);
  const out = createOutput('intoto push', verbosityOf(argv));
  const client = clientFor(target, opts, out);
  setActivity(`pushing ${model} to ${formatReference(target)}`);
  try {
    const result = await pushModel(client, { modelDir: model, target, signature: opts.signature, attach: opts.attach, onEvent: (line) => out.debug(line) });
    const pinned = `${target.registry.authority}/${result.repository}@${result.digest}`;
    if (opts.json) {
      writeJson({
        passed: true,
        reference: pinned,
        repository: `${target.registry.authority}/${result.repository}`,
        tag: target.tag,
        digest: result.digest,
        files: result.files,
        uploadedBlobs: result.uploadedBlobs,
        uploadedBytes: result.uploadedBytes,
        tagWritten: result.tagWritten,
        attachments: result.referrers.map((r) => ({ digest: r.digest, artifactType: r.artifactType ?? null })),
      });
      return 0;
    }
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

interface PullCliOptions extends ConnectionOptions, TrustCliOptions {
  output: string;
  layout?: string;
  layoutKey?: string[];
  scan?: boolean;
  policy?: string;
  allow: string[];
  expectDigest?: string;
  sandbox: string;
  json?: boolean;
}

/**
 * `intoto pull REF -o DIR (-k SIGNER.pub | --certificate-chain PEM... | --identity ID --issuer URL
 * [--trusted-root FILE]) [--layout NAME --layout-key OWNER.pub...] [--scan [--policy P]
 * [--allow NAME...]] [--expect-digest D] [--json]`: the deployment gate. Prints the pinned
 * reference it verified (`HOST/REPO@sha256:...`) on standard output.
 */
export async function pullMain(argv: string[]): Promise<number> {
  acceptJson();
  const program = newProgram('intoto pull', 'Pull a model through the deployment gate: only what verifies reaches the output directory.')
    .argument('<reference>', 'HOST[:PORT]/REPO:TAG or HOST[:PORT]/REPO@sha256:...')
    .requiredOption('-o, --output <dir>', 'the directory to create with the verified model');
  trustOptions(program)
    .option('--layout <name>', 'also verify this in-toto layout (an attached layout by file name, else a local file) against the attached links')
    .option('--layout-key <pem...>', "the layout owner's public key(s) (with --layout)")
    .option('--scan', 'also scan every model file (scan-model): refuse anything that could run code when loaded')
    .option('--policy <policy>', 'with --scan: strict (plain containers and numbers only) or FILE (more names to allow), as scan-model takes it')
    .option('--allow <name>', 'with --scan: also allow this global (MODULE.NAME); repeatable', repeatable, [] as string[])
    .option('--expect-digest <digest>', 'refuse unless the reference resolves to this sha256 digest')
    .option('--sandbox <mode>', "isolation of the layout's inspections: auto, bwrap or none", 'auto')
    .option('--json', 'print the result as JSON on standard output');
  connectionOptions(program);
  program.parse(argv, { from: 'user' });
  const opts = program.opts<PullCliOptions>();
  const reference = parseReference(program.args[0]!, { requireTagOrDigest: true });
  const makeTrust = trustOf(opts, 'say who must have signed the model: -k SIGNER.pub, --public-key-pem PEM, --certificate-chain CA..., or --identity ID --issuer URL (the gate never pulls an unsigned model)');
  if ((opts.layout === undefined) !== (opts.layoutKey === undefined)) usage('--layout and --layout-key go together');
  if (!opts.scan && (opts.policy !== undefined || opts.allow.length > 0)) usage('--policy and --allow go with --scan');
  const sandbox = sandboxModeOf(opts.sandbox);
  const policy = opts.scan ? policyOf(opts.policy ?? 'default', opts.allow) : undefined;
  const layoutKeys = (opts.layoutKey ?? []).map((path) => loadPublicKeyFile(path));
  const trust = makeTrust();
  const out = createOutput('intoto pull', verbosityOf(argv));
  const client = clientFor(reference, opts, out);
  setActivity(`pulling ${formatReference(reference)}`);
  try {
    const result = await pullModel(client, {
      reference,
      destination: opts.output,
      trust,
      expectDigest: opts.expectDigest,
      ...(opts.layout === undefined ? {} : { layout: { name: opts.layout, keys: layoutKeys, sandbox } }),
      ...(policy === undefined ? {} : { scan: { policy } }),
      onEvent: (event) => {
        if (event.kind === 'resolved') out.info(`${event.reference} is ${event.digest}`);
        else if (event.kind === 'note') out.warn(event.message);
        else out.debug(`check ${event.check}: ${event.ms} ms`);
      },
    });
    const pinned = `${reference.registry.authority}/${result.repository}@${result.digest}`;
    if (opts.json) {
      writeJson({
        passed: true,
        reference: formatReference(reference),
        pinned,
        digest: result.digest,
        destination: opts.output,
        files: result.files,
        signature: result.signature,
        layout: result.layoutVerified ? opts.layout : null,
        scan: result.scanned ?? null,
        timings: result.timings,
      });
      return 0;
    }
    const { signature, scanned } = result;
    const checks = [
      'digests',
      `signature (${signature.signer})`,
      ...(result.layoutVerified ? [`in-toto layout ${opts.layout}`] : []),
      ...(scanned === undefined ? [] : [`scan (${scanned.files} file(s), policy ${scanned.policy})`]),
    ];
    out.info(`verified ${result.files.length} file(s): ${checks.join(', ')}; written to ${opts.output}`);
    process.stdout.write(`${pinned}\n`);
    return 0;
  } finally {
    setActivity(undefined);
    await client.close();
  }
}

/** `intoto versions HOST[:PORT]/REPO [--json]`: each tag, its digest, its claimed signer and its attachments. */
export async function versionsMain(argv: string[]): Promise<number> {
  acceptJson();
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
      writeJson({ passed: true, repository: `${reference.registry.authority}/${reference.repository}`, versions });
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
