import { randomBytes } from 'node:crypto';
import { UsageError } from '../errors.js';

/**
 * The command lines every engine runs on its machines: `intoto pipeline step` for one step run
 * and `intoto pipeline verify` for the final verification (issue 16, item 1). Slurm batch
 * scripts, GitHub Actions jobs and Argo templates are all built from these two functions, so
 * the three engines run exactly the same primitive.
 */

/** Where a run's artifacts and links live: an OCI registry repository. */
export interface StoreRef {
  /** `HOST` or `HOST:PORT` (an IPv6 address in brackets). */
  readonly host: string;
  readonly repository: string;
  /** `oci://HOST[:PORT]/REPO`, as given on command lines. */
  readonly url: string;
}

// OCI distribution spec: repository name components, joined by '/'.
const REPOSITORY = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;

/**
 * Parses `oci://HOST[:PORT]/REPO`.
 * @throws UsageError E_USAGE naming what is wrong
 */
export function parseStoreUrl(url: string): StoreRef {
  const match = /^oci:\/\/([^/]+)\/(.+)$/.exec(url);
  if (match === null) throw new UsageError('E_USAGE', `--store must be oci://HOST[:PORT]/REPOSITORY, not '${url}'`);
  const [, host = '', repository = ''] = match;
  if (!HOST.test(host)) throw new UsageError('E_USAGE', `--store ${url}: '${host}' is not a host name or address with an optional port`);
  const port = /:([0-9]+)$/.exec(host)?.[1];
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) throw new UsageError('E_USAGE', `--store ${url}: port ${port} is outside 1-65535`);
  if (repository.length > 255 || !REPOSITORY.test(repository)) {
    throw new UsageError('E_USAGE', `--store ${url}: '${repository}' is not an OCI repository name (lower-case letters, digits, '.', '_', '-' between them, '/' between parts)`);
  }
  return { host, repository, url };
}

// The OCI tag grammar: a run id becomes part of tag names in the store.
const RUN_ID = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$/;

/** @throws UsageError E_USAGE unless `id` is 1-64 characters of [A-Za-z0-9._-], not starting with '.' or '-' */
export function checkRunId(id: string): string {
  if (!RUN_ID.test(id)) throw new UsageError('E_USAGE', `--run-id '${id}' must be 1 to 64 of A-Z a-z 0-9 . _ - and start with a letter, digit or _`);
  return id;
}

/** A fresh run id: the UTC time to the second and 8 random hex digits, e.g. `20261206T191203Z-5f0c2a9e`. */
export function newRunId(now: Date = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.[0-9]+Z$/, 'Z');
  return `${stamp}-${randomBytes(4).toString('hex')}`;
}

export interface StepCommandOptions {
  /** How `intoto` is invoked on the machine, e.g. `['intoto']` or `['node', '/opt/intoto/dist/bin/intoto.js']`. */
  readonly intoto: readonly string[];
  /** The YAML layout source, as a path on the machine that runs the command. */
  readonly layout: string;
  readonly store: StoreRef;
  readonly runId: string;
  /** The layout owner's public key(s), as paths on the machine: every step checks the run and the layout against them. */
  readonly ownerKeys: readonly string[];
  /** `--param` values, in order. */
  readonly params?: ReadonlyMap<string, string>;
  /** `--pubkey-dir DIR`: the functionaries' public keys as DIR/NAME.pub on the machine. */
  readonly pubkeyDir?: string;
  /** `--insecure`: plain HTTP to a registry that is not on the machine (a lab's bridge address). */
  readonly insecure?: boolean;
  /** `--ca-file PEM` on the machine. */
  readonly caFile?: string;
}

/** What only a step's command line takes. */
export interface StepRunArgs {
  readonly step: string;
  readonly functionary: string;
  /** Where the functionary's private key is on that machine; the key itself never travels. */
  readonly keyPath: string;
  /** `--sandbox auto|bwrap|none`. */
  readonly sandbox?: string;
  /** `--timeout S` for a step that sets none. */
  readonly timeout?: string;
}

/**
 * `intoto pipeline step LAYOUT STEP --as FUNCTIONARY -k KEY --layout-key OWNER.pub...
 * --store oci://HOST[:PORT]/REPO --run-id ID [--param K=V...]`. Never throws.
 */
export function stepCommand(options: StepCommandOptions & StepRunArgs): string[] {
  return [
    ...options.intoto,
    'pipeline',
    'step',
    options.layout,
    options.step,
    '--as',
    options.functionary,
    '-k',
    options.keyPath,
    ...options.ownerKeys.flatMap((key) => ['--layout-key', key]),
    ...storeArgs(options),
    ...(options.sandbox === undefined ? [] : ['--sandbox', options.sandbox]),
    ...(options.timeout === undefined ? [] : ['--timeout', options.timeout]),
  ];
}

/**
 * `intoto pipeline verify LAYOUT --store ... --run-id ID -k OWNER.pub... [-o DIR]
 * [--param K=V...]`: fetch the run's links and products, verify, and materialise the final
 * products in DIR only on a pass. Never throws.
 */
export function verifyCommand(options: StepCommandOptions & { readonly outDir?: string; readonly sandbox?: string }): string[] {
  return [
    ...options.intoto,
    'pipeline',
    'verify',
    options.layout,
    ...storeArgs(options),
    ...options.ownerKeys.flatMap((key) => ['-k', key]),
    ...(options.outDir === undefined ? [] : ['-o', options.outDir]),
    ...(options.sandbox === undefined ? [] : ['--sandbox', options.sandbox]),
  ];
}

function storeArgs(options: StepCommandOptions): string[] {
  const params = [...(options.params ?? new Map<string, string>())].flatMap(([key, value]) => ['--param', `${key}=${value}`]);
  return [
    '--store',
    options.store.url,
    '--run-id',
    options.runId,
    ...params,
    ...(options.pubkeyDir === undefined ? [] : ['--pubkey-dir', options.pubkeyDir]),
    ...(options.insecure === true ? ['--insecure'] : []),
    ...(options.caFile === undefined ? [] : ['--ca-file', options.caFile]),
  ];
}
