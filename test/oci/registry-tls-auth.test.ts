import { spawn, spawnSync } from 'node:child_process';
import { createPrivateKey, sign, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryError } from '../../src/errors.js';
import { RegistryClient } from '../../src/oci/client.js';
import { parseRegistryHost } from '../../src/oci/reference.js';
import { binPath, runBin } from '../helpers/bin.js';
import { makeSigningKey, signModel } from '../helpers/oms-sign.js';
import { tempDir } from '../helpers/reference.js';
import { registryAvailable, startRegistry, type TestRegistry } from '../helpers/registry.js';

/**
 * The registry commands over HTTPS and with credentials, against the real docker-registry:
 * TLS with a certificate made here for 127.0.0.1 (trusted through --ca-file, never unverified),
 * basic authentication from an htpasswd file of bcrypt entries (apache2-utils' htpasswd), and
 * bearer tokens: the registry itself validates every token (issuer, audience, expiry, the
 * signing certificate against its root bundle, the access claims); only the token service that
 * issues them is a small server here, since Debian packages none.
 */
const available = registryAvailable();
const HTPASSWD_BIN = '/usr/bin/htpasswd';
if (process.env['CI'] === 'true' && !existsSync(HTPASSWD_BIN)) throw new Error(`CI=true but ${HTPASSWD_BIN} (Debian package apache2-utils) is not installed`);

const work = tempDir('intoto-oci-tls-');

function openssl(args: readonly string[]): void {
  const result = spawnSync('openssl', args, { cwd: work, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${result.stderr}`);
}

/** A self-signed P-256 certificate for 127.0.0.1 (a CA of its own): `<name>.pem`, `<name>.key`. */
function certificate(name: string, subjectAltName = 'IP:127.0.0.1'): { cert: string; key: string } {
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=${name}`, '-addext', `subjectAltName=${subjectAltName}`]);
  return { cert: join(work, `${name}.pem`), key: join(work, `${name}.key`) };
}

/** A model and its signature, and the signer's public key. */
function makeModel(): { model: string; sig: string; pub: string } {
  const model = join(work, 'model');
  if (!existsSync(model)) {
    mkdirSync(join(model, 'sub'), { recursive: true });
    writeFileSync(join(model, 'weights.bin'), Buffer.alloc(2 * 1024 * 1024, 9));
    writeFileSync(join(model, 'sub', 'config.json'), '{"layers": 2}\n');
    const key = makeSigningKey('P-256');
    writeFileSync(join(work, 'model.sig'), signModel(model, key));
    writeFileSync(join(work, 'signer.pub'), key.publicPem);
  }
  return { model, sig: join(work, 'model.sig'), pub: join(work, 'signer.pub') };
}

type Options = { input?: string; env?: NodeJS.ProcessEnv };
const envOf = (options: Options): NodeJS.ProcessEnv => ({ ...process.env, HOME: work, DOCKER_CONFIG: join(work, 'no-docker-config'), ...options.env });

/** The built `intoto`, waited for synchronously (the registry is another process). */
const intoto = (args: readonly string[], options: Options = {}) => runBin('intoto', args, { ...(options.input === undefined ? {} : { input: options.input }), env: envOf(options) });

/** The same, without blocking this process: for servers that run in it (the token service). */
function intotoAsync(args: readonly string[], options: Options = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [binPath('intoto'), ...args], { env: envOf(options), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}

describe.skipIf(!available)('HTTPS (--ca-file) and basic authentication (htpasswd, bcrypt) against docker-registry 2.8.2', () => {
  let registry: TestRegistry;
  let tls: { cert: string; key: string };
  const USER = 'alice';
  const PASSWORD = 'correct horse battery staple';

  beforeAll(() => {
    tls = certificate('registry');
    const entry = spawnSync(HTPASSWD_BIN, ['-nbB', USER, PASSWORD], { encoding: 'utf8' });
    expect(entry.status).toBe(0);
    expect(entry.stdout).toMatch(/^alice:\$2y\$/);
    writeFileSync(join(work, 'htpasswd'), entry.stdout);
    registry = startRegistry({ tls, htpasswd: join(work, 'htpasswd') });
  });
  afterAll(() => registry?.stop());

  const ref = (repo: string, tag: string) => `${registry.address}/${repo}:${tag}`;
  const login = ['--ca-file', '', '--username', USER, '--password-stdin'];
  const withCa = (args: string[]) => args.map((a, i) => (a === '' && args[i - 1] === '--ca-file' ? tls.cert : a));

  it('push, versions and pull over HTTPS, trusting the registry certificate through --ca-file, with --username/--password-stdin', () => {
    const { model, sig, pub } = makeModel();
    const pushed = intoto(['push', model, ref('models/tls', 'v1'), '--signature', sig, ...withCa(login)], { input: `${PASSWORD}\n` });
    expect(pushed.stderr).toContain('pushed 2 file(s)');
    expect(pushed.status).toBe(0);
    const listed = intoto(['versions', `${registry.address}/models/tls`, '--json', ...withCa(login)], { input: PASSWORD });
    expect(JSON.parse(listed.stdout)).toMatchObject({ passed: true, versions: [{ tag: 'v1' }] });
    const out = join(work, 'pulled-tls');
    const pulled = intoto(['pull', ref('models/tls', 'v1'), '-o', out, '-k', pub, ...withCa(login)], { input: PASSWORD });
    expect(pulled.status).toBe(0);
    expect(readFileSync(join(out, 'weights.bin')).equals(readFileSync(join(model, 'weights.bin')))).toBe(true);
    expect(readFileSync(join(out, 'sub', 'config.json'), 'utf8')).toBe('{"layers": 2}\n');
  });

  it('credentials from $DOCKER_CONFIG/config.json (docker login\'s file), no flag needed', () => {
    const { pub } = makeModel();
    const dockerConfig = join(work, 'docker');
    mkdirSync(dockerConfig, { recursive: true });
    writeFileSync(join(dockerConfig, 'config.json'), JSON.stringify({ auths: { [registry.address]: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString('base64') } } }));
    const out = join(work, 'pulled-docker-config');
    const pulled = intoto(['pull', ref('models/tls', 'v1'), '-o', out, '-k', pub, '--ca-file', tls.cert], { env: { DOCKER_CONFIG: dockerConfig } });
    expect(pulled.stderr).toMatch(/^\S+ is sha256:[0-9a-f]{64}\nverified 2 file\(s\)/);
    expect(pulled.status).toBe(0);
  });

  it('no credentials, or a wrong password: E_REGISTRY_AUTH, nothing written', () => {
    const { pub } = makeModel();
    const out = join(work, 'pulled-anonymous');
    const anonymous = intoto(['pull', ref('models/tls', 'v1'), '-o', out, '-k', pub, '--ca-file', tls.cert]);
    expect(anonymous.status).toBe(1);
    expect(anonymous.stderr).toContain('requires credentials (pass --username and --password-stdin, or log in with docker login) [E_REGISTRY_AUTH]');
    const wrong = intoto(['pull', ref('models/tls', 'v1'), '-o', out, '-k', pub, ...withCa(login)], { input: 'wrong password' });
    expect(wrong.status).toBe(1);
    expect(wrong.stderr).toContain('answered HTTP 401');
    expect(wrong.stderr).toContain('[E_REGISTRY_AUTH]');
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(work).filter((n) => n.startsWith('.intoto-pull-'))).toEqual([]);
  });

  it('TLS is verified: with a CA that did not issue the registry\'s certificate, nothing is exchanged', () => {
    const { pub } = makeModel();
    const other = certificate('other-ca');
    const out = join(work, 'pulled-other-ca');
    const result = intoto(['pull', ref('models/tls', 'v1'), '-o', out, '-k', pub, '--ca-file', other.cert, '--username', USER, '--password-stdin'], { input: PASSWORD });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/no answer from 127\.0\.0\.1:\d+: (SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_VERIFY_LEAF_SIGNATURE)/);
    expect(result.stderr).toContain('[E_REGISTRY]');
    expect(existsSync(out)).toBe(false);
  });

  it('without --ca-file a loopback registry is spoken to in plain HTTP: the TLS registry refuses it, nothing is sent as credentials over it', () => {
    const { pub } = makeModel();
    const out = join(work, 'pulled-plain');
    const result = intoto(['pull', ref('models/tls', 'v1'), '-o', out, '-k', pub]);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('answered HTTP 400');
    expect(existsSync(out)).toBe(false);
  });
});

describe('HTTPS to plain HTTP is never followed (a blob redirect, the one redirect that may leave the registry)', () => {
  let https: ReturnType<typeof createHttpsServer>;
  let plain: Server;
  let tls: { cert: string; key: string };
  const seen: string[] = [];

  beforeAll(async () => {
    tls = certificate('redirecting');
    plain = createHttpServer((req, res) => {
      seen.push(`plain ${req.method} ${req.url} auth=${req.headers.authorization ?? ''}`);
      res.end('x');
    });
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    const plainPort = (plain.address() as AddressInfo).port;
    https = createHttpsServer({ cert: readFileSync(tls.cert), key: readFileSync(tls.key) }, (req, res) => {
      seen.push(`https ${req.method} ${req.url}`);
      res.writeHead(307, { location: `http://127.0.0.1:${plainPort}/storage/blob`, 'content-length': '0' });
      res.end();
    });
    await new Promise<void>((resolve) => https.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    await new Promise((resolve) => https.close(resolve));
    await new Promise((resolve) => plain.close(resolve));
  });

  it('E_REDIRECT naming the downgrade; the plain HTTP host is never contacted', async () => {
    const address = `127.0.0.1:${(https.address() as AddressInfo).port}`;
    const client = new RegistryClient(parseRegistryHost(address), { caFile: tls.cert, credentials: { kind: 'basic', username: 'u', password: 'p' } });
    expect(client.origin).toBe(`https://${address}`);
    const digest = `sha256:${'a'.repeat(64)}`;
    const error = await client.fetchBlobBytes('m', { digest, size: 1 }, 10).then(
      () => undefined,
      (e: unknown) => e,
    );
    await client.close();
    expect(error).toBeInstanceOf(RegistryError);
    expect((error as RegistryError).code).toBe('E_REDIRECT');
    expect((error as RegistryError).message).toContain('a downgrade from HTTPS to plain HTTP');
    expect(seen.some((line) => line.startsWith('plain'))).toBe(false);
  });
});

/** Base64url without padding (JOSE). */
const b64url = (bytes: Buffer | string): string => Buffer.from(bytes).toString('base64url');

/**
 * A token service in the shape of distribution's token spec: GET /token?service=S&scope=...
 * with Basic credentials; answers a JWT (ES256, the signing certificate in `x5c`) granting the
 * scopes asked for, or 401.
 */
function tokenService(options: { user: string; password: string; issuer: string; service: string; signer: { cert: string; key: string } }): { server: Server; requests: { auth: string | undefined; scopes: string[]; service: string | null }[] } {
  const requests: { auth: string | undefined; scopes: string[]; service: string | null }[] = [];
  const key = createPrivateKey(readFileSync(options.signer.key));
  const x5c = [new X509Certificate(readFileSync(options.signer.cert)).raw.toString('base64')];
  const server = createHttpServer((req: IncomingMessage, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const scopes = url.searchParams.getAll('scope');
    requests.push({ auth: req.headers.authorization, scopes, service: url.searchParams.get('service') });
    const expected = `Basic ${Buffer.from(`${options.user}:${options.password}`).toString('base64')}`;
    if (url.pathname !== '/token' || req.headers.authorization !== expected) {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end('{"details": "bad credentials"}');
      return;
    }
    const now = Math.floor(Date.now() / 1000);
    const access = scopes.map((scope) => {
      const [type, ...rest] = scope.split(':');
      const actions = rest.pop() ?? '';
      return { type, name: rest.join(':'), actions: actions.split(',') };
    });
    const header = b64url(JSON.stringify({ typ: 'JWT', alg: 'ES256', x5c }));
    const claims = b64url(JSON.stringify({ iss: options.issuer, sub: options.user, aud: options.service, exp: now + 300, nbf: now - 10, iat: now, jti: `${now}-${requests.length}`, access }));
    const signature = b64url(sign('sha256', Buffer.from(`${header}.${claims}`), { key, dsaEncoding: 'ieee-p1363' }));
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token: `${header}.${claims}.${signature}`, expires_in: 300 }));
  });
  return { server, requests };
}

describe.skipIf(!available)('bearer tokens: docker-registry 2.8.2 validating JWTs from a token service', () => {
  let registry: TestRegistry;
  let service: ReturnType<typeof tokenService>;
  let rogue: ReturnType<typeof tokenService>;
  const USER = 'bob';
  const PASSWORD = 'token pass';

  beforeAll(async () => {
    const signer = certificate('token-signer', 'DNS:token.test');
    const rogueSigner = certificate('rogue-signer', 'DNS:token.test');
    const common = { user: USER, password: PASSWORD, issuer: 'intoto-test-issuer', service: 'intoto-test-registry' };
    service = tokenService({ ...common, signer });
    rogue = tokenService({ ...common, signer: rogueSigner });
    await new Promise<void>((resolve) => service.server.listen(0, '127.0.0.1', resolve));
    await new Promise<void>((resolve) => rogue.server.listen(0, '127.0.0.1', resolve));
    registry = startRegistry({
      token: { realm: `http://127.0.0.1:${(service.server.address() as AddressInfo).port}/token`, service: common.service, issuer: common.issuer, rootCerts: signer.cert },
    });
  });
  afterAll(async () => {
    registry?.stop();
    await new Promise((resolve) => service?.server.close(resolve));
    await new Promise((resolve) => rogue?.server.close(resolve));
  });

  const ref = (repo: string, tag: string) => `${registry.address}/${repo}:${tag}`;
  const login = ['--username', USER, '--password-stdin'];

  it('push and pull: the token is fetched from the realm with the credentials, for the scopes the registry names, and accepted', async () => {
    const { model, sig, pub } = makeModel();
    const pushed = await intotoAsync(['push', model, ref('models/token', 'v1'), '--signature', sig, ...login], { input: PASSWORD });
    expect(pushed.stderr).toContain('pushed 2 file(s)');
    expect(pushed.status).toBe(0);
    const out = join(work, 'pulled-token');
    const pulled = await intotoAsync(['pull', ref('models/token', 'v1'), '-o', out, '-k', pub, ...login], { input: PASSWORD });
    expect(pulled.status).toBe(0);
    expect(readFileSync(join(out, 'weights.bin')).equals(readFileSync(join(model, 'weights.bin')))).toBe(true);
    expect(service.requests.length).toBeGreaterThan(0);
    expect(service.requests.every((r) => r.auth === `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}` && r.service === 'intoto-test-registry')).toBe(true);
    expect(service.requests.flatMap((r) => r.scopes)).toEqual(expect.arrayContaining(['repository:models/token:pull,push', 'repository:models/token:pull']));
  });

  it('a wrong password: the token service refuses, E_REGISTRY_AUTH', async () => {
    const { pub } = makeModel();
    const out = join(work, 'pulled-token-wrong');
    const result = await intotoAsync(['pull', ref('models/token', 'v1'), '-o', out, '-k', pub, ...login], { input: 'not the password' });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('refused (HTTP 401); check the credentials [E_REGISTRY_AUTH]');
    expect(existsSync(out)).toBe(false);
  });

  it('the registry really checks each token: one signed by a key outside its root bundle is refused (so the passes above were checked)', async () => {
    const realm = `http://127.0.0.1:${(rogue.server.address() as AddressInfo).port}/token?service=intoto-test-registry&scope=repository:models/token:pull`;
    const answer = await fetch(realm, { headers: { authorization: `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}` } });
    const { token } = (await answer.json()) as { token: string };
    const refused = await fetch(`http://${registry.address}/v2/models/token/tags/list`, { headers: { authorization: `Bearer ${token}` } });
    expect(refused.status).toBe(401);
    const accepted = await fetch(realm.replace(`${(rogue.server.address() as AddressInfo).port}`, `${(service.server.address() as AddressInfo).port}`), {
      headers: { authorization: `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}` },
    });
    const good = ((await accepted.json()) as { token: string }).token;
    expect((await fetch(`http://${registry.address}/v2/models/token/tags/list`, { headers: { authorization: `Bearer ${good}` } })).status).toBe(200);
  });
});
