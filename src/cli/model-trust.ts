import type { Command } from 'commander';
import { readTrustedRoot } from '../oms/keyless.js';
import { loadModelPublicKey, modelPublicKeyFromPem, readPemCertificates } from '../oms/keys.js';
import type { ModelTrust } from '../oms/verify.js';
import { usage } from './common.js';

/**
 * Who must have signed a model, as `intoto model verify` and `intoto pull` take it: exactly one
 * of a public key, CA certificates, or a Sigstore identity and issuer (with an optional trusted
 * root). One definition, so the two commands cannot drift apart.
 */

export interface TrustCliOptions {
  key?: string;
  publicKeyPem?: string;
  certificateChain?: string[];
  identity?: string;
  issuer?: string;
  trustedRoot?: string;
}

/** Adds -k, --public-key-pem, --certificate-chain, --identity, --issuer and --trusted-root to `program`. */
export function trustOptions(program: Command): Command {
  return program
    .option('-k, --key <path>', 'the public key the model must be signed with (PEM, DER, or an intoto .pub file)')
    .option('--public-key-pem <pem>', "that public key itself, as PEM text (what a layout's model-verify inspection passes: the key the layout owner signed)")
    .option('--certificate-chain <paths...>', 'trusted CA certificates (PEM) the signing certificate must chain to')
    .option('--identity <id>', 'Sigstore: the signer identity (certificate SAN), matched exactly')
    .option('--issuer <url>', "Sigstore: the identity's OIDC issuer, matched exactly")
    .option('--trusted-root <path>', 'Sigstore: trusted_root.json to verify against offline (default: the public-good root pinned by @sigstore/tuf 4.0.2)');
}

const EXACTLY_ONE = 'give exactly one of -k PUBLIC_KEY, --public-key-pem PEM, --certificate-chain CA..., or --identity ID --issuer URL';

/**
 * Checks that exactly one kind of trust was given and returns how to load it (a key or
 * certificate that does not load is the caller's to report, when it calls the function).
 * @throws UsageError E_USAGE: none (with `none` as the message), several, or half of a pair
 */
export function trustOf(opts: TrustCliOptions, none = EXACTLY_ONE): () => ModelTrust {
  const methods = [opts.key !== undefined, opts.publicKeyPem !== undefined, opts.certificateChain !== undefined, opts.identity !== undefined || opts.issuer !== undefined].filter(Boolean).length;
  if (methods === 0) usage(none);
  if (methods !== 1) usage(EXACTLY_ONE);
  if (opts.trustedRoot !== undefined && opts.identity === undefined) usage('--trusted-root goes with --identity and --issuer (Sigstore signatures)');
  if (opts.key !== undefined) {
    const path = opts.key;
    return () => ({ method: 'key', key: loadModelPublicKey(path) });
  }
  if (opts.publicKeyPem !== undefined) {
    const pem = opts.publicKeyPem;
    return () => ({ method: 'key', key: modelPublicKeyFromPem(pem, '--public-key-pem') });
  }
  if (opts.certificateChain !== undefined) {
    const paths = opts.certificateChain;
    return () => ({ method: 'certificate', anchors: paths.flatMap(readPemCertificates) });
  }
  if (opts.identity === undefined || opts.issuer === undefined) usage('--identity and --issuer go together');
  const { identity, issuer, trustedRoot } = opts;
  return () => ({ method: 'sigstore', identity, issuer, ...(trustedRoot === undefined ? {} : { trustedRoot: readTrustedRoot(trustedRoot) }) });
}
