import { resolve } from 'node:path';
import { FormatError, UsageError } from '../errors.js';
import type { PublicKey } from '../crypto/keys.js';
import { verifiedPayload } from '../model/envelope.js';
import { metadataFromJson, readEnvelopeFile } from '../model/metadata.js';
import type { SandboxMode } from '../runner/sandbox.js';
import { finalProductTargets } from './final-product.js';
import { verifyLevel } from './layout-level.js';
import { checkLayoutThreshold, verifyLayoutSignatures } from './layout-signatures.js';
import { emptyLayoutReport, failureOf, type Failure, type VerifyEvent, type VerifyReport } from './report.js';
import { Session } from './session.js';

export type { VerifyEvent, VerifyReport } from './report.js';

export interface VerifyOptions {
  readonly layoutPath: string;
  /** The project owner's keys; a key passed twice (even under two keyids) counts once. */
  readonly layoutKeys: readonly PublicKey[];
  /** Distinct layout keys that must have signed; default: every key passed. */
  readonly layoutThreshold?: number;
  readonly linkDir: string;
  /** `--param` values, substituted into the root layout's rules and commands. */
  readonly params?: ReadonlyMap<string, string>;
  /** What inspections see; default: the working directory minus layout, links and keys. */
  readonly finalProducts?: readonly string[];
  /** Further files to leave out of the default final product (the CLI passes the key files). */
  readonly excludeFromFinalProducts?: readonly string[];
  /** No limit when undefined. */
  readonly inspectionTimeoutSeconds?: number;
  readonly allowSublayoutInspections?: boolean;
  /** Default 'auto': bwrap when it works, else unsandboxed with a warning. */
  readonly sandbox?: SandboxMode;
  /** Default: the current time. */
  readonly now?: Date;
  /** The verifier's working directory (final products, relative paths). Default process.cwd(). */
  readonly cwd?: string;
  /** Files no inspection may read (the key a VSA is signed with), hidden in the sandbox. */
  readonly hide?: readonly string[];
  readonly onEvent?: (event: VerifyEvent) => void;
}

/**
 * Complete in-toto verification of a supply chain (in-toto v0.9 §5; the reference's
 * verifylib.in_toto_verify), stricter than the reference. The checks, in order:
 *
 *  1. layout signatures: every key passed signed, or `layoutThreshold` distinct keys
 *     (layout-signatures.ts); the layout is then decoded from the verified bytes only, with
 *     `params` substituted, and checked whole (keys, names, thresholds, rules);
 *  2. expiry, in UTC against `now` (expiry.ts);
 *  3. links: `<step>.<keyid[:8]>.link` for each authorised functionary, attributed only to
 *     the key that verifies, signed `name` equal to the step (link-files.ts);
 *  4. thresholds: links from enough distinct key identities (thresholds.ts);
 *  5. sublayouts: verified recursively with these same checks, then summarised into a link
 *     (sublayouts.ts, summary.ts);
 *  6. command alignment and recorded exit codes: warnings only (alignment.ts);
 *  7. the links of each step agree on materials and products (thresholds.ts);
 *  8. step artifact rules (item-rules.ts, rules.ts);
 *  9. inspections, sandboxed, in a scratch directory holding only the final product
 *     (inspections.ts, final-product.ts);
 * 10. inspection artifact rules.
 *
 * Never throws for a failed verdict: the report says `passed: false` with the failure's code,
 * message, context and details, and holds everything checked until then.
 * @throws UsageError E_USAGE only for options that make no sense (no layout key, a threshold
 *   above the number of distinct keys, a bad timeout or sandbox mode, overlapping final
 *   products)
 */
export async function verifySupplyChain(options: VerifyOptions): Promise<VerifyReport> {
  checkOptions(options);
  const start = performance.now();
  const cwd = resolve(options.cwd ?? process.cwd());
  const layoutPath = resolve(cwd, options.layoutPath);
  const linkDir = resolve(cwd, options.linkDir);
  const session = new Session(
    {
      layoutKeys: options.layoutKeys,
      layoutThreshold: options.layoutThreshold,
      params: options.params ?? new Map(),
      finalProducts: options.finalProducts,
      excludeFromFinalProducts: options.excludeFromFinalProducts ?? [],
      inspectionTimeoutSeconds: options.inspectionTimeoutSeconds,
      allowSublayoutInspections: options.allowSublayoutInspections ?? false,
      sandbox: options.sandbox ?? 'auto',
      now: (options.now ?? new Date()).getTime(),
      cwd,
      hide: (options.hide ?? []).map((p) => resolve(cwd, p)),
    },
    options.onEvent,
  );
  const report = emptyLayoutReport(options.layoutPath);
  let failure: Failure | undefined;
  try {
    await verifyRoot(options.layoutPath, layoutPath, linkDir, report, session);
  } catch (error) {
    failure = failureOf(error);
  } finally {
    session.cleanup();
  }
  return {
    verdict: failure === undefined ? 'passed' : 'failed',
    passed: failure === undefined,
    failure,
    layout: report,
    warnings: session.warnings,
    timing: { totalMs: Math.round(performance.now() - start), checks: session.timings },
  };
}

async function verifyRoot(
  shownPath: string,
  layoutPath: string,
  linkDir: string,
  report: ReturnType<typeof emptyLayoutReport>,
  session: Session,
): Promise<void> {
  session.countLayout(shownPath);
  const { options } = session;
  const layout = await session.check('layout-signatures', 'root', () => {
    const envelope = readEnvelopeFile(layoutPath, { what: 'layout' });
    const signers = verifyLayoutSignatures(envelope, options.layoutKeys, options.layoutThreshold, shownPath);
    report.signedBy = signers.map((k) => k.keyid);
    const signer = signers[0];
    const payload = signer === undefined ? undefined : verifiedPayload(envelope, signer);
    if (payload === undefined) throw new FormatError('E_METADATA_TYPE', `${shownPath}: no verified payload`);
    const metadata = metadataFromJson(payload, shownPath, { params: options.params });
    if (metadata.type !== 'layout') {
      throw new FormatError('E_METADATA_TYPE', `${shownPath}: is a link (step '${metadata.link.name}'), not a layout`, {
        context: { file: shownPath },
      });
    }
    return metadata.layout;
  });
  await verifyLevel(
    {
      layout,
      file: shownPath,
      linkDir,
      depth: 0,
      label: '',
      report,
      exclude: [layoutPath, linkDir, ...options.excludeFromFinalProducts.map((p) => resolve(options.cwd, p))],
    },
    session,
  );
}

/** @throws UsageError E_USAGE */
function checkOptions(options: VerifyOptions): void {
  const bad = (message: string): never => {
    throw new UsageError('E_USAGE', message);
  };
  if (typeof options.layoutPath !== 'string' || options.layoutPath === '') bad('a layout path is required');
  if (typeof options.linkDir !== 'string' || options.linkDir === '') bad('a link directory is required');
  if (!Array.isArray(options.layoutKeys)) bad('layoutKeys must be a list of public keys');
  checkLayoutThreshold(options.layoutKeys, options.layoutThreshold);
  const timeout = options.inspectionTimeoutSeconds;
  if (timeout !== undefined && !(Number.isFinite(timeout) && timeout > 0 && timeout <= 7 * 24 * 3600)) {
    bad(`the inspection timeout must be a positive number of seconds (at most a week), not ${String(timeout)}`);
  }
  if (options.sandbox !== undefined && !['auto', 'bwrap', 'none'].includes(options.sandbox)) {
    bad(`sandbox must be auto, bwrap or none, not ${String(options.sandbox)}`);
  }
  if (options.now !== undefined && !(options.now instanceof Date && Number.isFinite(options.now.getTime()))) bad('now must be a valid Date');
  if (options.cwd !== undefined && (typeof options.cwd !== 'string' || options.cwd === '')) bad('cwd must be a directory path');
  if (options.params !== undefined && !(options.params instanceof Map)) bad('params must be a Map of names to values');
  for (const list of [options.finalProducts, options.excludeFromFinalProducts]) {
    if (list !== undefined && (!Array.isArray(list) || !list.every((p) => typeof p === 'string'))) bad('final products and exclusions must be lists of paths');
  }
  if (options.finalProducts !== undefined) finalProductTargets(options.finalProducts, resolve(options.cwd ?? process.cwd()));
}
