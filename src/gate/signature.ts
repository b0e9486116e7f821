import { GateError, InTotoError, ModelError } from '../errors.js';
import { describeMismatch, verifyModel, type ModelTrust, type ModelVerification } from '../oms/verify.js';

/**
 * The gate's signature check: the OpenSSF Model Signing verifier of src/oms (key, certificate
 * chain and Sigstore methods), over the files exactly as they were downloaded. Each blob was
 * hashed while it streamed and matched its layer digest, so the verifier is handed those
 * digests instead of reading the files again (`digests`: under the `files` serialization nothing
 * is read twice; a shard signature hashes the downloaded files). The set must be exactly the
 * signed one: a file the registry serves that the signature does not list is refused, even one
 * the signature's ignore paths would leave out of a directory.
 */

export interface SignatureInput {
  /** Who must have signed (what `-k`, `--certificate-chain` or `--identity/--issuer` said). */
  readonly trust: ModelTrust;
  /** The attached OMS bundles, written into the work directory: their names (for messages) and paths. */
  readonly bundles: readonly { readonly name: string; readonly path: string }[];
  /** The downloaded files: path in the model → `sha256:<hex>`, each checked while it streamed. */
  readonly digests: ReadonlyMap<string, string>;
  /** The directory holding them (read only for a shard signature). */
  readonly modelDir: string;
}

export interface SignatureResult {
  readonly method: ModelTrust['method'];
  /** Who signed, as the verifier established it: the key hint, the certificate's subject, or the Sigstore identity and issuer. */
  readonly signer: string;
  /** The attached bundle that verified. */
  readonly bundle: string;
  readonly warnings: readonly string[];
}

/**
 * Passes when one of the attached bundles is a valid signature by the required signer over
 * exactly the downloaded files.
 * @throws GateError E_SIGNATURE_MISSING (no bundle attached)
 * @throws ModelError E_MODEL_MISMATCH (a valid signature over other files: each difference in
 *   the details), E_MODEL_SIGNATURE, E_MODEL_BUNDLE, E_MODEL_STATEMENT, E_MODEL_UNSUPPORTED
 *   (no bundle verifies: the first one's reason, and how many others failed)
 */
export async function checkModelSignature(input: SignatureInput): Promise<SignatureResult> {
  if (input.bundles.length === 0) throw new GateError('E_SIGNATURE_MISSING', 'no OpenSSF Model Signing signature is attached to this model');
  const failed: { name: string; result: ModelVerification }[] = [];
  for (const bundle of input.bundles) {
    const result = await verifyModel({ dir: input.modelDir, signature: bundle.path, trust: input.trust, digests: input.digests });
    if (result.verified) return { method: result.method, signer: result.signer ?? 'unknown', bundle: bundle.name, warnings: result.warnings };
    failed.push({ name: bundle.name, result });
  }
  // A valid signature over other files says more than "no signature verifies": report it.
  const mismatch = failed.find((f) => f.result.error?.code === 'E_MODEL_MISMATCH');
  if (mismatch !== undefined) {
    const { mismatches } = mismatch.result;
    const shown = mismatches.slice(0, 3).map(describeMismatch).join('; ');
    throw new ModelError('E_MODEL_MISMATCH', `attached ${mismatch.name}, signed by ${mismatch.result.signer ?? 'the required signer'}, covers other files than the registry serves: ${shown}${mismatches.length > 3 ? `; and ${mismatches.length - 3} more` : ''}`, {
      details: mismatches.map(describeMismatch),
      context: { file: mismatch.name },
    });
  }
  const first = failed[0]!;
  const error = first.result.error as InTotoError;
  const others = failed.length - 1;
  const message = others === 0 ? error.message : `${error.message} (and ${others} more attached signature${others === 1 ? '' : 's'} failed)`;
  throw new InTotoError(error.code, message, {
    cause: error,
    details: failed.map((f) => `${f.name}: ${f.result.error?.message ?? 'not verified'}`),
    context: error.context,
  });
}
