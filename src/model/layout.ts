import { FormatError, VerificationError, type InTotoError } from '../errors.js';
import { getOwn, isJsonObject, type JsonObject, type JsonValue } from '../canonical/json.js';
import { gpgKeyObjectError, isGpgKeyObject, publicKeyFromObject, publicKeyToObject, type PublicKey } from '../crypto/keys.js';
import { stepNameProblem } from './names.js';
import { substituteParams } from './params.js';
import { assertMatchTargets, parseRuleList, ruleToTokens, type ArtifactRule } from './rules.js';
import { checkSchema, LAYOUT_SCHEMA } from './schemas.js';

/**
 * Layout metadata: the project owner's signed plan of the supply chain (in-toto v0.9 §4.2).
 * Read once, checked whole, frozen; artifact rules are parsed here and never re-parsed.
 */

export interface Step {
  readonly name: string;
  readonly threshold: number;
  /** Authorised functionary keyids, in layout order, each in the layout's `keys`. */
  readonly pubkeys: readonly string[];
  readonly expectedCommand: readonly string[];
  readonly expectedMaterials: readonly ArtifactRule[];
  readonly expectedProducts: readonly ArtifactRule[];
}

export interface Inspection {
  readonly name: string;
  readonly run: readonly string[];
  readonly expectedMaterials: readonly ArtifactRule[];
  readonly expectedProducts: readonly ArtifactRule[];
}

export interface Layout {
  readonly type: 'layout';
  /** Exactly `YYYY-MM-DDTHH:MM:SSZ`. */
  readonly expires: string;
  /** `expires` in milliseconds since the epoch (UTC). */
  readonly expiresAt: number;
  readonly readme: string;
  readonly keys: ReadonlyMap<string, PublicKey>;
  readonly steps: readonly Step[];
  readonly inspections: readonly Inspection[];
}

export interface LayoutReadOptions {
  /** `--param` values substituted into rules, expected commands and inspection commands. */
  readonly params?: ReadonlyMap<string, string>;
  /**
   * Leave `{NAME}` placeholders as written instead of substituting (signing and checking a
   * parameterised layout, where values come only at verification).
   */
  readonly keepPlaceholders?: boolean;
}

const EXPIRES = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$/;

/**
 * Parses `expires`, which must be exactly `YYYY-MM-DDTHH:MM:SSZ` and a real UTC time.
 * @throws FormatError E_EXPIRES_FORMAT
 */
export function parseExpires(text: string, where: string): number {
  const m = EXPIRES.exec(text);
  if (m) {
    const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
    const time = Date.UTC(y, mo - 1, d, h, mi, s);
    const back = new Date(time);
    if (back.getUTCFullYear() === y && back.getUTCMonth() === mo - 1 && back.getUTCDate() === d && h < 24 && mi < 60 && s < 60) {
      return time;
    }
  }
  throw new FormatError('E_EXPIRES_FORMAT', `${where}: expires ${JSON.stringify(text)} is not a UTC time of the form YYYY-MM-DDTHH:MM:SSZ`);
}

/**
 * Reads a layout's `signed` object: schema, expiry format, keys (each keyid checked against
 * its key; the same public key under two keyids refused), step and inspection names
 * (unique, single safe path segments), functionaries (known keys, no repeats, enough distinct
 * keys for the threshold) and artifact rules (parsed, every MATCH naming a known step; a
 * step's MATCH may not name an inspection, which runs only after every step's rules passed).
 * @throws FormatError E_SCHEMA, E_EXPIRES_FORMAT, E_STEP_NAME, E_DUPLICATE_NAME, E_RULE_SYNTAX,
 *   E_RULE_UNKNOWN_STEP, E_PARAM; CryptoError (a bad key); VerificationError E_LAYOUT_KEYS,
 *   E_THRESHOLD
 */
export function layoutFromJson(value: JsonValue, where: string, options: LayoutReadOptions = {}): Layout {
  refuseGpgKeys(value, where);
  checkSchema(LAYOUT_SCHEMA, value, where);
  const object = value as JsonObject;
  const expires = object['expires'] as string;
  const expiresAt = parseExpires(expires, where);
  const keys = readKeys(object['keys'] as JsonObject, where);
  const params = options.params ?? new Map<string, string>();
  const substitute = options.keepPlaceholders
    ? (text: string): string => text
    : (text: string, at: string): string => substituteParams(text, params, at);

  const rawSteps = object['steps'] as readonly JsonObject[];
  const rawInspections = object['inspect'] as readonly JsonObject[];
  const names = checkNames(rawSteps, rawInspections, where);
  // Step rules are checked before any inspection runs: a step's MATCH can read only steps.
  const stepNames = new Set(rawSteps.map((raw) => raw['name'] as string));
  const forSteps: MatchTargets = { known: stepNames, inspections: new Set([...names].filter((n) => !stepNames.has(n))) };
  const forInspections: MatchTargets = { known: names, inspections: new Set() };

  const steps = rawSteps.map((raw): Step => {
    const name = raw['name'] as string;
    const at = `${where}: step '${name}'`;
    const pubkeys = raw['pubkeys'] as readonly string[];
    checkFunctionaries(pubkeys, raw['threshold'] as number, keys, at, name);
    return Object.freeze({
      name,
      threshold: raw['threshold'] as number,
      pubkeys: Object.freeze([...pubkeys]),
      // expected_command only produces a warning; an unresolved placeholder stays as written.
      expectedCommand: Object.freeze((raw['expected_command'] as readonly string[]).map((arg) => lenient(substitute, arg, at))),
      expectedMaterials: rules(raw['expected_materials'], substitute, `${at} expected_materials`, forSteps),
      expectedProducts: rules(raw['expected_products'], substitute, `${at} expected_products`, forSteps),
    });
  });
  const inspections = rawInspections.map((raw): Inspection => {
    const name = raw['name'] as string;
    const at = `${where}: inspection '${name}'`;
    return Object.freeze({
      name,
      run: Object.freeze((raw['run'] as readonly string[]).map((arg, i) => substitute(arg, `${at} run[${i}]`))),
      expectedMaterials: rules(raw['expected_materials'], substitute, `${at} expected_materials`, forInspections),
      expectedProducts: rules(raw['expected_products'], substitute, `${at} expected_products`, forInspections),
    });
  });

  return Object.freeze({
    type: 'layout',
    expires,
    expiresAt,
    readme: object['readme'] as string,
    keys,
    steps: Object.freeze(steps),
    inspections: Object.freeze(inspections),
  });
}

/**
 * A GPG key among the layout's keys is refused by name, before the schema (which would only
 * say that its fields are unexpected). @throws CryptoError E_KEY_UNSUPPORTED
 */
function refuseGpgKeys(value: JsonValue, where: string): void {
  const keys = isJsonObject(value) ? getOwn(value, 'keys') : undefined;
  if (!isJsonObject(keys)) return;
  for (const keyid of Object.keys(keys).slice(0, 1000)) {
    if (isGpgKeyObject(getOwn(keys, keyid) ?? null)) throw gpgKeyObjectError(`${where}: keys[${keyid.slice(0, 80)}]`);
  }
}

function readKeys(object: JsonObject, where: string): ReadonlyMap<string, PublicKey> {
  const keys = new Map<string, PublicKey>();
  const byIdentity = new Map<string, string>();
  for (const keyid of Object.keys(object)) {
    const key = publicKeyFromObject(object[keyid] as JsonValue, { where: `${where}: keys[${keyid}]`, declaredKeyid: keyid });
    // One public key under two keyids would let one functionary count twice toward a threshold.
    const other = byIdentity.get(key.identity);
    if (other !== undefined) {
      throw new VerificationError('E_LAYOUT_KEYS', `${where}: keys ${other} and ${keyid} are the same public key`, {
        context: { keyid },
      });
    }
    byIdentity.set(key.identity, keyid);
    keys.set(keyid, key);
  }
  return keys;
}

function checkNames(steps: readonly JsonObject[], inspections: readonly JsonObject[], where: string): ReadonlySet<string> {
  const names = new Set<string>();
  const all = [...steps.map((s) => ['step', s['name'] as string] as const), ...inspections.map((i) => ['inspection', i['name'] as string] as const)];
  for (const [kind, name] of all) {
    const problem = stepNameProblem(name);
    if (problem !== undefined) {
      throw new FormatError('E_STEP_NAME', `${where}: ${kind} name ${JSON.stringify(name)} ${problem}`, { context: { step: name } });
    }
    if (names.has(name)) {
      throw new FormatError('E_DUPLICATE_NAME', `${where}: more than one step or inspection is named '${name}'`, { context: { step: name } });
    }
    names.add(name);
  }
  return names;
}

function checkFunctionaries(
  pubkeys: readonly string[],
  threshold: number,
  keys: ReadonlyMap<string, PublicKey>,
  at: string,
  step: string,
): void {
  const identities = new Set<string>();
  for (const keyid of pubkeys) {
    const key = keys.get(keyid);
    if (key === undefined) {
      throw new VerificationError('E_LAYOUT_KEYS', `${at}: authorises key ${keyid}, which is not in the layout's keys`, {
        context: { step, keyid },
      });
    }
    if (identities.has(key.identity)) {
      throw new VerificationError('E_LAYOUT_KEYS', `${at}: lists key ${keyid} more than once`, { context: { step, keyid } });
    }
    identities.add(key.identity);
  }
  if (threshold > identities.size) {
    throw new VerificationError(
      'E_THRESHOLD',
      `${at}: threshold ${threshold} can never be met by ${identities.size} authorised key(s)`,
      { context: { step } },
    );
  }
}

type Substitute = (text: string, where: string) => string;

/** What the MATCH rules of a list may read from, and the inspections they may not. */
interface MatchTargets {
  readonly known: ReadonlySet<string>;
  readonly inspections: ReadonlySet<string>;
}

function rules(list: JsonValue | undefined, substitute: Substitute, where: string, targets: MatchTargets): readonly ArtifactRule[] {
  const substituted = (list as readonly (readonly string[])[]).map((tokens, i) => tokens.map((token) => substitute(token, `${where}[${i}]`)));
  const parsed = parseRuleList(substituted, where);
  assertMatchTargets(parsed, targets.known, where, targets.inspections);
  return Object.freeze(parsed);
}

function lenient(substitute: Substitute, text: string, where: string): string {
  try {
    return substitute(text, where);
  } catch (error) {
    if ((error as InTotoError).code === 'E_PARAM') return text;
    throw error;
  }
}

/** The layout's `signed` object in the form in-toto 1.3.1 writes. */
export function layoutToJson(layout: Layout): JsonObject {
  const keys: Record<string, JsonValue> = Object.create(null) as Record<string, JsonValue>;
  for (const [keyid, key] of layout.keys) keys[keyid] = publicKeyToObject(key);
  return {
    _type: 'layout',
    expires: layout.expires,
    inspect: layout.inspections.map((i) => ({
      _type: 'inspection',
      expected_materials: i.expectedMaterials.map(ruleToTokens),
      expected_products: i.expectedProducts.map(ruleToTokens),
      name: i.name,
      run: [...i.run],
    })),
    keys,
    readme: layout.readme,
    steps: layout.steps.map((s) => ({
      _type: 'step',
      expected_command: [...s.expectedCommand],
      expected_materials: s.expectedMaterials.map(ruleToTokens),
      expected_products: s.expectedProducts.map(ruleToTokens),
      name: s.name,
      pubkeys: [...s.pubkeys],
      threshold: s.threshold,
    })),
  };
}
