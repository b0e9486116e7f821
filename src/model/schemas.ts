import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Ajv, ErrorObject, ValidateFunction } from 'ajv';
import { FormatError } from '../errors.js';
import type { JsonValue } from '../canonical/json.js';
import * as precompiled from './schema-validators.js';

/**
 * JSON Schemas for everything we load, checked with ajv. Every violation is collected and
 * reported at once (first in the message, all of them in `details`), each with its JSON path.
 * Sizes are capped here too (THREATS.md invariant 3), before any expensive work.
 */

export const CAPS = {
  artifactsPerLink: 1_000_000,
  stepsPerLayout: 1000,
  keysPerLayout: 1000,
  rulesPerList: 10_000,
  ruleTokens: 10,
  commandArgs: 10_000,
  signatures: 100,
  stringLength: 1_000_000,
} as const;

const KEYID = { type: 'string', pattern: '^[0-9a-f]{64}$' } as const;
const STRING_LIST = { type: 'array', items: { type: 'string' }, maxItems: CAPS.commandArgs } as const;

/** Digest per algorithm: lowercase hex, of the exact length for the algorithms we know. */
export const HASH_DICT = {
  type: 'object',
  minProperties: 1,
  maxProperties: 16,
  propertyNames: { pattern: '^[a-z0-9][a-z0-9_-]{0,31}$' },
  properties: {
    md5: { type: 'string', pattern: '^[0-9a-f]{32}$' },
    sha1: { type: 'string', pattern: '^[0-9a-f]{40}$' },
    sha224: { type: 'string', pattern: '^[0-9a-f]{56}$' },
    sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    sha384: { type: 'string', pattern: '^[0-9a-f]{96}$' },
    sha512: { type: 'string', pattern: '^[0-9a-f]{128}$' },
  },
  additionalProperties: { type: 'string', pattern: '^(?:[0-9a-f]{2}){8,128}$' },
} as const;

/**
 * Artifact maps are checked entry by entry in link.ts (with the rules of {@link HASH_DICT}):
 * ajv costs about 10 us per entry, a second per 100,000 artifacts; the hand-written loop a
 * tenth of that.
 */
const ARTIFACTS = { type: 'object', maxProperties: CAPS.artifactsPerLink } as const;

const RULE_LIST = {
  type: 'array',
  maxItems: CAPS.rulesPerList,
  items: { type: 'array', minItems: 1, maxItems: CAPS.ruleTokens, items: { type: 'string' } },
} as const;

export const LINK_SCHEMA = {
  $id: 'link',
  type: 'object',
  required: ['_type', 'name', 'materials', 'products', 'byproducts', 'command', 'environment'],
  additionalProperties: false,
  properties: {
    _type: { const: 'link' },
    name: { type: 'string' },
    materials: ARTIFACTS,
    products: ARTIFACTS,
    byproducts: {
      type: 'object',
      properties: {
        'return-value': { type: 'integer' },
        stdout: { type: 'string' },
        stderr: { type: 'string' },
      },
    },
    command: STRING_LIST,
    environment: { type: 'object' },
  },
} as const;

const KEY_OBJECT = {
  type: 'object',
  required: ['keytype', 'scheme', 'keyval'],
  additionalProperties: false,
  properties: {
    keyid: KEYID,
    keyid_hash_algorithms: { type: 'array', items: { type: 'string' }, maxItems: 8 },
    keytype: { type: 'string' },
    scheme: { type: 'string' },
    keyval: {
      type: 'object',
      required: ['public'],
      additionalProperties: false,
      properties: { public: { type: 'string', maxLength: 16384 }, private: { type: 'string' } },
    },
  },
} as const;

const STEP = {
  type: 'object',
  required: ['_type', 'name', 'threshold', 'pubkeys', 'expected_command', 'expected_materials', 'expected_products'],
  additionalProperties: false,
  properties: {
    _type: { const: 'step' },
    name: { type: 'string' },
    threshold: { type: 'integer', minimum: 1 },
    pubkeys: { type: 'array', items: KEYID, maxItems: CAPS.keysPerLayout },
    expected_command: STRING_LIST,
    expected_materials: RULE_LIST,
    expected_products: RULE_LIST,
  },
} as const;

const INSPECTION = {
  type: 'object',
  required: ['_type', 'name', 'run', 'expected_materials', 'expected_products'],
  additionalProperties: false,
  properties: {
    _type: { const: 'inspection' },
    name: { type: 'string' },
    run: STRING_LIST,
    expected_materials: RULE_LIST,
    expected_products: RULE_LIST,
  },
} as const;

export const LAYOUT_SCHEMA = {
  $id: 'layout',
  type: 'object',
  required: ['_type', 'expires', 'readme', 'keys', 'steps', 'inspect'],
  additionalProperties: false,
  properties: {
    _type: { const: 'layout' },
    expires: { type: 'string' },
    readme: { type: 'string' },
    keys: { type: 'object', maxProperties: CAPS.keysPerLayout, propertyNames: KEYID, additionalProperties: KEY_OBJECT },
    steps: { type: 'array', items: STEP, maxItems: CAPS.stepsPerLayout },
    inspect: { type: 'array', items: INSPECTION, maxItems: CAPS.stepsPerLayout },
  },
} as const;

/*
 * The two envelopes. Fields beside `signed` and `signatures` (or beside `payload`,
 * `payloadType` and `signatures`), and fields in a signature object besides `keyid` and `sig`
 * (in-toto-golang writes `cert`), are outside what any signature covers: they are ignored, as
 * the in-toto and DSSE specifications let a reader ignore unknown fields, and never read.
 * Inside the signed part (LINK_SCHEMA, LAYOUT_SCHEMA) an unknown field stays an error.
 */

export const METABLOCK_SCHEMA = {
  $id: 'metablock',
  type: 'object',
  required: ['signatures', 'signed'],
  properties: {
    signatures: {
      type: 'array',
      maxItems: CAPS.signatures,
      items: {
        type: 'object',
        required: ['keyid', 'sig'],
        properties: { keyid: KEYID, sig: { type: 'string', pattern: '^(?:[0-9a-f]{2})*$', maxLength: 8192 } },
      },
    },
    signed: { type: 'object' },
  },
} as const;

export const DSSE_SCHEMA = {
  $id: 'dsse',
  type: 'object',
  required: ['payload', 'payloadType', 'signatures'],
  properties: {
    payload: { type: 'string' },
    payloadType: { type: 'string' },
    signatures: {
      type: 'array',
      maxItems: CAPS.signatures,
      items: {
        type: 'object',
        required: ['sig'],
        properties: { keyid: { type: 'string', maxLength: 256 }, sig: { type: 'string', maxLength: 8192 } },
      },
    },
  },
} as const;

// ajv (about 50 CommonJS files) is loaded on the first schema check, not on import: writing a
// link (intoto-run) never checks a schema, and it costs every start-up tens of milliseconds.
let ajv: Ajv | undefined;
const compiled = new Map<string, ValidateFunction>();

/**
 * The validator ajv compiled ahead of time for this schema (scripts/gen-schema-validators.mjs),
 * when the schema is still exactly the one it was made from; loading and compiling ajv costs
 * about 0.25 s of CPU at every start. A changed schema falls back to compiling it here (and
 * test/model/schema-validators.test.ts fails until the file is regenerated).
 */
function precompiledFor(schema: { readonly $id: string }): ValidateFunction | undefined {
  const hashes = precompiled.SCHEMA_HASHES as Readonly<Record<string, string>>;
  const validate = (precompiled as unknown as Readonly<Record<string, ValidateFunction | undefined>>)[schema.$id];
  if (validate === undefined || !Object.prototype.hasOwnProperty.call(hashes, schema.$id)) return undefined;
  const hash = createHash('sha256').update(JSON.stringify(schema)).digest('hex');
  return hashes[schema.$id] === hash ? validate : undefined;
}

function validatorFor(schema: { readonly $id: string }): ValidateFunction {
  let validate = compiled.get(schema.$id) ?? precompiledFor(schema);
  if (validate) compiled.set(schema.$id, validate);
  else {
    if (ajv === undefined) {
      const { Ajv: AjvClass } = createRequire(import.meta.url)('ajv') as typeof import('ajv');
      ajv = new AjvClass({ allErrors: true, strict: true, allowUnionTypes: false });
    }
    validate = ajv.compile(schema);
    compiled.set(schema.$id, validate);
  }
  return validate;
}

/** Formats one ajv error as "<json path>: <message>". */
function describe(error: ErrorObject, pathPrefix: string): string {
  const path = `${pathPrefix}${error.instancePath}` || '/';
  if (error.keyword === 'additionalProperties') {
    return `${path}: unexpected field ${JSON.stringify((error.params as { additionalProperty: string }).additionalProperty)}`;
  }
  if (error.keyword === 'const') return `${path}: must be ${JSON.stringify((error.params as { allowedValue: unknown }).allowedValue)}`;
  return `${path}: ${error.message ?? error.keyword}`;
}

/**
 * Checks `value` against a schema; throws once with every violation.
 * @throws FormatError E_SCHEMA (message: the first violation with its JSON path and `where`)
 */
export function checkSchema(
  schema: { readonly $id: string },
  value: JsonValue,
  where: string,
  pathPrefix = '',
): void {
  const validate = validatorFor(schema);
  if (validate(value)) return;
  const problems = (validate.errors ?? []).map((e) => describe(e, pathPrefix));
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more)` : '';
  throw new FormatError('E_SCHEMA', `${where}: ${problems[0] ?? 'invalid'}${more}`, {
    details: problems,
    context: { path: problems[0]?.split(':')[0] ?? '/' },
  });
}
