import { recordArtifacts } from '../runner/record.js';

/**
 * The process the record benchmark times on our side: Node start-up, loading the recorder,
 * walking and hashing, as `intoto-run` would before it signs. Usage:
 *   node dist/bench/record-child.js --base DIR [--threads N] [--print] PATH...
 * Prints {"artifacts": N, "maxRssKiB": N} (and with --print, name -> sha256 in "digests").
 */
async function main(argv: readonly string[]): Promise<void> {
  let base: string | undefined;
  let threads: number | undefined;
  let print = false;
  const paths: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--base') base = argv[++i];
    else if (arg === '--threads') threads = Number(argv[++i]);
    else if (arg === '--print') print = true;
    else paths.push(arg);
  }
  const map = await recordArtifacts(paths, {
    ...(base === undefined ? {} : { basePath: base }),
    ...(threads === undefined ? {} : { concurrency: threads }),
    onWarning: (message) => process.stderr.write(`warning: ${message}\n`),
  });
  const out: Record<string, unknown> = { artifacts: map.size, maxRssKiB: process.resourceUsage().maxRSS };
  if (print) out['digests'] = Object.fromEntries([...map].map(([name, digests]) => [name, digests.get('sha256')]));
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`record-child: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
