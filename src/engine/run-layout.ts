import { createHash } from 'node:crypto';
import { EngineError, IoError, type InTotoError } from '../errors.js';
import { artifactNameProblem } from '../model/names.js';
import { MAX_MANIFEST_BYTES, parseImageManifest, serializeImageManifest, type Descriptor, type ImageManifest } from '../oci/manifest.js';
import { DSSE_ENVELOPE, IMAGE_TITLE, INTOTO_LAYOUT, INTOTO_LINK } from '../oci/media-types.js';

/**
 * How a pipeline run lives in an OCI repository (the store of `--store oci://HOST[:PORT]/REPO`).
 * Two kinds of manifest, each under its own tag, each listing the blobs it keeps alive (so a
 * registry's garbage collection never removes what a run still needs):
 *
 *   `<run-id>.pipeline`               the run, published by the layout owner: config = the
 *                                     owner-signed run record (a DSSE envelope, run-record.ts);
 *                                     layers = `root.layout` (the signed layout), then every
 *                                     pipeline input, one raw blob per file
 *   `<run-id>.<step>.<keyid16>`       one run of a step, pushed by its functionary's machine:
 *                                     config = the signed link; layers = every product the
 *                                     link records, one raw blob per file
 *
 * `<step>` is the step's name when it is 1 to 32 of [A-Za-z0-9_-] starting with a letter or
 * digit, else `_` and 32 hex digits of the SHA-256 of the name (never a name: names start with
 * a letter or digit); `<keyid16>` is the first 16 hex digits of the layout's keyid for the
 * functionary's key. A tag is at most 64 + 1 + 33 + 1 + 16 = 115 characters (OCI allows 128).
 *
 * Nothing in a manifest is trusted: the run record and the links are signed, and every byte is
 * fetched by the digest they name. A manifest only says where those bytes are and how large;
 * when it names another digest for an artifact than the signed metadata does, the run is
 * refused (E_STORE). Tags are written once: publishing an existing run id, or pushing a step
 * run whose tag exists, is refused (E_TAG_EXISTS), and every reader checks that a link under
 * `<run-id>.<step>.<keyid16>` is signed by that key, names that step and records that run id,
 * so whoever can push to the repository can break a run, never forge one.
 */

/** The manifests' artifactType. */
export const RUN_ARTIFACT = 'application/vnd.intoto-ts.pipeline.run.v1+json';
export const STEP_ARTIFACT = 'application/vnd.intoto-ts.pipeline.step.v1+json';
/** An artifact's bytes, as they were in the workspace. */
export const ARTIFACT_LAYER = 'application/vnd.intoto-ts.artifact.v1';
/** The layer annotation holding the artifact's name (its path in the workspace). */
export const ARTIFACT_NAME = 'dev.intoto-ts.artifact';
/** Manifest annotations, for people reading the registry; never trusted. */
export const RUN_ID_ANNOTATION = 'dev.intoto-ts.run-id';
export const STEP_ANNOTATION = 'dev.intoto-ts.step';
export const FUNCTIONARY_ANNOTATION = 'dev.intoto-ts.functionary';
export const KEYID_ANNOTATION = 'dev.intoto-ts.keyid';
/** Where a link records its run: a key of its `environment`, signed with the rest. */
export const RUN_ID_ENVIRONMENT = 'intoto-ts.run-id';

/** An artifact as a blob: its name in the workspace, its digest and size. */
export interface ArtifactBlob {
  readonly name: string;
  readonly digest: string;
  readonly size: number;
}

/** The tag of a run. Never throws. */
export function runTag(runId: string): string {
  return `${runId}.pipeline`;
}

/** The tag of one run of `step` by the functionary whose key has `keyid` in the layout. Never throws. */
export function stepRunTag(runId: string, step: string, keyid: string): string {
  return `${runId}.${stepTagPart(step)}.${keyid.slice(0, 16)}`;
}

/** A step name as it appears in tags. Never throws. */
export function stepTagPart(step: string): string {
  return /^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/.test(step) ? step : `_${createHash('sha256').update(step, 'utf8').digest('hex').slice(0, 32)}`;
}

function artifactLayer(blob: ArtifactBlob): Descriptor {
  return { mediaType: ARTIFACT_LAYER, digest: blob.digest, size: blob.size, annotations: { [ARTIFACT_NAME]: blob.name } };
}

/**
 * The run's manifest.
 * @throws IoError E_LIMIT when the inputs do not fit in a manifest a registry accepts (4 MiB)
 */
export function runManifest(options: { readonly runId: string; readonly record: Descriptor; readonly layout: Descriptor; readonly inputs: readonly ArtifactBlob[] }): Uint8Array {
  return bounded(
    serializeImageManifest({
      artifactType: RUN_ARTIFACT,
      config: { mediaType: DSSE_ENVELOPE, digest: options.record.digest, size: options.record.size },
      layers: [{ mediaType: INTOTO_LAYOUT, digest: options.layout.digest, size: options.layout.size, annotations: { [IMAGE_TITLE]: 'root.layout' } }, ...options.inputs.map(artifactLayer)],
      annotations: { [RUN_ID_ANNOTATION]: options.runId },
    }),
    `the run's ${options.inputs.length} inputs`,
  );
}

/**
 * One step run's manifest.
 * @throws IoError E_LIMIT when the products do not fit in a manifest a registry accepts (4 MiB)
 */
export function stepManifest(options: { readonly runId: string; readonly step: string; readonly functionary: string; readonly keyid: string; readonly link: Descriptor; readonly products: readonly ArtifactBlob[] }): Uint8Array {
  return bounded(
    serializeImageManifest({
      artifactType: STEP_ARTIFACT,
      config: { mediaType: INTOTO_LINK, digest: options.link.digest, size: options.link.size },
      layers: options.products.map(artifactLayer),
      annotations: { [RUN_ID_ANNOTATION]: options.runId, [STEP_ANNOTATION]: options.step, [FUNCTIONARY_ANNOTATION]: options.functionary, [KEYID_ANNOTATION]: options.keyid },
    }),
    `step '${options.step}''s ${options.products.length} products`,
  );
}

function bounded(bytes: Uint8Array, what: string): Uint8Array {
  if (bytes.length > MAX_MANIFEST_BYTES) {
    throw new IoError('E_LIMIT', `${what} do not fit in one manifest (${bytes.length} bytes; registries accept ${MAX_MANIFEST_BYTES}): pack many small files into an archive first`);
  }
  return bytes;
}

export interface StoredRun {
  /** The run record's envelope. */
  readonly record: Descriptor;
  readonly layout: Descriptor;
  /** Input name -> blob. */
  readonly inputs: ReadonlyMap<string, Descriptor>;
}

export interface StoredStepRun {
  readonly link: Descriptor;
  /** Product name -> blob. */
  readonly products: ReadonlyMap<string, Descriptor>;
}

/**
 * Reads a run's manifest (untrusted: from the registry).
 * @throws EngineError E_STORE naming what is wrong; RegistryError E_MANIFEST (not a manifest)
 */
export function readRunManifest(bytes: Uint8Array, where: string): StoredRun {
  const manifest = parseImageManifest(bytes, where);
  expectArtifact(manifest, RUN_ARTIFACT, DSSE_ENVELOPE, where);
  const [layout, ...rest] = manifest.layers;
  if (layout === undefined || layout.mediaType !== INTOTO_LAYOUT) throw storeError(where, `its first layer is not the layout (${INTOTO_LAYOUT})`);
  return { record: manifest.config, layout, inputs: artifactLayers(rest, where) };
}

/**
 * Reads a step run's manifest (untrusted: from the registry).
 * @throws EngineError E_STORE; RegistryError E_MANIFEST
 */
export function readStepManifest(bytes: Uint8Array, where: string): StoredStepRun {
  const manifest = parseImageManifest(bytes, where);
  expectArtifact(manifest, STEP_ARTIFACT, INTOTO_LINK, where);
  return { link: manifest.config, products: artifactLayers(manifest.layers, where) };
}

function expectArtifact(manifest: ImageManifest, artifactType: string, configType: string, where: string): void {
  if (manifest.artifactType !== artifactType) throw storeError(where, `its artifactType is ${JSON.stringify(manifest.artifactType ?? null)}, not ${artifactType}`);
  if (manifest.config.mediaType !== configType) throw storeError(where, `its config is ${manifest.config.mediaType}, not ${configType}`);
}

function artifactLayers(layers: readonly Descriptor[], where: string): Map<string, Descriptor> {
  const out = new Map<string, Descriptor>();
  for (const layer of layers) {
    const name = layer.annotations?.[ARTIFACT_NAME];
    if (layer.mediaType !== ARTIFACT_LAYER || name === undefined) throw storeError(where, `a layer (${layer.digest}) is not an artifact (${ARTIFACT_LAYER} with ${ARTIFACT_NAME})`);
    const problem = artifactNameProblem(name);
    if (problem !== undefined) throw storeError(where, `artifact name ${JSON.stringify(name)} ${problem}`);
    if (out.has(name)) throw storeError(where, `lists ${name} twice`);
    out.set(name, layer);
  }
  return out;
}

/** An E_STORE error about `where`. Never throws. */
export function storeError(where: string, why: string, extra: { readonly step?: string; readonly artifact?: string; readonly cause?: InTotoError } = {}): EngineError {
  return new EngineError('E_STORE', `${where}: ${why}`, {
    ...(extra.cause === undefined ? {} : { cause: extra.cause }),
    context: { ...(extra.step === undefined ? {} : { step: extra.step }), ...(extra.artifact === undefined ? {} : { artifact: extra.artifact }) },
  });
}
