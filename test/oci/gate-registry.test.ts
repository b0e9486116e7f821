import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../src/oci/client.js';
import { serializeImageManifest } from '../../src/oci/manifest.js';
import { parseRegistryHost } from '../../src/oci/reference.js';
import { attachReferrer, listReferrers } from '../../src/oci/referrers.js';
import { runBin } from '../helpers/bin.js';
import { makeSigningKey, signModel, type TestKey } from '../helpers/oms-sign.js';
import { tempDir } from '../helpers/reference.js';
import { sharedPath } from '../helpers/shared.js';
import { makeCa } from '../oms/helpers.js';
import { registryAvailable, startRegistry, type TestRegistry } from '../helpers/registry.js';

/**
 * `intoto push`, `intoto versions` and `intoto pull` (the gate) against a real registry:
 * Debian's docker-registry, which has no referrers API, so attachments go through the
 * fallback tag. Every refused pull must leave the output directory absent and no work
 * directory behind.
 */
const available = registryAvailable();

describe.skipIf(!available)('the registry commands against docker-registry 2.8.2', () => {
  let registry: TestRegistry;
  const work = tempDir('intoto-oci-');
  let signer: TestKey;
  let other: TestKey;
  let model: string;
  let keys: string;

  beforeAll(() => {
    registry = startRegistry();
    keys = join(work, 'keys');
    mkdirSync(keys);
    signer = makeSigningKey('P-384');
    other = makeSigningKey('P-256');
    writeFileSync(join(keys, 'signer.pub'), signer.publicPem);
    writeFileSync(join(keys, 'other.pub'), other.publicPem);
    model = join(work, 'model');
    mkdirSync(join(model, 'tokenizer'), { recursive: true });
    writeFileSync(join(model, 'model.safetensors'), Buffer.alloc(300_000, 7));
    writeFileSync(join(model, 'config.json'), '{"hidden": 8}\n');
    writeFileSync(join(model, 'tokenizer', 'vocab.txt'), 'a\nb\n');
    writeFileSync(join(model, 'README.md'), '# model\n');
    writeFileSync(join(work, 'model.sig'), signModel(model, signer));
  });
  afterAll(() => registry?.stop());

  const intoto = (...args: string[]) => runBin('intoto', args);
  const ref = (repo: string, tag: string) => `${registry.address}/${repo}:${tag}`;

  /** Pull must have failed with `code`, leaving nothing: no output directory, no work directory. */
  function expectRefused(result: ReturnType<typeof intoto>, code: string, out: string): void {
    expect(result.stderr).toContain(`[${code}]`);
    expect(result.status).toBe(1);
    expect(result.stderr.split('\n').filter((line) => line.includes('error:'))).toHaveLength(1);
    if (process.env['SHOW_GATE'] !== undefined) console.log(result.stderr);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(join(out, '..')).filter((n) => n.startsWith('.intoto-pull-'))).toEqual([]);
  }

  function digestOf(stdout: string): string {
    const match = /@(sha256:[0-9a-f]{64})\s*$/.exec(stdout);
    expect(match).not.toBeNull();
    return match![1]!;
  }

  it('push prints the pinned reference; the same files pushed again upload nothing', () => {
    const first = intoto('push', model, ref('models/demo', 'v1'), '--signature', join(work, 'model.sig'));
    expect(first.status).toBe(0);
    expect(first.stderr).toContain('pushed 4 file(s)');
    expect(first.stdout.trim()).toMatch(new RegExp(`^${registry.address.replace(/\./g, '\\.')}/models/demo@sha256:[0-9a-f]{64}$`));
    const again = intoto('push', model, ref('models/demo', 'v1'), '--signature', join(work, 'model.sig'));
    expect(again.status).toBe(0);
    expect(again.stdout).toBe(first.stdout);
    expect(again.stderr).toContain('nothing uploaded');
  });

  it('refuses to move a version tag to another digest, naming both', () => {
    const changed = join(work, 'changed');
    cpSync(model, changed, { recursive: true });
    writeFileSync(join(changed, 'config.json'), '{"hidden": 9}\n');
    writeFileSync(join(work, 'changed.sig'), signModel(changed, signer));
    const before = intoto('push', model, ref('models/demo', 'v1'), '--signature', join(work, 'model.sig'));
    const result = intoto('push', changed, ref('models/demo', 'v1'), '--signature', join(work, 'changed.sig'));
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('[E_TAG_EXISTS]');
    expect(result.stderr).toContain(digestOf(before.stdout));
    expect(result.stderr).toMatch(/this model is sha256:[0-9a-f]{64}/);
    const ok = intoto('push', changed, ref('models/demo', 'v2'), '--signature', join(work, 'changed.sig'));
    expect(ok.status).toBe(0);
  });

  describe('push refuses files that are not the signed ones, and never writes the tag then', () => {
    it('a file changed since it was signed: found while it is uploaded (hashed on the way, and by the registry)', () => {
      const changed = join(work, 'changed-after-signing');
      cpSync(model, changed, { recursive: true });
      const bundle = signModel(changed, signer);
      writeFileSync(join(changed, 'model.safetensors'), Buffer.alloc(300_000, 9));
      writeFileSync(join(work, 'changed-after-signing.sig'), bundle);
      const result = intoto('push', changed, ref('models/refused', 'v1'), '--signature', join(work, 'changed-after-signing.sig'));
      expect(result.status).toBe(1);
      expect(result.stderr).toMatch(/model\.safetensors: changed since it was signed \(sha256 [0-9a-f]{12}\.\.\., signed [0-9a-f]{12}\.\.\.\) \[E_MODEL_FILES\]/);
      // The blobs went up, the tag did not: docker-registry reports a repository without tags as unknown.
      expect(JSON.parse(intoto('versions', `${registry.address}/models/refused`, '--json').stdout)).toMatchObject({ passed: false, failure: { code: 'E_NOT_FOUND' } });
    });

    it('a changed file whose signed bytes the registry already has: hashed locally, refused all the same', () => {
      // models/demo holds the signed model.safetensors; this copy differs from it on disk.
      expect(intoto('push', model, ref('models/refused-2', 'v1'), '--signature', join(work, 'model.sig')).status).toBe(0);
      const changed = join(work, 'changed-present');
      cpSync(model, changed, { recursive: true });
      writeFileSync(join(changed, 'model.safetensors'), Buffer.alloc(300_000, 10));
      const result = intoto('push', changed, ref('models/refused-2', 'v2'), '--signature', join(work, 'model.sig'));
      expect(result.status).toBe(1);
      expect(result.stderr).toContain('model.safetensors: changed since it was signed');
      expect(result.stderr).toContain('[E_MODEL_FILES]');
      const tags = JSON.parse(intoto('versions', `${registry.address}/models/refused-2`, '--json').stdout) as { versions: { tag: string }[] };
      expect(tags.versions.map((v) => v.tag)).toEqual(['v1']);
    });

    it('a file the signature does not list, or a signed file that is missing: refused before anything is uploaded', () => {
      const extra = join(work, 'extra-file');
      cpSync(model, extra, { recursive: true });
      writeFileSync(join(extra, 'notes.txt'), 'unsigned\n');
      const result = intoto('push', extra, ref('models/refused-3', 'v1'), '--signature', join(work, 'model.sig'));
      expect(result.status).toBe(1);
      expect(result.stderr).toContain('notes.txt: not in the signature');
      const missing = join(work, 'missing-file');
      cpSync(model, missing, { recursive: true });
      rmSync(join(missing, 'README.md'));
      const second = intoto('push', missing, ref('models/refused-3', 'v1'), '--signature', join(work, 'model.sig'));
      expect(second.stderr).toContain('README.md: signed but missing');
      // Nothing reached the registry: the repository does not exist.
      expect(JSON.parse(intoto('versions', `${registry.address}/models/refused-3`, '--json').stdout)).toMatchObject({ passed: false, failure: { code: 'E_NOT_FOUND' } });
    });
  });

  it('versions lists each tag with its digest, signer key id and attachments (not the fallback tags)', () => {
    const pushed = intoto('push', model, ref('models/listed', 'v1'), '--signature', join(work, 'model.sig'));
    const json = intoto('versions', `${registry.address}/models/listed`, '--json');
    expect(json.status).toBe(0);
    const listing = JSON.parse(json.stdout) as { versions: { tag: string; digest: string; signers: { keyId: string }[]; attachments: { artifactType: string }[] }[] };
    expect(listing.versions.map((v) => v.tag)).toEqual(['v1']);
    expect(listing.versions[0]!.digest).toBe(digestOf(pushed.stdout));
    expect(listing.versions[0]!.signers.map((s) => s.keyId)).toEqual([signer.hint]);
    expect(listing.versions[0]!.attachments.map((a) => a.artifactType)).toEqual(['application/vnd.dev.sigstore.bundle.v0.3+json']);
    const text = intoto('versions', `${registry.address}/models/listed`);
    expect(text.stdout).toContain(`v1\t${digestOf(pushed.stdout)}\tsigned by key ${signer.hint.slice(0, 16)}`);
  });

  it('pulls by tag (printing the digest) and by digest; the files are the model, byte for byte', () => {
    const pushed = digestOf(intoto('push', model, ref('models/demo', 'v1'), '--signature', join(work, 'model.sig')).stdout);
    const out = join(work, 'pulled-tag');
    const byTag = intoto('pull', ref('models/demo', 'v1'), '-o', out, '-k', join(keys, 'signer.pub'));
    expect(byTag.stderr).toContain(`models/demo:v1 is ${pushed}`);
    expect(byTag.status).toBe(0);
    expect(digestOf(byTag.stdout)).toBe(pushed);
    for (const file of ['model.safetensors', 'config.json', 'tokenizer/vocab.txt', 'README.md']) {
      expect(readFileSync(join(out, file))).toEqual(readFileSync(join(model, file)));
    }
    const out2 = join(work, 'pulled-digest');
    const byDigest = intoto('pull', `${registry.address}/models/demo@${pushed}`, '-o', out2, '-k', join(keys, 'signer.pub'), '--expect-digest', pushed);
    expect(byDigest.status).toBe(0);
    expect(readdirSync(out2).sort()).toEqual(['README.md', 'config.json', 'model.safetensors', 'tokenizer']);
  });

  it('refuses --expect-digest that the tag does not resolve to', () => {
    const out = join(work, 'pulled-expect');
    const wrong = `sha256:${'0'.repeat(64)}`;
    expectRefused(intoto('pull', ref('models/demo', 'v1'), '-o', out, '-k', join(keys, 'signer.pub'), '--expect-digest', wrong), 'E_EXPECTED_DIGEST', out);
  });

  it('refuses to pull without a signer (fail closed)', () => {
    const out = join(work, 'pulled-unsigned-usage');
    const result = intoto('pull', ref('models/demo', 'v1'), '-o', out);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('[E_USAGE]');
    expect(existsSync(out)).toBe(false);
  });

  it('attack: a model with no signature attached is refused', () => {
    intoto('push', model, ref('models/unsigned', 'v1'));
    const out = join(work, 'pulled-unsigned');
    expectRefused(intoto('pull', ref('models/unsigned', 'v1'), '-o', out, '-k', join(keys, 'signer.pub')), 'E_SIGNATURE_MISSING', out);
  });

  it('attack: a signature by another key is refused', () => {
    const out = join(work, 'pulled-other-key');
    const result = intoto('pull', ref('models/demo', 'v1'), '-o', out, '-k', join(keys, 'other.pub'));
    expectRefused(result, 'E_MODEL_SIGNATURE', out);
    expect(result.stderr).toMatch(/signature: attached sha256-[0-9a-f]{64}\.sigstore\.json: signed with another key/);
  });

  it('attack: a signature changed after signing is refused', () => {
    const bundle = JSON.parse(readFileSync(join(work, 'model.sig'), 'utf8')) as { dsseEnvelope: { payload: string } };
    const payload = JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, 'base64').toString('utf8')) as { subject: { name: string }[] };
    payload.subject[0]!.name = 'renamed';
    bundle.dsseEnvelope.payload = Buffer.from(JSON.stringify(payload)).toString('base64');
    writeFileSync(join(work, 'tampered.sig'), JSON.stringify(bundle));
    intoto('push', model, ref('models/tampered', 'v1'), '--signature', join(work, 'tampered.sig'));
    const out = join(work, 'pulled-tampered');
    expectRefused(intoto('pull', ref('models/tampered', 'v1'), '-o', out, '-k', join(keys, 'signer.pub')), 'E_MODEL_SIGNATURE', out);
  });

  it('attack: a blob corrupted in the registry storage is refused while it streams', () => {
    expect(intoto('push', model, ref('models/corrupt', 'v1'), '--signature', join(work, 'model.sig')).status).toBe(0);
    const weights = `sha256:${createHash('sha256').update(readFileSync(join(model, 'model.safetensors'))).digest('hex')}`;
    const blob = registry.blobPath(weights);
    const original = readFileSync(blob);
    const corrupted = Buffer.from(original);
    corrupted[1000] = corrupted[1000]! ^ 0xff;
    writeFileSync(blob, corrupted);
    try {
      const out = join(work, 'pulled-corrupt');
      expectRefused(intoto('pull', ref('models/corrupt', 'v1'), '-o', out, '-k', join(keys, 'signer.pub')), 'E_DIGEST_MISMATCH', out);
    } finally {
      writeFileSync(blob, original);
    }
  });

  it('referrers are found through the fallback tag (no referrers API on this registry)', async () => {
    const pushed = digestOf(intoto('push', model, ref('models/demo', 'v1'), '--signature', join(work, 'model.sig')).stdout);
    const client = new RegistryClient(parseRegistryHost(registry.address));
    try {
      const referrers = await listReferrers(client, 'models/demo', pushed);
      expect(referrers.source).toBe('tag');
      expect(referrers.descriptors.map((d) => d.artifactType)).toEqual(['application/vnd.dev.sigstore.bundle.v0.3+json']);
      expect(referrers.descriptors[0]!.annotations).toMatchObject({
        'dev.sigstore.bundle.content': 'dsse-envelope',
        'dev.sigstore.bundle.predicateType': 'https://model_signing/signature/v1.0',
      });
      const tags = await client.listTags('models/demo');
      expect(tags).toContain(`sha256-${pushed.slice(7)}`);
    } finally {
      await client.close();
    }
  });

  /** Pushes a manifest with `layers` changed by `edit`, under `tag`, with the model's signature attached to it. */
  async function pushEdited(repo: string, tag: string, edit: (layers: { mediaType: string; digest: string; size: number; annotations: Record<string, string> }[]) => void): Promise<string> {
    const pushed = digestOf(intoto('push', model, ref(repo, 'original'), '--signature', join(work, 'model.sig')).stdout);
    const client = new RegistryClient(parseRegistryHost(registry.address));
    try {
      const original = JSON.parse(Buffer.from((await client.getManifest(repo, pushed)).bytes).toString('utf8')) as {
        artifactType: string;
        config: { mediaType: string; digest: string; size: number };
        layers: { mediaType: string; digest: string; size: number; annotations: Record<string, string> }[];
      };
      const extra = Buffer.from('a file nobody signed\n');
      const blob = await client.pushBytes(repo, extra);
      original.layers.push({ mediaType: 'application/vnd.cncf.model.weight.v1.raw', digest: blob.digest, size: blob.size, annotations: { 'org.cncf.model.filepath': 'extra.bin' } });
      edit(original.layers);
      const diffIds = original.layers.map((l) => l.digest);
      const config = await client.pushBytes(repo, Buffer.from(JSON.stringify({ descriptor: {}, modelfs: { type: 'layers', diffIds }, config: {} })));
      const manifest = serializeImageManifest({ artifactType: original.artifactType, config: { ...original.config, digest: config.digest, size: config.size }, layers: original.layers });
      const { digest } = await client.putManifest(repo, tag, manifest, 'application/vnd.oci.image.manifest.v1+json');
      const bundle = readFileSync(join(work, 'model.sig'));
      const bundleBlob = await client.pushBytes(repo, bundle);
      await client.pushBytes(repo, Buffer.from('{}'));
      const referrer = serializeImageManifest({
        artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', size: 2 },
        layers: [{ mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json', digest: bundleBlob.digest, size: bundleBlob.size }],
        subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: manifest.length },
      });
      await attachReferrer(client, repo, digest, referrer, { artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json' });
      return digest;
    } finally {
      await client.close();
    }
  }

  it('attack: a manifest with a file the signature does not list is refused', async () => {
    await pushEdited('models/extra', 'v1', () => undefined);
    const out = join(work, 'pulled-extra');
    const result = intoto('pull', ref('models/extra', 'v1'), '-o', out, '-k', join(keys, 'signer.pub'));
    expectRefused(result, 'E_MODEL_MISMATCH', out);
    expect(result.stderr).toContain('extra.bin: not in the signature');
  });

  it('attack: a manifest missing a signed file is refused', async () => {
    await pushEdited('models/missing', 'v1', (layers) => {
      layers.splice(layers.findIndex((l) => l.annotations['org.cncf.model.filepath'] === 'README.md'), 1);
      layers.pop();
    });
    const out = join(work, 'pulled-missing');
    const result = intoto('pull', ref('models/missing', 'v1'), '-o', out, '-k', join(keys, 'signer.pub'));
    expectRefused(result, 'E_MODEL_MISMATCH', out);
    expect(result.stderr).toContain('README.md: missing (signed sha256');
  });

  it('attack: a manifest whose file path climbs out of the output directory is refused before any download', async () => {
    await pushEdited('models/traversal', 'v1', (layers) => {
      layers[layers.length - 1]!.annotations['org.cncf.model.filepath'] = '../escaped.bin';
    });
    const out = join(work, 'pulled-traversal');
    expectRefused(intoto('pull', ref('models/traversal', 'v1'), '-o', out, '-k', join(keys, 'signer.pub')), 'E_MODEL_FILES', out);
    expect(existsSync(join(work, 'escaped.bin'))).toBe(false);
  });

  describe('with an in-toto layout and links attached', () => {
    let lay: string;
    beforeAll(() => {
      lay = join(work, 'intoto');
      mkdirSync(join(lay, 'keys'), { recursive: true });
      mkdirSync(join(lay, 'links'));
      expect(intoto('keygen', '-q', join(lay, 'keys', 'owner')).status).toBe(0);
      expect(intoto('keygen', '-q', join(lay, 'keys', 'trainer')).status).toBe(0);
      writeFileSync(
        join(lay, 'model.yaml'),
        [
          'expires_in: 30d',
          'functionaries: {trainer: keys/trainer.pub}',
          'steps:',
          '  - name: train',
          '    functionaries: [trainer]',
          '    run: "true"',
          '    materials: ["DISALLOW *"]',
          '    products: ["ALLOW *"]',
          'inspections:',
          '  - name: check-model',
          '    run: "true"',
          '    materials: ["MATCH * WITH PRODUCTS FROM train", "DISALLOW *"]',
          '    products: ["ALLOW *"]',
          '',
        ].join('\n'),
      );
      expect(intoto('layout', 'sign', join(lay, 'model.yaml'), '-k', join(lay, 'keys', 'owner'), '-o', join(lay, 'root.layout'), '-q').status).toBe(0);
      // The trainer's link records the model's files as the products of "train".
      const ran = runBin('intoto-run', ['-n', 'train', '-k', join(lay, 'keys', 'trainer'), '-p', '.', '-d', join(lay, 'links'), '--sandbox', 'none', '--', 'true'], { cwd: model });
      expect(ran.status).toBe(0);
    });

    const attach = () => ['--attach', join(lay, 'root.layout'), ...readdirSync(join(lay, 'links')).flatMap((l) => ['--attach', join(lay, 'links', l)])];

    it('passes when the links match the pulled files', () => {
      expect(intoto('push', model, ref('models/chain', 'v1'), '--signature', join(work, 'model.sig'), ...attach()).status).toBe(0);
      const out = join(work, 'pulled-chain');
      const result = intoto('pull', ref('models/chain', 'v1'), '-o', out, '-k', join(keys, 'signer.pub'), '--layout', 'root.layout', '--layout-key', join(lay, 'keys', 'owner.pub'), '--sandbox', 'none');
      expect(result.stderr).toContain('in-toto layout');
      expect(result.status).toBe(0);
      expect(readdirSync(out).sort()).toEqual(['README.md', 'config.json', 'model.safetensors', 'tokenizer']);
    });

    it('attack: a signed model whose attached layout fails (the link recorded other weights) is refused', () => {
      const changed = join(work, 'retrained');
      cpSync(model, changed, { recursive: true });
      writeFileSync(join(changed, 'model.safetensors'), Buffer.alloc(300_000, 8));
      writeFileSync(join(work, 'retrained.sig'), signModel(changed, signer));
      expect(intoto('push', changed, ref('models/chain', 'v2'), '--signature', join(work, 'retrained.sig'), ...attach()).status).toBe(0);
      const out = join(work, 'pulled-chain-bad');
      const result = intoto('pull', ref('models/chain', 'v2'), '-o', out, '-k', join(keys, 'signer.pub'), '--layout', 'root.layout', '--layout-key', join(lay, 'keys', 'owner.pub'), '--sandbox', 'none');
      expectRefused(result, 'E_RULE_DISALLOW', out);
      expect(result.stderr).toContain('model.safetensors');
    });

    it('attack: a layout signed by someone else than the owner key given is refused', () => {
      const out = join(work, 'pulled-chain-owner');
      const result = intoto('pull', ref('models/chain', 'v1'), '-o', out, '-k', join(keys, 'signer.pub'), '--layout', 'root.layout', '--layout-key', join(lay, 'keys', 'trainer.pub'), '--sandbox', 'none');
      expectRefused(result, 'E_LAYOUT_SIG', out);
    });
  });

  it('attack: --scan refuses a pickle that runs code on load', () => {
    const evil = join(work, 'evil-model');
    mkdirSync(evil);
    // protocol 2: GLOBAL os system, 'echo pwned', TUPLE1, REDUCE, STOP
    writeFileSync(join(evil, 'model.pkl'), Buffer.from('\x80\x02cos\nsystem\nq\x00X\n\x00\x00\x00echo pwnedq\x01\x85q\x02Rq\x03.', 'latin1'));
    writeFileSync(join(work, 'evil.sig'), signModel(evil, signer));
    expect(intoto('push', evil, ref('models/evil', 'v1'), '--signature', join(work, 'evil.sig')).status).toBe(0);
    const out = join(work, 'pulled-evil');
    expectRefused(intoto('pull', ref('models/evil', 'v1'), '-o', out, '-k', join(keys, 'signer.pub'), '--scan'), 'E_MODEL_UNSAFE', out);
    // Without --scan the signature alone lets it through: the scan is what catches it.
    const plain = join(work, 'pulled-evil-unscanned');
    expect(intoto('pull', ref('models/evil', 'v1'), '-o', plain, '-k', join(keys, 'signer.pub')).status).toBe(0);
  });

  it('refuses an output directory that already holds files, and writes nothing there', () => {
    const out = join(work, 'occupied');
    mkdirSync(out);
    writeFileSync(join(out, 'keep.txt'), 'mine');
    const result = intoto('pull', ref('models/demo', 'v1'), '-o', out, '-k', join(keys, 'signer.pub'));
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('[E_DESTINATION]');
    expect(readdirSync(out)).toEqual(['keep.txt']);
  });

  it('interop: a model signed by model_signing 1.1.0 (key method) pushes as signed and passes the gate', () => {
    const vector = sharedPath('vectors/oms/model-transparency/scripts/tests/v1.1.0-elliptic-key');
    const publicKey = sharedPath('vectors/oms/model-transparency/scripts/tests/keys/certificate/signing-key-pub.pem');
    if (vector === undefined || publicKey === undefined) return;
    // The signature sits inside the model and ignores `ignore-me`: push leaves both out.
    const pushed = intoto('push', vector, ref('models/oms-vector', 'v1.1.0'), '--signature', join(vector, 'model.sig'));
    expect(pushed.stderr).toContain('pushed 2 file(s)');
    expect(pushed.status).toBe(0);
    const out = join(work, 'pulled-vector');
    const pulled = intoto('pull', ref('models/oms-vector', 'v1.1.0'), '-o', out, '-k', publicKey);
    expect(pulled.stderr).toContain('e8450dec4eb99dae');
    expect(pulled.status).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['signme-1', 'signme-2']);
    const versions = JSON.parse(intoto('versions', `${registry.address}/models/oms-vector`, '--json').stdout) as { versions: { signers: { keyId: string }[] }[] };
    expect(versions.versions[0]!.signers[0]!.keyId).toBe('e8450dec4eb99dae995da9af1bc2cc9f76ed669ee2e744f57abba763df3e3f8e');
  });

  describe('each kind of trust the verifier has (OpenSSF Model Signing vectors from model_signing 1.1.0)', () => {
    const vectors = sharedPath('vectors/oms');
    const tests = (...parts: string[]) => join(vectors ?? '', 'model-transparency', 'scripts', 'tests', ...parts);
    const certs = (name: string) => tests('keys', 'certificate', name);

    it('certificate method: passes with --certificate-chain to the CA; refused with the wrong kind of trust or another CA', () => {
      if (vectors === undefined) return;
      const vector = tests('v1.1.0-certificate');
      expect(intoto('push', vector, ref('models/oms-cert', 'v1'), '--signature', join(vector, 'model.sig')).status).toBe(0);
      const out = join(work, 'pulled-cert');
      const pulled = intoto('pull', ref('models/oms-cert', 'v1'), '-o', out, '--certificate-chain', certs('ca-cert.pem'));
      expect(pulled.stderr).toContain('verified 2 file(s): digests, signature (');
      expect(pulled.status).toBe(0);
      expect(readdirSync(out).sort()).toEqual(['signme-1', 'signme-2']);
      const asKey = join(work, 'pulled-cert-as-key');
      const refused = intoto('pull', ref('models/oms-cert', 'v1'), '-o', asKey, '-k', certs('signing-key-pub.pem'));
      expectRefused(refused, 'E_MODEL_SIGNATURE', asKey);
      expect(refused.stderr).toContain('signed for a certificate chain (--certificate-chain), but a public key (-k) was given');
      const otherCa = join(work, 'pulled-cert-other-ca');
      const ca = makeCa(mkdtempSync(join(work, 'ca-')));
      expectRefused(intoto('pull', ref('models/oms-cert', 'v1'), '-o', otherCa, '--certificate-chain', ca.caPem), 'E_MODEL_SIGNATURE', otherCa);
    });

    it('Sigstore method: passes with the identity and issuer against the trusted root, offline; another identity is refused', () => {
      if (vectors === undefined) return;
      const vector = tests('v1.1.0-sigstore');
      const root = join(vectors, 'public-good-trusted_root.json');
      expect(intoto('push', vector, ref('models/oms-sigstore', 'v1'), '--signature', join(vector, 'model.sig')).status).toBe(0);
      const out = join(work, 'pulled-sigstore');
      const pulled = intoto('pull', ref('models/oms-sigstore', 'v1'), '-o', out, '--identity', 'stefanb@us.ibm.com', '--issuer', 'https://sigstore.verify.ibm.com/oauth2', '--trusted-root', root);
      expect(pulled.stderr).toContain('signature (stefanb@us.ibm.com (issuer https://sigstore.verify.ibm.com/oauth2))');
      expect(pulled.status).toBe(0);
      expect(readdirSync(out).sort()).toEqual(['signme-1', 'signme-2']);
      const other = join(work, 'pulled-sigstore-other');
      const refused = intoto('pull', ref('models/oms-sigstore', 'v1'), '-o', other, '--identity', 'mallory@example.com', '--issuer', 'https://sigstore.verify.ibm.com/oauth2', '--trusted-root', root);
      expectRefused(refused, 'E_MODEL_SIGNATURE', other);
      expect(refused.stderr).toContain('not by the identity "mallory@example.com"');
    });

    it('our own signer end to end: intoto keygen -t ecdsa, intoto model sign, push, pull -k with the intoto .pub file', () => {
      const model2 = join(work, 'own-model');
      cpSync(model, model2, { recursive: true });
      expect(intoto('keygen', '-q', '-t', 'ecdsa', join(keys, 'platform')).status).toBe(0);
      expect(intoto('model', 'sign', model2, '-k', join(keys, 'platform'), '-o', join(work, 'own.sig'), '-q').status).toBe(0);
      expect(intoto('push', model2, ref('models/own', 'v1'), '--signature', join(work, 'own.sig')).status).toBe(0);
      const out = join(work, 'pulled-own');
      expect(intoto('pull', ref('models/own', 'v1'), '-o', out, '-k', join(keys, 'platform.pub')).status).toBe(0);
      expect(readFileSync(join(out, 'config.json'))).toEqual(readFileSync(join(model2, 'config.json')));
    });

    it('exactly one kind of trust: two kinds, or --trusted-root without an identity, are usage errors before anything is fetched', () => {
      const out = join(work, 'pulled-two-trusts');
      const both = intoto('pull', ref('models/demo', 'v1'), '-o', out, '-k', join(keys, 'signer.pub'), '--identity', 'a@b', '--issuer', 'https://x');
      expect(both.status).toBe(2);
      expect(both.stderr).toContain('[E_USAGE]');
      const root = intoto('pull', ref('models/demo', 'v1'), '-o', out, '-k', join(keys, 'signer.pub'), '--trusted-root', join(work, 'model.sig'));
      expect(root.status).toBe(2);
      expect(root.stderr).toContain('--trusted-root goes with --identity');
      expect(existsSync(out)).toBe(false);
    });
  });

  describe('--scan policies', () => {
    let pushed = false;
    /** A pickle of an instance of __main__.Thing: harmless, but no allow-list knows it. */
    const pushThing = (): void => {
      if (pushed) return;
      const dir = join(work, 'thing-model');
      mkdirSync(dir);
      // protocol 2: GLOBAL __main__ Thing, EMPTY_TUPLE, NEWOBJ, STOP
      writeFileSync(join(dir, 'model.pkl'), Buffer.from('\x80\x02c__main__\nThing\nq\x00)\x81q\x01.', 'latin1'));
      writeFileSync(join(work, 'thing.sig'), signModel(dir, signer));
      expect(intoto('push', dir, ref('models/thing', 'v1'), '--signature', join(work, 'thing.sig')).status).toBe(0);
      pushed = true;
    };

    it('a global outside the default policy is refused; --allow admits exactly it; the policy is named', () => {
      pushThing();
      const out = join(work, 'pulled-thing');
      const refused = intoto('pull', ref('models/thing', 'v1'), '-o', out, '-k', join(keys, 'signer.pub'), '--scan');
      expectRefused(refused, 'E_MODEL_UNSAFE', out);
      expect(refused.stderr).toContain('model.pkl: ');
      expect(refused.stderr).toContain('(scan policy: default)');
      const allowed = intoto('pull', ref('models/thing', 'v1'), '-o', out, '-k', join(keys, 'signer.pub'), '--scan', '--allow', '__main__.Thing');
      expect(allowed.stderr).toContain('scan (1 file(s), policy default + --allow)');
      expect(allowed.status).toBe(0);
      const json = intoto('pull', ref('models/thing', 'v1'), '-o', join(work, 'pulled-thing-json'), '-k', join(keys, 'signer.pub'), '--scan', '--allow', '__main__.Thing', '--json');
      expect(JSON.parse(json.stdout)).toMatchObject({ passed: true, scan: { files: 1, policy: 'default + --allow' } });
    });

    it('a never-allowed name stays refused whatever --allow says; --policy strict refuses what default admits', () => {
      const out = join(work, 'pulled-evil-allowed');
      const evil = intoto('pull', ref('models/evil', 'v1'), '-o', out, '-k', join(keys, 'signer.pub'), '--scan', '--allow', 'os.system');
      expect(evil.status).toBe(2);
      expect(evil.stderr).toContain('--allow os.system: this name runs commands and touches files and can never be allowed [E_USAGE]');
      expect(existsSync(out)).toBe(false);
      const plain = join(work, 'pulled-strict');
      const strictDir = join(work, 'strict-model');
      mkdirSync(strictDir);
      // pickle.dumps(numpy.dtype('float64'), protocol=2): numpy.dtype is in the default policy, not in strict
      writeFileSync(join(strictDir, 'model.pkl'), Buffer.from('gAJjbnVtcHkKZHR5cGUKcQBYAgAAAGY4cQGJiIdxAlJxAyhLA1gBAAAAPHEETk5OSv////9K/////0sAdHEFYi4=', 'base64'));
      writeFileSync(join(work, 'strict.sig'), signModel(strictDir, signer));
      expect(intoto('push', strictDir, ref('models/strict', 'v1'), '--signature', join(work, 'strict.sig')).status).toBe(0);
      expect(intoto('pull', ref('models/strict', 'v1'), '-o', plain, '-k', join(keys, 'signer.pub'), '--scan').status).toBe(0);
      const strict = join(work, 'pulled-strict-2');
      expectRefused(intoto('pull', ref('models/strict', 'v1'), '-o', strict, '-k', join(keys, 'signer.pub'), '--scan', '--policy', 'strict'), 'E_MODEL_UNSAFE', strict);
    });

    it('--policy or --allow without --scan is a usage error', () => {
      const result = intoto('pull', ref('models/demo', 'v1'), '-o', join(work, 'never'), '-k', join(keys, 'signer.pub'), '--allow', 'x.y');
      expect(result.status).toBe(2);
      expect(result.stderr).toContain('--policy and --allow go with --scan');
    });
  });

  describe('--json: every outcome is one JSON document', () => {
    it('push, pull and versions succeed with a document saying passed: true', () => {
      const pushed = intoto('push', model, ref('models/json', 'v1'), '--signature', join(work, 'model.sig'), '--json');
      expect(pushed.status).toBe(0);
      const push = JSON.parse(pushed.stdout) as Record<string, unknown>;
      expect(push).toMatchObject({ passed: true, tag: 'v1', files: 4, tagWritten: true, attachments: [{ artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json' }] });
      const digest = push['digest'] as string;
      expect(push['reference']).toBe(`${registry.address}/models/json@${digest}`);
      const out = join(work, 'pulled-json');
      const pulled = intoto('pull', ref('models/json', 'v1'), '-o', out, '-k', join(keys, 'signer.pub'), '--json');
      expect(pulled.status).toBe(0);
      const pull = JSON.parse(pulled.stdout) as Record<string, unknown>;
      expect(pull).toMatchObject({ passed: true, digest, destination: out, signature: { method: 'key', signer: `key ${signer.hint.slice(0, 16)}` }, layout: null, scan: null });
      expect((pull['files'] as { path: string }[]).map((f) => f.path).sort()).toEqual(['README.md', 'config.json', 'model.safetensors', 'tokenizer/vocab.txt']);
      expect((pull['timings'] as { check: string }[]).map((t) => t.check)).toEqual(['resolve', 'manifest', 'download', 'attachments', 'signature', 'materialise']);
      const listed = JSON.parse(intoto('versions', `${registry.address}/models/json`, '--json').stdout) as Record<string, unknown>;
      expect(listed).toMatchObject({ passed: true, versions: [{ tag: 'v1', digest }] });
    });

    it('a refused pull, a registry failure and a usage error are each one document with the code', () => {
      const out = join(work, 'pulled-json-refused');
      const refused = intoto('pull', ref('models/json', 'v1'), '-o', out, '-k', join(keys, 'other.pub'), '--json');
      expect(refused.status).toBe(1);
      expect(JSON.parse(refused.stdout)).toMatchObject({ passed: false, failure: { code: 'E_MODEL_SIGNATURE' } });
      expect(existsSync(out)).toBe(false);
      const missing = intoto('versions', `${registry.address}/models/nothing-here`, '--json');
      expect(missing.status).toBe(1);
      expect(JSON.parse(missing.stdout)).toMatchObject({ passed: false, failure: { code: 'E_NOT_FOUND' } });
      const bad = intoto('push', model, `${registry.address}/models/json`, '--json');
      expect(bad.status).toBe(2);
      expect(JSON.parse(bad.stdout)).toMatchObject({ passed: false, failure: { code: 'E_USAGE' } });
    });
  });

  it('a large model (40 MiB: straight from the socket into its file): pulled byte for byte; corrupted, refused with nothing left', () => {
    const big = join(work, 'big-model');
    mkdirSync(big);
    const weights = Buffer.alloc(40 * 1024 * 1024);
    for (let i = 0; i < weights.length; i += 4096) weights.writeUInt32LE(i, i);
    writeFileSync(join(big, 'weights.bin'), weights);
    writeFileSync(join(big, 'config.json'), '{}');
    writeFileSync(join(work, 'big.sig'), signModel(big, signer));
    expect(intoto('push', big, ref('models/big', 'v1'), '--signature', join(work, 'big.sig')).status).toBe(0);
    const out = join(work, 'pulled-big');
    expect(intoto('pull', ref('models/big', 'v1'), '-o', out, '-k', join(keys, 'signer.pub')).status).toBe(0);
    expect(readFileSync(join(out, 'weights.bin')).equals(weights)).toBe(true);
    const blob = registry.blobPath(`sha256:${createHash('sha256').update(weights).digest('hex')}`);
    const corrupted = Buffer.from(weights);
    corrupted[30 * 1024 * 1024] = corrupted[30 * 1024 * 1024]! ^ 1;
    writeFileSync(blob, corrupted);
    const refused = join(work, 'pulled-big-corrupt');
    expectRefused(intoto('pull', ref('models/big', 'v1'), '-o', refused, '-k', join(keys, 'signer.pub')), 'E_DIGEST_MISMATCH', refused);
  });
});
