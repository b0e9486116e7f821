import { createHash } from 'node:crypto';
import { parseJson } from '../canonical/parse.js';
import { getOwn, isJsonObject, type JsonObject, type JsonValue } from '../canonical/json.js';
import { InTotoError, RegistryError } from '../errors.js';
import { isDigest } from './reference.js';
import { OCI_INDEX, OCI_MANIFEST } from './media-types.js';

/**
 * OCI manifests, indexes and descriptors (image spec v1.1): read strictly from bytes that are
 * still untrusted (a registry's answer), written with a fixed key order so that the same
 * content always gives the same bytes and so the same digest.
 */

/** The distribution spec's floor for what a registry must accept; we read nothing larger. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** How many layers or index entries we accept in one document. */
export const MAX_DESCRIPTORS = 100_000;

export interface Descriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly artifactType?: string;
  readonly annotations?: Readonly<Record<string, string>>;
}

export interface ImageManifest {
  readonly mediaType: typeof OCI_MANIFEST;
  readonly artifactType?: string;
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
  readonly subject?: Descriptor;
  readonly annotations?: Readonly<Record<string, string>>;
}

export interface ImageIndex {
  readonly mediaType: typeof OCI_INDEX;
  readonly artifactType?: string;
  readonly manifests: readonly Descriptor[];
  readonly subject?: Descriptor;
  readonly annotations?: Readonly<Record<string, string>>;
}

/** `sha256:` and the hex SHA-256 of `bytes`. */
export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

function malformed(where: string, why: string): never {
  throw new RegistryError('E_MANIFEST', `${where}: ${why}`);
}

function parseDocument(bytes: Uint8Array, where: string): JsonObject {
  if (bytes.length > MAX_MANIFEST_BYTES) malformed(where, `${bytes.length} bytes, over the limit of ${MAX_MANIFEST_BYTES}`);
  let value: JsonValue;
  try {
    value = parseJson(bytes, { source: where, maxDepth: 16 });
  } catch (error) {
    throw new RegistryError('E_MANIFEST', `${where}: not valid JSON: ${(error as InTotoError).message}`, { cause: error });
  }
  if (!isJsonObject(value)) malformed(where, 'not a JSON object');
  return value;
}

function optionalString(object: JsonObject, key: string, where: string): string | undefined {
  const value = getOwn(object, key);
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length > 1024) malformed(where, `${key} is not a string of at most 1024 characters`);
  return value;
}

function annotationsOf(object: JsonObject, where: string): Record<string, string> | undefined {
  const value = getOwn(object, 'annotations');
  if (value === undefined) return undefined;
  if (!isJsonObject(value)) malformed(where, 'annotations is not an object');
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  const keys = Object.keys(value);
  if (keys.length > 256) malformed(where, 'more than 256 annotations');
  for (const key of keys) {
    const v = value[key];
    if (typeof v !== 'string' || v.length > 65536) malformed(`${where}.annotations`, `${JSON.stringify(key)} is not a string of at most 65536 characters`);
    out[key] = v;
  }
  return out;
}

/**
 * Reads a descriptor, checking digest (sha256 only), size (a safe non-negative integer) and
 * media type.
 * @throws RegistryError E_MANIFEST
 */
export function parseDescriptor(value: JsonValue | undefined, where: string): Descriptor {
  if (!isJsonObject(value)) malformed(where, 'not a descriptor object');
  const mediaType = getOwn(value, 'mediaType');
  const digest = getOwn(value, 'digest');
  const size = getOwn(value, 'size');
  if (typeof mediaType !== 'string' || mediaType.length === 0 || mediaType.length > 255) malformed(where, 'mediaType is missing or not a string');
  if (typeof digest !== 'string' || !isDigest(digest)) malformed(where, `digest ${JSON.stringify(digest)} is not sha256: and 64 lower-case hex digits`);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) malformed(where, 'size is not a non-negative integer');
  const artifactType = optionalString(value, 'artifactType', where);
  const annotations = annotationsOf(value, where);
  return {
    mediaType,
    digest,
    size,
    ...(artifactType === undefined ? {} : { artifactType }),
    ...(annotations === undefined ? {} : { annotations }),
  };
}

function descriptorList(value: JsonValue | undefined, where: string): Descriptor[] {
  if (!Array.isArray(value)) malformed(where, 'not a list');
  const list = value as readonly JsonValue[];
  if (list.length > MAX_DESCRIPTORS) malformed(where, `more than ${MAX_DESCRIPTORS} entries`);
  return list.map((item, i) => parseDescriptor(item, `${where}[${i}]`));
}

function checkSchema(object: JsonObject, mediaType: string, where: string): void {
  if (getOwn(object, 'schemaVersion') !== 2) malformed(where, 'schemaVersion is not 2');
  const declared = getOwn(object, 'mediaType');
  if (declared !== undefined && declared !== mediaType) malformed(where, `mediaType is ${JSON.stringify(declared)}, expected ${mediaType}`);
}

/**
 * Reads an OCI image manifest.
 * @throws RegistryError E_MANIFEST
 */
export function parseImageManifest(bytes: Uint8Array, where = 'manifest'): ImageManifest {
  const object = parseDocument(bytes, where);
  checkSchema(object, OCI_MANIFEST, where);
  if (getOwn(object, 'manifests') !== undefined) malformed(where, 'is an index (it has "manifests"), not an image manifest');
  const artifactType = optionalString(object, 'artifactType', where);
  const subject = getOwn(object, 'subject');
  const annotations = annotationsOf(object, where);
  return {
    mediaType: OCI_MANIFEST,
    ...(artifactType === undefined ? {} : { artifactType }),
    config: parseDescriptor(getOwn(object, 'config'), `${where}.config`),
    layers: descriptorList(getOwn(object, 'layers'), `${where}.layers`),
    ...(subject === undefined ? {} : { subject: parseDescriptor(subject, `${where}.subject`) }),
    ...(annotations === undefined ? {} : { annotations }),
  };
}

/**
 * Reads an OCI image index (the referrers API's answer, or a fallback referrers tag).
 * @throws RegistryError E_MANIFEST
 */
export function parseImageIndex(bytes: Uint8Array, where = 'index'): ImageIndex {
  const object = parseDocument(bytes, where);
  checkSchema(object, OCI_INDEX, where);
  const artifactType = optionalString(object, 'artifactType', where);
  const subject = getOwn(object, 'subject');
  const annotations = annotationsOf(object, where);
  return {
    mediaType: OCI_INDEX,
    ...(artifactType === undefined ? {} : { artifactType }),
    manifests: descriptorList(getOwn(object, 'manifests'), `${where}.manifests`),
    ...(subject === undefined ? {} : { subject: parseDescriptor(subject, `${where}.subject`) }),
    ...(annotations === undefined ? {} : { annotations }),
  };
}

function descriptorJson(d: Descriptor): Record<string, unknown> {
  return {
    mediaType: d.mediaType,
    ...(d.artifactType === undefined ? {} : { artifactType: d.artifactType }),
    digest: d.digest,
    size: d.size,
    ...(d.annotations === undefined ? {} : { annotations: sortedRecord(d.annotations) }),
  };
}

function sortedRecord(record: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of Object.keys(record).sort()) out[key] = record[key]!;
  return out;
}

/** The bytes of a manifest: compact JSON, keys in a fixed order (the same content, the same digest). */
export function serializeImageManifest(m: Omit<ImageManifest, 'mediaType'>): Uint8Array {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      ...(m.artifactType === undefined ? {} : { artifactType: m.artifactType }),
      config: descriptorJson(m.config),
      layers: m.layers.map(descriptorJson),
      ...(m.subject === undefined ? {} : { subject: descriptorJson(m.subject) }),
      ...(m.annotations === undefined ? {} : { annotations: sortedRecord(m.annotations) }),
    }),
    'utf8',
  );
}

/** The bytes of an index, as {@link serializeImageManifest}. */
export function serializeImageIndex(index: Omit<ImageIndex, 'mediaType'>): Uint8Array {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      ...(index.artifactType === undefined ? {} : { artifactType: index.artifactType }),
      manifests: index.manifests.map(descriptorJson),
      ...(index.subject === undefined ? {} : { subject: descriptorJson(index.subject) }),
      ...(index.annotations === undefined ? {} : { annotations: sortedRecord(index.annotations) }),
    }),
    'utf8',
  );
}
