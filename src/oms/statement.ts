import { createHash } from 'node:crypto';
import { getOwn, isJsonObject, type JsonObject, type JsonValue } from '../canonical/json.js';
import { parseJson } from '../canonical/parse.js';
import { InTotoError, ModelError } from '../errors.js';
import {
  OPTIONAL_HASH_TYPES,
  PREDICATE_TYPE,
  PREDICATE_TYPE_V02,
  STATEMENT_TYPE,
  type Resource,
  type Serialization,
  type SignedManifest,
} from './format.js';
import { pathProblem } from './paths.js';

/**
 * The OMS in-toto Statement: written with a fixed key order so that signing the same model
 * twice gives the same payload bytes, and read back strictly (spec §5, §6.5, §8.3), from the
 * verified payload bytes only.
 */

/** Caps on what a payload may hold (THREATS.md invariant 3). */
export const STATEMENT_LIMITS = { maxResources: 1_000_000, maxNameLength: 4096, maxIgnorePaths: 10_000 } as const;

const HEX_LENGTH: Readonly<Record<string, number>> = { sha256: 64 };
const LOWER_HEX = /^[0-9a-f]+$/;
/**
 * A quick test that a name may be unsafe (absolute, `.` or `..` components, empty components,
 * NUL, lone surrogates); pathProblem then says why. Checked once per resource, so one regex.
 */
export const BAD_PATH = /^\/|\/$|\/\/|(?:^|\/)\.\.?(?:\/|$)|\0|[\ud800-\udbff](?![\udc00-\udfff])|(?:[^\ud800-\udbff]|^)[\udc00-\udfff]/;

/** sha256 over the raw resource digests in the order given (spec §6.5.1). */
export function rootDigest(resources: readonly Resource[]): string {
  // One hex decode of the joined digests: 20,000 small decodes and updates cost 10 times more.
  return createHash('sha256').update(Buffer.from(resources.map((r) => r.digest).join(''), 'hex')).digest('hex');
}

/** What a signer puts in the Statement. */
export interface StatementFields {
  readonly modelName: string;
  /** Already in the order to write (spec order: code points of the whole name). */
  readonly resources: readonly Resource[];
  readonly serialization: Serialization;
}

/**
 * The payload bytes: compact JSON with keys in one fixed order (`_type`, `subject`,
 * `predicateType`, `predicate` {`serialization` {`method`, `hash_type`, `allow_symlinks`,
 * [`shard_size`], [`ignore_paths`]}, `resources` [{`name`, `algorithm`, `digest`}]}), so equal
 * inputs always give equal bytes.
 */
export function statementBytes(fields: StatementFields): Buffer {
  const { serialization: s } = fields;
  const serialization: Record<string, JsonValue> = { method: s.method, hash_type: s.hashType, allow_symlinks: s.allowSymlinks };
  if (s.shardSize !== undefined) serialization['shard_size'] = s.shardSize;
  if (s.ignorePaths !== undefined) serialization['ignore_paths'] = [...s.ignorePaths];
  const statement = {
    _type: STATEMENT_TYPE,
    subject: [{ name: fields.modelName, digest: { sha256: rootDigest(fields.resources) } }],
    predicateType: PREDICATE_TYPE,
    predicate: {
      serialization,
      resources: fields.resources.map((r) => ({ name: r.name, algorithm: r.algorithm, digest: r.digest })),
    },
  };
  return Buffer.from(JSON.stringify(statement), 'utf8');
}

const bad = (message: string, cause?: unknown): ModelError =>
  new ModelError('E_MODEL_STATEMENT', `signed payload: ${message}`, cause === undefined ? {} : { cause });

/**
 * Reads the verified payload as an OMS Statement v1 (or model_signing 0.2's payload, whose
 * files are its subjects). Checks `_type`, `predicateType`, exactly one subject with a sha256
 * root digest, a non-empty resource list of safe, unique names with digests of the declared
 * algorithm, the serialization, and that the root digest is the hash of the resource digests
 * in payload order. Unknown fields are ignored (spec §5.2.1).
 * @throws ModelError E_MODEL_STATEMENT; E_MODEL_UNSUPPORTED for a hash type we do not implement
 */
export function readStatement(payload: Uint8Array): SignedManifest {
  let value: JsonValue;
  try {
    value = parseJson(payload, { source: 'signed payload', maxDepth: 16, zeroFractions: true });
  } catch (error) {
    throw bad(`not JSON: ${error instanceof InTotoError ? error.message : String(error)}`, error);
  }
  if (!isJsonObject(value)) throw bad('not a JSON object');
  const type = getOwn(value, '_type');
  if (type !== STATEMENT_TYPE) throw bad(`_type is ${JSON.stringify(type)}, not ${STATEMENT_TYPE}`);
  const predicateType = getOwn(value, 'predicateType');
  if (predicateType === PREDICATE_TYPE_V02) return readV02(value);
  if (predicateType !== PREDICATE_TYPE) throw bad(`predicateType is ${JSON.stringify(predicateType)}, not ${PREDICATE_TYPE}`);
  const subjects = getOwn(value, 'subject');
  if (!Array.isArray(subjects) || subjects.length !== 1) {
    throw bad(`an OMS Statement has exactly one subject, this one has ${Array.isArray(subjects) ? subjects.length : 'none'}`);
  }
  const subject = subjects[0] as JsonValue;
  if (!isJsonObject(subject)) throw bad('subject[0] is not an object');
  const modelName = getOwn(subject, 'name');
  if (typeof modelName !== 'string' || modelName === '') throw bad('subject[0].name must be a non-empty string');
  const digestSet = getOwn(subject, 'digest');
  const root = isJsonObject(digestSet) ? getOwn(digestSet, 'sha256') : undefined;
  if (typeof root !== 'string' || !/^[0-9a-f]{64}$/.test(root)) throw bad('subject[0].digest.sha256 must be 64 lower-case hex digits');
  const predicate = getOwn(value, 'predicate');
  if (!isJsonObject(predicate)) throw bad('predicate must be an object');
  const serialization = readSerialization(getOwn(predicate, 'serialization'));
  const resources = readResources(getOwn(predicate, 'resources'), serialization);
  const computed = rootDigest(resources);
  if (computed !== root) {
    throw bad(`root digest mismatch: subject says ${root}, the resources hash to ${computed} (in payload order)`);
  }
  return { modelName, rootDigest: root, resources, serialization, format: 'v1.0' };
}

function readSerialization(value: JsonValue | undefined): Serialization {
  if (!isJsonObject(value)) throw bad('predicate.serialization must be an object');
  const method = getOwn(value, 'method');
  if (method !== 'files' && method !== 'shards') throw bad(`unknown serialization method ${JSON.stringify(method)}`);
  const hashType = getOwn(value, 'hash_type');
  if (typeof hashType === 'string' && OPTIONAL_HASH_TYPES.includes(hashType)) {
    throw new ModelError('E_MODEL_UNSUPPORTED', `signed payload: hash type ${hashType} is not supported (only sha256)`);
  }
  if (hashType !== 'sha256') throw bad(`unknown hash_type ${JSON.stringify(hashType)}`);
  const allowSymlinks = getOwn(value, 'allow_symlinks');
  if (typeof allowSymlinks !== 'boolean') throw bad('serialization.allow_symlinks must be true or false');
  const shardSize = getOwn(value, 'shard_size');
  if (method === 'shards') {
    if (typeof shardSize !== 'number' || !Number.isSafeInteger(shardSize) || shardSize <= 0) throw bad('serialization.shard_size must be a positive integer');
  } else if (shardSize !== undefined) {
    throw bad('serialization.shard_size is only for the shards method');
  }
  return {
    method,
    hashType,
    allowSymlinks,
    ignorePaths: readIgnorePaths(getOwn(value, 'ignore_paths')),
    shardSize: method === 'shards' ? (shardSize as number) : undefined,
  };
}

function readIgnorePaths(value: JsonValue | undefined): readonly string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.length > STATEMENT_LIMITS.maxIgnorePaths) throw bad('serialization.ignore_paths must be a list of paths');
  return value.map((entry, i) => {
    if (typeof entry !== 'string') throw bad(`serialization.ignore_paths[${i}] must be a string`);
    const normalized = entry.replace(/\/+$/, '');
    const problem = pathProblem(normalized);
    if (problem !== undefined) throw bad(`serialization.ignore_paths[${i}] ${JSON.stringify(entry)}: ${problem}`);
    return normalized;
  });
}

/** The algorithm names a resource may carry: the hash type, and for shards model_signing's spelling. */
function allowedAlgorithms(s: Serialization): readonly string[] {
  return s.method === 'shards' ? [s.hashType, `${s.hashType}-sharded-${s.shardSize}`] : [s.hashType];
}

function readResources(value: JsonValue | undefined, serialization: Serialization): Resource[] {
  if (!Array.isArray(value)) throw bad('predicate.resources must be a list');
  if (value.length === 0) throw bad('predicate.resources is empty: a signature must cover at least one file');
  if (value.length > STATEMENT_LIMITS.maxResources) throw bad(`more than ${STATEMENT_LIMITS.maxResources} resources`);
  const algorithms = allowedAlgorithms(serialization);
  const hexLength = HEX_LENGTH[serialization.hashType] ?? 0;
  const seen = new Set<string>();
  const resources: Resource[] = new Array(value.length);
  for (let i = 0; i < value.length; i++) {
    const entry = value[i] as JsonValue;
    if (!isJsonObject(entry)) throw bad(`resources[${i}] is not an object`);
    const { name, algorithm, digest } = entry as { readonly [key: string]: JsonValue | undefined };
    if (typeof name !== 'string' || name === '' || name.length > STATEMENT_LIMITS.maxNameLength) throw bad(`resources[${i}].name must be a non-empty string`);
    if (typeof algorithm !== 'string' || !algorithms.includes(algorithm)) {
      throw bad(`resources[${i}] (${JSON.stringify(name)}): algorithm ${JSON.stringify(algorithm)} does not fit the serialization (${algorithms.join(' or ')})`);
    }
    if (typeof digest !== 'string' || digest.length !== hexLength || !LOWER_HEX.test(digest)) {
      throw bad(`resources[${i}] (${JSON.stringify(name)}): digest must be ${hexLength} lower-case hex digits`);
    }
    const path = serialization.method === 'shards' ? shardPath(name, i) : name;
    if (path !== '.' && BAD_PATH.test(path)) {
      throw bad(`resources[${i}] ${JSON.stringify(name)}: ${pathProblem(path) ?? 'is not a canonical relative path'}`);
    }
    if (seen.has(name)) throw bad(`resources[${i}]: ${JSON.stringify(name)} is listed twice`);
    seen.add(name);
    resources[i] = { name, algorithm, digest };
  }
  if (serialization.method === 'files' && seen.has('.') && resources.length > 1) throw bad('"." names a single-file model, which has one resource');
  return resources;
}

/** The file path of a shard name `path:start:end` (the last two components are the range). */
function shardPath(name: string, i: number): string {
  const match = /^(.*):(0|[1-9][0-9]*):([1-9][0-9]*)$/s.exec(name);
  if (match === null) throw bad(`resources[${i}] ${JSON.stringify(name)}: a shard name is path:start:end`);
  return match[1] ?? '';
}

/** model_signing 0.2: files as subjects with sha256 digests, serialization implied (files, sha256, no symlinks). */
function readV02(value: JsonObject): SignedManifest {
  const subjects = getOwn(value, 'subject');
  if (!Array.isArray(subjects) || subjects.length === 0) throw bad('a v0.2 payload lists its files as subjects, and has none');
  const serialization: Serialization = { method: 'files', hashType: 'sha256', allowSymlinks: false, ignorePaths: undefined, shardSize: undefined };
  const entries = subjects.map((subject, i) => {
    if (!isJsonObject(subject)) throw bad(`subject[${i}] is not an object`);
    const digest = getOwn(subject, 'digest');
    return { name: getOwn(subject, 'name'), algorithm: 'sha256', digest: isJsonObject(digest) ? getOwn(digest, 'sha256') : undefined } as JsonValue;
  });
  const resources = readResources(entries, serialization);
  return { modelName: 'compat-undefined-not-present', rootDigest: undefined, resources, serialization, format: 'v0.2' };
}
