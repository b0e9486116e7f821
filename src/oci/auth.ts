import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseJson } from '../canonical/parse.js';
import { getOwn, isJsonObject } from '../canonical/json.js';
import { RegistryError } from '../errors.js';
import { readRegularFileSync } from '../io/files.js';

/**
 * Registry credentials and the two authentication schemes registries use (distribution's
 * token authentication spec, and HTTP Basic): where credentials come from, how a challenge
 * (`WWW-Authenticate`) reads, and nothing else. The transport (transport.ts) decides where
 * credentials may be sent: only to the registry's own origin and to the token realm it names.
 */

export type Credentials =
  | { readonly kind: 'basic'; readonly username: string; readonly password: string }
  | { readonly kind: 'identity-token'; readonly token: string };

/** A parsed `WWW-Authenticate` challenge. */
export interface Challenge {
  readonly scheme: 'basic' | 'bearer';
  readonly params: ReadonlyMap<string, string>;
}

const MAX_DOCKER_CONFIG_BYTES = 1024 * 1024;

/**
 * Reads the first challenge of a `WWW-Authenticate` header (`Bearer realm="...",service="..."`).
 * Unknown schemes give undefined.
 */
export function parseChallenge(header: string | null): Challenge | undefined {
  if (header === null || header.length > 8192) return undefined;
  const match = /^\s*([A-Za-z]+)\s*(.*)$/s.exec(header);
  if (match === null) return undefined;
  const scheme = match[1]!.toLowerCase();
  if (scheme !== 'basic' && scheme !== 'bearer') return undefined;
  const params = new Map<string, string>();
  const re = /\s*([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*(?:,|$)/gy;
  const rest = match[2]!;
  let m: RegExpExecArray | null;
  while (re.lastIndex < rest.length && (m = re.exec(rest)) !== null) {
    params.set(m[1]!.toLowerCase(), m[2] === undefined ? m[3]! : m[2].replace(/\\(.)/g, '$1'));
  }
  return { scheme, params };
}

/** The directory holding docker's config.json: `$DOCKER_CONFIG`, else `~/.docker` (docker's own rule). */
export function dockerConfigDir(env: NodeJS.ProcessEnv = process.env): string {
  return env['DOCKER_CONFIG'] ?? join(homedir(), '.docker');
}

/** The host part of a docker config `auths` key (`https://host:port/v1/` → `host:port`). */
function authorityOfKey(key: string): string {
  return key.replace(/^[a-z]+:\/\//, '').replace(/\/.*$/, '');
}

/**
 * Credentials for `authority` (`host[:port]`) from docker's config.json: `auths[...].auth`
 * (base64 `user:password`), `username`/`password`, or `identitytoken`. Credential helpers
 * (`credsStore`, `credHelpers`) are programs; we never run them, and say so through `warn`.
 * @throws RegistryError E_REGISTRY_AUTH for a config file that is present but unreadable or
 *   malformed (a broken credential source should not silently become anonymous access)
 */
export function dockerConfigCredentials(authority: string, options: { readonly dir?: string; readonly warn?: (line: string) => void } = {}): Credentials | undefined {
  const file = join(options.dir ?? dockerConfigDir(), 'config.json');
  if (!existsSync(file)) return undefined;
  let config;
  try {
    config = parseJson(readRegularFileSync(file, { maxBytes: MAX_DOCKER_CONFIG_BYTES, what: 'docker config' }), { source: file });
  } catch (error) {
    throw new RegistryError('E_REGISTRY_AUTH', `${file}: cannot read the docker credentials: ${(error as Error).message}`, { cause: error, context: { file } });
  }
  if (!isJsonObject(config)) throw new RegistryError('E_REGISTRY_AUTH', `${file}: not a JSON object`, { context: { file } });
  const auths = getOwn(config, 'auths');
  if (isJsonObject(auths)) {
    for (const key of Object.keys(auths)) {
      const entry = auths[key];
      if (authorityOfKey(key) !== authority || !isJsonObject(entry)) continue;
      const identity = getOwn(entry, 'identitytoken');
      if (typeof identity === 'string' && identity !== '') return { kind: 'identity-token', token: identity };
      const auth = getOwn(entry, 'auth');
      if (typeof auth === 'string' && auth !== '') {
        const decoded = Buffer.from(auth, 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        if (colon <= 0) throw new RegistryError('E_REGISTRY_AUTH', `${file}: auths[${JSON.stringify(key)}].auth is not base64 of user:password`, { context: { file } });
        return { kind: 'basic', username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
      }
      const username = getOwn(entry, 'username');
      const password = getOwn(entry, 'password');
      if (typeof username === 'string' && typeof password === 'string') return { kind: 'basic', username, password };
    }
  }
  const helpers = getOwn(config, 'credHelpers');
  const helper = isJsonObject(helpers) ? getOwn(helpers, authority) : undefined;
  const store = getOwn(config, 'credsStore');
  if (typeof helper === 'string' || typeof store === 'string') {
    options.warn?.(`${file}: credentials for ${authority} may be held by a docker credential helper, which intoto does not run; pass --username and --password-stdin`);
  }
  return undefined;
}

/** The `Authorization` value for Basic authentication. */
export function basicAuthorization(credentials: { readonly username: string; readonly password: string }): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`, 'utf8').toString('base64')}`;
}
