import { setInvocation, usage, VERSION } from './main.js';

/**
 * `intoto`, the umbrella command. Its own subcommands are `layout check|sign`, `pipeline run`
 * and `scan-model` (alias `scan-pickle`); `keygen`, `sign`, `run`, `record`, `mock`, `match-products` and `verify`
 * hand the rest of the command line, untouched, to the same main function as the matching
 * `intoto-<name>` program, so `intoto verify ARGS` and `intoto-verify ARGS` are one program.
 * Each is imported only when chosen, so `intoto run` starts as fast as `intoto-run`.
 */

type Main = (argv: string[]) => Promise<number>;

const TOOLS: ReadonlyMap<string, () => Promise<Main>> = new Map([
  ['keygen', async () => (await import('./keygen.js')).keygenMain],
  ['sign', async () => (await import('./sign.js')).signMain],
  ['run', async () => (await import('./run.js')).runStepMain],
  ['record', async () => (await import('./record.js')).recordMain],
  ['mock', async () => (await import('./mock.js')).mockMain],
  ['match-products', async () => (await import('./match-products.js')).matchProductsMain],
  ['verify', async () => (await import('./verify.js')).verifyMain],
  ['scan-model', async () => (await import('./scan-model.js')).scanModelMain],
  ['scan-pickle', async () => async (argv: string[]) => (await import('./scan-model.js')).scanModelMain(argv, 'scan-pickle')],
  ['trace', async () => (await import('./trace.js')).traceMain],
  ['push', async () => (await import('./oci.js')).pushMain],
  ['pull', async () => (await import('./oci.js')).pullMain],
  ['versions', async () => (await import('./oci.js')).versionsMain],
]);

const GROUPS: ReadonlyMap<string, ReadonlyMap<string, () => Promise<Main>>> = new Map([
  [
    'layout',
    new Map([
      ['check', async () => (await import('./layout.js')).layoutCheckMain],
      ['sign', async () => (await import('./layout.js')).layoutSignMain],
    ]),
  ],
  [
    'pipeline',
    new Map([
      ['run', async () => (await import('./pipeline.js')).pipelineRunMain],
      ['export', async () => (await import('./pipeline-export.js')).pipelineExportMain],
      ['publish', async () => (await import('./pipeline-store.js')).pipelinePublishMain],
      ['step', async () => (await import('./pipeline-store.js')).pipelineStepMain],
      ['verify', async () => (await import('./pipeline-store.js')).pipelineVerifyMain],
    ]),
  ],
  [
    'model',
    new Map([
      ['sign', async () => (await import('./model.js')).modelSignMain],
      ['verify', async () => (await import('./model.js')).modelVerifyMain],
    ]),
  ],
  ['data', new Map([['check', async () => (await import('./data.js')).dataCheckMain]])],
]);

/** What `intoto --help` prints. */
export const INTOTO_HELP = `usage: intoto <command> [options]

An in-toto supply-chain orchestrator, compatible with in-toto 1.3.1.

Pipelines (YAML layouts):
  layout check FILE               check a YAML layout: errors and warnings with line:column
  layout sign FILE -k OWNER_KEY   compile it into a signed in-toto layout (root.layout)
  pipeline run FILE --keys DIR    run every step sandboxed and signed, then verify the chain
  pipeline export FILE --to E     write it as a GitHub Actions or Argo workflow
  pipeline publish FILE --store S the owner opens a run in an OCI store (signed layout, inputs)
  pipeline step FILE STEP --as F  run one step of a published run on this machine, with its key
  pipeline verify FILE --store S  verify a run from the store; write its final products on a pass

Models and data:
  scan-model PATH...              check model files for anything that runs code when loaded
                                  (pickle, joblib, PyTorch, numpy, safetensors, ONNX; scan-pickle is an alias)
  model sign MODEL -k KEY         sign a model directory (OpenSSF Model Signing v1.0, model.sig)
  model verify MODEL -k PUB       verify it (or --certificate-chain CA, or --identity --issuer)
  data check PATH.dvc|dvc.lock    recompute DVC's md5 digests and list every mismatch
  trace ARTIFACT [--layout ...]   the chain of custody of a file or digest over the links

Models in an OCI registry:
  push MODEL HOST/REPO:TAG        push a model (ModelPack) with its signature and attestations
  pull REF -o DIR -k SIGNER.pub   the deployment gate: only a verified model reaches DIR
  versions HOST/REPO              each version: tag, digest, signer, attachments

The in-toto tools (same options as in-toto-<name>; also installed as intoto-<name>):
  keygen  sign  run  record  mock  match-products  verify

Run 'intoto <command> --help' for a command's options.
`;

/** What `intoto layout --help` and `intoto pipeline --help` print. */
const GROUP_HELP: ReadonlyMap<string, string> = new Map([
  [
    'layout',
    `usage: intoto layout <check|sign> FILE [options]

YAML pipeline layouts (the format: layouts/README.md).

Commands:
  check FILE                      errors and warnings as FILE:LINE:COL: severity: message [id]
  sign FILE -k OWNER_KEY          compile it into a standard in-toto layout signed by the owner

Run 'intoto layout <command> --help' for a command's options.
`,
  ],
  [
    'pipeline',
    `usage: intoto pipeline <run|export|publish|step|verify> FILE [options]

Commands:
  run FILE --keys DIR             run every step sandboxed and signed by its functionary's key
                                  (DIR/<name>), then sign the layout and verify the whole chain;
                                  with --engine slurm, each step on its functionary's node
  export FILE --to ENGINE         write it as a GitHub Actions or Argo workflow
  publish FILE --store oci://...  the layout owner opens a run: signed layout, run record, inputs
  step FILE STEP --as F -k KEY    one step of a published run on this machine (what every
                                  engine runs): materials fetched and checked, products pushed
  verify FILE --store ... -k PUB  verify a run from the store; final products only on a pass

Run 'intoto pipeline <command> --help' for a command's options.
`,
  ],
]);

/** Dispatches `intoto <command> ...`. @throws UsageError E_USAGE for an unknown command */
export async function intotoMain(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '-h' || command === '--help') {
    process.stdout.write(INTOTO_HELP);
    return command === undefined ? 2 : 0;
  }
  if (command === '--version') {
    process.stdout.write(`intoto ${VERSION}\n`);
    return 0;
  }
  const tool = TOOLS.get(command);
  if (tool !== undefined) {
    setInvocation(`intoto ${command}`);
    return (await tool())(rest);
  }
  const group = GROUPS.get(command);
  if (group !== undefined) {
    const [sub, ...args] = rest;
    const main = sub === undefined ? undefined : group.get(sub);
    if (main === undefined) {
      if (sub === '--help' || sub === '-h' || sub === 'help') {
        process.stdout.write(GROUP_HELP.get(command) ?? INTOTO_HELP);
        return 0;
      }
      usage(`'intoto ${command}' takes one of: ${[...group.keys()].join(', ')}${sub === undefined ? '' : `, not '${sub}'`}; run 'intoto ${command} --help'`);
    }
    setInvocation(`intoto ${command} ${sub as string}`);
    return (await main())(args);
  }
  usage(`unknown command '${command}'; run 'intoto --help' for the list`);
}
