/**
 * The media types we write and read. OCI image spec v1.1 (manifest, index, empty descriptor),
 * the CNCF ModelPack model spec v1 (modelpack/model-spec, specs-go/v1/mediatype.go), and the
 * Sigstore bundle as cosign attaches it (sigstore/cosign specs/BUNDLE_SPEC.md).
 */

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
/** The empty descriptor's media type; its blob is the two bytes `{}`. */
export const OCI_EMPTY = 'application/vnd.oci.empty.v1+json';
export const OCI_EMPTY_DIGEST = 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a';
export const OCI_EMPTY_BYTES = new Uint8Array([0x7b, 0x7d]);

/** ModelPack: the manifest's artifactType and the config's media type. */
export const MODEL_ARTIFACT = 'application/vnd.cncf.model.manifest.v1+json';
export const MODEL_CONFIG = 'application/vnd.cncf.model.config.v1+json';
/** One uncompressed, unarchived layer per file ("raw"), by what the file is. */
export const MODEL_WEIGHT = 'application/vnd.cncf.model.weight.v1.raw';
export const MODEL_WEIGHT_CONFIG = 'application/vnd.cncf.model.weight.config.v1.raw';
export const MODEL_DOC = 'application/vnd.cncf.model.doc.v1.raw';
export const MODEL_CODE = 'application/vnd.cncf.model.code.v1.raw';
export const MODEL_DATASET = 'application/vnd.cncf.model.dataset.v1.raw';
export const MODEL_LAYER_TYPES: readonly string[] = [MODEL_WEIGHT, MODEL_WEIGHT_CONFIG, MODEL_DOC, MODEL_CODE, MODEL_DATASET];
/** The layer annotation holding the file's path in the model (ModelPack annotations.go). */
export const MODEL_FILEPATH = 'org.cncf.model.filepath';

/** A Sigstore bundle (OMS signatures are v0.3 bundles) as a referrer's artifactType and layer type. */
export const SIGSTORE_BUNDLE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
export const SIGSTORE_BUNDLE_TYPES: readonly string[] = [
  'application/vnd.dev.sigstore.bundle+json;version=0.1',
  'application/vnd.dev.sigstore.bundle+json;version=0.2',
  'application/vnd.dev.sigstore.bundle+json;version=0.3',
  'application/vnd.dev.sigstore.bundle.v0.3+json',
];
/** cosign's referrer annotations (BUNDLE_SPEC.md, "Annotations"). */
export const BUNDLE_CONTENT = 'dev.sigstore.bundle.content';
export const BUNDLE_PREDICATE_TYPE = 'dev.sigstore.bundle.predicateType';
/** The OpenSSF Model Signing v1.0 predicate. */
export const OMS_PREDICATE = 'https://model_signing/signature/v1.0';

/** What `--attach` files become (our names; in-toto defines no OCI media types for them). */
export const INTOTO_LINK = 'application/vnd.in-toto.link+json';
export const INTOTO_LAYOUT = 'application/vnd.in-toto.layout+json';
/** An in-toto attestation: a DSSE envelope around a Statement (in-toto attestation framework). */
export const DSSE_ENVELOPE = 'application/vnd.dsse.envelope.v1+json';
/** Anything else attached. */
export const ATTACHED_FILE = 'application/vnd.intoto-ts.attachment.v1';
/** A layer's suggested file name (OCI annotations). */
export const IMAGE_TITLE = 'org.opencontainers.image.title';

/** Files that configure the weights (tokenizers, vocabularies, model configs). */
const WEIGHT_CONFIG_NAMES: readonly string[] = ['vocab.txt', 'merges.txt', 'tokenizer.model', 'spiece.model'];
const WEIGHT_CONFIG_EXTENSIONS: readonly string[] = ['json', 'yaml', 'yml', 'toml', 'ini', 'cfg', 'tiktoken'];
const DOC_EXTENSIONS: readonly string[] = ['md', 'rst', 'txt', 'pdf', 'html'];
const CODE_EXTENSIONS: readonly string[] = ['py', 'sh', 'ipynb', 'js', 'ts', 'r', 'jl', 'lua', 'c', 'cc', 'cpp', 'h', 'go', 'rs', 'java'];
const DATASET_EXTENSIONS: readonly string[] = ['csv', 'tsv', 'parquet', 'jsonl', 'arrow', 'feather', 'avro', 'tfrecord'];

/**
 * Which ModelPack layer type a file gets, from its name alone (never its content: the type is
 * a label for tools that mount or filter layers, not a security decision): documentation,
 * code, datasets and weight configuration by name; everything else is weights.
 */
export function modelLayerType(path: string): string {
  const name = path.slice(path.lastIndexOf('/') + 1).toLowerCase();
  const dot = name.lastIndexOf('.');
  const ext = dot <= 0 ? '' : name.slice(dot + 1);
  if (WEIGHT_CONFIG_NAMES.includes(name) || WEIGHT_CONFIG_EXTENSIONS.includes(ext)) return MODEL_WEIGHT_CONFIG;
  if (/^(readme|license|licence|notice|copying|changelog|authors|model[-_]card)(\..*)?$/.test(name) || DOC_EXTENSIONS.includes(ext)) return MODEL_DOC;
  if (CODE_EXTENSIONS.includes(ext)) return MODEL_CODE;
  if (DATASET_EXTENSIONS.includes(ext)) return MODEL_DATASET;
  return MODEL_WEIGHT;
}
