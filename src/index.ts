/**
 * The library behind the command-line tools. Each entry point is what a tool calls; the CLI
 * adds only argument parsing and printing (see README.md, "Architecture").
 */
export { InTotoError, exitStatusFor, type ErrorCode, type ErrorContext } from './errors.js';
export { canonicalBytes, canonicalString } from './canonical/encode.js';
export { parseJson } from './canonical/parse.js';
export { generateSigningKey, loadPublicKeyFile, loadSigningKeyFile, writeKeyPair } from './crypto/keyfiles.js';
export { keyHasKeyid, publicKeyInForm, type KeyidForm, type PublicKey } from './crypto/keys.js';
export type { SigningKey } from './crypto/signatures.js';
export { dsseText, metablockText, parseEnvelope, signersOf, verifiedPayload } from './model/envelope.js';
export { layoutFromJson, type Layout, type Step, type Inspection } from './model/layout.js';
export { linkFromJson, type Link } from './model/link.js';
export { readEnvelopeFile, metadataFromJson } from './model/metadata.js';
export { linkFromStatement, linkStatement, LINK_PREDICATE_V03, STATEMENT_V1 } from './model/statement.js';
export { recordArtifacts, type RecordOptions } from './runner/record.js';
export { runStep, type RunStepOptions, type RunStepResult } from './runner/run-step.js';
export { recordStart, recordStop } from './runner/record-step.js';
export { mockStep } from './runner/mock.js';
export { matchProducts, productsMatch } from './runner/match-products.js';
export { verifySupplyChain, type VerifyOptions, type VerifyReport } from './verify/verify.js';
export { provenanceStatement } from './attest/provenance.js';
export { vsaStatement } from './attest/vsa.js';
export { writeVerificationSummary } from './attest/write-vsa.js';
export { checkLayoutSource, loadLayoutSource } from './pipeline/load.js';
export { runPipeline, type PipelineRunOptions, type PipelineRunResult } from './pipeline/run-pipeline.js';
export { scanPickle, scanPickleFile, assertSafePickleFile } from './ml/pickle.js';
export { signModel, type SignModelOptions, type SignedModel } from './oms/sign.js';
export { verifyModel, verifyModelOrThrow, describeMismatch, type ModelTrust, type ModelVerification, type ModelMismatch, type VerifyModelOptions } from './oms/verify.js';
export { ModelSigner, loadModelSigner, loadModelPublicKey, readPemCertificates, withCertificateFiles, keyHint } from './oms/keys.js';
export { defaultTrustedRoot, readTrustedRoot } from './oms/keyless.js';
export type { SignedManifest, Resource, Serialization } from './oms/format.js';
export { checkDvcFile, readDvcEntries, type DataFinding, type DvcEntry } from './data/dvc.js';
export { traceArtifact, type TraceOptions, type TraceResult } from './trace/trace.js';
export { scanModelFile, scanModelPaths } from './ml/model-scan.js';
export { DEFAULT_POLICY, STRICT_POLICY } from './ml/policy.js';
export { RegistryClient, type BlobSource, type ClientOptions, type FetchedManifest } from './oci/client.js';
export { parseReference, formatReference, type Reference, type RegistryHost } from './oci/reference.js';
export { listReferrers, attachReferrer, fallbackTag } from './oci/referrers.js';
export { pushModel, type PushOptions, type PushResult } from './oci/push.js';
export { listVersions, type VersionInfo } from './oci/versions.js';
export { pullModel, type PullOptions, type PullResult, type GateCheck } from './gate/pull.js';
export { publishRun, type PublishOptions, type PublishResult } from './engine/run-publish.js';
export { runStoredStep, type StoredStepOptions, type StoredStepResult } from './engine/store-step.js';
export { verifyStoredRun, type StoredVerifyOptions, type StoredVerifyResult } from './engine/store-verify.js';
export { runPipelineOnSlurm, type SlurmPipelineOptions, type SlurmPipelineResult } from './engine/slurm-run.js';
export { parseStoreUrl, type StoreRef } from './engine/step-command.js';
