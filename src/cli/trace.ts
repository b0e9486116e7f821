import { loadPublicKeyFile } from '../crypto/keyfiles.js';
import { TraceError } from '../errors.js';
import { traceArtifact, type TraceResult } from '../trace/trace.js';
import { acceptJson, createOutput, newProgram, usage, verbosityOf, writeJson } from './common.js';

/**
 * `intoto trace ARTIFACT [--layout root.layout -k OWNER.pub...] [--link-dir DIR] [--json]`:
 * the chain of custody of a file (by the name the links record it under) or of a digest
 * (`sha256:HEX`). Exit 0 when the artifact is unchanged along the chain and on disk (or only
 * modified by a step that recorded both versions), 1 when it changed between two steps or
 * after the last one (E_TRACE_CHANGED), or no link records it (E_TRACE_NOT_FOUND), 2 for bad usage.
 */
export async function traceMain(argv: string[]): Promise<number> {
  acceptJson();
  const program = newProgram('intoto trace', 'Trace a file or digest through the links of a pipeline: which steps used, made or changed it.')
    .argument('<artifact>', 'a file (named as the links name it, relative to this directory) or sha256:HEX')
    .option('-l, --layout <path>', 'the root layout: its steps give the order, and only links signed by authorised keys count')
    .option('-k, --layout-keys <paths...>', "the layout owner's public key(s), with --layout")
    .option('--link-dir <dir>', 'where the link files are', '.')
    .option('--json', 'print the trace as JSON on standard output');
  program.parse(argv, { from: 'user' });
  const opts = program.opts<{ layout?: string; layoutKeys?: string[]; linkDir: string; json?: boolean }>();
  const out = createOutput('intoto trace', verbosityOf(argv));
  if (opts.layout !== undefined && (opts.layoutKeys ?? []).length === 0) usage('--layout needs the owner key(s) with -k');
  if (opts.layout === undefined && opts.layoutKeys !== undefined) usage('-k goes with --layout');
  const [artifact] = program.args as [string];
  const result = await traceArtifact({
    artifact,
    linkDir: opts.linkDir,
    ...(opts.layout === undefined ? {} : { layout: { path: opts.layout, keys: (opts.layoutKeys ?? []).map((p) => loadPublicKeyFile(p)) } }),
  });
  for (const line of result.ignored) out.warn(`ignored ${line}`);
  const unexpected = result.changes.filter((c) => c.kind !== 'within-step');
  if (opts.json) writeJson({ ...result, firstChange: unexpected[0] ?? null });
  else printTrace(result);
  if (unexpected.length === 0) return 0;
  const first = unexpected[0]!;
  const error = new TraceError('E_TRACE_CHANGED', `${result.artifact} changed after ${first.after} (sha256 ${first.from}), ${first.before === 'disk' ? 'on disk' : `before ${first.before}`} (sha256 ${first.to})`);
  process.stderr.write(`intoto trace: error: ${error.message} [${error.code}]\n`);
  return 1;
}

const short = (d: string | undefined): string => (d === undefined ? '-' : d.slice(0, 16));

function printTrace(r: TraceResult): void {
  const lines = [
    `trace of ${r.mode === 'digest' ? `sha256 ${r.artifact}` : r.artifact}${r.signaturesChecked ? '' : ' (signatures NOT checked: give --layout and -k to count only authorised links)'}`,
  ];
  r.points.forEach((p, i) => {
    const who = p.signers.length === 0 ? 'unsigned' : `${p.verified ? 'signed by' : 'claims'} ${p.signers.map((k) => k.slice(0, 8)).join(', ')}`;
    const names = r.mode === 'digest' ? ` as ${p.artifacts.join(', ')}` : '';
    lines.push(`  ${i + 1}. ${p.kind} ${p.name} (${who}; ${p.linkFile})${names}: materials ${short(p.materials)}, products ${short(p.products)}`);
  });
  if (r.onDisk !== undefined) lines.push(`  on disk: ${short(r.onDisk)}`);
  for (const c of r.changes) {
    const what = c.kind === 'within-step' ? 'modified by' : 'CHANGED';
    lines.push(`  ${what}: ${c.after} (${short(c.from)}) -> ${c.before} (${short(c.to)})`);
  }
  const first = r.changes.find((c) => c.kind !== 'within-step');
  if (r.mode === 'name') {
    lines.push(
      first === undefined
        ? 'no unexpected change: every step saw the digest the previous one left' + (r.onDisk === undefined ? '' : ', and the file on disk still has it')
        : `first change: after ${first.after}, ${first.before === 'disk' ? 'on disk (after the last step that recorded it)' : `before ${first.before}`}`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}
