import fc from 'fast-check';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dockerConfigCredentials, parseChallenge } from '../../src/oci/auth.js';
import { parseImageIndex, parseImageManifest, serializeImageManifest } from '../../src/oci/manifest.js';
import { MODEL_CODE, MODEL_DATASET, MODEL_DOC, MODEL_WEIGHT, MODEL_WEIGHT_CONFIG, modelLayerType } from '../../src/oci/media-types.js';
import { formatReference, isLoopback, parseReference } from '../../src/oci/reference.js';
import { codeOf } from '../helpers/errors.js';
import { tempDir } from '../helpers/reference.js';

const HEX = 'a'.repeat(64);

describe('registry references', () => {
  it.each([
    ['127.0.0.1:5000/models/iris:v1', { authority: '127.0.0.1:5000', repository: 'models/iris', tag: 'v1', digest: undefined }],
    ['localhost/m', { authority: 'localhost', repository: 'm', tag: undefined, digest: undefined }],
    [`reg.example.com/a/b-c/d__e@sha256:${HEX}`, { authority: 'reg.example.com', repository: 'a/b-c/d__e', tag: undefined, digest: `sha256:${HEX}` }],
    [`[::1]:5000/m:v1.0_rc-1@sha256:${HEX}`, { authority: '[::1]:5000', repository: 'm', tag: 'v1.0_rc-1', digest: `sha256:${HEX}` }],
  ])('%s', (text, expected) => {
    const ref = parseReference(text);
    expect({ authority: ref.registry.authority, repository: ref.repository, tag: ref.tag, digest: ref.digest }).toEqual(expected);
    expect(formatReference(ref)).toBe(text);
  });

  it.each([
    'models/iris:v1', // no host: there is no default registry
    '127.0.0.1:5000/Models:v1', // upper case repository
    '127.0.0.1:5000/m:.hidden',
    '127.0.0.1:5000/m:v1@sha256:ABC',
    `127.0.0.1:5000/m@sha512:${HEX}`,
    '127.0.0.1:99999/m:v1',
    '127.0.0.1:5000/m/../x:v1',
    '127.0.0.1:5000/m//x:v1',
    `127.0.0.1:5000/m:${'t'.repeat(129)}`,
    'host name/m:v1',
  ])('refuses %s', (text) => {
    expect(codeOf(() => parseReference(text))).toBe('E_USAGE');
  });

  it('a tag or digest can be required', () => {
    expect(codeOf(() => parseReference('h:1/m', { requireTagOrDigest: true }))).toBe('E_USAGE');
  });

  it('property: anything parsed formats back to itself, and never throws anything but E_USAGE', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (text) => {
        const code = codeOf(() => parseReference(text));
        if (code === undefined) expect(formatReference(parseReference(text))).toBe(text);
        else expect(code).toBe('E_USAGE');
      }),
    );
  });

  it('loopback hosts', () => {
    expect(['localhost', '127.0.0.1', '127.1.2.3', '[::1]'].map(isLoopback)).toEqual([true, true, true, true]);
    expect(['10.0.0.1', '127.0.0.1.example.com', 'localhost.example', '128.0.0.1', '127.0.0.256'].map(isLoopback)).toEqual([false, false, false, false, false]);
  });
});

describe('authentication', () => {
  const dir = tempDir('intoto-docker-');

  it('reads challenges', () => {
    const bearer = parseChallenge('Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push"');
    expect(bearer?.scheme).toBe('bearer');
    expect(Object.fromEntries(bearer!.params)).toEqual({ realm: 'https://auth.example.com/token', service: 'registry.example.com', scope: 'repository:a/b:pull,push' });
    expect(parseChallenge('Basic realm="x \\"quoted\\""')?.params.get('realm')).toBe('x "quoted"');
    expect(parseChallenge('Negotiate abc')).toBeUndefined();
    expect(parseChallenge(null)).toBeUndefined();
  });

  it('reads docker config credentials by host, and says when only a credential helper has them', () => {
    mkdirSync(join(dir, 'a'));
    writeFileSync(
      join(dir, 'a', 'config.json'),
      JSON.stringify({
        auths: {
          'https://reg.example.com:5000/v1/': { auth: Buffer.from('alice:s3:cret').toString('base64') },
          'other.example.com': { identitytoken: 'tok' },
        },
        credHelpers: { 'helped.example.com': 'ecr-login' },
      }),
    );
    expect(dockerConfigCredentials('reg.example.com:5000', { dir: join(dir, 'a') })).toEqual({ kind: 'basic', username: 'alice', password: 's3:cret' });
    expect(dockerConfigCredentials('other.example.com', { dir: join(dir, 'a') })).toEqual({ kind: 'identity-token', token: 'tok' });
    const warnings: string[] = [];
    expect(dockerConfigCredentials('helped.example.com', { dir: join(dir, 'a'), warn: (w) => warnings.push(w) })).toBeUndefined();
    expect(warnings[0]).toContain('credential helper');
    expect(dockerConfigCredentials('x.example.com', { dir: join(dir, 'missing') })).toBeUndefined();
    mkdirSync(join(dir, 'b'));
    writeFileSync(join(dir, 'b', 'config.json'), '{"auths": {"x": {}}, "auths": {}}');
    expect(codeOf(() => dockerConfigCredentials('x', { dir: join(dir, 'b') }))).toBe('E_REGISTRY_AUTH');
  });
});

describe('manifests', () => {
  const config = { mediaType: 'application/vnd.cncf.model.config.v1+json', digest: `sha256:${HEX}`, size: 10 };

  it('round-trip with a fixed key order (the same content, the same bytes)', () => {
    const bytes = serializeImageManifest({ artifactType: 'a/b', config, layers: [{ ...config, annotations: { z: '1', a: '2' } }] });
    expect(Buffer.from(bytes).toString()).toBe(
      `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"a/b","config":{"mediaType":"application/vnd.cncf.model.config.v1+json","digest":"sha256:${HEX}","size":10},"layers":[{"mediaType":"application/vnd.cncf.model.config.v1+json","digest":"sha256:${HEX}","size":10,"annotations":{"a":"2","z":"1"}}]}`,
    );
    expect(parseImageManifest(bytes).layers[0]!.annotations).toEqual({ a: '2', z: '1' });
  });

  it.each([
    ['duplicate keys', `{"schemaVersion":2,"schemaVersion":2,"config":${JSON.stringify(config)},"layers":[]}`],
    ['schemaVersion 1', `{"schemaVersion":1,"config":${JSON.stringify(config)},"layers":[]}`],
    ['a digest in upper case', `{"schemaVersion":2,"config":${JSON.stringify({ ...config, digest: `sha256:${'A'.repeat(64)}` })},"layers":[]}`],
    ['a negative size', `{"schemaVersion":2,"config":${JSON.stringify({ ...config, size: -1 })},"layers":[]}`],
    ['a fractional size', `{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:${HEX}","size":1.5},"layers":[]}`],
    ['an index', `{"schemaVersion":2,"config":${JSON.stringify(config)},"layers":[],"manifests":[]}`],
    ['a non-string annotation', `{"schemaVersion":2,"config":${JSON.stringify(config)},"layers":[],"annotations":{"a":1}}`],
    ['not JSON', '{'],
  ])('refuses %s (E_MANIFEST)', (_name, text) => {
    expect(codeOf(() => parseImageManifest(Buffer.from(text)))).toBe('E_MANIFEST');
  });

  it('reads an index', () => {
    const index = parseImageIndex(Buffer.from(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[${JSON.stringify({ ...config, artifactType: 'x/y' })}]}`));
    expect(index.manifests[0]!.artifactType).toBe('x/y');
  });
});

describe('ModelPack layer types', () => {
  it.each([
    ['model.safetensors', MODEL_WEIGHT],
    ['model.pkl', MODEL_WEIGHT],
    ['onnx/model.onnx', MODEL_WEIGHT],
    ['config.json', MODEL_WEIGHT_CONFIG],
    ['tokenizer/vocab.txt', MODEL_WEIGHT_CONFIG],
    ['README.md', MODEL_DOC],
    ['LICENSE', MODEL_DOC],
    ['notes.txt', MODEL_DOC],
    ['train.py', MODEL_CODE],
    ['data/flowers.csv', MODEL_DATASET],
  ])('%s is %s', (path, type) => {
    expect(modelLayerType(path)).toBe(type);
  });
});
