import { HASH_DICT } from '../model/schemas.js';
import { LINK_PREDICATE_V03, RESOURCE_DESCRIPTOR, STATEMENT_V1 } from '../model/statement.js';

/**
 * JSON Schemas of the attestations we write, written from their specs, so that nothing we
 * sign can drift from them: every Statement is checked before it is signed.
 * - Statement v1: in-toto/attestation spec/v1/statement.md (+ resource_descriptor.md,
 *   field_types.md: TypeURI and ResourceURI are RFC 3986 URIs, Timestamp is RFC 3339 in UTC);
 * - SLSA Provenance v1: slsa.dev/spec/v1.0/provenance (BuildDefinition, RunDetails, Builder,
 *   BuildMetadata);
 * - Verification Summary v1: slsa.dev/spec/v1.0/verification_summary;
 * - the link predicate v0.3 is in model/statement.ts (the runner writes it).
 * We write only the specs' own fields (plus, in a VSA, one extension field named by a URI, as
 * its parsing rules allow), so `additionalProperties` is false throughout.
 */

export const PROVENANCE_V1 = 'https://slsa.dev/provenance/v1';
export const VSA_V1 = 'https://slsa.dev/verification_summary/v1';
export { LINK_PREDICATE_V03, STATEMENT_V1 };

/** A Timestamp as the attestations write it: RFC 3339 in UTC, whole seconds (`2024-01-02T03:04:05Z`). */
export function attestationTimestamp(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** An RFC 3986 URI: a scheme, a colon, no whitespace. */
const URI = { type: 'string', pattern: '^[A-Za-z][A-Za-z0-9+.-]*:[^\\s]+$', maxLength: 8192 } as const;
/** RFC 3339, UTC ("Z"). */
const TIMESTAMP = { type: 'string', pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?Z$' } as const;

const SUBJECT = { ...RESOURCE_DESCRIPTOR, required: ['name', 'digest'], properties: { ...RESOURCE_DESCRIPTOR.properties, digest: HASH_DICT } } as const;
const DESCRIPTOR_LIST = { type: 'array', items: RESOURCE_DESCRIPTOR, maxItems: 1_000_000 } as const;
const VERSION_MAP = { type: 'object', additionalProperties: { type: 'string' } } as const;

function statement(id: string, predicateType: string, predicate: object): object {
  return {
    $id: id,
    type: 'object',
    required: ['_type', 'subject', 'predicateType', 'predicate'],
    additionalProperties: false,
    properties: {
      _type: { const: STATEMENT_V1 },
      subject: { type: 'array', items: SUBJECT, minItems: 1, maxItems: 1_000_000 },
      predicateType: { const: predicateType },
      predicate,
    },
  };
}

/** SLSA Provenance v1 in a Statement v1. */
export const PROVENANCE_STATEMENT_SCHEMA = statement('slsa-provenance-v1', PROVENANCE_V1, {
  type: 'object',
  required: ['buildDefinition', 'runDetails'],
  additionalProperties: false,
  properties: {
    buildDefinition: {
      type: 'object',
      required: ['buildType', 'externalParameters'],
      additionalProperties: false,
      properties: {
        buildType: URI,
        externalParameters: { type: 'object' },
        internalParameters: { type: 'object' },
        resolvedDependencies: DESCRIPTOR_LIST,
      },
    },
    runDetails: {
      type: 'object',
      required: ['builder'],
      additionalProperties: false,
      properties: {
        builder: {
          type: 'object',
          required: ['id'],
          additionalProperties: false,
          properties: { id: URI, version: VERSION_MAP, builderDependencies: DESCRIPTOR_LIST },
        },
        metadata: {
          type: 'object',
          additionalProperties: false,
          properties: { invocationId: { type: 'string' }, startedOn: TIMESTAMP, finishedOn: TIMESTAMP },
        },
        byproducts: DESCRIPTOR_LIST,
      },
    },
  },
}) as { readonly $id: string };

/** The extension field (named by a URI, as the VSA's parsing rules ask) that says why it failed. */
export const VSA_FAILURE_FIELD = 'urn:intoto-ts:verification-failure';

/** A Verification Summary v1 in a Statement v1. */
export const VSA_STATEMENT_SCHEMA = statement('slsa-vsa-v1', VSA_V1, {
  type: 'object',
  required: ['verifier', 'timeVerified', 'resourceUri', 'policy', 'verificationResult', 'verifiedLevels'],
  additionalProperties: false,
  properties: {
    verifier: { type: 'object', required: ['id'], additionalProperties: false, properties: { id: URI, version: VERSION_MAP } },
    timeVerified: TIMESTAMP,
    resourceUri: URI,
    policy: { ...RESOURCE_DESCRIPTOR, required: ['uri'] },
    inputAttestations: { type: 'array', items: { ...RESOURCE_DESCRIPTOR, required: ['digest'] }, maxItems: 1_000_000 },
    verificationResult: { enum: ['PASSED', 'FAILED'] },
    verifiedLevels: { type: 'array', items: { type: 'string', minLength: 1 }, uniqueItems: true },
    dependencyLevels: { type: 'object', additionalProperties: { type: 'integer', minimum: 0 } },
    slsaVersion: { type: 'string', pattern: '^[0-9]+\\.[0-9]+$' },
    [VSA_FAILURE_FIELD]: {
      type: 'object',
      required: ['code', 'message'],
      additionalProperties: false,
      properties: { code: { type: 'string' }, message: { type: 'string' }, details: { type: 'array', items: { type: 'string' } } },
    },
  },
  // verifiedLevels is ["FAILED"] exactly when the verification failed; a failure says why.
  if: { type: 'object', required: ['verificationResult'], properties: { verificationResult: { const: 'FAILED' } } },
  then: { type: 'object', required: [VSA_FAILURE_FIELD], properties: { verifiedLevels: { const: ['FAILED'] }, [VSA_FAILURE_FIELD]: true } },
  else: { type: 'object', properties: { verifiedLevels: { type: 'array', not: { contains: { const: 'FAILED' } } }, [VSA_FAILURE_FIELD]: false } },
}) as { readonly $id: string };
