import { createPublicKey, type KeyObject } from 'node:crypto';
import { lstatSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { JsonObject } from '../canonical/json.js';
import { InTotoError, ModelError, UsageError, asInTotoError } from '../errors.js';
import { readRegularFileSync } from '../io/files.js';
import { BUNDLE_LIMITS, bundlePae, paeV02, readBundle, type ParsedBundle } from './bundle.js';
import { verifyCertificateChain } from './chain.js';
import { PAYLOAD_TYPE, type SignedManifest } from './format.js';
import { hashModelFiles, isSingleFile, listModel, type ModelFile } from './files.js';
import { ecHashOf, ecVerify, keyHint } from './keys.js';
import { publicKeyFromPemText } from '../crypto/pem.js';
import { verifyKeylessBundle } from './keyless.js';
import { isUnder } from './paths.js';
import { hashShards } from './shards.js';
import { defaultSignaturePath, modelIgnores } from './sign.js';
import { readStatement } from './statement.js';

/**
 * Verifying a model against an OMS signature (spec §8), in this order:
 *   1. read the bundle (structure only);
 *   2. check the signature with what the caller trusts: a public key (the bundle's key hint
 *      must name it), a CA certificate (the bundle's chain must lead to it, valid now), or a
 *      Sigstore identity and issuer (offline, against a trusted root);
 *   3. decode the payload from the verified bytes and check it is an OMS Statement whose root
 *      digest is the hash of its resource digests in payload order;
 *   4. list the model as the Statement's serialization says (its symlink policy and ignore
 *      paths, plus the defaults and the caller's), hash every file on every core; or, when the
 *      caller already hashed the files (`digests`: the gate hashed each while downloading it),
 *      take exactly those files and digests, reading nothing;
 *   5. compare: every resource present and equal, nothing else there.
 * {@link verifyModel} returns a result object with every mismatch; {@link verifyModelOrThrow}
 * throws its error.
 */

/** What the verifier trusts. */
export type ModelTrust =
  | { readonly method: 'key'; readonly key: KeyObject }
  | { readonly method: 'certificate'; readonly anchors: readonly Buffer[] }
  | { readonly method: 'sigstore'; readonly identity: string; readonly issuer: string; readonly trustedRoot?: JsonObject };

export interface VerifyModelOptions {
  /** The model: a directory, or one file. */
  readonly dir: string;
  /** The bundle (default `<dir>/model.sig`, or `<file>.sig` for a single file). */
  readonly signature?: string;
  readonly trust: ModelTrust;
  /** More model-relative paths to leave out of the comparison. */
  readonly ignorePaths?: readonly string[];
  /** Leave out `.git`, `.gitattributes`, `.github`, `.gitignore` at the top (default true). */
  readonly ignoreGitPaths?: boolean;
  /**
   * The model's files with their SHA-256 already computed from their bytes (the gate hashes
   * each while it downloads it): model-relative name → digest (hex, or `sha256:<hex>`). Then
   * the directory is not listed, and exactly these files are compared with the signature: no
   * ignore path applies (every file given must be signed, every signed file given). Under the
   * `files` serialization nothing is read; a shard signature hashes the named files under `dir`.
   */
  readonly digests?: ReadonlyMap<string, string>;
  /** When certificates must be valid (default: now). */
  readonly now?: Date;
  readonly threads?: number;
}

/** One way the model differs from its signature. */
export type ModelMismatch =
  | { readonly kind: 'missing'; readonly name: string; readonly expected: string }
  | { readonly kind: 'extra'; readonly name: string; readonly actual: string; readonly renamedFrom?: string }
  | { readonly kind: 'changed'; readonly name: string; readonly expected: string; readonly actual: string }
  | { readonly kind: 'not-regular'; readonly name: string; readonly what: string; readonly expected?: string };

export interface ModelVerification {
  readonly verified: boolean;
  readonly model: string;
  readonly signature: string;
  readonly method: ModelTrust['method'];
  /** Who signed: the key hint, the leaf certificate's subject, or the Sigstore identity. */
  readonly signer: string | undefined;
  /** The verified Statement (absent when the signature or the Statement failed). */
  readonly manifest: SignedManifest | undefined;
  readonly filesChecked: number;
  readonly mismatches: readonly ModelMismatch[];
  readonly warnings: readonly string[];
  /** Why it failed: E_MODEL_MISMATCH when only the files differ. */
  readonly error: InTotoError | undefined;
}

/** Verifies; never throws our errors (they are in `error`). */
export async function verifyModel(options: VerifyModelOptions): Promise<ModelVerification> {
  const warnings: string[] = [];
  let signature = options.signature ?? '';
  const base = { model: options.dir, method: options.trust.method, warnings };
  let signer: string | undefined;
  let manifest: SignedManifest | undefined;
  try {
    signature = options.signature ?? defaultSignaturePath(options.dir);
    const bytes = readRegularFileSync(signature, { maxBytes: BUNDLE_LIMITS.maxBytes, what: 'signature bundle' });
    const bundle = readBundle(bytes, signature);
    signer = await checkSignature(bundle, options, signature, warnings);
    if (bundle.payloadType !== PAYLOAD_TYPE) {
      throw new ModelError('E_MODEL_STATEMENT', `${signature}: the signed payloadType is ${JSON.stringify(bundle.payloadType)}, not ${PAYLOAD_TYPE}`);
    }
    manifest = readStatement(bundle.payload);
    if (manifest.format === 'v0.2') warnings.push('the signature is in model_signing 0.2\'s deprecated format (files as subjects, no serialization): re-sign with a current signer');
    const { mismatches, filesChecked } = await compareFiles(options, signature, manifest);
    const error =
      mismatches.length === 0
        ? undefined
        : new ModelError('E_MODEL_MISMATCH', `${options.dir}: ${summarize(mismatches)}`, {
            context: { file: options.dir },
            details: mismatches.map(describeMismatch),
          });
    return { ...base, verified: error === undefined, signature, signer, manifest, filesChecked, mismatches, error };
  } catch (thrown) {
    return { ...base, verified: false, signature, signer, manifest, filesChecked: 0, mismatches: [], error: asInTotoError(thrown) };
  }
}

/**
 * As {@link verifyModel}, but throws the failure.
 * @throws ModelError E_MODEL_BUNDLE, E_MODEL_SIGNATURE, E_MODEL_STATEMENT, E_MODEL_UNSUPPORTED,
 *   E_MODEL_MISMATCH; IoError; CryptoError (a key the method cannot use)
 */
export async function verifyModelOrThrow(options: VerifyModelOptions): Promise<ModelVerification> {
  const result = await verifyModel(options);
  if (result.error !== undefined) throw result.error;
  return result;
}

const METHOD_FLAGS: Readonly<Record<ModelTrust['method'], string>> = {
  key: 'a public key (-k)',
  certificate: 'a certificate chain (--certificate-chain)',
  sigstore: 'a Sigstore identity (--identity and --issuer)',
};

async function checkSignature(bundle: ParsedBundle, options: VerifyModelOptions, source: string, warnings: string[]): Promise<string> {
  const { trust } = options;
  const { material } = bundle;
  if (material.method !== trust.method) {
    throw new ModelError('E_MODEL_SIGNATURE', `${source}: the bundle is signed for ${METHOD_FLAGS[material.method]}, but ${METHOD_FLAGS[trust.method]} was given`, {
      context: { file: source },
    });
  }
  if (trust.method === 'sigstore') {
    const keyless = await verifyKeylessBundle(bundle.json, trust, source);
    return `${keyless.identity} (issuer ${keyless.issuer})`;
  }
  let key: KeyObject;
  let who: string;
  if (trust.method === 'key' && material.method === 'key') {
    key = trust.key;
    const hint = keyHint(key);
    who = `key ${hint.slice(0, 16)}`;
    if (material.hint !== undefined && material.hint !== hint) {
      throw new ModelError('E_MODEL_SIGNATURE', `${source}: signed with another key (hint ${material.hint}), not the given key (hint ${hint})`, { context: { file: source, keyid: material.hint } });
    }
    if (material.hint === undefined) {
      warnings.push('the bundle names its key by rawBytes (model_signing before 1.1), not by a hint');
      const named = rawKey(material.rawBytes);
      if (named !== undefined && keyHint(named) !== hint) {
        throw new ModelError('E_MODEL_SIGNATURE', `${source}: the bundle names another key (hint ${keyHint(named)}), not the given key (hint ${hint})`, { context: { file: source } });
      }
    }
  } else if (trust.method === 'certificate' && material.method === 'certificate') {
    const chain = verifyCertificateChain(material.chain, trust.anchors, options.now ?? new Date());
    key = chain.leafKey;
    who = `${chain.leafSubject} (chain to ${chain.anchorSubject})`;
  } else {
    throw new ModelError('E_MODEL_SIGNATURE', `${source}: unexpected verification material`);
  }
  const hash = ecHashOf(key, source);
  if (ecVerify(key, hash, bundlePae(bundle), bundle.signature.sig)) return who;
  if (ecVerify(key, 'sha256', paeV02(bundle), bundle.signature.sig)) {
    warnings.push("the signature covers model_signing 0.2's malformed PAE (accepted for compatibility): re-sign with a current signer");
    return who;
  }
  throw new ModelError('E_MODEL_SIGNATURE', `${source}: the DSSE signature does not verify with ${who}`, { context: { file: source } });
}

function rawKey(raw: Buffer | undefined): KeyObject | undefined {
  if (raw === undefined) return undefined;
  try {
    const text = raw.toString('latin1');
    // A bundle is the signer's to write: PEM from it goes through our parser, never to OpenSSL
    // as text, which would prompt for a pass phrase at a terminal on encryption headers.
    return text.includes('-----BEGIN') ? publicKeyFromPemText(text, 'the bundle') : createPublicKey({ key: raw, format: 'der', type: 'spki' });
  } catch {
    return undefined;
  }
}

interface Actual {
  readonly digests: Map<string, string>;
  readonly irregular: Map<string, string>;
}

async function compareFiles(options: VerifyModelOptions, signature: string, manifest: SignedManifest): Promise<{ mismatches: ModelMismatch[]; filesChecked: number }> {
  const known = options.digests;
  const { files, irregular } = known === undefined ? listForVerification(options, signature, manifest) : knownFiles(options.dir, known);
  const { method } = manifest.serialization;
  const actual: Actual = { digests: new Map(), irregular };
  if (method === 'files') {
    const digests = known === undefined ? await hashModelFiles(files, options.threads) : files.map((file) => hexDigest(known.get(file.name), file.name));
    files.forEach((file, i) => {
      const digest = digests[i];
      if (digest === undefined) irregular.set(file.name, 'no longer a regular file');
      else actual.digests.set(file.name, digest);
    });
  } else {
    const size = manifest.serialization.shardSize ?? 1;
    for (const file of files) {
      for (const shard of hashShards(file.path, size, file.name)) actual.digests.set(`${file.name}:${shard.start}:${shard.end}`, shard.digest);
    }
  }
  return { mismatches: diff(manifest, actual, method), filesChecked: files.length };
}

/** The model as the signature's serialization lists it (symlink policy, ignore paths: the Statement's, the defaults and the caller's). */
function listForVerification(options: VerifyModelOptions, signature: string, manifest: SignedManifest): { files: ModelFile[]; irregular: Map<string, string> } {
  const { dir } = options;
  const single = isSingleFile(dir);
  const ignore = modelIgnores(dir, options, single, signature, manifest.serialization.ignorePaths ?? []);
  const listing = listModel(dir, { ignore, allowSymlinks: manifest.serialization.allowSymlinks });
  const files = [...listing.files];
  const irregular = new Map(listing.irregular.map((p) => [p.name, p.what]));
  const { method } = manifest.serialization;
  const expectedPaths = new Set(manifest.resources.map((r) => resourcePath(r.name, method)));
  if (!single) addIgnoredButSigned(dir, files, irregular, expectedPaths, ignore, manifest.serialization.allowSymlinks);
  if (single) {
    // model_signing names the one file "."; the spec names it by its base name: either fits.
    const only = files[0];
    if (only !== undefined && expectedPaths.has('.') && !expectedPaths.has(only.name)) files[0] = { name: '.', path: only.path };
  }
  return { files, irregular };
}

/** The file a resource names: the name itself, or for a shard (`name:start:end`) the name without its range. */
function resourcePath(name: string, method: 'files' | 'shards'): string {
  return method === 'shards' ? name.replace(/:(\d+):(\d+)$/, '') : name;
}

/** The files a caller already hashed, by name (each under `dir`, read only for a shard signature). */
function knownFiles(dir: string, digests: ReadonlyMap<string, string>): { files: ModelFile[]; irregular: Map<string, string> } {
  return { files: [...digests.keys()].map((name) => ({ name, path: join(dir, ...name.split('/')) })), irregular: new Map() };
}

/** A caller's digest as lower-case hex. @throws UsageError for anything but a SHA-256 digest */
function hexDigest(digest: string | undefined, name: string): string {
  const hex = digest?.startsWith('sha256:') ? digest.slice(7) : digest;
  if (hex === undefined || !/^[0-9a-f]{64}$/.test(hex)) throw new UsageError('E_USAGE', `the digest given for ${JSON.stringify(name)} is not a SHA-256 digest: ${JSON.stringify(digest)}`);
  return hex;
}

/**
 * A signed file that lies under an ignore path (one the verifier added, say) is still checked:
 * ignore paths only excuse files the signature does not list.
 */
function addIgnoredButSigned(
  dir: string,
  files: ModelFile[],
  irregular: Map<string, string>,
  expected: ReadonlySet<string>,
  ignore: readonly string[],
  allowSymlinks: boolean,
): void {
  const listed = new Set(files.map((f) => f.name));
  for (const name of expected) {
    if (listed.has(name) || irregular.has(name) || !ignore.some((p) => isUnder(name, p))) continue;
    const path = join(dir, name);
    try {
      const link = lstatSync(path);
      if (link.isFile()) files.push({ name, path });
      else if (link.isSymbolicLink() && allowSymlinks && statSync(path).isFile()) files.push({ name, path: realpathSync.native(path) });
      else if (link.isSymbolicLink()) irregular.set(name, 'a symbolic link');
    } catch {
      // Absent: reported as missing.
    }
  }
}

function diff(manifest: SignedManifest, actual: Actual, method: 'files' | 'shards'): ModelMismatch[] {
  const mismatches: ModelMismatch[] = [];
  const missing = new Map<string, string>();
  const expected = new Set<string>();
  for (const resource of manifest.resources) {
    expected.add(resource.name);
    const what = actual.irregular.get(resourcePath(resource.name, method));
    const digest = actual.digests.get(resource.name);
    if (what !== undefined) mismatches.push({ kind: 'not-regular', name: resource.name, what, expected: resource.digest });
    else if (digest === undefined) {
      mismatches.push({ kind: 'missing', name: resource.name, expected: resource.digest });
      missing.set(resource.digest, resource.name);
    } else if (digest !== resource.digest) mismatches.push({ kind: 'changed', name: resource.name, expected: resource.digest, actual: digest });
  }
  const expectedPaths = new Set([...expected].map((name) => resourcePath(name, method)));
  for (const [name, digest] of actual.digests) {
    if (expected.has(name)) continue;
    const from = missing.get(digest);
    mismatches.push(from === undefined ? { kind: 'extra', name, actual: digest } : { kind: 'extra', name, actual: digest, renamedFrom: from });
  }
  for (const [name, what] of actual.irregular) if (!expectedPaths.has(name)) mismatches.push({ kind: 'not-regular', name, what });
  return mismatches;
}

function summarize(mismatches: readonly ModelMismatch[]): string {
  const count = (kind: ModelMismatch['kind']): number => mismatches.filter((m) => m.kind === kind).length;
  const parts = [
    [count('changed'), 'changed'],
    [count('missing'), 'missing'],
    [count('extra'), 'not signed (extra)'],
    [count('not-regular'), 'not regular files'],
  ]
    .filter(([n]) => (n as number) > 0)
    .map(([n, what]) => `${n} ${what}`);
  const first = mismatches[0];
  return `the files do not match the signature: ${parts.join(', ')}${first === undefined ? '' : `; first: ${describeMismatch(first)}`}`;
}

/** One line per mismatch, with both digests where there are two. */
export function describeMismatch(m: ModelMismatch): string {
  switch (m.kind) {
    case 'missing':
      return `${m.name}: missing (signed sha256 ${m.expected})`;
    case 'extra':
      return `${m.name}: not in the signature (sha256 ${m.actual})${m.renamedFrom === undefined ? '' : `; same content as the missing ${m.renamedFrom} (renamed?)`}`;
    case 'changed':
      return `${m.name}: changed: sha256 ${m.actual} on disk, ${m.expected} signed`;
    case 'not-regular':
      return `${m.name}: is ${m.what}${m.expected === undefined ? '' : ` (signed as a file, sha256 ${m.expected})`}`;
  }
}
