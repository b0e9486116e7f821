import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { hashFile } from '../crypto/hash-file.js';
import type { PublicKey } from '../crypto/keys.js';
import { FormatError, InTotoError, TraceError } from '../errors.js';
import type { HashDict } from '../model/artifacts.js';
import { unverifiedPayload, verifiedPayload } from '../model/envelope.js';
import type { Layout } from '../model/layout.js';
import { linkFileName, linkFromJson, type Link } from '../model/link.js';
import { metadataFromJson, metadataType, readEnvelopeFile } from '../model/metadata.js';
import { loadLinkFile } from '../verify/link-load.js';
import { verifyLayoutSignatures } from '../verify/layout-signatures.js';

/**
 * The chain of custody of one artifact over a pipeline's links: every step (and inspection
 * whose link was kept) that records it as a material or a product, in layout order, who
 * signed each link, the digest at each point, and where it first changes: between two steps
 * (a product that is not what the next step used), within a step (the step modified it), or
 * on disk after the last step that recorded it. The forensic question "which step introduced
 * or touched this data".
 *
 * With a layout and its owner's keys, the layout's signatures are checked and each step's
 * links are read from `<step>.<keyid8>.link` and credited only to the authorised keys that
 * verify them (as intoto-verify does). Without one, every `*.link` file in the directory is
 * read without checking signatures (the report says so) and ordered as a layout lying in
 * the directory lists the steps (unverified, for the order only), else by data flow, then by
 * when each was written.
 */

export interface TraceOptions {
  /** A path (its name as the links record it, relative to `cwd`), or `sha256:HEX`. */
  readonly artifact: string;
  readonly linkDir: string;
  readonly layout?: { readonly path: string; readonly keys: readonly PublicKey[] };
  /** The directory names are relative to (default process.cwd()). */
  readonly cwd?: string;
}

/** One link's view of the artifact. */
export interface TracePoint {
  readonly kind: 'step' | 'inspection';
  readonly name: string;
  readonly linkFile: string;
  /** Keyids of the signatures: verified against the layout's keys, or only claimed. */
  readonly signers: readonly string[];
  readonly verified: boolean;
  /** The artifact names this point matched (one in name mode, any in digest mode). */
  readonly artifacts: readonly string[];
  readonly materials: string | undefined;
  readonly products: string | undefined;
}

export interface TraceChange {
  readonly kind: 'between-steps' | 'within-step' | 'on-disk';
  /** The last point the old digest was seen at (`step` products/materials). */
  readonly after: string;
  /** Where the new digest shows (a step's materials or products, or `disk`). */
  readonly before: string;
  readonly from: string;
  readonly to: string;
}

export interface TraceResult {
  readonly artifact: string;
  readonly mode: 'name' | 'digest';
  readonly signaturesChecked: boolean;
  readonly points: readonly TracePoint[];
  /** The file's sha256 now, when the artifact is a file on disk. */
  readonly onDisk: string | undefined;
  readonly changes: readonly TraceChange[];
  /** Links that were found and did not count (unsigned by an authorised key, unreadable). */
  readonly ignored: readonly string[];
}

const DIGEST = /^(?:sha256:)?([0-9a-f]{64})$/;

/** The digest to compare by: sha256 (what our runner and in-toto record by default). */
const sha256Of = (digests: HashDict | undefined): string | undefined => digests?.get('sha256');

interface Loaded {
  readonly kind: 'step' | 'inspection';
  readonly name: string;
  readonly file: string;
  readonly signers: readonly string[];
  readonly verified: boolean;
  readonly link: Link;
}

/**
 * Traces one artifact.
 * @throws TraceError E_TRACE_NOT_FOUND when no link records it; VerificationError
 *   E_LAYOUT_SIG; IoError, ParseError, FormatError for unreadable metadata
 */
export async function traceArtifact(options: TraceOptions): Promise<TraceResult> {
  const cwd = options.cwd ?? process.cwd();
  const digestMatch = DIGEST.exec(options.artifact);
  const onDiskPath = resolve(cwd, options.artifact);
  const isFile = existsSync(onDiskPath) && statSync(onDiskPath).isFile();
  const mode: 'name' | 'digest' = digestMatch !== null && !isFile ? 'digest' : 'name';
  const name = mode === 'name' ? artifactName(options.artifact, cwd) : undefined;
  const wanted = mode === 'digest' ? digestMatch![1]! : undefined;

  const ignored: string[] = [];
  const loaded = options.layout === undefined ? loadUnverified(options.linkDir, ignored) : loadWithLayout(options.layout, options.linkDir, ignored);
  const points: TracePoint[] = [];
  for (const l of loaded) {
    const names =
      mode === 'name'
        ? l.link.materials.has(name!) || l.link.products.has(name!)
          ? [name!]
          : []
        : [...new Set([...l.link.materials, ...l.link.products].filter(([, d]) => sha256Of(d) === wanted).map(([n]) => n))];
    if (names.length === 0) continue;
    const first = names[0]!;
    points.push({
      kind: l.kind,
      name: l.name,
      linkFile: l.file,
      signers: l.signers,
      verified: l.verified,
      artifacts: names,
      materials: mode === 'name' ? sha256Of(l.link.materials.get(first)) : names.some((n) => sha256Of(l.link.materials.get(n)) === wanted) ? wanted : undefined,
      products: mode === 'name' ? sha256Of(l.link.products.get(first)) : names.some((n) => sha256Of(l.link.products.get(n)) === wanted) ? wanted : undefined,
    });
  }
  if (points.length === 0) {
    throw new TraceError('E_TRACE_NOT_FOUND', `${options.artifact}: no link in ${options.linkDir} records ${mode === 'name' ? `an artifact named ${JSON.stringify(name)}` : `a file with sha256 ${wanted}`}`, {
      context: { artifact: name ?? options.artifact },
    });
  }
  const onDisk = mode === 'name' && isFile ? (await hashFile(onDiskPath, ['sha256'])).get('sha256') : undefined;
  const changes = mode === 'name' ? findChanges(points, onDisk) : [];
  return { artifact: name ?? wanted!, mode, signaturesChecked: options.layout !== undefined, points, onDisk, changes, ignored };
}

/** The name links record for `path`: relative to `cwd`, `/`-separated, no leading `./`. */
function artifactName(path: string, cwd: string): string {
  const rel = relative(cwd, resolve(cwd, path));
  if (rel === '' || rel.startsWith('..')) {
    throw new TraceError('E_TRACE_NOT_FOUND', `${path}: links name artifacts relative to the directory the steps ran in; run trace from there (or pass the name)`, { context: { artifact: path } });
  }
  return rel.split(sep).join('/');
}

function findChanges(points: readonly TracePoint[], onDisk: string | undefined): TraceChange[] {
  const changes: TraceChange[] = [];
  let last: { digest: string; where: string } | undefined;
  for (const p of points) {
    const label = `${p.kind} '${p.name}'`;
    if (p.materials !== undefined) {
      if (last !== undefined && last.digest !== p.materials) changes.push({ kind: 'between-steps', after: last.where, before: `${label} materials`, from: last.digest, to: p.materials });
      last = { digest: p.materials, where: `${label} materials` };
    }
    if (p.products !== undefined) {
      if (last !== undefined && last.digest !== p.products) {
        const within = p.materials !== undefined;
        changes.push({ kind: within ? 'within-step' : 'between-steps', after: last.where, before: `${label} products`, from: last.digest, to: p.products });
      }
      last = { digest: p.products, where: `${label} products` };
    }
  }
  if (last !== undefined && onDisk !== undefined && onDisk !== last.digest) changes.push({ kind: 'on-disk', after: last.where, before: 'disk', from: last.digest, to: onDisk });
  return changes;
}

function loadWithLayout(given: { path: string; keys: readonly PublicKey[] }, linkDir: string, ignored: string[]): Loaded[] {
  const envelope = readEnvelopeFile(given.path, { what: 'layout' });
  const signers = verifyLayoutSignatures(envelope, given.keys, undefined, given.path);
  const payload = signers[0] === undefined ? undefined : verifiedPayload(envelope, signers[0]);
  if (payload === undefined) throw new FormatError('E_METADATA_TYPE', `${given.path}: no verified payload`);
  const metadata = metadataFromJson(payload, given.path, { keepPlaceholders: true });
  if (metadata.type !== 'layout') throw new FormatError('E_METADATA_TYPE', `${given.path}: is a link, not a layout`, { context: { file: given.path } });
  return stepLinks(metadata.layout, linkDir, ignored);
}

function stepLinks(layout: Layout, linkDir: string, ignored: string[]): Loaded[] {
  const out: Loaded[] = [];
  for (const step of layout.steps) {
    const byPrefix = new Map<string, PublicKey[]>();
    for (const keyid of step.pubkeys) {
      const key = layout.keys.get(keyid);
      if (key !== undefined) byPrefix.set(keyid.slice(0, 8), [...(byPrefix.get(keyid.slice(0, 8)) ?? []), key]);
    }
    for (const [prefix, candidates] of byPrefix) {
      const file = join(linkDir, linkFileName(step.name, prefix));
      let result;
      try {
        result = loadLinkFile(file, candidates);
      } catch (error) {
        ignored.push(`${file}: ${error instanceof InTotoError ? error.message : String(error)}`);
        continue;
      }
      if (result.kind === 'missing') continue;
      if (result.kind !== 'link') {
        ignored.push(`${file}: ${result.kind === 'unsigned' ? 'no valid signature by an authorised key' : 'not a link'}`);
        continue;
      }
      if (result.link.name !== step.name) {
        ignored.push(`${file}: signed for step ${JSON.stringify(result.link.name)}, not '${step.name}'`);
        continue;
      }
      out.push({ kind: 'step', name: step.name, file, signers: result.signers, verified: true, link: result.link });
    }
  }
  for (const inspection of layout.inspections) {
    const file = join(linkDir, `${inspection.name}.link`);
    if (!existsSync(file)) continue;
    const link = readUnverified(file, ignored);
    if (link !== undefined) out.push({ kind: 'inspection', name: inspection.name, file, signers: [], verified: false, link: link.link });
  }
  return out;
}

function readUnverified(file: string, ignored: string[]): { link: Link; keyids: string[] } | undefined {
  try {
    const envelope = readEnvelopeFile(file, { noFollow: true, what: 'link file' });
    const payload = unverifiedPayload(envelope);
    if (metadataType(payload) !== 'link') {
      ignored.push(`${file}: not a link`);
      return undefined;
    }
    return { link: linkFromJson(payload, file), keyids: envelope.signatures.map((s) => s.keyid ?? '?') };
  } catch (error) {
    ignored.push(`${file}: ${error instanceof InTotoError ? error.message : String(error)}`);
    return undefined;
  }
}

/** Every *.link file, unverified, ordered so that a step comes after the steps whose products it used. */
function loadUnverified(linkDir: string, ignored: string[]): Loaded[] {
  // Modification time, then name: the order the links were written in when nothing else tells.
  const names = readdirSync(linkDir);
  const files = names
    .filter((f) => f.endsWith('.link'))
    .map((f) => ({ f, t: statSync(join(linkDir, f)).mtimeMs }))
    .sort((a, b) => a.t - b.t || (a.f < b.f ? -1 : a.f > b.f ? 1 : 0))
    .map(({ f }) => f);
  const links: Loaded[] = [];
  for (const f of files) {
    const file = join(linkDir, f);
    const read = readUnverified(file, ignored);
    if (read !== undefined) links.push({ kind: 'step', name: read.link.name, file, signers: read.keyids, verified: false, link: read.link });
  }
  return byLayoutHint(linkDir, names, byDataFlow(links), ignored);
}

/**
 * Without --layout, a layout lying in the link directory (a pipeline's out directory holds
 * root.layout) still gives the steps' order: only the order, read without checking its
 * signature, so it decides nothing about trust. `names` is the directory's listing.
 */
function byLayoutHint(linkDir: string, names: readonly string[], links: Loaded[], ignored: string[]): Loaded[] {
  const layouts = names.filter((f) => f.endsWith('.layout'));
  if (layouts.length !== 1) return links;
  let steps: readonly string[];
  try {
    const payload = unverifiedPayload(readEnvelopeFile(join(linkDir, layouts[0]!), { what: 'layout' }));
    const metadata = metadataFromJson(payload, layouts[0]!, { keepPlaceholders: true });
    if (metadata.type !== 'layout') return links;
    steps = metadata.layout.steps.map((s) => s.name);
  } catch (error) {
    ignored.push(`${layouts[0]}: not used for the order (${error instanceof InTotoError ? error.message : String(error)})`);
    return links;
  }
  const rank = (l: Loaded): number => {
    const i = steps.indexOf(l.name);
    return i === -1 ? steps.length : i;
  };
  return links
    .map((l, i) => ({ l, i }))
    .sort((a, b) => rank(a.l) - rank(b.l) || a.i - b.i)
    .map(({ l }) => l);
}

/**
 * A stable topological order: B after A when B used (name and sha256) something A created or
 * changed (a product A did not also have as a material: pass-through products tell nothing
 * about order); otherwise the order the files were written in. Only `--layout` gives the
 * layout's own order.
 */
function byDataFlow(links: readonly Loaded[]): Loaded[] {
  const key = (n: string, d: HashDict): string => `${n}\0${sha256Of(d) ?? ''}`;
  const made = links.map((l) => {
    const used = new Set([...l.link.materials].map(([n, d]) => key(n, d)));
    return new Set([...l.link.products].map(([n, d]) => key(n, d)).filter((k) => !used.has(k)));
  });
  const after = links.map((l, i) => links.map((_, j) => j).filter((j) => j !== i && links[j]!.name !== l.name && [...l.link.materials].some(([n, d]) => made[j]!.has(key(n, d)))));
  const order: Loaded[] = [];
  const placed = new Set<number>();
  while (placed.size < links.length) {
    const next = links.findIndex((_, i) => !placed.has(i) && after[i]!.every((j) => placed.has(j)));
    const pick = next === -1 ? links.findIndex((_, i) => !placed.has(i)) : next; // a cycle: file order
    placed.add(pick);
    order.push(links[pick]!);
  }
  return order;
}
