import { X509Certificate, type KeyObject } from 'node:crypto';
import { createRequire } from 'node:module';
import type { X509Certificate as SigstoreX509 } from '@sigstore/core';
import { ModelError } from '../errors.js';

/** @sigstore/core's certificate parser (extensions Node does not expose), loaded when first needed. */
let parseExtensions: ((der: Buffer) => SigstoreX509) | undefined;
function extensionsOf(der: Buffer): SigstoreX509 {
  if (parseExtensions === undefined) {
    const core = createRequire(import.meta.url)('@sigstore/core') as typeof import('@sigstore/core');
    parseExtensions = (bytes) => core.X509Certificate.parse(bytes as Buffer<ArrayBuffer>);
  }
  return parseExtensions(der);
}

/**
 * The certificate method's trust decision (spec §8.2): the bundle's chain `[leaf,
 * intermediates...]` must lead, by signatures, names and CA constraints, to one of the trusted
 * certificates the verifier names, every certificate on the path valid at the time of
 * verification (now: the spec's rule; model_signing checks at the leaf's notBefore instead,
 * which accepts expired chains). The leaf must allow signing: keyUsage digitalSignature or
 * extended key usage codeSigning, as model_signing requires.
 */

const CODE_SIGNING = '1.3.6.1.5.5.7.3.3';
const MAX_DEPTH = 10;

export interface TrustedChain {
  /** The leaf's public key: the one the DSSE signature must verify with. */
  readonly leafKey: KeyObject;
  readonly leafSubject: string;
  /** Subject of the trusted certificate the path ends at. */
  readonly anchorSubject: string;
}

interface Cert {
  readonly x509: X509Certificate;
  readonly ext: SigstoreX509;
  readonly der: Buffer;
}

const fail = (message: string): ModelError => new ModelError('E_MODEL_SIGNATURE', `certificate chain: ${message}`);

function parse(der: Buffer, what: string): Cert {
  try {
    return { x509: new X509Certificate(der), ext: extensionsOf(Buffer.from(der)), der };
  } catch (cause) {
    throw new ModelError('E_MODEL_BUNDLE', `${what} is not a DER X.509 certificate`, { cause });
  }
}

const subjectOf = (c: Cert): string => c.x509.subject.replace(/\n/g, ', ');

function validAt(c: Cert, now: Date): boolean {
  return new Date(c.x509.validFrom).getTime() <= now.getTime() && now.getTime() <= new Date(c.x509.validTo).getTime();
}

/**
 * `issuer` names and signed `child`. (Node's checkIssued, OpenSSL's X509_check_issued, refuses
 * the vectors' chain, which OpenSSL's full path building accepts: names and the signature are
 * what binds a certificate to its issuer.)
 */
function canIssue(issuer: Cert, child: Cert): boolean {
  try {
    return child.x509.issuer === issuer.x509.subject && child.x509.verify(issuer.x509.publicKey);
  } catch {
    return false;
  }
}

/** Why `c` cannot act as a CA for a path with `below` CA certificates under it, or undefined. */
function caProblem(c: Cert, below: number): string | undefined {
  const constraints = c.ext.extBasicConstraints;
  if (constraints === undefined || !constraints.isCA) return 'is not a CA (basicConstraints)';
  const usage = c.ext.extKeyUsage;
  if (usage !== undefined && !usage.keyCertSign) return 'may not sign certificates (keyUsage)';
  const pathLen = constraints.pathLenConstraint;
  if (pathLen !== undefined && BigInt(below) > pathLen) return `allows ${pathLen} CA certificate(s) below it, the path has ${below}`;
  return undefined;
}

/**
 * Checks `chain` (DER, leaf first) against `anchors` (DER) at `now`.
 * @throws ModelError E_MODEL_SIGNATURE when no valid path to an anchor exists, a certificate
 *   on it is outside its validity, or the leaf may not sign; E_MODEL_BUNDLE for a certificate
 *   that does not parse
 */
export function verifyCertificateChain(chain: readonly Buffer[], anchors: readonly Buffer[], now: Date): TrustedChain {
  const [leafDer, ...rest] = chain;
  if (leafDer === undefined) throw fail('the bundle holds no certificate');
  const leaf = parse(leafDer, 'the signing certificate');
  const pool = rest.map((der, i) => parse(der, `certificate ${i + 2} of the bundle's chain`));
  const trusted = anchors.map((der, i) => parse(der, `trusted certificate ${i + 1}`));
  if (trusted.length === 0) throw fail('no trusted certificate given');

  if (!validAt(leaf, now)) {
    throw fail(`the signing certificate (${subjectOf(leaf)}) is valid from ${leaf.x509.validFrom} to ${leaf.x509.validTo}, not now (${now.toISOString()})`);
  }
  const usage = leaf.ext.extKeyUsage;
  const eku = leaf.x509.keyUsage ?? [];
  if (!(usage?.digitalSignature === true || eku.includes(CODE_SIGNING))) {
    throw fail(`the signing certificate (${subjectOf(leaf)}) allows neither digitalSignature nor codeSigning`);
  }

  let current = leaf;
  let cas = 0;
  const problems: string[] = [];
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    if (trusted.some((t) => t.der.equals(current.der))) {
      return { leafKey: leaf.x509.publicKey, leafSubject: subjectOf(leaf), anchorSubject: subjectOf(current) };
    }
    const candidates = [...trusted.map((c) => ({ c, anchor: true })), ...pool.map((c) => ({ c, anchor: false }))].filter(({ c }) => c !== current && canIssue(c, current));
    let next: { c: Cert; anchor: boolean } | undefined;
    for (const candidate of candidates) {
      const problem = !validAt(candidate.c, now)
        ? `${subjectOf(candidate.c)} is valid from ${candidate.c.x509.validFrom} to ${candidate.c.x509.validTo}, not now`
        : caProblem(candidate.c, cas);
      if (problem === undefined) {
        next = candidate;
        break;
      }
      problems.push(problem.startsWith(subjectOf(candidate.c)) ? problem : `${subjectOf(candidate.c)} ${problem}`);
    }
    if (next === undefined) {
      const why = problems.length > 0 ? `: ${problems.join('; ')}` : '';
      throw fail(`no valid path from ${subjectOf(leaf)} to a trusted certificate (stopped at the issuer of ${subjectOf(current)})${why}`);
    }
    if (next.anchor) return { leafKey: leaf.x509.publicKey, leafSubject: subjectOf(leaf), anchorSubject: subjectOf(next.c) };
    current = next.c;
    cas += 1;
  }
  throw fail(`the path from ${subjectOf(leaf)} is longer than ${MAX_DEPTH} certificates`);
}
