import type { PickleFindingKind } from './pickle-types.js';
import type { GlobalUse } from './policy.js';

/** The public shapes of a model scan (re-exported by model-scan.ts). */

/** What a file (or a member inside one) was recognised as, by its content. */
export type ModelFormat =
  | 'pickle'
  | 'joblib'
  | 'joblib-zlib'
  | 'joblib-gzip'
  | 'joblib-bz2'
  | 'joblib-lzma'
  | 'joblib-xz'
  | 'pytorch-zip'
  | 'torchscript'
  | 'pytorch-legacy'
  | 'numpy-npy'
  | 'numpy-npz'
  | 'safetensors'
  | 'onnx'
  | 'zip'
  | 'json'
  | 'text'
  | 'png'
  | 'jpeg'
  | 'sentencepiece'
  | 'onnx-external-data'
  | 'empty'
  | 'unknown';

/** The error code a finding leads to; the file's code is the most severe of its findings'. */
export type ModelFindingCode = 'E_MODEL_UNSAFE' | 'E_MODEL_MALFORMED' | 'E_MODEL_FORMAT' | 'E_LIMIT' | 'E_IO';

/** Kinds beyond the pickle scanner's. */
export type ModelFindingKind =
  | PickleFindingKind
  | 'format' // not a recognised format, or an unsupported variant
  | 'zip' // a zip container whose structure disagrees with itself or breaks a rule
  | 'header' // a header (npy, safetensors, ONNX) that is invalid or inconsistent
  | 'external-data' // ONNX external data outside the model's directory
  | 'mismatch' // the content is not what the file claims (a pickle behind a .safetensors name)
  | 'unreadable'; // a path that does not exist or cannot be read (the others are still scanned)

/** One reason a file is not safe to load, or cannot be read as what it is. */
export interface ModelFinding {
  /** The file scanned, as given (a path under the directory scanned). */
  readonly file: string;
  /** The member inside it (`archive/data.pkl`), or '' for the file itself. */
  readonly member: string;
  /** Byte offset in the member (or file), where it applies. */
  readonly offset?: number;
  /** The pickle opcode, where it applies. */
  readonly opcode?: string;
  readonly kind: ModelFindingKind;
  readonly code: ModelFindingCode;
  readonly reason: string;
  /** The global concerned, `module.name`. */
  readonly global?: string;
  /** A never-allowed name is concerned. */
  readonly never?: boolean;
}

/** One global a file imports, with its verdict. */
export interface GlobalReport {
  /** `module.name` (after Python 2 names were mapped). */
  readonly name: string;
  /** The member whose pickle imports it. */
  readonly member: string;
  readonly verdict: 'allowed' | 'not-allowed' | 'never-allowed';
  /** The uses the policy allows it (empty when not allowed). */
  readonly allowedUses: readonly GlobalUse[];
}

/** A member of a container (zip entry, joblib's pickle, torch's pickles and storages). */
export interface MemberReport {
  readonly name: string;
  readonly format: ModelFormat | 'storage' | 'array-data' | 'torchscript-code' | 'directory';
  readonly size: number;
}

/** The scan of one file. */
export interface FileScan {
  readonly file: string;
  readonly format: ModelFormat;
  readonly size: number;
  readonly members: readonly MemberReport[];
  readonly globals: readonly GlobalReport[];
  readonly findings: readonly ModelFinding[];
  /** Undefined when the file is safe to load under the policy. */
  readonly code: ModelFindingCode | undefined;
  /** Extra facts for the verdict line (the dtype allow-list, a torchscript note, ...). */
  readonly notes: readonly string[];
  /** For an ONNX model: the external data files it reads (resolved paths). */
  readonly externalData: readonly string[];
}
