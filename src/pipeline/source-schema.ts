import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { JsonValue } from '../canonical/json.js';
import { MAX_RULE_STRING_LENGTH } from '../model/rules.js';
import { CAPS } from '../model/schemas.js';
import { DEVICE_PATH, ENV_NAME } from '../runner/sandbox.js';
import { TIMEOUT_RULE } from '../runner/step-files.js';
import { diagnostic, type Diagnostic } from './diagnostics.js';
import { pointerSegment, type SourceTree } from './yaml-source.js';

/**
 * The shape of a YAML layout source (layouts/README.md describes every field). Every scalar
 * arrives as text (the reader uses YAML's failsafe schema), so numbers are text with a
 * pattern here and are converted by the compiler. Each `description` completes the sentence
 * "must be ..." in messages.
 */

/** Functionary names become key file names (`--keys DIR/<name>`): one safe path segment. */
export const FUNCTIONARY_NAME = '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$';

const TEXT = { type: 'string', maxLength: CAPS.stringLength, description: 'text' } as const;
const ARGV = {
  type: ['string', 'array'],
  minLength: 1,
  minItems: 1,
  maxItems: CAPS.commandArgs,
  items: TEXT,
  description: 'a command: a list of arguments, or one string split like a shell would',
} as const;
const RULES = {
  type: 'array',
  maxItems: CAPS.rulesPerList,
  items: { type: 'string', minLength: 1, maxLength: MAX_RULE_STRING_LENGTH, description: 'a rule such as "DISALLOW *"' },
  description: 'a list of artifact rules, each one string',
} as const;
const NAME = { type: 'string', minLength: 1, maxLength: 255, description: 'a name' } as const;
/** A path in a step's workspace or the final product (checked as an artifact name by the compiler). */
const ARTIFACT_PATH = (what: string) => ({ type: 'string', minLength: 1, maxLength: CAPS.stringLength, description: what }) as const;

const FUNCTIONARY = {
  type: ['string', 'object'],
  minLength: 1,
  required: ['key'],
  additionalProperties: false,
  properties: {
    key: { type: 'string', minLength: 1, description: 'the path of a public key file' },
    keyid: { type: 'string', pattern: '^[0-9a-f]{8,64}$', description: 'a keyid: 8 to 64 lowercase hex digits' },
  },
  description: 'a public key file path, or a mapping {key: PATH, keyid: HEX}',
} as const;

const STEP = {
  type: 'object',
  required: ['name', 'functionaries'],
  additionalProperties: false,
  properties: {
    name: NAME,
    functionaries: { type: 'array', maxItems: CAPS.keysPerLayout, items: NAME, description: 'a list of functionary names' },
    threshold: { type: 'string', pattern: '^[1-9][0-9]{0,2}$', description: 'a whole number from 1 to 999' },
    run: ARGV,
    expected_command: { ...ARGV, minLength: 0, minItems: 0 },
    materials: RULES,
    products: RULES,
    timeout: { type: 'string', pattern: '^[0-9]{1,9}([.][0-9]{1,9})?$', description: TIMEOUT_RULE },
    env: {
      type: 'array',
      maxItems: 100,
      items: { type: 'string', pattern: ENV_NAME.source, description: 'an environment variable name' },
      description: 'a list of environment variable names, passed through from the environment pipeline run is started in',
    },
    network: { type: 'string', enum: ['true', 'false'], description: 'true or false' },
    devices: {
      type: 'array',
      maxItems: 100,
      items: { type: 'string', pattern: DEVICE_PATH.source, description: 'a device path under /dev, such as /dev/nvidia0' },
      description: 'a list of device paths under /dev',
    },
    uses: { type: 'string', enum: ['model-sign'], description: 'a built-in step: model-sign' },
    model: ARTIFACT_PATH("the model to sign: a file or directory among the step's materials"),
    signature: ARTIFACT_PATH('where the signature goes, such as model.pkl.sig'),
  },
  description: 'a mapping with name, functionaries, run, materials, products',
} as const;

const INSPECTION = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: {
    name: NAME,
    run: ARGV,
    materials: RULES,
    products: RULES,
    uses: { type: 'string', enum: ['model-verify'], description: 'a built-in inspection: model-verify' },
    model: ARTIFACT_PATH('the model to verify: a file or directory of the final product'),
    signature: ARTIFACT_PATH('the signature to verify it with, such as model.pkl.sig'),
    signer: { ...NAME, description: 'the functionary whose key must have signed the model' },
  },
  description: 'a mapping with name, run, materials, products',
} as const;

export const SOURCE_SCHEMA = {
  $id: 'intoto-yaml-layout',
  type: 'object',
  required: ['functionaries', 'steps'],
  additionalProperties: false,
  properties: {
    expires: { type: 'string', description: 'a UTC time of the form YYYY-MM-DDTHH:MM:SSZ' },
    expires_in: { type: 'string', pattern: '^[0-9]{1,7}[hdw]$', description: 'a duration such as 12h, 180d or 26w' },
    readme: TEXT,
    functionaries: {
      type: 'object',
      minProperties: 1,
      maxProperties: CAPS.keysPerLayout,
      propertyNames: { pattern: FUNCTIONARY_NAME },
      additionalProperties: FUNCTIONARY,
      description: 'a mapping of functionary names to public key files',
    },
    inputs: {
      type: 'object',
      maxProperties: 10_000,
      additionalProperties: { type: 'string', minLength: 1, description: 'a file or directory path' },
      description: 'a mapping of artifact names to files or directories',
    },
    outputs: { type: 'array', maxItems: 10_000, items: { type: 'string', minLength: 1, description: 'a pattern' }, description: 'a list of patterns' },
    steps: { type: 'array', minItems: 1, maxItems: CAPS.stepsPerLayout, items: STEP, description: 'a non-empty list of steps' },
    inspections: { type: 'array', maxItems: CAPS.stepsPerLayout, items: INSPECTION, description: 'a list of inspections' },
  },
  description: 'a mapping with expires, readme, functionaries, steps and inspections',
} as const;

/** Fields people carry over from JSON layouts, and what this format calls them. */
const RENAMED: ReadonlyMap<string, string> = new Map([
  ['expected_materials', 'materials'],
  ['expected_products', 'products'],
  ['inspect', 'inspections'],
  ['pubkeys', 'functionaries'],
  ['keys', 'functionaries'],
  ['command', 'run'],
]);

let validator: ValidateFunction | undefined;

function validate(): ValidateFunction {
  validator ??= new Ajv({ allErrors: true, strict: true, allowUnionTypes: true, verbose: true }).compile(SOURCE_SCHEMA);
  return validator;
}

/** Checks the tree against {@link SOURCE_SCHEMA}; one `schema` error per violation, with its place. Never throws. */
export function schemaDiagnostics(tree: SourceTree): Diagnostic[] {
  const check = validate();
  if (check(tree.value)) return [];
  const errors = (check.errors ?? []).filter((e) => !(e.keyword === 'pattern' && e.propertyName !== undefined));
  const out: Diagnostic[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    const { pointer, message, part } = describe(e);
    const key = `${pointer} ${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(diagnostic('error', 'schema', 'E_SCHEMA', `${pointer || '/'}: ${message}`, { path: pointer || '/', position: tree.positionOf(pointer, part) }));
  }
  return out;
}

function describe(e: ErrorObject): { pointer: string; message: string; part: 'key' | 'value' } {
  const description = (e.parentSchema as { description?: string } | undefined)?.description;
  const got = shown(e.data as JsonValue | undefined);
  switch (e.keyword) {
    case 'required': {
      const field = (e.params as { missingProperty: string }).missingProperty;
      return { pointer: e.instancePath, message: `missing field "${field}"`, part: 'value' };
    }
    case 'additionalProperties': {
      const field = (e.params as { additionalProperty: string }).additionalProperty;
      const renamed = RENAMED.get(field);
      const known = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {});
      const near = renamed === undefined ? closest(field, known) : undefined;
      const hint = renamed !== undefined ? ` (this format calls it "${renamed}")` : near !== undefined ? ` (did you mean "${near}"?)` : '';
      return { pointer: `${e.instancePath}/${pointerSegment(field)}`, message: `unknown field "${field}"${hint}`, part: 'key' };
    }
    case 'propertyNames': {
      const name = String((e.params as { propertyName?: string }).propertyName ?? '');
      return {
        pointer: `${e.instancePath}/${pointerSegment(name)}`,
        message: `functionary name ${JSON.stringify(name)} must be 1 to 64 letters, digits, '_', '.' or '-', not starting with '.' or '-'`,
        part: 'key',
      };
    }
    case 'minProperties':
    case 'minItems':
      return { pointer: e.instancePath, message: `must be ${description ?? 'non-empty'}, got an empty one`, part: 'value' };
    case 'maxProperties':
    case 'maxItems':
    case 'maxLength': {
      const limit = (e.params as { limit?: number }).limit ?? 0;
      const unit = e.keyword === 'maxLength' ? 'characters' : e.keyword === 'maxItems' ? 'items' : 'entries';
      return { pointer: e.instancePath, message: `has more than ${limit} ${unit} (the limit)`, part: 'value' };
    }
    case 'enum': {
      const allowed = ((e.params as { allowedValues?: unknown[] }).allowedValues ?? []).map(String);
      const near = typeof e.data === 'string' ? closest(e.data, allowed) : undefined;
      const hint = near !== undefined && near !== e.data ? ` (did you mean "${near}"?)` : '';
      return { pointer: e.instancePath, message: `must be ${description ?? allowed.join(' or ')}, got ${got}${hint}`, part: 'value' };
    }
    default: {
      // `run: [train.py, {MODEL}]`: a placeholder written bare is a YAML mapping.
      const bare = got === 'a mapping' && e.keyword === 'type' && String((e.params as { type?: unknown }).type).includes('string');
      const hint = bare ? ' (a value that starts with "{" is a YAML mapping: quote it, as in "{MODEL}")' : '';
      return { pointer: e.instancePath, message: `must be ${description ?? e.message ?? e.keyword}, got ${got}${hint}`, part: 'value' };
    }
  }
}

/** The known name within two edits (a swap counts as one) of `name`, if exactly one is nearest. */
export function closest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  let tie = false;
  for (const candidate of known) {
    const d = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) [best, bestDistance, tie] = [candidate, d, false];
    else if (d === bestDistance) tie = true;
  }
  return tie ? undefined : best;
}

/** Optimal string alignment distance (insert, delete, substitute, swap neighbours), for short names. */
function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2 || a.length > 64 || b.length > 64) return 99;
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      const row = d[i]!;
      row[j] = Math.min(d[i - 1]![j]! + 1, row[j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) row[j] = Math.min(row[j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

function shown(value: JsonValue | undefined): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}...` : value);
  if (Array.isArray(value)) return 'a list';
  if (value === null || value === undefined) return 'nothing';
  return typeof value === 'object' ? 'a mapping' : typeof value;
}
