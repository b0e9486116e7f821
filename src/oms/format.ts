/**
 * The OpenSSF Model Signing (OMS) v1.0 format: names and shapes shared by signing and
 * verification. An OMS signature is a Sigstore bundle (v0.3) holding a DSSE envelope whose
 * payload is an in-toto Statement v1 with the predicate below (spec §4 to §6).
 */

/** The Sigstore bundle media type we write; {@link BUNDLE_MEDIA_TYPES} are those we read. */
export const BUNDLE_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
/** Both spellings of bundle v0.3 (the legacy one is what sigstore-python wrote before 3.x). */
export const BUNDLE_MEDIA_TYPES: readonly string[] = [BUNDLE_MEDIA_TYPE, 'application/vnd.dev.sigstore.bundle+json;version=0.3'];

/** DSSE payload type of an in-toto Statement. */
export const PAYLOAD_TYPE = 'application/vnd.in-toto+json';
export const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
export const PREDICATE_TYPE = 'https://model_signing/signature/v1.0';
/** model_signing 0.2's predicate: one subject per file, no serialization (spec §5.1, deprecated). */
export const PREDICATE_TYPE_V02 = 'https://model_signing/Digests/v0.1';

/** The only file hash we implement; the registry's optional blake2b and blake3 are refused. */
export type HashType = 'sha256';
export const OPTIONAL_HASH_TYPES: readonly string[] = ['blake2b', 'blake3', 'blake2'];

/** Paths model_signing and the spec ignore by default, at the top of the model only (§6.2.1). */
export const DEFAULT_GIT_IGNORES: readonly string[] = ['.git', '.gitattributes', '.github', '.gitignore'];

/** The default name of the detached signature inside a model directory. */
export const DEFAULT_SIGNATURE_NAME = 'model.sig';

/** One resource descriptor: a file (`files`) or a byte range of one (`shards`). */
export interface Resource {
  readonly name: string;
  readonly algorithm: string;
  /** Lower-case hex. */
  readonly digest: string;
}

/** `predicate.serialization`: how the model was enumerated and hashed. */
export interface Serialization {
  readonly method: 'files' | 'shards';
  readonly hashType: HashType;
  readonly allowSymlinks: boolean;
  /** Paths relative to the model root, as recorded (absent before model_signing 1.1). */
  readonly ignorePaths: readonly string[] | undefined;
  /** Bytes per shard; only for `shards`. */
  readonly shardSize: number | undefined;
}

/** What a verified payload says about the model. */
export interface SignedManifest {
  /** `subject[0].name`: informational only (spec §6.5). */
  readonly modelName: string;
  /** `subject[0].digest.sha256` (v1.0), or undefined for the v0.2 payload, which has none. */
  readonly rootDigest: string | undefined;
  /** In payload order (never re-sorted: the root digest is over this order). */
  readonly resources: readonly Resource[];
  readonly serialization: Serialization;
  /** `v1.0`, or `v0.2` for model_signing 0.2's compatibility payload. */
  readonly format: 'v1.0' | 'v0.2';
}
