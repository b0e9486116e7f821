import { FormatError } from '../errors.js';
import { getOwn, isJsonObject, nullObject, type JsonObject, type JsonValue } from '../canonical/json.js';
import { ArtifactTable } from './artifact-table.js';
import type { ArtifactMap, HashDict } from './artifacts.js';
import { digestProblem, makeDigests, MAX_ALGORITHMS } from './digests.js';
import { artifactNameFault, assertNoCaseFoldCollision } from './names.js';
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
 * @throws FormatError E_SCHEMA, E_ARTIFACT_NAME, E_ARTIFACT_ALIAS
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

/**
 * Reads a materials or products object: each name must pass {@link artifactNameFault}, each
 * value be a digest dict as HASH_DICT in schemas.ts describes it (1 to 16 entries, each passing
 * {@link digestProblem}), and no two names be equal under case folding. Hand-written rather
 * than ajv: this runs once per artifact.
 * @throws FormatError E_ARTIFACT_NAME, E_ARTIFACT_ALIAS, E_SCHEMA
 */
function artifactsFromJson(object: JsonObject, where: string, path: string): ArtifactMap {
  const names = Object.keys(object);
  const dicts: HashDict[] = [];
  for (const name of names) {
    const fault = artifactNameFault(name);
    if (fault !== undefined) {
      throw new FormatError(fault.code, `${where}: artifact name ${JSON.stringify(name)} ${fault.problem}`, {
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
      const hex = digests[algorithm];
      const digestIssue = digestProblem(algorithm, hex);
      if (digestIssue !== undefined) throw badDigest(where, path, name, digestIssue, algorithm);
      if (count === 1) {
        firstAlgorithm = algorithm;
        firstHex = hex as string;
      } else {
        (algorithms ??= []).push(algorithm);
        (hexes ??= []).push(hex as string);
      }
    }
    if (count === 0) throw badDigest(where, path, name, `must hold 1 to ${MAX_ALGORITHMS} digests`);
    dicts.push(makeDigests(firstAlgorithm, firstHex, algorithms, hexes));
  }
  assertNoCaseFoldCollision(names, where);
  return ArtifactTable.ofDicts(names, dicts);
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
