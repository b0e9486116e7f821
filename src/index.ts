/**
 * The library behind the command-line tools. Each entry point is what a tool calls; the CLI
 * adds only argument parsing and printing (see README.md, "Architecture").
 */
export { InTotoError, exitStatusFor, type ErrorCode, type ErrorContext } from './errors.js';
export { canonicalBytes, canonicalString } from './canonical/encode.js';
export { parseJson } from './canonical/parse.js';
export { generateSigningKey, loadPublicKeyFile, loadSigningKeyFile, writeKeyPair } from './crypto/keyfiles.js';
export type { PublicKey } from './crypto/keys.js';
export type { SigningKey } from './crypto/signatures.js';
export { dsseText, metablockText, parseEnvelope, signersOf, verifiedPayload } from './model/envelope.js';
export { layoutFromJson, type Layout, type Step, type Inspection } from './model/layout.js';
export { linkFromJson, type Link } from './model/link.js';
export { readEnvelopeFile, metadataFromJson } from './model/metadata.js';
export { recordArtifacts, type RecordOptions } from './runner/record.js';
export { runStep, type RunStepOptions, type RunStepResult } from './runner/run-step.js';
export { recordStart, recordStop } from './runner/record-step.js';
export { mockStep } from './runner/mock.js';
export { matchProducts, productsMatch } from './runner/match-products.js';
export { verifySupplyChain, type VerifyOptions, type VerifyReport } from './verify/verify.js';
export { checkLayoutSource, loadLayoutSource } from './pipeline/load.js';
export { runPipeline, type PipelineRunOptions, type PipelineRunResult } from './pipeline/run-pipeline.js';
export { scanPickle, scanPickleFile, assertSafePickleFile } from './ml/pickle.js';
export { RegistryClient, type BlobSource, type ClientOptions, type FetchedManifest } from './oci/client.js';
export { parseReference, formatReference, type Reference, type RegistryHost } from './oci/reference.js';
export { listReferrers, attachReferrer, fallbackTag } from './oci/referrers.js';
export { pushModel, type PushOptions, type PushResult } from './oci/push.js';
export { listVersions, type VersionInfo } from './oci/versions.js';
export { pullModel, type PullOptions, type PullResult, type GateCheck } from './gate/pull.js';
