import { FormatError } from '../errors.js';
import { getOwn, isJsonObject, nullObject, type JsonObject, type JsonValue } from '../canonical/json.js';
import type { ArtifactMap } from './artifacts.js';
import { linkFromJson, type Link } from './link.js';
import { CAPS, checkSchema, HASH_DICT } from './schemas.js';

/**
 * in-toto attestations (ITE-6): a Statement v1 (`https://in-toto.io/Statement/v1`: subjects,
 * predicateType, predicate) and its link predicate v0.3
 * (`https://in-toto.io/attestation/link/v0.3`), the attestation form of a link. Field lists
 * from in-toto/attestation spec/v1/statement.md, resource_descriptor.md and
 * spec/predicates/link.md.
 *
 * Both directions live here, and nowhere else: a Link written as a Statement (`intoto-run
 * --attest`), and a Statement read as the Link it stands for, so that the verifier takes a
 * link Statement in place of a legacy link with the same rules, names and thresholds (the
 * one hook is in verify/link-load.ts). Conversion follows the predicate's own rules: products
 * are the subjects (name -> digest), materials the predicate's ResourceDescriptors.
 *
 * Reading is as strict as for links: the Statement and the predicate are checked against
 * schemas written from those specs, unknown fields are refused (the signed part of metadata
 * never has fields we would ignore), subject and material names must be unique, and the
 * Link built from it passes every check a legacy link passes (artifact names, digests).
 */

export const STATEMENT_V1 = 'https://in-toto.io/Statement/v1';
export const LINK_PREDICATE_V03 = 'https://in-toto.io/attestation/link/v0.3';

/** A ResourceDescriptor (spec/v1/resource_descriptor.md): at least one of uri, digest, content. */
export const RESOURCE_DESCRIPTOR = {
  type: 'object',
  additionalProperties: false,
  anyOf: [
    { required: ['uri'], properties: { uri: true } },
    { required: ['digest'], properties: { digest: true } },
    { required: ['content'], properties: { content: true } },
  ],
  properties: {
    name: { type: 'string', maxLength: 4096 },
    uri: { type: 'string', minLength: 1, maxLength: 4096 },
    digest: HASH_DICT,
    content: { type: 'string', maxLength: 1_000_000 },
    downloadLocation: { type: 'string', minLength: 1, maxLength: 4096 },
    mediaType: { type: 'string', maxLength: 256 },
    annotations: { type: 'object' },
  },
} as const;

/** A ResourceDescriptor as the link predicate requires it: `name` and `digest` set. */
const NAMED_ARTIFACT = { ...RESOURCE_DESCRIPTOR, required: ['name', 'digest'] } as const;

/** Statement v1 whose predicate is a link v0.3 (what is read in a link's place). */
export const LINK_STATEMENT_SCHEMA = {
  $id: 'link-statement-v1',
  type: 'object',
  required: ['_type', 'subject', 'predicateType', 'predicate'],
  additionalProperties: false,
  properties: {
    _type: { const: STATEMENT_V1 },
    subject: { type: 'array', items: NAMED_ARTIFACT, maxItems: CAPS.artifactsPerLink },
    predicateType: { const: LINK_PREDICATE_V03 },
    predicate: {
      type: 'object',
      required: ['name'],
      additionalProperties: false,
      properties: {
        name: { type: 'string' },
        command: { type: 'array', items: { type: 'string' }, maxItems: CAPS.commandArgs },
        materials: { type: 'array', items: NAMED_ARTIFACT, maxItems: CAPS.artifactsPerLink },
        byproducts: { type: 'object' },
        environment: { type: 'object' },
      },
    },
  },
} as const;

/** What `--attest` writes: the same, with at least one subject (a Statement is about something). */
export const LINK_STATEMENT_WRITE_SCHEMA = {
  ...LINK_STATEMENT_SCHEMA,
  $id: 'link-statement-v1-write',
  properties: { ...LINK_STATEMENT_SCHEMA.properties, subject: { ...LINK_STATEMENT_SCHEMA.properties.subject, minItems: 1 } },
} as const;

/** True when a payload declares itself a Statement (of any version). Never throws. */
export function isStatement(value: JsonValue): boolean {
  const type = isJsonObject(value) ? getOwn(value, '_type') : undefined;
  return typeof type === 'string' && type.startsWith('https://in-toto.io/Statement/');
}

/**
 * The Link a link Statement stands for.
 * @throws FormatError E_METADATA_TYPE (another Statement version or predicate type), E_SCHEMA
 *   (fields outside the specs, a repeated subject or material name), E_ARTIFACT_NAME and
 *   whatever linkFromJson refuses in a legacy link
 */
export function linkFromStatement(value: JsonValue, where: string): Link {
  const type = isJsonObject(value) ? getOwn(value, '_type') : undefined;
  const predicateType = isJsonObject(value) ? getOwn(value, 'predicateType') : undefined;
  if (type !== STATEMENT_V1 || predicateType !== LINK_PREDICATE_V03) {
    throw new FormatError(
      'E_METADATA_TYPE',
      `${where}: an attestation of type ${JSON.stringify(type ?? null)} with predicate ${JSON.stringify(predicateType ?? null)}; only ${STATEMENT_V1} with ${LINK_PREDICATE_V03} stands for a link`,
    );
  }
  checkSchema(LINK_STATEMENT_SCHEMA, value, where);
  const statement = value as JsonObject;
  const predicate = statement['predicate'] as JsonObject;
  return linkFromJson(
    {
      _type: 'link',
      name: predicate['name'] as string,
      command: (getOwn(predicate, 'command') ?? []) as JsonValue,
      materials: artifactObject((getOwn(predicate, 'materials') ?? []) as readonly JsonObject[], where, '/predicate/materials'),
      products: artifactObject(statement['subject'] as readonly JsonObject[], where, '/subject'),
      byproducts: (getOwn(predicate, 'byproducts') ?? {}) as JsonValue,
      environment: (getOwn(predicate, 'environment') ?? {}) as JsonValue,
    },
    where,
  );
}

/** name -> digest of named ResourceDescriptors, refusing a name given twice. */
function artifactObject(descriptors: readonly JsonObject[], where: string, path: string): JsonObject {
  const object = nullObject<JsonValue>();
  descriptors.forEach((descriptor, i) => {
    const name = descriptor['name'] as string;
    if (Object.prototype.hasOwnProperty.call(object, name)) {
      throw new FormatError('E_SCHEMA', `${where}: ${path}/${i}: the name ${JSON.stringify(name)} is given twice (names must be unique)`, {
        context: { path: `${path}/${i}`, artifact: name },
      });
    }
    object[name] = descriptor['digest'] as JsonValue;
  });
  return object;
}

/** Named ResourceDescriptors of an artifact map, in the map's (sorted) order. */
function descriptorsOf(artifacts: ArtifactMap): JsonObject[] {
  const names = [...artifacts.keys()].sort();
  return names.map((name) => ({ name, digest: Object.fromEntries(artifacts.get(name) ?? []) }));
}

/**
 * A Link as a Statement v1 with the link predicate v0.3, checked against the schema before it
 * is returned.
 * @throws FormatError E_SCHEMA (a link without products: a Statement needs a subject)
 */
export function linkStatement(link: Link, where: string): JsonObject {
  const statement: JsonObject = {
    _type: STATEMENT_V1,
    subject: descriptorsOf(link.products),
    predicateType: LINK_PREDICATE_V03,
    predicate: {
      name: link.name,
      command: [...link.command],
      materials: descriptorsOf(link.materials),
      byproducts: link.byproducts,
      environment: link.environment,
    },
  };
  checkSchema(LINK_STATEMENT_WRITE_SCHEMA, statement, where);
  return statement;
}

/** `<name>.<keyid8>.intoto.json`: where `--attest` writes a link's Statement. */
export function attestationFileName(step: string, keyid: string): string {
  return `${step}.${keyid.slice(0, 8)}.intoto.json`;
}

/** True for the attestation files we write (left out of a final product, as links are). */
export function isAttestationFileName(name: string): boolean {
  return name.endsWith('.intoto.json') || name.endsWith('.intoto.jsonl');
}
