import { existsSync, readFileSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { rootCertificates } from 'node:tls';
import { RegistryError } from '../errors.js';
import { basicAuthorization, parseChallenge, type Challenge, type Credentials } from './auth.js';
import { isLoopback, type RegistryHost } from './reference.js';

/**
 * HTTP to one registry, over Node's own http and https modules, with the policies a client
 * that moves models between machines needs, each in one place:
 *
 * - scheme: plain HTTP only to loopback hosts (unless a `caFile` is given: whoever names a CA
 *   expects TLS) or with `insecure`; HTTPS otherwise, checked against the system's CA bundle
 *   (plus `caFile`), never unverified;
 * - credentials: sent only to the registry's own origin, and to the token realm its challenge
 *   names (HTTPS, or loopback); never to a host a redirect points at;
 * - redirects: followed only where safe: a blob download may go to another host (registries on
 *   object storage hand out pre-signed URLs), without credentials and never from HTTPS down to
 *   HTTP; everything else follows same-origin redirects for GET and HEAD only;
 * - retries: only requests without a body that change nothing (GET, HEAD), on no answer, 429
 *   and 5xx, at most `retries` times with backoff; an upload is never re-sent blindly;
 * - bounded reads: error bodies and small documents are read up to a cap, never whole.
 *
 * Why not `fetch`: its WHATWG streams cost about twice the CPU of Node streams on a blob's body
 * (measured on 256 MiB: upload 0.50 s against 0.26 s, download 0.70 s against 0.45 s, hashing
 * included), and a pull or push of a large model is CPU-bound on a two-core machine that also
 * runs the registry; and Node 20's global fetch cannot be given a CA list (the system's), which
 * would have taken the undici package: 0.8 MB more in every `intoto` start (about 20 ms).
 */

/** An answer: status, headers, and the body as a Node stream (to read, or to {@link discard}). */
export interface Response {
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  readonly body: IncomingMessage;
}

export interface TransportOptions {
  /** Allow plain HTTP to a host that is not loopback (docker's "insecure registry"). TLS, when used, is always verified. */
  readonly insecure?: boolean;
  readonly credentials?: Credentials | undefined;
  /** Extra PEM certificates to trust besides the system bundle; also makes a loopback registry HTTPS. */
  readonly caFile?: string;
  /** Longest wait for response headers, and longest pause inside a body (default 300 s). */
  readonly timeoutMs?: number;
  /** Extra attempts for safe requests (default 2). */
  readonly retries?: number;
  /** First backoff delay; doubled each attempt (default 250 ms). */
  readonly retryDelayMs?: number;
  readonly warn?: (line: string) => void;
}

/** How a request treats redirects. */
export type RedirectPolicy = 'none' | 'same-origin' | 'blob';

/** A request body: bytes, or a stream made afresh each time the request is sent. */
export type Body = Uint8Array | AsyncIterable<Uint8Array>;

export interface RequestSpec {
  readonly method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** A path on the registry (`/v2/...`) or an absolute URL on its origin (an upload location). */
  readonly url: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** Called for each send, so that a request refused for credentials can be sent again. */
  readonly body?: () => Body;
  /** The token scope, e.g. `repository:models/x:pull` or `repository:models/x:pull,push`. */
  readonly scope?: string;
  readonly redirects?: RedirectPolicy;
  /** Statuses returned to the caller; any other is a RegistryError. */
  readonly accept: readonly number[];
  /** What the request is for, in messages ("GET manifest models/x:v1"). */
  readonly what: string;
}

/** The most we read of an error answer or a token. */
const MAX_SMALL_BODY = 64 * 1024;
const MAX_REDIRECTS = 5;
const RETRY_STATUSES: readonly number[] = [429, 500, 502, 503, 504];
/** Where distributions keep the system's CA bundle (Debian/Ubuntu, Fedora/RHEL, Alpine/macOS). */
const SYSTEM_CA_FILES: readonly string[] = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem'];

let systemCas: string[] | undefined;

/** The system CA bundle (the first that exists), or Node's built-in roots when there is none. */
function systemCaCertificates(): string[] {
  if (systemCas === undefined) {
    const file = SYSTEM_CA_FILES.find((path) => existsSync(path));
    systemCas = file === undefined ? [...rootCertificates] : [readFileSync(file, 'utf8')];
  }
  return systemCas;
}

/** One registry's HTTP client: its origin, credentials, tokens and connection pool. */
export class Transport {
  readonly registry: RegistryHost;
  readonly origin: string;
  private readonly options: TransportOptions;
  private readonly agent: HttpAgent | HttpsAgent;
  private readonly timeoutMs: number;
  private basic: string | undefined;
  private readonly tokens = new Map<string, string>();

  /** @throws RegistryError E_INSECURE for plain HTTP to a non-loopback host without `insecure`; E_REGISTRY for an unreadable CA file */
  constructor(registry: RegistryHost, options: TransportOptions = {}) {
    this.registry = registry;
    this.options = options;
    const plain = options.insecure === true || (isLoopback(registry.hostname) && options.caFile === undefined);
    this.origin = `${plain ? 'http' : 'https'}://${registry.authority}`;
    this.timeoutMs = options.timeoutMs ?? 300_000;
    let ca: string[] | undefined;
    if (!plain) {
      ca = systemCaCertificates();
      if (options.caFile !== undefined) {
        try {
          ca = [...ca, readFileSync(options.caFile, 'utf8')];
        } catch (error) {
          throw new RegistryError('E_REGISTRY', `${options.caFile}: cannot read the CA file`, { cause: error, context: { file: options.caFile } });
        }
      }
    }
    this.agent = plain ? new HttpAgent({ keepAlive: true, maxSockets: 8 }) : new HttpsAgent({ keepAlive: true, maxSockets: 8, ca, rejectUnauthorized: true });
    this.httpsAgent = plain ? undefined : (this.agent as HttpsAgent);
  }

  private httpsAgent: HttpsAgent | undefined;

  /** Closes idle connections (call when done, so that the process can exit at once). */
  async close(): Promise<void> {
    this.agent.destroy();
    this.httpsAgent?.destroy();
    this.plainAgent?.destroy();
  }

  /** An HTTPS agent for a host other than the registry (a token realm, a blob's storage), trusting the same CAs. */
  private agentFor(url: URL): HttpAgent | HttpsAgent {
    if (url.protocol === 'http:') return this.agent instanceof HttpsAgent ? (this.plainAgent ??= new HttpAgent({ keepAlive: true })) : this.agent;
    if (this.httpsAgent === undefined) {
      const ca = [...systemCaCertificates(), ...(this.options.caFile === undefined ? [] : [readFileSync(this.options.caFile, 'utf8')])];
      this.httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets: 8, ca, rejectUnauthorized: true });
    }
    return this.httpsAgent;
  }

  private plainAgent: HttpAgent | undefined;

  /**
   * One HTTP exchange: resolves with the answer's head once it arrives (the body still to be
   * read); a stalled connection (no bytes either way for the timeout) is destroyed.
   */
  private send(url: URL, method: string, headers: Record<string, string>, body: Body | undefined): Promise<Response> {
    return new Promise((resolve, reject) => {
      const request = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, { method, headers, agent: this.agentFor(url), timeout: this.timeoutMs });
      let answered = false;
      request.on('timeout', () => request.destroy(Object.assign(new Error(`no data for ${this.timeoutMs / 1000} s`), { code: 'ETIMEDOUT' })));
      request.on('error', (error) => {
        if (!answered) reject(error);
      });
      request.on('response', (message: IncomingMessage) => {
        answered = true;
        message.on('error', () => undefined);
        resolve({ status: message.statusCode ?? 0, headers: { get: (name) => headerOf(message, name) }, body: message });
      });
      if (body === undefined) request.end();
      else if (body instanceof Uint8Array) request.end(body);
      else void writeBody(request, body).catch((error: unknown) => request.destroy(error as Error));
    });
  }

  /**
   * What a GET of `path` on this registry would send, for a caller that speaks HTTP itself over
   * a plain socket (direct-blob.ts): the absolute URL and the headers, credentials included
   * (this origin only). Undefined for an HTTPS registry.
   */
  plainGet(path: string, scope: string, headers: Readonly<Record<string, string>>): { url: URL; headers: Record<string, string>; timeoutMs: number } | undefined {
    const url = new URL(path, this.origin);
    if (url.protocol !== 'http:' || url.origin !== this.origin) return undefined;
    const authorization = this.authorizationFor(scope);
    return { url, headers: { 'user-agent': 'intoto-ts', ...headers, ...(authorization === undefined ? {} : { authorization }) }, timeoutMs: this.timeoutMs };
  }

  /**
   * Sends a request under the policies above; returns the response when its status is in
   * `spec.accept` (its body still to be read), throws otherwise.
   * @throws RegistryError E_REGISTRY (no answer, or an error status: the message names the
   *   status and the registry's error code), E_REGISTRY_AUTH (401/403), E_NOT_FOUND (404 not
   *   accepted), E_REDIRECT, E_INSECURE
   */
  async request(spec: RequestSpec): Promise<Response> {
    const safe = (spec.method === 'GET' || spec.method === 'HEAD') && spec.body === undefined;
    const attempts = safe ? 1 + (this.options.retries ?? 2) : 1;
    let delay = this.options.retryDelayMs ?? 250;
    for (let attempt = 1; ; attempt++) {
      let response: Response;
      try {
        response = await this.sendWithAuth(spec);
      } catch (error) {
        if (attempt < attempts && error instanceof RegistryError && error.code === 'E_REGISTRY' && error.status === undefined) {
          await sleep(delay);
          delay *= 2;
          continue;
        }
        throw error;
      }
      if (spec.accept.includes(response.status)) return response;
      if (attempt < attempts && RETRY_STATUSES.includes(response.status)) {
        const retryAfter = Number(response.headers.get('retry-after'));
        await discard(response);
        await sleep(Number.isFinite(retryAfter) && retryAfter > 0 ? Math.min(retryAfter * 1000, 10_000) : delay);
        delay *= 2;
        continue;
      }
      throw await this.errorOf(response, spec);
    }
  }

  /** Sends once, answering one authentication challenge when there is one. */
  private async sendWithAuth(spec: RequestSpec): Promise<Response> {
    let response = await this.follow(spec, this.authorizationFor(spec.scope));
    if (response.status !== 401) return response;
    const challenge = parseChallenge(response.headers.get('www-authenticate'));
    await discard(response);
    const authorization = await this.answer(challenge, spec);
    if (authorization === undefined) {
      throw new RegistryError('E_REGISTRY_AUTH', `${spec.what}: ${this.registry.authority} requires credentials (pass --username and --password-stdin, or log in with docker login)`, { status: 401 });
    }
    response = await this.follow(spec, authorization);
    return response;
  }

  private authorizationFor(scope: string | undefined): string | undefined {
    if (scope !== undefined) {
      const token = this.tokens.get(scope);
      if (token !== undefined) return `Bearer ${token}`;
    }
    return this.basic;
  }

  /** The Authorization value answering a challenge, or undefined when we have nothing to answer with. */
  private async answer(challenge: Challenge | undefined, spec: RequestSpec): Promise<string | undefined> {
    const credentials = this.options.credentials;
    if (challenge?.scheme === 'basic') {
      if (credentials?.kind !== 'basic') return undefined;
      this.basic = basicAuthorization(credentials);
      return this.basic;
    }
    if (challenge?.scheme !== 'bearer') return undefined;
    const token = await this.fetchToken(challenge, spec);
    if (spec.scope !== undefined) this.tokens.set(spec.scope, token);
    return `Bearer ${token}`;
  }

  /**
   * Gets a bearer token from the realm the challenge names (distribution's token spec): GET
   * with Basic credentials, or an OAuth2 refresh-token POST for an identity token; anonymous
   * when we have no credentials (public repositories).
   */
  private async fetchToken(challenge: Challenge, spec: RequestSpec): Promise<string> {
    const realmText = challenge.params.get('realm');
    let realm: URL;
    try {
      realm = new URL(realmText ?? '');
    } catch {
      throw new RegistryError('E_REGISTRY_AUTH', `${spec.what}: the registry's token realm ${JSON.stringify(realmText)} is not a URL`, { status: 401 });
    }
    if (realm.protocol !== 'https:' && !(realm.protocol === 'http:' && (isLoopback(realm.hostname) || this.options.insecure === true))) {
      throw new RegistryError('E_INSECURE', `${spec.what}: the registry's token realm ${realm.origin} is not HTTPS; credentials are not sent there (--insecure allows it)`);
    }
    const scopes = [challenge.params.get('scope'), spec.scope].filter((s): s is string => s !== undefined && s !== '');
    const service = challenge.params.get('service');
    const credentials = this.options.credentials;
    let response: Response;
    try {
      if (credentials?.kind === 'identity-token') {
        const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: credentials.token, client_id: 'intoto', ...(service === undefined ? {} : { service }) });
        form.set('scope', [...new Set(scopes)].join(' '));
        const body = Buffer.from(form.toString(), 'utf8');
        response = await this.send(realm, 'POST', { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(body.length) }, body);
      } else {
        if (service !== undefined) realm.searchParams.set('service', service);
        for (const scope of new Set(scopes)) realm.searchParams.append('scope', scope);
        const headers: Record<string, string> = credentials?.kind === 'basic' ? { authorization: basicAuthorization(credentials) } : {};
        response = await this.send(realm, 'GET', headers, undefined);
      }
    } catch (error) {
      throw new RegistryError('E_REGISTRY_AUTH', `${spec.what}: cannot reach the token service ${realm.origin}: ${describeNetworkError(error)}`, { cause: error });
    }
    if (response.status !== 200) {
      await discard(response);
      throw new RegistryError('E_REGISTRY_AUTH', `${spec.what}: the token service ${realm.origin} refused (HTTP ${response.status}); check the credentials`, { status: response.status });
    }
    const body = await readBounded(response, MAX_SMALL_BODY, `token from ${realm.origin}`);
    let token: unknown;
    try {
      const parsed = JSON.parse(Buffer.from(body).toString('utf8')) as Record<string, unknown>;
      token = parsed['token'] ?? parsed['access_token'];
    } catch {
      token = undefined;
    }
    if (typeof token !== 'string' || token === '' || /[\s\r\n]/.test(token)) {
      throw new RegistryError('E_REGISTRY_AUTH', `${spec.what}: the token service ${realm.origin} answered without a token`);
    }
    return token;
  }

  /** One send, following redirects as the policy allows. */
  private async follow(spec: RequestSpec, authorization: string | undefined): Promise<Response> {
    let url = new URL(spec.url, this.origin);
    if (url.origin !== this.origin) throw new RegistryError('E_REDIRECT', `${spec.what}: ${url.origin} is not the registry's origin ${this.origin}`);
    const policy = spec.redirects ?? 'none';
    for (let hop = 0; ; hop++) {
      const sameOrigin = url.origin === this.origin;
      const headers: Record<string, string> = { 'user-agent': 'intoto-ts', ...spec.headers };
      if (sameOrigin && authorization !== undefined) headers['authorization'] = authorization;
      let response: Response;
      try {
        response = await this.send(url, spec.method, headers, spec.body?.());
      } catch (error) {
        throw new RegistryError('E_REGISTRY', `${spec.what}: no answer from ${url.host}: ${describeNetworkError(error)}`, { cause: error });
      }
      if (![301, 302, 303, 307, 308].includes(response.status)) return response;
      const location = response.headers.get('location');
      await discard(response);
      if (policy === 'none' || location === null) {
        throw new RegistryError('E_REDIRECT', `${spec.what}: ${url.host} redirects (HTTP ${response.status}), which this request does not follow`, { status: response.status });
      }
      if (hop + 1 >= MAX_REDIRECTS) throw new RegistryError('E_REDIRECT', `${spec.what}: more than ${MAX_REDIRECTS} redirects`, { status: response.status });
      let next: URL;
      try {
        next = new URL(location, url);
      } catch {
        throw new RegistryError('E_REDIRECT', `${spec.what}: redirect to an invalid location ${JSON.stringify(location.slice(0, 200))}`);
      }
      this.checkRedirect(spec, policy, url, next);
      url = next;
    }
  }

  /** @throws RegistryError E_REDIRECT when the policy does not allow going from `from` to `to` */
  private checkRedirect(spec: RequestSpec, policy: RedirectPolicy, from: URL, to: URL): void {
    const refuse = (why: string): never => {
      throw new RegistryError('E_REDIRECT', `${spec.what}: refused a redirect from ${from.host} to ${to.origin}: ${why}`);
    };
    if (spec.method !== 'GET' && spec.method !== 'HEAD') refuse('only GET and HEAD follow redirects');
    if (to.protocol !== 'https:' && to.protocol !== 'http:') refuse('not HTTP');
    if (to.username !== '' || to.password !== '') refuse('credentials in the URL');
    if (to.origin === this.origin) return;
    if (policy !== 'blob') refuse('only blob downloads may leave the registry');
    if (to.protocol === 'http:' && from.protocol === 'https:') refuse('a downgrade from HTTPS to plain HTTP');
    if (to.protocol === 'http:' && !isLoopback(to.hostname) && this.options.insecure !== true) refuse('plain HTTP to a host that is not loopback');
  }

  /** The typed error for a status we did not accept; reads at most 64 KiB of the answer. */
  private async errorOf(response: Response, spec: RequestSpec): Promise<RegistryError> {
    const status = response.status;
    let registryCode: string | undefined;
    let registryMessage: string | undefined;
    try {
      const body = await readBounded(response, MAX_SMALL_BODY, spec.what);
      const parsed = JSON.parse(Buffer.from(body).toString('utf8')) as { errors?: { code?: unknown; message?: unknown }[] };
      const first = Array.isArray(parsed.errors) ? parsed.errors[0] : undefined;
      if (typeof first?.code === 'string') registryCode = first.code.slice(0, 64);
      if (typeof first?.message === 'string') registryMessage = first.message.slice(0, 200).replace(/[\u0000-\u001f\u007f]/g, ' ');
    } catch {
      // Not a registry error document (a proxy's page, a truncated answer): the status says enough.
    }
    const code = status === 404 ? 'E_NOT_FOUND' : status === 401 || status === 403 ? 'E_REGISTRY_AUTH' : 'E_REGISTRY';
    const said = registryCode === undefined ? '' : ` ${registryCode}${registryMessage === undefined ? '' : ` (${registryMessage})`}`;
    return new RegistryError(code, `${spec.what}: ${this.registry.authority} answered HTTP ${status}${said}`, {
      status,
      ...(registryCode === undefined ? {} : { registryCode }),
    });
  }
}

/**
 * Reads a whole body of at most `max` bytes.
 * @throws RegistryError E_REGISTRY when it is larger (reading stops there) or breaks off
 */
export async function readBounded(response: Response, max: number, what: string): Promise<Uint8Array> {
  const declared = Number(response.headers.get('content-length') ?? Number.NaN);
  if (Number.isFinite(declared) && declared > max) {
    await discard(response);
    throw new RegistryError('E_REGISTRY', `${what}: the answer is ${declared} bytes, over the limit of ${max}`, { status: response.status });
  }
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of response.body as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > max) {
        response.body.destroy();
        throw new RegistryError('E_REGISTRY', `${what}: the answer is over the limit of ${max} bytes`, { status: response.status });
      }
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof RegistryError) throw error;
    throw new RegistryError('E_REGISTRY', `${what}: the answer broke off: ${describeNetworkError(error)}`, { cause: error, status: response.status });
  }
  if (!response.body.complete) throw new RegistryError('E_REGISTRY', `${what}: the answer broke off after ${total} bytes`, { status: response.status });
  return Buffer.concat(chunks, total);
}

/**
 * Drops a body we do not read. A small or already received one is drained, so that its
 * connection goes back to the pool (an unread body holds its socket); anything else destroyed.
 */
export async function discard(response: Response): Promise<void> {
  const body = response.body;
  if (body.destroyed || body.readableEnded) return;
  const declared = Number(response.headers.get('content-length') ?? Number.NaN);
  if (!body.complete && !(Number.isFinite(declared) && declared <= 64 * 1024)) {
    body.destroy();
    return;
  }
  await new Promise<void>((resolve) => {
    body.once('end', resolve);
    body.once('close', resolve);
    body.resume();
  });
}

/** A header's value (several joined by ", "), or null. */
function headerOf(message: IncomingMessage, name: string): string | null {
  const value = message.headers[name.toLowerCase()];
  if (value === undefined) return null;
  return Array.isArray(value) ? value.join(', ') : value;
}

/** Streams a body into a request with backpressure, then ends it. */
async function writeBody(request: import('node:http').ClientRequest, body: AsyncIterable<Uint8Array>): Promise<void> {
  for await (const chunk of body) {
    if (request.destroyed) return;
    if (!request.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          request.off('drain', done);
          request.off('close', done);
          resolve();
        };
        request.on('drain', done);
        request.on('close', done);
      });
    }
  }
  request.end();
}

/** A short reason for a network failure (undici hides it in `cause`). */
export function describeNetworkError(error: unknown): string {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current instanceof Error; depth++) {
    const code = (current as NodeJS.ErrnoException).code;
    if (typeof code === 'string') return `${code}${current.message && !current.message.includes(code) ? ` (${current.message})` : ''}`;
    if (current.cause === undefined) return current.message;
    current = current.cause;
  }
  return String(current);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
