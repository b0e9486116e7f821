import { InTotoError, asInTotoError } from '../errors.js';
import { prewarmHashWorkers } from '../runner/hash-pool.js';
import { loadModelSigner, withCertificateFiles } from '../oms/keys.js';
import { signModel } from '../oms/sign.js';
import { describeMismatch, verifyModel, type ModelVerification } from '../oms/verify.js';
import { acceptJson, createOutput, newProgram, usage, verbosityOf, writeJson } from './common.js';
import { trustOf, trustOptions, type TrustCliOptions } from './model-trust.js';
import { readPassword } from './password.js';

/**
 * `intoto model sign` and `intoto model verify`: OpenSSF Model Signing (OMS) v1.0 detached
 * signatures over a model directory (or one file), interoperable with model_signing.
 */

interface SignCliOptions {
  key: string;
  output?: string;
  ignorePaths?: string[];
  ignoreGitPaths: boolean;
  allowSymlinks?: boolean;
  signingCert?: string;
  certificateChain?: string[];
  prompt?: boolean;
}

/**
 * `intoto model sign MODEL -k KEY [-o SIG] [--ignore-paths P...] [--no-ignore-git-paths]
 * [--allow-symlinks] [--signing-cert CERT [--certificate-chain PEM...]] [-p]`.
 * Exit 0 when the signature is written, 1 on any failure, 2 for bad usage.
 */
export async function modelSignMain(argv: string[]): Promise<number> {
  // Hashing threads boot (tens of ms) while the key is read and the model listed.
  prewarmHashWorkers();
  const program = newProgram('intoto model sign', 'Sign a model (a directory or one file) with an OpenSSF Model Signing v1.0 signature.')
    .argument('<model>', 'the model directory (or a single model file)')
    .requiredOption('-k, --key <path>', 'ECDSA P-256/P-384/P-521 private key: PEM from openssl, or intoto keygen -t ecdsa')
    .option('-o, --output <path>', 'where to write the signature (default MODEL/model.sig, or FILE.sig for one file)')
    .option('--ignore-paths <paths...>', 'model-relative paths to leave out (each with what lies below it)')
    .option('--no-ignore-git-paths', 'sign .git, .gitattributes, .github and .gitignore too')
    .option('--allow-symlinks', 'follow symbolic links that stay inside the model (default: refuse them)')
    .option('--signing-cert <path>', "certificate method: the signing key's certificate (PEM)")
    .option('--certificate-chain <paths...>', 'certificate method: the certificates above it (PEM), issuer first')
    .option('-p, --prompt', "prompt for the key's password");
  program.parse(argv, { from: 'user' });
  const opts = program.opts<SignCliOptions>();
  const out = createOutput('intoto model sign', verbosityOf(argv));
  const [model] = program.args as [string];
  if (opts.certificateChain !== undefined && opts.signingCert === undefined) usage('--certificate-chain goes with --signing-cert (the certificate method)');
  const password = opts.prompt ? await readPassword(`enter password for '${opts.key}': `) : undefined;
  let signer = loadModelSigner(opts.key, password === '' ? undefined : password);
  if (opts.signingCert !== undefined) signer = withCertificateFiles(signer, opts.signingCert, opts.certificateChain ?? []);
  const signed = await signModel({
    dir: model,
    key: signer,
    ignoreGitPaths: opts.ignoreGitPaths,
    allowSymlinks: opts.allowSymlinks ?? false,
    ...(opts.output === undefined ? {} : { output: opts.output }),
    ...(opts.ignorePaths === undefined ? {} : { ignorePaths: opts.ignorePaths }),
  });
  const method = opts.signingCert === undefined ? `key hint ${signer.toJSON().publicKeyHint.slice(0, 16)}` : `certificate ${opts.signingCert}`;
  out.info(`signed ${signed.resources.length} file(s) of ${model} (root sha256 ${signed.rootDigest}) with ${method} -> ${signed.output}`);
  return 0;
}

interface VerifyCliOptions extends TrustCliOptions {
  signature?: string;
  ignorePaths?: string[];
  ignoreGitPaths: boolean;
  json?: boolean;
}

/**
 * `intoto model verify MODEL (-k PUB | --public-key-pem PEM | --certificate-chain CA... | --identity ID --issuer URL
 * [--trusted-root FILE]) [--signature SIG] [--ignore-paths P...] [--no-ignore-git-paths]
 * [--json]`. Exit 0 when the model matches a valid signature, 1 on any failure (every
 * mismatching file listed, with both digests), 2 for bad usage.
 */
export async function modelVerifyMain(argv: string[]): Promise<number> {
  acceptJson();
  prewarmHashWorkers();
  const program = newProgram('intoto model verify', 'Verify a model against its OpenSSF Model Signing signature.')
    .argument('<model>', 'the model directory (or a single model file)');
  trustOptions(program)
    .option('--signature <path>', 'the signature (default MODEL/model.sig, or FILE.sig for one file)')
    .option('--ignore-paths <paths...>', 'model-relative paths the signature need not cover')
    .option('--no-ignore-git-paths', 'do not leave out .git, .gitattributes, .github and .gitignore')
    .option('--json', 'print the result as JSON on standard output');
  program.parse(argv, { from: 'user' });
  const opts = program.opts<VerifyCliOptions>();
  const out = createOutput('intoto model verify', verbosityOf(argv));
  const [model] = program.args as [string];
  const makeTrust = trustOf(opts);
  let result: ModelVerification;
  try {
    result = await verifyModel({
      dir: model,
      trust: makeTrust(),
      ignoreGitPaths: opts.ignoreGitPaths,
      ...(opts.signature === undefined ? {} : { signature: opts.signature }),
      ...(opts.ignorePaths === undefined ? {} : { ignorePaths: opts.ignorePaths }),
    });
  } catch (error) {
    // A key, certificate or trusted root that does not load is a failed verification (exit 1).
    const failure = asInTotoError(error);
    if (failure.code === 'E_USAGE') throw failure;
    result = failedResult(model, opts, failure);
  }
  for (const warning of result.warnings) out.warn(warning);
  if (opts.json) {
    writeJson(jsonReport(result));
    return result.verified ? 0 : 1;
  }
  if (result.verified) {
    out.info(`PASS: ${model}: ${result.filesChecked} file(s) match the signature ${result.signature}, signed by ${result.signer ?? 'unknown'}`);
    return 0;
  }
  const error = result.error as InTotoError;
  process.stdout.write(`FAIL ${error.code}: ${error.message}\n`);
  for (const mismatch of result.mismatches) process.stdout.write(`  ${describeMismatch(mismatch)}\n`);
  if (out.verbosity === 'verbose' && result.mismatches.length === 0) for (const line of error.details) process.stdout.write(`  ${line}\n`);
  return 1;
}

function failedResult(model: string, opts: VerifyCliOptions, error: InTotoError): ModelVerification {
  const method = opts.key !== undefined || opts.publicKeyPem !== undefined ? 'key' : opts.certificateChain !== undefined ? 'certificate' : 'sigstore';
  return { verified: false, model, signature: opts.signature ?? '', method, signer: undefined, manifest: undefined, filesChecked: 0, mismatches: [], warnings: [], error };
}

/** The --json report: stable field names, digests in full. */
export function jsonReport(result: ModelVerification): Record<string, unknown> {
  const m = result.manifest;
  return {
    verified: result.verified,
    model: result.model,
    signature: result.signature,
    method: result.method,
    signer: result.signer ?? null,
    statement:
      m === undefined
        ? null
        : {
            format: m.format,
            modelName: m.modelName,
            rootDigest: m.rootDigest ?? null,
            serialization: {
              method: m.serialization.method,
              hashType: m.serialization.hashType,
              allowSymlinks: m.serialization.allowSymlinks,
              ignorePaths: m.serialization.ignorePaths ?? null,
              shardSize: m.serialization.shardSize ?? null,
            },
            resources: m.resources.length,
          },
    filesChecked: result.filesChecked,
    mismatches: result.mismatches,
    warnings: result.warnings,
    error: result.error === undefined ? null : { code: result.error.code, message: result.error.message },
  };
}
