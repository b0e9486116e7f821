import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './bin.js';

/**
 * A real registry for tests: Debian's docker-registry (CNCF distribution 2.8.2) on 127.0.0.1,
 * a free port, a temporary storage directory, stopped by PID. Started and stopped by
 * scripts/registry.sh, the one place that knows how (the benchmarks, the demo and the Slurm
 * lab use it too). Missing registry: skipped on a developer machine, a failure under CI=true.
 */
export const REGISTRY_BIN = '/usr/bin/docker-registry';
const SCRIPT = join(ROOT, 'scripts', 'registry.sh');

export function registryAvailable(): boolean {
  const found = existsSync(REGISTRY_BIN);
  if (!found && process.env['CI'] === 'true') throw new Error(`CI=true but ${REGISTRY_BIN} (Debian package docker-registry) is not installed`);
  return found;
}

export interface TestRegistry {
  /** `127.0.0.1:PORT`. */
  readonly address: string;
  /** The registry's working directory (config.yml, storage/, registry.log). */
  readonly dir: string;
  /** The blob store: `<storage>/docker/registry/v2/blobs/sha256/<2>/<hex>/data`. */
  blobPath(digest: string): string;
  stop(): void;
}

export interface RegistryOptions {
  /** Serve HTTPS with this certificate and key (PEM files). */
  readonly tls?: { readonly cert: string; readonly key: string };
  /** Require basic authentication against this htpasswd file (bcrypt entries). */
  readonly htpasswd?: string;
  /** Require bearer tokens from `realm`, JWTs signed by a key certified in `rootCerts` (PEM). */
  readonly token?: { readonly realm: string; readonly service: string; readonly issuer: string; readonly rootCerts: string };
}

/** Starts a registry; call stop() (afterAll) to stop it by PID and remove its storage. */
export function startRegistry(options: RegistryOptions = {}): TestRegistry {
  const dir = mkdtempSync(join(tmpdir(), 'intoto-registry-'));
  const env: NodeJS.ProcessEnv = { ...process.env, REGISTRY_OWNER_PID: String(process.pid) };
  if (options.tls !== undefined) Object.assign(env, { REGISTRY_TLS_CERT: options.tls.cert, REGISTRY_TLS_KEY: options.tls.key });
  if (options.htpasswd !== undefined) env['REGISTRY_HTPASSWD'] = options.htpasswd;
  if (options.token !== undefined) {
    Object.assign(env, {
      REGISTRY_TOKEN_REALM: options.token.realm,
      REGISTRY_TOKEN_SERVICE: options.token.service,
      REGISTRY_TOKEN_ISSUER: options.token.issuer,
      REGISTRY_TOKEN_ROOTCERTS: options.token.rootCerts,
    });
  }
  // The registry also stops when this test process dies without running stop() (a killed run).
  const up = spawnSync('bash', [SCRIPT, 'up', dir], { encoding: 'utf8', timeout: 60_000, env });
  if (up.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`scripts/registry.sh up failed: ${up.stderr}`);
  }
  const address = up.stdout.trim();
  return {
    address,
    dir,
    blobPath: (digest) => {
      const hex = digest.replace(/^sha256:/, '');
      return join(dir, 'storage', 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
    },
    stop: () => {
      spawnSync('bash', [SCRIPT, 'down', dir], { encoding: 'utf8', timeout: 30_000 });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
