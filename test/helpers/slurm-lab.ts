import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './bin.js';

/**
 * The Slurm lab (scripts/slurm-lab.sh) for tests: each test file starts its own, in its own
 * temporary directory, and stops it by PID in afterAll. Slurm missing: the tests are skipped
 * on a developer machine, and FAIL under CI=true (CI installs it: scripts/install-deps.sh).
 */

export interface Lab {
  readonly dir: string;
  readonly mode: 'namespaces' | 'loopback';
  readonly nodes: readonly string[];
  /** host:port of the lab's registry, reachable from every node. */
  readonly registry: string;
  readonly partition: string;
  /** Environment for the Slurm client commands (SLURM_CONF). */
  readonly env: NodeJS.ProcessEnv;
  /** A node's own directory (keys/, jobs/), the same path on the host and on the node. */
  nodeDir(node: string): string;
  /** The lab's shared directory: read-only on every node, at the same path (layouts, public keys). */
  readonly shared: string;
  /** Where the lab's registry keeps a blob (a test corrupts one there). */
  blobPath(digest: string): string;
  /** Runs a command inside a node's namespaces (nsenter). */
  exec(node: string, argv: readonly string[]): { status: number | null; stdout: string; stderr: string };
  stop(): void;
}

const SCRIPT = join(ROOT, 'scripts', 'slurm-lab.sh');

export function slurmAvailable(): boolean {
  const found = ['slurmctld', 'slurmd', 'sbatch', 'munged', 'docker-registry'].every((cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0);
  if (!found && process.env['CI'] === 'true') {
    throw new Error('CI=true but Slurm (slurmctld, slurmd, slurm-client), munge or docker-registry is not installed');
  }
  if (found && process.getuid?.() !== 0) {
    if (process.env['CI'] === 'true') throw new Error('CI=true but the Slurm lab needs root');
    return false;
  }
  return found;
}

/**
 * Starts a lab. Under CI=true it must have its namespaces unless `allowLoopback`.
 * @throws Error when `up` fails (its output is in the message)
 */
export function startLab(options: { nodes?: number; isolation?: 'auto' | 'namespaces' | 'loopback' } = {}): Lab {
  const dir = mkdtempSync(join(tmpdir(), 'intoto-lab-'));
  const env = { ...process.env, SLURM_LAB_DIR: dir, SLURM_LAB_NODES: String(options.nodes ?? 3), SLURM_LAB_ISOLATION: options.isolation ?? (process.env['CI'] === 'true' ? 'namespaces' : 'auto') };
  const up = spawnSync(SCRIPT, ['up'], { env, encoding: 'utf8', timeout: 180_000 });
  if (up.status !== 0) {
    spawnSync(SCRIPT, ['down'], { env, encoding: 'utf8', timeout: 120_000 });
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`slurm-lab.sh up failed (${up.status ?? up.signal}): ${up.stderr}${up.stdout}`);
  }
  const vars = new Map(
    readFileSync(join(dir, 'lab.env'), 'utf8')
      .split('\n')
      .filter((line) => line.includes('='))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)] as const),
  );
  const get = (name: string): string => {
    const value = vars.get(name);
    if (value === undefined) throw new Error(`lab.env has no ${name}`);
    return value;
  };
  const nodeRoot = get('SLURM_LAB_NODE_ROOT');
  let stopped = false;
  return {
    dir,
    mode: get('SLURM_LAB_MODE') as Lab['mode'],
    nodes: get('SLURM_LAB_NODES').split(','),
    registry: get('SLURM_LAB_REGISTRY'),
    partition: get('SLURM_LAB_PARTITION'),
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', SLURM_CONF: get('SLURM_CONF') },
    nodeDir: (node) => join(nodeRoot, node),
    shared: get('SLURM_LAB_SHARED'),
    blobPath: (digest) => {
      const hex = digest.replace(/^sha256:/, '');
      return join(dir, 'registry', 'storage', 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
    },
    exec: (node, argv) => {
      const r = spawnSync(SCRIPT, ['exec', node, '--', ...argv], { env, encoding: 'utf8', timeout: 60_000 });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    },
    stop: () => {
      if (stopped) return;
      stopped = true;
      const down = spawnSync(SCRIPT, ['down'], { env, encoding: 'utf8', timeout: 120_000 });
      if (down.status !== 0) throw new Error(`slurm-lab.sh down failed: ${down.stderr}`);
    },
  };
}
