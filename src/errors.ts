/**
 * One error base for the whole project. Every failure that leaves the library is an
 * {@link InTotoError} with a stable `code`; tests assert codes, never message text, and the
 * CLI maps codes to exit statuses ({@link exitStatusFor}).
 *
 * Codes are grouped by domain; each domain has a subclass whose `code` type is narrowed to
 * that domain's union, so a function's signature says which failures it can produce.
 */

/** Bad command-line usage (exit status 2). */
export type UsageCode = 'E_USAGE';

/** Reading files and bounded work. */
export type IoCode =
  | 'E_IO' // a file or directory cannot be read or written
  | 'E_NOT_REGULAR_FILE' // a FIFO, device, socket or directory where a file was expected
  | 'E_FILE_TOO_LARGE' // a file exceeds its size cap (checked before reading)
  | 'E_LIMIT'; // a count, depth or length cap was exceeded

/** Parsing: JSON, canonical JSON, YAML, base64. */
export type ParseCode =
  | 'E_JSON_SYNTAX'
  | 'E_JSON_DUPLICATE_KEY'
  | 'E_JSON_DEPTH'
  | 'E_JSON_NUMBER' // fraction, exponent or outside the safe-integer range
  | 'E_JSON_UTF8' // invalid UTF-8, a BOM, or a lone surrogate
  | 'E_CANONICAL' // a value canonical JSON cannot encode, or bytes that are not canonical
  | 'E_BASE64';

/** Metadata shape: schemas, rules, names. */
export type FormatCode =
  | 'E_SCHEMA' // a JSON Schema violation; the message names the JSON path
  | 'E_METADATA_TYPE' // a link where a layout was expected, or the reverse, or an unknown _type
  | 'E_RULE_SYNTAX' // an artifact rule that does not parse
  | 'E_RULE_UNKNOWN_STEP' // MATCH ... FROM a step the layout does not define (or, in a step's rules, from an inspection)
  | 'E_DUPLICATE_NAME' // two steps or inspections with one name
  | 'E_STEP_NAME' // a step, inspection or sublayout name that is not one safe path segment
  | 'E_EXPIRES_FORMAT' // expires not in YYYY-MM-DDTHH:MM:SSZ
  | 'E_ARTIFACT_NAME' // an artifact name with .., a leading / or ./, control characters, or not NFC
  | 'E_PARAM' // a parameter substitution that is missing or malformed
  | 'E_ARTIFACT_ALIAS'; // artifact names that alias each other or fool a reader: equal under case folding in one list, a backslash, an invisible or bidi character

/** Keys and signatures. */
export type CryptoCode =
  | 'E_KEY_FORMAT' // a key file or key object we cannot read
  | 'E_KEY_UNSUPPORTED' // a keytype/scheme pair we do not implement, or that do not fit together
  | 'E_KEY_WEAK' // a small-order ed25519 point, or an RSA key under 2048 bits
  | 'E_KEYID_MISMATCH' // a declared keyid that is not the hash of its key
  | 'E_KEY_PRIVATE_EXPECTED' // a public key where a signing key is needed
  | 'E_KEY_PUBLIC_EXPECTED' // private material where only a public key belongs
  | 'E_KEY_PASSWORD' // an encrypted key without, or with a wrong, password
  | 'E_ENVELOPE' // a Metablock or DSSE envelope that is malformed
  | 'E_SIGNATURE'; // no valid signature by a key that had to sign

/** Verification verdicts. */
export type VerifyCode =
  | 'E_LAYOUT_SIG'
  | 'E_LAYOUT_EXPIRED'
  | 'E_LAYOUT_KEYS' // the layout's own key table is inconsistent (same key twice, unknown keyid, ...)
  | 'E_LINK_MISSING'
  | 'E_LINK_NAME_MISMATCH'
  | 'E_THRESHOLD'
  | 'E_LINKS_DISAGREE'
  | 'E_SUBLAYOUT_NAME'
  | 'E_SUBLAYOUT_EMPTY' // a sublayout with no steps stands for a step's link: it vouches for nothing
  | 'E_RULE_DISALLOW'
  | 'E_RULE_REQUIRE'
  | 'E_INSPECTION_FAILED'
  | 'E_INSPECTION_REFUSED';

/** Running steps. */
export type RunCode =
  | 'E_COMMAND_FAILED' // the wrapped command exited non-zero (the link is still written)
  | 'E_COMMAND_NOT_FOUND'
  | 'E_TIMEOUT'
  | 'E_SANDBOX_UNAVAILABLE'
  | 'E_PATH_OUTSIDE_BASE'
  | 'E_LSTRIP' // overlapping --lstrip-paths prefixes, or a prefix that makes two names collide
  | 'E_UNFINISHED_LINK' // intoto-record stop without a matching start
  | 'E_ARTIFACTS_DIFFER' // intoto-match-products found differences
  | 'E_STEP_ENVIRONMENT' // a variable, device or network a step asks for that cannot be given here
  | 'E_INTERRUPTED'; // stopped by SIGINT, SIGTERM or SIGHUP: the one outcome with exit status 130

/** Pipelines and their YAML layouts. */
export type PipelineCode = 'E_PIPELINE_CYCLE' | 'E_STEP_FAILED' | 'E_LAYOUT_SOURCE';

/**
 * ML artifacts. Before scan-model, the pickle scanner had E_PICKLE_UNSAFE and
 * E_PICKLE_MALFORMED; they are kept for code that matches on them but no longer thrown: every
 * scan verdict (pickle streams included) is an E_MODEL_* code, E_PICKLE_UNSAFE having become
 * E_MODEL_UNSAFE and E_PICKLE_MALFORMED E_MODEL_MALFORMED.
 */
export type PickleCode = 'E_PICKLE_UNSAFE' | 'E_PICKLE_MALFORMED';

/** Running a pipeline through a workload manager (Slurm). */
export type EngineCode =
  | 'E_SCHEDULER' // sbatch, squeue or scancel failed, refused a job, or lost track of one
  | 'E_JOB_FAILED' // a job ended other than completed; the message names its step, node and reason
  | 'E_STORE' // a run's objects in the store are missing, malformed, or disagree with the signed metadata (a manifest listing other digests than its link)
  | 'E_RUN_MISMATCH'; // signed metadata of another run: a run record or link whose run id is not the one asked for

/**
 * Model files: scanning them (intoto scan-model; a cap that stopped a scan is E_LIMIT) and
 * OpenSSF Model Signing (OMS) signatures over model directories.
 */
export type ModelCode =
  | 'E_MODEL_UNSAFE' // loading it would import or call something the policy does not allow
  | 'E_MODEL_FORMAT' // not a format we recognise, or one we do not support (lz4, a tar, ...)
  | 'E_MODEL_MALFORMED' // a recognised format that is truncated, inconsistent or invalid
  | 'E_MODEL_BUNDLE' // a signature file that is not a well-formed Sigstore bundle of the kind the flags ask for
  | 'E_MODEL_SIGNATURE' // no valid signature by the given key, chain or identity (hint, chain, time, identity)
  | 'E_MODEL_STATEMENT' // a signed payload that is not an OMS Statement (type, predicate, subjects, resources, root digest)
  | 'E_MODEL_UNSUPPORTED' // a hash type, serialization method or key the spec allows and we do not implement
  | 'E_MODEL_EMPTY' // no file to sign after the ignore paths
  | 'E_MODEL_MISMATCH'; // files missing, extra, changed or not regular compared with the signed manifest

/** Datasets versioned with DVC. */
export type DataCode =
  | 'E_DVC_FORMAT' // a .dvc or dvc.lock file we cannot read as DVC metadata
  | 'E_DATA_MISMATCH'; // a file or directory whose md5 (or size, count) differs from the recorded one

/** Chains of custody over links. */
export type TraceCode =
  | 'E_TRACE_NOT_FOUND' // no link records the artifact
  | 'E_TRACE_CHANGED'; // the artifact's digest changes along the chain or on disk

/** OCI registries (src/oci/): what a registry answered, and what its bytes turned out to be. */
export type RegistryCode =
  | 'E_REGISTRY' // an error answer (the message names the HTTP status and the registry's error code) or no answer
  | 'E_REGISTRY_AUTH' // credentials missing or refused (401/403), or a token that could not be obtained
  | 'E_NOT_FOUND' // no such tag, manifest, blob or repository
  | 'E_INSECURE' // credentials would go over plain HTTP (a token realm) to a host that is not loopback, without --insecure
  | 'E_REDIRECT' // a redirect we do not follow (another host for a manifest, a downgrade to HTTP, a loop)
  | 'E_DIGEST_MISMATCH' // bytes whose digest is not the one they were asked for by
  | 'E_BLOB_SIZE' // a body shorter or longer than its descriptor's size
  | 'E_MANIFEST' // a manifest, index or config that is malformed or not what we push (not ModelPack)
  | 'E_TAG_EXISTS'; // a push that would move a version tag to another digest

/** The deployment gate (src/gate/): what a pull refuses. */
export type GateCode =
  | 'E_EXPECTED_DIGEST' // the reference resolved to another digest than --expect-digest
  | 'E_MODEL_FILES' // the manifest's files differ from the signed files, or a file path is unsafe
  | 'E_SIGNATURE_MISSING' // no signature is attached to the model
  | 'E_DESTINATION'; // the output directory exists and is not empty

/** A bug or an unexpected condition; never a verdict. */
export type InternalCode = 'E_INTERNAL';

export type ErrorCode =
  | UsageCode
  | IoCode
  | ParseCode
  | FormatCode
  | CryptoCode
  | VerifyCode
  | RunCode
  | PipelineCode
  | PickleCode
  | EngineCode
  | ModelCode
  | DataCode
  | TraceCode
  | RegistryCode
  | GateCode
  | InternalCode;

/** The names a message is about; also carried into the machine-readable report. */
export interface ErrorContext {
  readonly file?: string;
  readonly step?: string;
  readonly inspection?: string;
  readonly rule?: string;
  readonly artifact?: string;
  readonly keyid?: string;
  readonly path?: string; // a JSON path such as /signed/steps/0/pubkeys
  readonly node?: string; // the machine (a Slurm node) a step ran on
}

export interface ErrorOptions {
  readonly cause?: unknown;
  /** Further lines shown with `-v` (a rule trace, every schema violation, ...). */
  readonly details?: readonly string[];
  readonly context?: ErrorContext;
}

/** The base of every error this project throws on purpose. */
export class InTotoError<C extends ErrorCode = ErrorCode> extends Error {
  readonly code: C;
  readonly details: readonly string[];
  readonly context: ErrorContext;

  constructor(code: C, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details ?? [];
    this.context = options.context ?? {};
  }

  override get name(): string {
    return this.constructor.name;
  }

  /** A copy whose message is prefixed and whose context gains `extra` (used to add a file name). */
  withContext(prefix: string, extra: ErrorContext): InTotoError<C> {
    const copy = new (this.constructor as new (c: C, m: string, o: ErrorOptions) => InTotoError<C>)(
      this.code,
      prefix ? `${prefix}: ${this.message}` : this.message,
      { cause: this.cause, details: this.details, context: { ...this.context, ...extra } },
    );
    return copy;
  }
}

export class UsageError extends InTotoError<UsageCode> {}
export class IoError extends InTotoError<IoCode> {}
export class ParseError extends InTotoError<ParseCode> {}
export class FormatError extends InTotoError<FormatCode> {}
export class CryptoError extends InTotoError<CryptoCode> {}
export class VerificationError extends InTotoError<VerifyCode> {}
export class RunError extends InTotoError<RunCode> {}
export class PipelineError extends InTotoError<PipelineCode> {}
export class PickleError extends InTotoError<PickleCode> {}
export class EngineError extends InTotoError<EngineCode> {}
export class ModelError extends InTotoError<ModelCode | 'E_LIMIT'> {}
export class DataError extends InTotoError<DataCode> {}
export class TraceError extends InTotoError<TraceCode> {}
export class InternalError extends InTotoError<InternalCode> {}
export class GateError extends InTotoError<GateCode> {}

/** A registry failure; `status` and `registryCode` are the HTTP status and the registry's error code, when there was an answer. */
export class RegistryError extends InTotoError<RegistryCode> {
  readonly status: number | undefined;
  readonly registryCode: string | undefined;

  constructor(code: RegistryCode, message: string, options: ErrorOptions & { readonly status?: number; readonly registryCode?: string } = {}) {
    super(code, message, options);
    this.status = options.status;
    this.registryCode = options.registryCode;
  }

  override withContext(prefix: string, extra: ErrorContext): RegistryError {
    return new RegistryError(this.code, prefix ? `${prefix}: ${this.message}` : this.message, {
      cause: this.cause,
      details: this.details,
      context: { ...this.context, ...extra },
      ...(this.status === undefined ? {} : { status: this.status }),
      ...(this.registryCode === undefined ? {} : { registryCode: this.registryCode }),
    });
  }
}

/** Exit status for a code: 2 for bad usage, 1 for every other failure (as `in-toto-verify`). */
export function exitStatusFor(code: ErrorCode): 1 | 2 {
  return code === 'E_USAGE' ? 2 : 1;
}

/**
 * Turns anything thrown into an {@link InTotoError}: ours pass through, Node's file errors
 * become `E_IO`, everything else `E_INTERNAL` (a bug to report, never a verdict that passes).
 */
export function asInTotoError(error: unknown): InTotoError {
  if (error instanceof InTotoError) return error;
  if (isNodeError(error) && typeof error.code === 'string' && /^E[A-Z]+$/.test(error.code)) {
    return new IoError('E_IO', error.message, { cause: error });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new InternalError('E_INTERNAL', `internal error: ${message}`, { cause: error });
}

/** True for errors raised by Node's fs and child_process modules (they carry a string `code`). */
export function isNodeError(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && 'code' in error;
}

/** A one-line description of an I/O failure on `file`, with the errno name when there is one. */
export function ioError(file: string, error: unknown, doing = 'cannot read'): IoError {
  const errno = isNodeError(error) && typeof error.code === 'string' ? ` (${error.code})` : '';
  // Reading a file that is not there is "no such file"; writing where a directory is missing
  // (or takes no new files, as /proc) says what was being done.
  const missing = isNodeError(error) && error.code === 'ENOENT';
  const reason = missing ? (/^cannot (write|create)/.test(doing) ? `${doing}: its directory does not exist or takes no new files` : 'no such file') : doing;
  return new IoError('E_IO', `${file}: ${reason}${errno}`, { cause: error, context: { file } });
}
