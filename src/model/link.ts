import { FormatError } from '../errors.js';
import { getOwn, isJsonObject, nullObject, type JsonObject, type JsonValue } from '../canonical/json.js';
import type { ArtifactMap, HashDict } from './artifacts.js';
import { artifactNameProblem } from './names.js';
import { checkSchema, LINK_SCHEMA } from './schemas.js';

/**
 * Link metadata: evidence that a step ran, signed by the functionary who ran it
 * (in-toto v0.9 §4.3; fields as in-toto 1.3.1 writes them).
 */
export interface Link {
  readonly type: 'link';
  readonly name: string;
  readonly command: readonly string[];
  readonly materials: ArtifactMap;
  readonly products: ArtifactMap;
  /** Opaque, but `return-value`, `stdout` and `stderr` are typed when present. */
  readonly byproducts: JsonObject;
  readonly environment: JsonObject;
}

/** The exit code recorded in a link, when there is one. */
export function returnValueOf(link: Link): number | undefined {
  const value = getOwn(link.byproducts, 'return-value');
  return typeof value === 'number' ? value : undefined;
}

/**
 * Reads a link's `signed` object: schema (all problems, with JSON paths), artifact names and
 * digests.
 * @throws FormatError E_SCHEMA, E_ARTIFACT_NAME
 */
export function linkFromJson(value: JsonValue, where: string): Link {
  checkSchema(LINK_SCHEMA, value, where);
  const object = value as JsonObject;
  return Object.freeze({
    type: 'link',
    name: object['name'] as string,
    command: Object.freeze([...(object['command'] as readonly string[])]),
    materials: artifactsFromJson(object['materials'] as JsonObject, `${where}: materials`, '/materials'),
    products: artifactsFromJson(object['products'] as JsonObject, `${where}: products`, '/products'),
    byproducts: object['byproducts'] as JsonObject,
    environment: object['environment'] as JsonObject,
  });
}

const ALGORITHM = /^[a-z0-9][a-z0-9_-]{0,31}$/;

/** Lower-case hexadecimal only (a loop: faster than a regular expression on 64 characters). */
function isLowerHex(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
  }
  return true;
}

/** Hex digits per known algorithm, as in the schema's HASH_DICT. */
const KNOWN_LENGTHS: ReadonlyMap<string, number> = new Map([
  ['md5', 32],
  ['sha1', 40],
  ['sha224', 56],
  ['sha256', 64],
  ['sha384', 96],
  ['sha512', 128],
]);
const MAX_ALGORITHMS = 16;

/**
 * Reads a materials or products object: each name must pass {@link artifactNameProblem}, each
 * value be a digest dict as HASH_DICT in schemas.ts describes it (1 to 16 lower-case
 * algorithm names; lower-case hex of the exact length for known algorithms, of 8 to 128
 * whole bytes for others). Hand-written rather than ajv: this runs once per artifact.
 * @throws FormatError E_ARTIFACT_NAME, E_SCHEMA
 */
function artifactsFromJson(object: JsonObject, where: string, path: string): ArtifactMap {
  const artifacts = new Map<string, HashDict>();
  for (const name of Object.keys(object)) {
    const problem = artifactNameProblem(name);
    if (problem !== undefined) {
      throw new FormatError('E_ARTIFACT_NAME', `${where}: artifact name ${JSON.stringify(name)} ${problem}`, {
        context: { artifact: name },
      });
    }
    const digests = object[name];
    if (!isJsonObject(digests)) throw badDigest(where, path, name, 'must be an object of digests');
    // for-in, not Object.keys: no array per artifact, and parsed objects inherit nothing (an
    // inherited enumerable key could only add a digest to check, never hide one).
    let count = 0;
    let firstAlgorithm = '';
    let firstHex = '';
    let algorithms: string[] | undefined;
    let hexes: string[] | undefined;
    for (const algorithm in digests) {
      if (++count > MAX_ALGORITHMS) throw badDigest(where, path, name, `must hold 1 to ${MAX_ALGORITHMS} digests`);
      // A known algorithm needs no name check (the common case: one lookup, no regex).
      const length = KNOWN_LENGTHS.get(algorithm);
      if (length === undefined && !ALGORITHM.test(algorithm)) throw badDigest(where, path, name, 'must be a lower-case algorithm name of at most 32 characters', algorithm);
      const hex = digests[algorithm];
      if (typeof hex !== 'string' || !isLowerHex(hex)) throw badDigest(where, path, name, 'must be a lower-case hexadecimal string', algorithm);
      if (length !== undefined ? hex.length !== length : hex.length % 2 !== 0 || hex.length < 16 || hex.length > 256) {
        throw badDigest(where, path, name, length !== undefined ? `must have ${length} hex digits` : 'must have 16 to 256 hex digits, whole bytes', algorithm);
      }
      if (count === 1) {
        firstAlgorithm = algorithm;
        firstHex = hex;
      } else {
        (algorithms ??= []).push(algorithm);
        (hexes ??= []).push(hex);
      }
    }
    if (count === 0) throw badDigest(where, path, name, `must hold 1 to ${MAX_ALGORITHMS} digests`);
    const more = algorithms === undefined || hexes === undefined ? undefined : { algorithms, hexes };
    artifacts.set(name, new Digests(firstAlgorithm, firstHex, more) as unknown as HashDict);
  }
  return artifacts;
}

/**
 * A digest dict as read from a link: its first entry in two fields (links almost always
 * record one digest), any others in two arrays. It behaves as a ReadonlyMap; a real Map per
 * artifact costs several times more to build, and links hold hundreds of thousands of them.
 */
class Digests {
  constructor(
    private readonly algorithm0: string,
    private readonly hex0: string,
    /** Entries after the first, or undefined. */
    private readonly more: { readonly algorithms: readonly string[]; readonly hexes: readonly string[] } | undefined,
  ) {}

  get size(): number {
    return this.more === undefined ? 1 : 1 + this.more.algorithms.length;
  }

  get(algorithm: string): string | undefined {
    if (algorithm === this.algorithm0) return this.hex0;
    if (this.more === undefined) return undefined;
    const i = this.more.algorithms.indexOf(algorithm);
    return i < 0 ? undefined : this.more.hexes[i];
  }

  has(algorithm: string): boolean {
    return this.get(algorithm) !== undefined;
  }

  forEach(callback: (hex: string, algorithm: string, map: ReadonlyMap<string, string>) => void, thisArg?: unknown): void {
    for (const [algorithm, hex] of this.entries()) callback.call(thisArg, hex, algorithm, this as unknown as ReadonlyMap<string, string>);
  }

  *entries(): Generator<[string, string], undefined, unknown> {
    yield [this.algorithm0, this.hex0];
    const more = this.more;
    if (more !== undefined) for (let i = 0; i < more.algorithms.length; i++) yield [more.algorithms[i] as string, more.hexes[i] as string];
  }

  *keys(): Generator<string, undefined, unknown> {
    for (const [algorithm] of this.entries()) yield algorithm;
  }

  *values(): Generator<string, undefined, unknown> {
    for (const [, hex] of this.entries()) yield hex;
  }

  [Symbol.iterator](): Generator<[string, string], undefined, unknown> {
    return this.entries();
  }

  get [Symbol.toStringTag](): string {
    return 'Map';
  }
}

function badDigest(where: string, path: string, name: string, what: string, algorithm?: string): FormatError {
  const at = `${path}/${pointer(name)}${algorithm === undefined ? '' : `/${pointer(algorithm)}`}`;
  return new FormatError('E_SCHEMA', `${where}: ${at}: ${what}`, { context: { artifact: name, path: at } });
}

/** A JSON Pointer token (RFC 6901). */
function pointer(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

export interface NewLink {
  readonly name: string;
  readonly command: readonly string[];
  readonly materials: ArtifactMap;
  readonly products: ArtifactMap;
  readonly byproducts: JsonObject;
  readonly environment?: JsonObject;
}

/** Builds a frozen Link value (from the runner). */
export function makeLink(fields: NewLink): Link {
  return Object.freeze({
    type: 'link',
    name: fields.name,
    command: Object.freeze([...fields.command]),
    materials: fields.materials,
    products: fields.products,
    byproducts: fields.byproducts,
    environment: fields.environment ?? {},
  });
}

/** The link's `signed` object as in-toto 1.3.1 writes it. */
export function linkToJson(link: Link): JsonObject {
  return {
    _type: 'link',
    byproducts: link.byproducts,
    command: [...link.command],
    environment: link.environment,
    materials: artifactsToJson(link.materials),
    name: link.name,
    products: artifactsToJson(link.products),
  };
}

function artifactsToJson(artifacts: ArtifactMap): JsonObject {
  const object = nullObject<JsonValue>();
  for (const [name, digests] of artifacts) {
    const dict = nullObject<JsonValue>();
    for (const [algorithm, hex] of digests) dict[algorithm] = hex;
    object[name] = dict;
  }
  return object;
}

/** `<step>.<keyid[:8]>.link`, the name the reference and verifiers look for. */
export function linkFileName(step: string, keyid: string): string {
  return `${step}.${keyid.slice(0, 8)}.link`;
}

/** `.<step>.<keyid[:8]>.link-unfinished`, written by `record start`. */
export function unfinishedLinkFileName(step: string, keyid: string): string {
  return `.${step}.${keyid.slice(0, 8)}.link-unfinished`;
}
