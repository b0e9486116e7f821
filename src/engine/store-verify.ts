import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InTotoError, ioError, PipelineError } from '../errors.js';
import { checkDestination, createWorkspace, materialise, type Workspace } from '../gate/workspace.js';
import { onInterrupt } from '../io/interrupt.js';
import { linkFileName, returnValueOf, type Link } from '../model/link.js';
import type { RegistryClient } from '../oci/client.js';
import { finalProductSources } from '../pipeline/outcomes.js';
import { withParams } from '../pipeline/params.js';
import { planSteps } from '../pipeline/plan.js';
import type { SandboxMode } from '../runner/sandbox.js';
import { verifySupplyChain, type VerifyEvent, type VerifyReport } from '../verify/verify.js';
import { loadStepLinks, openRun, type OpenRunOptions, type StoredLink } from './run-open.js';
import { downloadArtifacts } from './store-blobs.js';

/**
 * `intoto pipeline verify LAYOUT --store ... --run-id ID -k OWNER.pub [-o DIR]`: the run's
 * final verification, on any machine that holds the owner's public key.
 *
 *  1. open the run (run-open.ts: the owner's record and layout, the YAML's own layout);
 *  2. fetch every link of every step from the tags of its authorised functionaries (each
 *     signed by its tag's key, naming its step, recording this run; a link recording a failed
 *     command is refused);
 *  3. download the final products (the YAML's `outputs`, else the products of the last
 *     steps) by the digests their links record, into a private directory;
 *  4. verify with the verifier of `intoto verify` (signatures, expiry, thresholds, rules,
 *     inspections in a sandboxed copy of the final products);
 *  5. only on a pass, move the final products onto DIR in one rename (and the metadata onto
 *     the metadata directory, when one is asked for). On any failure nothing is left.
 */

/** What openRun takes (the run, its source, the owner's keys, the parameters), and where the result goes. */
export interface StoredVerifyOptions extends Omit<OpenRunOptions, 'now'> {
  /** Receives the final products on a pass; must not exist, or be empty. */
  readonly outDir?: string;
  /** Receives root.layout and the links on a pass (for other verifiers); must not exist, or be empty. */
  readonly metadataDir?: string;
  readonly sandbox: SandboxMode;
  readonly inspectionTimeoutSeconds?: number;
  readonly now?: Date;
  readonly onEvent?: (event: VerifyEvent) => void;
}

export interface StoredVerifyResult {
  readonly passed: boolean;
  readonly runId: string;
  readonly report: VerifyReport;
  /** Each link fetched: step, keyid, tag. */
  readonly links: readonly { readonly step: string; readonly keyid: string; readonly tag: string }[];
  readonly finalProducts: readonly string[];
  readonly outDir: string | undefined;
  readonly metadataDir: string | undefined;
}

/**
 * Verifies a run. A failed verification is a result; a run that cannot be read (missing,
 * not the owner's, altered in the store) is thrown.
 * @throws what openRun and loadStepLinks throw; PipelineError E_STEP_FAILED (a link recording a
 *   failed command); GateError E_DESTINATION (an output directory that exists and is not
 *   empty); RegistryError (downloads); IoError
 */
export async function verifyStoredRun(client: RegistryClient, options: StoredVerifyOptions): Promise<StoredVerifyResult> {
  const outDir = options.outDir === undefined ? undefined : checkDestination(options.outDir);
  const metadataDir = options.metadataDir === undefined ? undefined : checkDestination(options.metadataDir);
  const run = await openRun(client, {
    store: options.store,
    runId: options.runId,
    source: options.source,
    ownerKeys: options.ownerKeys,
    params: options.params,
    ...(options.now === undefined ? {} : { now: options.now.getTime() }),
  });
  const work = openWork(outDir, metadataDir);
  try {
    const linkDir = work.meta;
    const layoutPath = join(work.meta, 'root.layout');
    writeFileSync(layoutPath, run.layoutBytes, { mode: 0o644 });
    const fetched: StoredLink[] = [];
    const firstLinks = new Map<string, StoredLink>();
    for (const step of run.layout.steps) {
      const links = await loadStepLinks(client, run, step);
      for (const stored of links) {
        refuseFailedRun(step.name, stored.link, stored.tag);
        writeFileSync(join(linkDir, linkFileName(step.name, stored.keyid)), stored.bytes, { mode: 0o644 });
        fetched.push(stored);
      }
      if (links[0] !== undefined) firstLinks.set(step.name, links[0]);
    }
    const { steps, outputs } = withParams(options.source, run.params);
    const sources = finalProductSources(
      planSteps(steps),
      new Map([...firstLinks].map(([name, stored]) => [name, stored.link])),
      outputs,
    );
    const wanted = [...sources].map(([name, step]) => {
      const blob = (firstLinks.get(step) as StoredLink).products.get(name);
      return { name, digest: blob?.digest ?? '', size: blob?.size ?? 0 };
    });
    await downloadArtifacts(client, options.store.repository, wanted, work.products);
    const report = await verifySupplyChain({
      layoutPath,
      layoutKeys: options.ownerKeys,
      linkDir,
      cwd: work.products,
      finalProducts: [...sources.keys()],
      params: run.params,
      sandbox: options.sandbox,
      ...(options.inspectionTimeoutSeconds === undefined ? {} : { inspectionTimeoutSeconds: options.inspectionTimeoutSeconds }),
      ...(options.now === undefined ? {} : { now: options.now }),
      ...(options.onEvent === undefined ? {} : { onEvent: options.onEvent }),
    });
    if (report.passed) work.publish();
    return {
      passed: report.passed,
      runId: run.runId,
      report,
      links: fetched.map((l) => ({ step: l.link.name, keyid: l.keyid, tag: l.tag })),
      finalProducts: [...sources.keys()],
      outDir: report.passed ? outDir : undefined,
      metadataDir: report.passed ? metadataDir : undefined,
    };
  } finally {
    work.discard();
  }
}

/**
 * A link recording a failed command is not a step that was performed.
 * @throws PipelineError E_STEP_FAILED
 */
function refuseFailedRun(step: string, link: Link, tag: string): void {
  const code = returnValueOf(link);
  if (code !== undefined && code !== 0) {
    throw new PipelineError('E_STEP_FAILED', `step '${step}': the link under ${tag} records a failed command (exit status ${code}): the step did not succeed in this run`, { context: { step } });
  }
}

interface Work {
  /** The final products (becomes outDir). */
  readonly products: string;
  /** root.layout and the links, flat (becomes metadataDir). */
  readonly meta: string;
  /** Moves what was asked for into place, each directory in one rename. @throws GateError E_DESTINATION; IoError */
  publish(): void;
  /** Removes every work directory left. Never throws. */
  discard(): void;
}

/**
 * Private work directories: beside outDir and metadataDir (so that each final move is one
 * rename on one file system), or in the temporary directory; removed at the end and on an
 * interruption.
 * @throws IoError E_IO
 */
function openWork(outDir: string | undefined, metadataDir: string | undefined): Work {
  const roots: string[] = [];
  const removeUndo = onInterrupt(() => {
    for (const root of roots) rmSync(root, { recursive: true, force: true });
    return 'nothing was written';
  });
  let products: Workspace | undefined;
  let meta: Workspace | undefined;
  let scratch: string | undefined;
  try {
    if (outDir !== undefined) roots.push((products = createWorkspace(outDir)).root);
    if (metadataDir !== undefined) roots.push((meta = createWorkspace(metadataDir)).root);
    if (products === undefined) {
      roots.push((scratch = mkdtempSync(join(tmpdir(), 'intoto-verify-'))));
      mkdirSync(join(scratch, 'products'), { mode: 0o700 });
      mkdirSync(join(scratch, 'meta'), { mode: 0o700 });
    }
  } catch (error) {
    for (const root of roots) rmSync(root, { recursive: true, force: true });
    removeUndo();
    throw error instanceof InTotoError ? error : ioError(tmpdir(), error, 'cannot create a work directory in');
  }
  let published: string | undefined;
  return {
    products: products?.model ?? join(scratch as string, 'products'),
    meta: meta?.model ?? products?.meta ?? join(scratch as string, 'meta'),
    publish(): void {
      if (meta !== undefined) {
        materialise(meta);
        published = meta.destination;
      }
      if (products !== undefined) {
        try {
          materialise(products);
        } catch (error) {
          // Both or neither: the metadata moved in a moment ago goes again.
          if (published !== undefined) rmSync(published, { recursive: true, force: true });
          throw error;
        }
      }
    },
    discard(): void {
      removeUndo();
      for (const root of roots) rmSync(root, { recursive: true, force: true });
    },
  };
}
