import { CryptoError, FormatError, InTotoError, InternalError, IoError, ParseError, VerificationError, type ErrorCode, type ErrorContext } from '../errors.js';
import { nullObject, type JsonObject, type JsonValue } from '../canonical/json.js';
import type { ArtifactMap, HashDict } from '../model/artifacts.js';
import { makeLink, type Link } from '../model/link.js';
import type { LoadedFile } from './link-load.js';

/**
 * How a LoadedFile crosses from a worker thread: structured clone copies Maps of 100,000
 * entries slowly and gives objects a prototype back, so artifacts travel as flat string arrays
 * and JSON as canonical-free plain text (re-read with a null prototype), and errors as their
 * class, code, message, context and details (rebuilt as the same typed error).
 */

interface PackedArtifacts {
  readonly names: string[];
  /** Per artifact, how many (algorithm, digest) pairs follow in `pairs`. */
  readonly counts: Uint8Array;
  readonly pairs: string[];
}

export type PackedFile =
  | { readonly kind: 'missing' | 'unsigned' }
  | { readonly kind: 'layout' | 'other'; readonly signers: readonly string[]; readonly payload: string }
  | {
      readonly kind: 'link';
      readonly signers: readonly string[];
      readonly name: string;
      readonly command: readonly string[];
      readonly materials: PackedArtifacts;
      readonly products: PackedArtifacts;
      readonly byproducts: string;
      readonly environment: string;
    }
  | { readonly kind: 'error'; readonly error: PackedError };

interface PackedError {
  readonly type: string;
  readonly code: ErrorCode;
  readonly message: string;
  readonly context: ErrorContext;
  readonly details: readonly string[];
}

/** Never throws. */
export function packFile(loaded: LoadedFile): PackedFile {
  switch (loaded.kind) {
    case 'missing':
    case 'unsigned':
      return { kind: loaded.kind };
    case 'layout':
    case 'other':
      return { kind: loaded.kind, signers: loaded.signers, payload: JSON.stringify(loaded.payload) };
    case 'link': {
      const { link } = loaded;
      return {
        kind: 'link',
        signers: loaded.signers,
        name: link.name,
        command: [...link.command],
        materials: packArtifacts(link.materials),
        products: packArtifacts(link.products),
        byproducts: JSON.stringify(link.byproducts),
        environment: JSON.stringify(link.environment),
      };
    }
  }
}

/** Never throws. */
export function packError(error: unknown): PackedFile {
  const e = error instanceof InTotoError ? error : new InternalError('E_INTERNAL', `internal error: ${String(error)}`);
  return { kind: 'error', error: { type: e.constructor.name, code: e.code, message: e.message, context: { ...e.context }, details: [...e.details] } };
}

/** The LoadedFile again, or the typed error it carried. */
export function unpackFile(packed: PackedFile): LoadedFile | InTotoError {
  switch (packed.kind) {
    case 'missing':
    case 'unsigned':
      return { kind: packed.kind };
    case 'layout':
    case 'other':
      return { kind: packed.kind, signers: packed.signers, payload: withNullPrototypes(JSON.parse(packed.payload) as JsonValue) };
    case 'link':
      return {
        kind: 'link',
        signers: packed.signers,
        link: makeLink({
          name: packed.name,
          command: packed.command,
          materials: unpackArtifacts(packed.materials),
          products: unpackArtifacts(packed.products),
          byproducts: withNullPrototypes(JSON.parse(packed.byproducts) as JsonValue) as JsonObject,
          environment: withNullPrototypes(JSON.parse(packed.environment) as JsonValue) as JsonObject,
        }),
      };
    case 'error':
      return unpackError(packed.error);
  }
}

const ERROR_CLASSES = new Map<string, new (code: never, message: string, options: object) => InTotoError>([
  ['IoError', IoError],
  ['ParseError', ParseError],
  ['FormatError', FormatError],
  ['CryptoError', CryptoError],
  ['VerificationError', VerificationError],
]);

function unpackError(e: PackedError): InTotoError {
  const Class = ERROR_CLASSES.get(e.type);
  const options = { context: e.context, details: e.details };
  return Class === undefined ? new InternalError('E_INTERNAL', e.message, options) : new Class(e.code as never, e.message, options);
}

function packArtifacts(artifacts: ArtifactMap): PackedArtifacts {
  const names: string[] = [];
  const counts = new Uint8Array(artifacts.size);
  const pairs: string[] = [];
  let i = 0;
  artifacts.forEach((digests, name) => {
    names.push(name);
    counts[i++] = digests.size;
    digests.forEach((hex, algorithm) => pairs.push(algorithm, hex));
  });
  return { names, counts, pairs };
}

function unpackArtifacts(packed: PackedArtifacts): ArtifactMap {
  const artifacts = new Map<string, HashDict>();
  let p = 0;
  for (let i = 0; i < packed.names.length; i++) {
    const dict = new Map<string, string>();
    for (let n = packed.counts[i] ?? 0; n > 0; n--, p += 2) dict.set(packed.pairs[p] ?? '', packed.pairs[p + 1] ?? '');
    artifacts.set(packed.names[i] ?? '', dict);
  }
  return artifacts;
}

/** A copy of a JSON value whose objects have a null prototype, as our parser makes them. */
function withNullPrototypes(value: JsonValue): JsonValue {
  if (Array.isArray(value)) return value.map(withNullPrototypes);
  if (value === null || typeof value !== 'object') return value;
  const copy = nullObject<JsonValue>();
  for (const key of Object.keys(value)) copy[key] = withNullPrototypes((value as JsonObject)[key] as JsonValue);
  return copy;
}
