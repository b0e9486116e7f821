import { getOwn, isJsonObject, type JsonObject, type JsonValue } from '../canonical/json.js';
import type { PublicKey } from '../crypto/keys.js';
import type { SigningKey } from '../crypto/signatures.js';
import { CryptoError, EngineError, FormatError } from '../errors.js';
import { dsseText, isSignedBy, parseEnvelope, verifiedPayload } from '../model/envelope.js';
import { artifactNameProblem } from '../model/names.js';
import { STATEMENT_V1 } from '../model/statement.js';
import { distinctKeys } from '../verify/layout-signatures.js';

/**
 * The run record: what the layout owner signs when publishing a run (`intoto pipeline
 * publish`), an in-toto Statement v1 in a DSSE envelope whose subject is the signed layout and
 * whose predicate names the run id, the pipeline inputs (name and SHA-256 of each file) and
 * the `--param` values. Every machine that runs a step checks it against the owner's keys
 * before using anything of the run: an input whose bytes differ from the signed digest is
 * refused before the step's command starts, and a record copied from another run (another run
 * id) is refused as E_RUN_MISMATCH.
 *
 *   {"_type": "https://in-toto.io/Statement/v1",
 *    "subject": [{"name": "root.layout", "digest": {"sha256": "..."}}],
 *    "predicateType": "urn:intoto-ts:predicate:pipeline-run:v1",
 *    "predicate": {"runId": "...", "inputs": [{"name": "data/x.csv", "digest": {"sha256": "..."}}],
 *                  "params": {"K": "V"}, "publishedOn": "2026-12-06T19:12:03Z"}}
 *
 * Read strictly: unknown fields, a second subject, a digest that is not 64 lower-case hex
 * digits, a repeated input name, are refused.
 */

export const RUN_PREDICATE = 'urn:intoto-ts:predicate:pipeline-run:v1';
/** At most this many inputs (the pipeline's own cap on input files). */
export const MAX_RUN_INPUTS = 100_000;

export interface RunRecord {
  readonly runId: string;
  /** SHA-256 (hex) of the signed layout's bytes. */
  readonly layoutSha256: string;
  /** Input name -> SHA-256 (hex), in the order published. */
  readonly inputs: ReadonlyMap<string, string>;
  readonly params: ReadonlyMap<string, string>;
  /** When it was published, `YYYY-MM-DDTHH:MM:SSZ`. */
  readonly publishedOn: string;
}

const SHA256 = /^[0-9a-f]{64}$/;

/** The Statement of a record. Never throws. */
export function runStatement(record: RunRecord): JsonObject {
  const params: Record<string, string> = {};
  for (const [key, value] of record.params) params[key] = value;
  return {
    _type: STATEMENT_V1,
    subject: [{ name: 'root.layout', digest: { sha256: record.layoutSha256 } }],
    predicateType: RUN_PREDICATE,
    predicate: {
      runId: record.runId,
      inputs: [...record.inputs].map(([name, sha256]) => ({ name, digest: { sha256 } })),
      params,
      publishedOn: record.publishedOn,
    },
  };
}

/** The record signed by every key, as a DSSE envelope's text. Never throws. */
export function signRunRecord(record: RunRecord, keys: readonly SigningKey[]): string {
  return dsseText(runStatement(record), keys);
}

/**
 * Reads a record from its envelope's bytes, which every key of `ownerKeys` must have signed,
 * and which must be the record of `runId`.
 * @throws CryptoError E_SIGNATURE (a key that did not sign), E_ENVELOPE; ParseError; FormatError
 *   E_SCHEMA (not a run record); EngineError E_RUN_MISMATCH (another run's record)
 */
export function readRunRecord(bytes: Uint8Array, ownerKeys: readonly PublicKey[], runId: string, where: string): RunRecord {
  const envelope = parseEnvelope(bytes, where);
  const keys = distinctKeys(ownerKeys);
  const unsigned = keys.filter((key) => !isSignedBy(envelope, key));
  const signer = keys[0];
  if (signer === undefined || unsigned.length > 0) {
    throw new CryptoError('E_SIGNATURE', `${where}: the run record is not signed by the layout owner's key ${unsigned[0]?.keyid.slice(0, 8) ?? '(none given)'}: this run was not published by the owner whose keys you gave`, {
      context: { file: where, ...(unsigned[0] === undefined ? {} : { keyid: unsigned[0].keyid }) },
    });
  }
  const record = recordFromJson(verifiedPayload(envelope, signer) as JsonValue, where);
  if (record.runId !== runId) {
    throw new EngineError('E_RUN_MISMATCH', `${where}: the owner signed this record for run '${record.runId}', not '${runId}': a record copied from another run`, { context: { file: where } });
  }
  return record;
}

function bad(where: string, why: string): never {
  throw new FormatError('E_SCHEMA', `${where}: not a run record: ${why}`, { context: { file: where } });
}

function onlyKeys(object: JsonObject, allowed: readonly string[], where: string): void {
  for (const key of Object.keys(object)) if (!allowed.includes(key)) bad(where, `unknown field ${JSON.stringify(key)}`);
}

function sha256Of(value: JsonValue | undefined, where: string): string {
  if (!isJsonObject(value)) bad(where, 'digest is not an object');
  onlyKeys(value, ['sha256'], `${where}.digest`);
  const hex = getOwn(value, 'sha256');
  if (typeof hex !== 'string' || !SHA256.test(hex)) bad(where, 'digest.sha256 is not 64 lower-case hex digits');
  return hex;
}

/**
 * The record in a verified payload.
 * @throws FormatError E_SCHEMA
 */
export function recordFromJson(value: JsonValue, where: string): RunRecord {
  if (!isJsonObject(value)) bad(where, 'not an object');
  onlyKeys(value, ['_type', 'subject', 'predicateType', 'predicate'], where);
  if (getOwn(value, '_type') !== STATEMENT_V1) bad(where, `_type is not ${STATEMENT_V1}`);
  if (getOwn(value, 'predicateType') !== RUN_PREDICATE) bad(where, `predicateType is not ${RUN_PREDICATE}`);
  const subject = getOwn(value, 'subject');
  if (!Array.isArray(subject) || subject.length !== 1 || !isJsonObject(subject[0])) bad(where, 'subject is not one resource');
  const layout = subject[0] as JsonObject;
  onlyKeys(layout, ['name', 'digest'], `${where}.subject[0]`);
  if (getOwn(layout, 'name') !== 'root.layout') bad(where, 'the subject is not root.layout');
  const layoutSha256 = sha256Of(getOwn(layout, 'digest'), `${where}.subject[0]`);

  const predicate = getOwn(value, 'predicate');
  if (!isJsonObject(predicate)) bad(where, 'predicate is not an object');
  onlyKeys(predicate, ['runId', 'inputs', 'params', 'publishedOn'], `${where}.predicate`);
  const runId = getOwn(predicate, 'runId');
  if (typeof runId !== 'string' || runId.length === 0 || runId.length > 64) bad(where, 'predicate.runId is not a run id');
  const publishedOn = getOwn(predicate, 'publishedOn');
  if (typeof publishedOn !== 'string' || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/.test(publishedOn)) bad(where, 'predicate.publishedOn is not YYYY-MM-DDTHH:MM:SSZ');

  const list = getOwn(predicate, 'inputs');
  if (!Array.isArray(list) || list.length > MAX_RUN_INPUTS) bad(where, `predicate.inputs is not a list of at most ${MAX_RUN_INPUTS}`);
  const inputs = new Map<string, string>();
  (list as readonly JsonValue[]).forEach((item, i) => {
    const at = `${where}.predicate.inputs[${i}]`;
    if (!isJsonObject(item)) bad(at, 'not an object');
    onlyKeys(item, ['name', 'digest'], at);
    const name = getOwn(item, 'name');
    if (typeof name !== 'string') bad(at, 'name is not a string');
    const problem = artifactNameProblem(name);
    if (problem !== undefined) bad(at, `input name ${JSON.stringify(name)} ${problem}`);
    if (inputs.has(name)) bad(at, `input ${name} is listed twice`);
    inputs.set(name, sha256Of(getOwn(item, 'digest'), at));
  });

  const paramObject = getOwn(predicate, 'params');
  if (!isJsonObject(paramObject)) bad(where, 'predicate.params is not an object');
  const params = new Map<string, string>();
  for (const key of Object.keys(paramObject)) {
    const v = paramObject[key];
    if (typeof v !== 'string') bad(where, `predicate.params.${key} is not a string`);
    params.set(key, v);
  }
  return { runId, layoutSha256, inputs, params, publishedOn };
}
