import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROVENANCE_STATEMENT_SCHEMA, VSA_FAILURE_FIELD, VSA_STATEMENT_SCHEMA } from '../../src/attest/schemas.js';
import type { JsonObject, JsonValue } from '../../src/canonical/json.js';
import { generateSigningKey, loadPublicKeyFile, writeKeyPair } from '../../src/crypto/keyfiles.js';
import type { PublicKey } from '../../src/crypto/keys.js';
import { InTotoError } from '../../src/errors.js';
import { DSSE_PAYLOAD_TYPE, dsseText, isSignedBy, pae, parseEnvelope, verifiedPayload } from '../../src/model/envelope.js';
import { linkFromJson } from '../../src/model/link.js';
import { checkSchema } from '../../src/model/schemas.js';
import { LINK_PREDICATE_V03, linkFromStatement, LINK_STATEMENT_WRITE_SCHEMA, STATEMENT_V1 } from '../../src/model/statement.js';
import { ROOT, runBin } from '../helpers/bin.js';
import { bwrapAvailable, REFERENCE_PYTHON, referenceAvailable, run, tempDir } from '../helpers/reference.js';
import { BASE_YAML, makeProject } from '../pipeline/helpers.js';

/**
 * Issue 17 (4), attestations out and in, end to end through the built commands:
 * - `intoto-run --attest`: the link also as a Statement v1 with the link predicate v0.3 in
 *   DSSE; it round-trips to the same link, the reference's key code verifies its DSSE
 *   signature and its spec-given conversion gives the link in-toto-run's Metablock holds;
 *   the verifier takes it in a link's place with the same rules, names and thresholds;
 * - `intoto pipeline run`: SLSA Provenance v1 of the final products, signed by the owner key
 *   (or --provenance-key), and `--attest` for every link;
 * - `intoto verify --vsa`: a signed VSA v1 for a pass and for a failure, with the failure;
 * - every predicate against its schema, and the schemas able to refuse.
 */

const haveReference = referenceAvailable();
const haveBwrap = bwrapAvailable();
const root = tempDir('intoto-attest-');

function payloadOf(file: string, key: PublicKey): JsonObject {
  const envelope = parseEnvelope(readFileSync(file), file);
  expect(envelope.kind).toBe('dsse');
  const payload = verifiedPayload(envelope, key);
  expect(payload, `${file} is not signed by ${key.keyid}`).toBeDefined();
  return payload as JsonObject;
}

const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

function ok(result: { status: number | null; stderr: string; stdout: string }): void {
  expect(result.status, result.stderr + result.stdout).toBe(0);
  expect(result.stderr).not.toContain('E_INTERNAL');
}

describe('intoto-run --attest: the link as a Statement (link predicate v0.3)', () => {
  const dir = join(root, 'run');
  mkdirSync(join(dir, 'src'), { recursive: true });
  writeFileSync(join(dir, 'src', 'a.txt'), 'a\n');
  const key = generateSigningKey({ type: 'ed25519' });
  writeKeyPair(key, join(root, 'fn'));
  const prefix = key.keyid.slice(0, 8);
  const run1 = runBin('intoto-run', ['-n', 'build', '-k', join(root, 'fn'), '-m', 'src', '-p', 'out.txt', 'src', '--attest', '--sandbox', 'none', '--', 'sh', '-c', 'cat src/a.txt > out.txt'], { cwd: dir });

  it('writes the link and beside it <step>.<keyid8>.intoto.json, a Statement v1 in DSSE, checked against its schema', () => {
    ok(run1);
    expect(readdirSync(dir).sort()).toEqual([`build.${prefix}.intoto.json`, `build.${prefix}.link`, 'out.txt', 'src']);
    const statement = payloadOf(join(dir, `build.${prefix}.intoto.json`), key.public);
    checkSchema(LINK_STATEMENT_WRITE_SCHEMA, statement, 'statement');
    expect(statement['_type']).toBe(STATEMENT_V1);
    expect(statement['predicateType']).toBe(LINK_PREDICATE_V03);
    expect(statement['subject']).toEqual([
      { name: 'out.txt', digest: { sha256: sha256(join(dir, 'out.txt')) } },
      { name: 'src/a.txt', digest: { sha256: sha256(join(dir, 'src', 'a.txt')) } },
    ]);
    const predicate = statement['predicate'] as JsonObject;
    expect(predicate['name']).toBe('build');
    expect(predicate['materials']).toEqual([{ name: 'src/a.txt', digest: { sha256: sha256(join(dir, 'src', 'a.txt')) } }]);
  });

  it('round trip: the Statement reads back as exactly the link the Metablock holds', () => {
    const legacy = linkFromJson((JSON.parse(readFileSync(join(dir, `build.${prefix}.link`), 'utf8')) as JsonObject)['signed'] as JsonValue, 'link');
    const fromStatement = linkFromStatement(payloadOf(join(dir, `build.${prefix}.intoto.json`), key.public), 'statement');
    expect(fromStatement).toEqual(legacy);
  });

  it.skipIf(!haveReference)("the reference's key code verifies the DSSE signature, and the spec's conversion gives in-toto's own reading of the link", () => {
    // DSSE PAE per the DSSE spec; the signature checked by securesystemslib 0.26 (the
    // reference's key library); the link read by in-toto 1.3.1's Metablock.load.
    const script = `
import base64, json, sys
from securesystemslib.interface import import_ed25519_publickey_from_file
from securesystemslib.keys import verify_signature
from in_toto.models.metadata import Metablock
envelope = json.load(open(sys.argv[1]))
payload = base64.b64decode(envelope["payload"])
ptype = envelope["payloadType"].encode()
pae = b"DSSEv1 %d %s %d %s" % (len(ptype), ptype, len(payload), payload)
key = import_ed25519_publickey_from_file(sys.argv[2])
sig = envelope["signatures"][0]
assert verify_signature(key, {"keyid": key["keyid"], "sig": base64.b64decode(sig["sig"]).hex()}, pae), "signature"
statement = json.loads(payload)
link = {"_type": "link", "name": statement["predicate"]["name"], "command": statement["predicate"]["command"],
        "byproducts": statement["predicate"]["byproducts"], "environment": statement["predicate"]["environment"],
        "materials": {m["name"]: m["digest"] for m in statement["predicate"]["materials"]},
        "products": {s["name"]: s["digest"] for s in statement["subject"]}}
reference = Metablock.load(sys.argv[3]).signed.__dict__
print(json.dumps({"same": all(link[k] == reference[k] for k in link), "keyid": sig["keyid"] == key["keyid"]}))
`;
    const result = run(REFERENCE_PYTHON, ['-c', script, join(dir, `build.${prefix}.intoto.json`), join(root, 'fn.pub'), join(dir, `build.${prefix}.link`)]);
    expect(result.status, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ same: true, keyid: true });
  });

  it('a step with no products gets its link and a warning, not a Statement without subject', () => {
    const result = runBin('intoto-run', ['-n', 'review', '-k', join(root, 'fn'), '-m', 'src', '--attest', '-x'], { cwd: dir });
    ok(result);
    expect(result.stderr).toMatch(/no attestation written for 'review'/);
    expect(existsSync(join(dir, `review.${prefix}.link`))).toBe(true);
    expect(existsSync(join(dir, `review.${prefix}.intoto.json`))).toBe(false);
  });
});

describe('the verifier takes a link Statement in place of a legacy link', () => {
  const owner = generateSigningKey({ type: 'ed25519' });
  const fn = generateSigningKey({ type: 'ed25519' });
  const dir = join(root, 'verify-statements');
  mkdirSync(dir);
  writeKeyPair(owner, join(dir, 'owner'));
  writeKeyPair(fn, join(dir, 'fn'));
  const prefix = fn.keyid.slice(0, 8);
  writeFileSync(join(dir, 'data.txt'), 'data\n');
  ok(runBin('intoto-run', ['-n', 'make', '-k', 'fn', '-m', 'data.txt', '-p', 'result.txt', '--attest', '--sandbox', 'none', '--', 'sh', '-c', 'cat data.txt data.txt > result.txt'], { cwd: dir }));
  const layout = {
    _type: 'layout',
    expires: '2099-01-01T00:00:00Z',
    readme: '',
    keys: { [fn.keyid]: { keytype: 'ed25519', scheme: 'ed25519', keyid_hash_algorithms: ['sha256', 'sha512'], keyval: { public: fn.public.publicValue } } },
    steps: [{ _type: 'step', name: 'make', threshold: 1, pubkeys: [fn.keyid], expected_command: [], expected_materials: [['ALLOW', 'data.txt'], ['DISALLOW', '*']], expected_products: [['CREATE', 'result.txt'], ['DISALLOW', '*']] }],
    inspect: [],
  } as const;
  writeFileSync(join(dir, 'root.layout'), dsseText(layout as unknown as JsonValue, [owner]));
  const statementFile = join(dir, `make.${prefix}.intoto.json`);
  const linkFile = join(dir, `make.${prefix}.link`);
  renameSync(linkFile, join(dir, 'legacy.link.bak'));
  const verify = (): { status: number | null; stderr: string; stdout: string } => runBin('intoto-verify', ['-l', 'root.layout', '-k', 'owner.pub', '--json'], { cwd: dir });
  const codeOf = (result: { stdout: string }): string => (JSON.parse(result.stdout) as { failure?: { code: string } }).failure?.code ?? 'PASS';

  it('the Statement in the link slot passes, as the link did', () => {
    copyFileSync(statementFile, linkFile);
    const result = verify();
    expect(codeOf(result), result.stderr).toBe('PASS');
  });

  it('the same rules apply: an artifact the rules disallow fails as it would in a link', () => {
    const statement = payloadOf(statementFile, fn.public);
    const extra = { ...statement, subject: [...(statement['subject'] as JsonValue[]), { name: 'evil.sh', digest: { sha256: 'a'.repeat(64) } }] };
    writeFileSync(linkFile, dsseText(extra, [fn]));
    expect(codeOf(verify())).toBe('E_RULE_DISALLOW');
  });

  it("the same names: a Statement for another step in this step's slot is refused", () => {
    const statement = payloadOf(statementFile, fn.public);
    writeFileSync(linkFile, dsseText({ ...statement, predicate: { ...(statement['predicate'] as JsonObject), name: 'other' } }, [fn]));
    expect(codeOf(verify())).toBe('E_LINK_NAME_MISMATCH');
  });

  it('the same thresholds and signatures: a Statement signed by another key, or changed after signing, does not count', () => {
    writeFileSync(linkFile, dsseText(payloadOf(statementFile, fn.public), [owner]));
    expect(codeOf(verify())).toBe('E_THRESHOLD');
    const envelope = JSON.parse(readFileSync(statementFile, 'utf8')) as { payload: string };
    const text = Buffer.from(envelope.payload, 'base64').toString().replace('result.txt', 'resulx.txt');
    writeFileSync(linkFile, JSON.stringify({ ...envelope, payload: Buffer.from(text).toString('base64') }));
    expect(codeOf(verify())).toBe('E_THRESHOLD');
  });

  it('attack: repeated subject names, fields outside the spec, another predicate: refused, never read as a link', () => {
    const statement = payloadOf(statementFile, fn.public);
    const subject = statement['subject'] as JsonValue[];
    const cases: [JsonObject, string][] = [
      [{ ...statement, subject: [...subject, subject[0] as JsonValue] }, 'E_SCHEMA'],
      [{ ...statement, extra: 1 }, 'E_SCHEMA'],
      [{ ...statement, predicate: { ...(statement['predicate'] as JsonObject), products: {} } }, 'E_SCHEMA'],
      [{ ...statement, predicateType: 'https://slsa.dev/provenance/v1' }, 'E_METADATA_TYPE'],
      [{ ...statement, _type: 'https://in-toto.io/Statement/v0.1' }, 'E_METADATA_TYPE'],
      [{ ...statement, subject: [{ name: '../x', digest: { sha256: 'a'.repeat(64) } }] }, 'E_ARTIFACT_NAME'],
    ];
    for (const [value, code] of cases) {
      writeFileSync(linkFile, dsseText(value, [fn]));
      expect(codeOf(verify()), JSON.stringify(value).slice(0, 200)).toBe(code);
      try {
        linkFromStatement(value, 'x');
        throw new Error('accepted');
      } catch (error) {
        expect((error as InTotoError).code).toBe(code);
      }
    }
  });
  it("issue 18's checks hold for Statements as for links: aliasing names and -0 refused; unknown fields outside the signed part ignored", () => {
    const statement = payloadOf(statementFile, fn.public);
    const subject = statement['subject'] as JsonObject[];
    const predicate = statement['predicate'] as JsonObject;
    const digest = { sha256: 'a'.repeat(64) };
    const aliases: [JsonObject, string][] = [
      [{ ...statement, subject: [...subject, { name: 'Result.txt', digest }] }, 'case folding'],
      [{ ...statement, subject: [...subject, { name: 'evil\u202elkp.exe', digest }] }, 'bidi control'],
      [{ ...statement, predicate: { ...predicate, materials: [...(predicate['materials'] as JsonValue[]), { name: 'Data.txt', digest }] } }, 'materials, case folding'],
    ];
    for (const [value, what] of aliases) {
      writeFileSync(linkFile, dsseText(value, [fn]));
      expect(codeOf(verify()), what).toBe('E_ARTIFACT_ALIAS');
    }
    // -0 in the signed payload: refused, not read as 0 (written by hand: no encoder writes it).
    const text = JSON.stringify({ ...statement, predicate: { ...predicate, environment: { n: 0 } } }).replace('"n":0', '"n":-0');
    expect(text).toContain('-0');
    const payload = Buffer.from(text, 'utf8');
    const sig = fn.sign(pae(DSSE_PAYLOAD_TYPE, new Uint8Array(payload)));
    writeFileSync(linkFile, JSON.stringify({ payload: payload.toString('base64'), payloadType: DSSE_PAYLOAD_TYPE, signatures: [{ keyid: fn.keyid, sig: Buffer.from(sig).toString('base64') }] }));
    expect(codeOf(verify())).toBe('E_JSON_NUMBER');
    // Beside the signed payload, in the envelope and in a signature object (in-toto-golang's
    // "cert"): ignored, and the Statement verifies as written.
    const envelope = JSON.parse(readFileSync(statementFile, 'utf8')) as { signatures: JsonObject[] };
    writeFileSync(linkFile, JSON.stringify({ ...envelope, extra: 1, signatures: envelope.signatures.map((s) => ({ ...s, cert: '' })) }));
    expect(codeOf(verify())).toBe('PASS');
  });
});

describe('intoto pipeline run: SLSA provenance and --attest', () => {
  const dir = join(root, 'pipeline');
  mkdirSync(dir);
  const keys = makeProject(dir, ['owner', 'alice', 'bob', 'release']);
  writeFileSync(join(dir, 'pipeline.yaml'), BASE_YAML.replace('expires: "2027-01-01T00:00:00Z"', 'expires_in: 30d'));
  const runPipeline = (out: string, extra: string[] = []): { status: number | null; stderr: string; stdout: string } =>
    runBin('intoto', ['pipeline', 'run', 'pipeline.yaml', '--keys', 'keys', '--out', out, '--param', 'X=1', ...extra], { cwd: dir });

  it('writes provenance.intoto.json signed by the owner key: subjects, layout, parameters, inputs and links, all with digests', () => {
    const result = runPipeline('out', ['--attest']);
    ok(result);
    const out = join(dir, 'out');
    const attestations = join(dir, 'out.attestations');
    // Beside --out, not in it: in-toto-verify run in --out sees only the product and the metadata it knows.
    expect(readdirSync(out).filter((f) => f.includes('intoto'))).toEqual([]);
    const owner = keys.get('owner')!;
    const statement = payloadOf(join(attestations, 'provenance.intoto.json'), owner.public);
    checkSchema(PROVENANCE_STATEMENT_SCHEMA, statement, 'provenance');
    expect(statement['subject']).toEqual([{ name: 'app.tar.gz', digest: { sha256: sha256(join(out, 'app.tar.gz')) } }]);
    const predicate = statement['predicate'] as { buildDefinition: JsonObject; runDetails: JsonObject };
    expect(predicate.buildDefinition['externalParameters']).toEqual({ layout: { name: 'root.layout', digest: { sha256: sha256(join(out, 'root.layout')) } }, parameters: { X: '1' } });
    expect(predicate.buildDefinition['resolvedDependencies']).toEqual([{ name: 'src/hello.txt', digest: { sha256: sha256(join(dir, 'src', 'hello.txt')) } }]);
    const links = readdirSync(out).filter((f) => f.endsWith('.link')).sort();
    expect(links).toHaveLength(2);
    expect(predicate.runDetails['byproducts']).toEqual(links.map((name) => ({ name, digest: { sha256: sha256(join(out, name)) } })));
    // --attest: each link also as a Statement, signed by its functionary.
    for (const name of links) {
      const step = name.split('.')[0]!;
      const who = step === 'build' ? 'alice' : 'bob';
      const statementFile = join(attestations, name.replace(/\.link$/, '.intoto.json'));
      expect((payloadOf(statementFile, keys.get(who)!.public)['predicate'] as JsonObject)['name']).toBe(step);
    }
    expect(readdirSync(attestations).sort()).toEqual([...links.map((name) => name.replace(/\.link$/, '.intoto.json')), 'provenance.intoto.json'].sort());
    // A Statement verifies in its link's place: the output directory with Statements for links.
    for (const name of links) copyFileSync(join(attestations, name.replace(/\.link$/, '.intoto.json')), join(out, name));
    ok(runBin('intoto', ['verify', '-l', 'root.layout', '-k', join(dir, 'keys', 'owner.pub')], { cwd: out }));
  });

  it('--provenance-key signs it with another key; a layout signed elsewhere without one writes none, and says so', () => {
    ok(runPipeline('out2', ['--provenance-key', 'keys/release', '--attestations', 'att2']));
    const release = keys.get('release')!;
    const envelope = parseEnvelope(readFileSync(join(dir, 'att2', 'provenance.intoto.json')), 'p');
    expect(isSignedBy(envelope, release.public)).toBe(true);
    expect(isSignedBy(envelope, keys.get('owner')!.public)).toBe(false);
    const signedElsewhere = runPipeline('out3', ['--layout', join(dir, 'out', 'root.layout'), '--layout-key', 'keys/owner.pub']);
    ok(signedElsewhere);
    expect(existsSync(join(dir, 'out3.attestations'))).toBe(false);
    expect(signedElsewhere.stderr).toMatch(/no SLSA provenance will be written/);
  });
});

describe('intoto verify --vsa: a signed VSA v1, passed or failed', () => {
  const dir = join(root, 'vsa');
  mkdirSync(dir);
  const owner = generateSigningKey({ type: 'ed25519' });
  const gate = generateSigningKey({ type: 'ecdsa' });
  writeKeyPair(owner, join(root, 'vsa-owner'));
  writeKeyPair(gate, join(root, 'gate'));
  const layout = { _type: 'layout', expires: '2099-01-01T00:00:00Z', readme: '', keys: {}, steps: [], inspect: [{ _type: 'inspection', name: 'check', run: ['true'], expected_materials: [], expected_products: [] }] };
  writeFileSync(join(dir, 'root.layout'), dsseText(layout, [owner]));
  writeFileSync(join(dir, 'model.bin'), 'weights');
  const gatePub = loadPublicKeyFile(join(root, 'gate.pub'));
  const vsa = (extra: string[], name: string): { status: number | null; statement: JsonObject | undefined; stderr: string } => {
    const file = join(root, name);
    const result = runBin('intoto-verify', ['-l', 'root.layout', '-k', join(root, 'vsa-owner.pub'), '--vsa', file, '--vsa-key', join(root, 'gate'), ...extra], { cwd: dir });
    return { status: result.status, stderr: result.stderr, statement: existsSync(file) ? payloadOf(file, gatePub) : undefined };
  };

  it('PASSED: verifier, time, resource, the layout as policy, the final product as subjects', () => {
    const { status, statement, stderr } = vsa(['--verifier-id', 'https://gate.example.com/v1', '--resource-uri', 'pkg:generic/model@1.0'], 'pass.intoto.json');
    expect(status, stderr).toBe(0);
    checkSchema(VSA_STATEMENT_SCHEMA, statement!, 'vsa');
    const predicate = statement!['predicate'] as JsonObject;
    expect(predicate['verificationResult']).toBe('PASSED');
    expect(predicate['verifiedLevels']).toEqual(['IN_TOTO_VERIFIED']);
    expect(predicate['verifier']).toEqual({ id: 'https://gate.example.com/v1', version: { 'intoto-ts': '0.1.0' } });
    expect(predicate['resourceUri']).toBe('pkg:generic/model@1.0');
    expect(predicate['policy']).toEqual({ uri: `file://${join(dir, 'root.layout')}`, digest: { sha256: sha256(join(dir, 'root.layout')) } });
    expect(statement!['subject']).toEqual([{ name: 'model.bin', digest: { sha256: sha256(join(dir, 'model.bin')) } }]);
    expect(String(predicate['timeVerified'])).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
  });

  it('FAILED, with the failure: a verification that fails still writes its VSA (and exits 1)', () => {
    writeFileSync(join(dir, 'root.layout'), dsseText({ ...layout, expires: '2001-01-01T00:00:00Z' }, [owner]));
    const failed = vsa([], 'fail.intoto.json');
    expect(failed.status).toBe(1);
    checkSchema(VSA_STATEMENT_SCHEMA, failed.statement!, 'vsa');
    const predicate = failed.statement!['predicate'] as JsonObject;
    expect(predicate['verificationResult']).toBe('FAILED');
    expect(predicate['verifiedLevels']).toEqual(['FAILED']);
    expect((predicate[VSA_FAILURE_FIELD] as JsonObject)['code']).toBe('E_LAYOUT_EXPIRED');
    writeFileSync(join(dir, 'root.layout'), dsseText(layout, [owner]));
  });

  it('a key that does not load is a FAILED VSA too; a VSA that cannot be written is exit 1 even when verification passed', () => {
    const broken = join(root, 'broken.pub');
    writeFileSync(broken, 'not a key');
    const file = join(root, 'keyfail.intoto.json');
    const result = runBin('intoto-verify', ['-l', 'root.layout', '-k', broken, '--vsa', file, '--vsa-key', join(root, 'gate')], { cwd: dir });
    expect(result.status).toBe(1);
    expect(((payloadOf(file, gatePub)['predicate'] as JsonObject)[VSA_FAILURE_FIELD] as JsonObject)['code']).toBe('E_KEY_FORMAT');
    const unwritable = runBin('intoto-verify', ['-l', 'root.layout', '-k', join(root, 'vsa-owner.pub'), '--vsa', join(root, 'no', 'such', 'dir', 'v.json'), '--vsa-key', join(root, 'gate')], { cwd: dir });
    expect(unwritable.status).toBe(1);
    expect(unwritable.stdout).toMatch(/PASS/);
    expect(unwritable.stderr).toMatch(/no VSA written/);
  });

  it('usage: --vsa needs --vsa-key; URIs must be URIs; the companions need --vsa', () => {
    const usage = (args: string[]): string => {
      const result = runBin('intoto-verify', ['-l', 'root.layout', '-k', join(root, 'vsa-owner.pub'), ...args], { cwd: dir });
      expect(result.status).toBe(2);
      return result.stderr;
    };
    expect(usage(['--vsa', 'x.json'])).toMatch(/--vsa needs --vsa-key/);
    expect(usage(['--vsa', 'x.json', '--vsa-key', join(root, 'gate'), '--verifier-id', 'not a uri'])).toMatch(/must be a URI/);
    expect(usage(['--vsa-key', join(root, 'gate')])).toMatch(/give --vsa FILE too/);
  });

  it.skipIf(!haveBwrap)('attack: an inspection cannot read the key the VSA is signed with', () => {
    // The key lives outside /tmp (the sandbox's /tmp is private anyway): under build/ in the repository.
    const keyDir = join(ROOT, 'build', `vsa-key-${process.pid}`);
    mkdirSync(keyDir, { recursive: true });
    try {
      writeKeyPair(gate, join(keyDir, 'gate'));
      const thief = { ...layout, inspect: [{ _type: 'inspection', name: 'steal', run: ['cat', join(keyDir, 'gate')], expected_materials: [], expected_products: [] }] };
      writeFileSync(join(dir, 'root.layout'), dsseText(thief, [owner]));
      // Control: without --vsa the key is an ordinary file, and the inspection reads it.
      const control = runBin('intoto-verify', ['-l', 'root.layout', '-k', join(root, 'vsa-owner.pub'), '--sandbox', 'bwrap'], { cwd: dir });
      expect(control.status, control.stderr).toBe(0);
      const file = join(root, 'steal.intoto.json');
      const result = runBin('intoto-verify', ['-l', 'root.layout', '-k', join(root, 'vsa-owner.pub'), '--sandbox', 'bwrap', '--vsa', file, '--vsa-key', join(keyDir, 'gate')], { cwd: dir });
      expect(result.status).toBe(1);
      expect(((payloadOf(file, gatePub)['predicate'] as JsonObject)[VSA_FAILURE_FIELD] as JsonObject)['code']).toBe('E_INSPECTION_FAILED');
    } finally {
      rmSync(keyDir, { recursive: true, force: true });
      writeFileSync(join(dir, 'root.layout'), dsseText(layout, [owner]));
    }
  });
});

describe('the schemas refuse what their specs do not allow', () => {
  const vsa = (predicate: JsonObject): JsonObject => ({
    _type: STATEMENT_V1,
    subject: [{ name: 'x', digest: { sha256: 'a'.repeat(64) } }],
    predicateType: 'https://slsa.dev/verification_summary/v1',
    predicate,
  });
  const good = { verifier: { id: 'urn:x' }, timeVerified: '2026-01-01T00:00:00Z', resourceUri: 'file:///x', policy: { uri: 'file:///l' }, verificationResult: 'PASSED', verifiedLevels: ['IN_TOTO_VERIFIED'] };
  const refused = (value: JsonObject, schema: { readonly $id: string }): boolean => {
    try {
      checkSchema(schema, value, 't');
      return false;
    } catch (error) {
      return (error as InTotoError).code === 'E_SCHEMA';
    }
  };

  it('VSA: a good one passes; FAILED without the failure or with a level, a missing field, a bad time or URI, do not', () => {
    expect(refused(vsa(good), VSA_STATEMENT_SCHEMA)).toBe(false);
    expect(refused(vsa({ ...good, verificationResult: 'FAILED' }), VSA_STATEMENT_SCHEMA)).toBe(true);
    expect(refused(vsa({ ...good, verificationResult: 'FAILED', verifiedLevels: ['FAILED'], [VSA_FAILURE_FIELD]: { code: 'E', message: 'm' } }), VSA_STATEMENT_SCHEMA)).toBe(false);
    expect(refused(vsa({ ...good, verifiedLevels: ['FAILED'] }), VSA_STATEMENT_SCHEMA)).toBe(true);
    expect(refused(vsa({ ...good, [VSA_FAILURE_FIELD]: { code: 'E', message: 'm' } }), VSA_STATEMENT_SCHEMA)).toBe(true);
    const { policy: _policy, ...noPolicy } = good;
    expect(refused(vsa(noPolicy), VSA_STATEMENT_SCHEMA)).toBe(true);
    expect(refused(vsa({ ...good, timeVerified: '2026-01-01 00:00:00' }), VSA_STATEMENT_SCHEMA)).toBe(true);
    expect(refused(vsa({ ...good, resourceUri: 'no scheme' }), VSA_STATEMENT_SCHEMA)).toBe(true);
    expect(refused({ ...vsa(good), subject: [] }, VSA_STATEMENT_SCHEMA)).toBe(true);
  });

  it('provenance: buildType and builder.id are required URIs; unknown fields are not written', () => {
    const provenance = (predicate: JsonObject): JsonObject => ({ ...vsa(good), predicateType: 'https://slsa.dev/provenance/v1', predicate });
    const base = { buildDefinition: { buildType: 'urn:t', externalParameters: {} }, runDetails: { builder: { id: 'urn:b' } } };
    expect(refused(provenance(base), PROVENANCE_STATEMENT_SCHEMA)).toBe(false);
    expect(refused(provenance({ ...base, runDetails: {} }), PROVENANCE_STATEMENT_SCHEMA)).toBe(true);
    expect(refused(provenance({ ...base, buildDefinition: { buildType: 'not a uri', externalParameters: {} } }), PROVENANCE_STATEMENT_SCHEMA)).toBe(true);
    expect(refused(provenance({ ...base, extra: 1 }), PROVENANCE_STATEMENT_SCHEMA)).toBe(true);
  });
});
