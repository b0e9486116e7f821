import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { generateSigningKey } from '../../src/crypto/keyfiles.js';
import { readRunManifest, readStepManifest, runManifest, runTag, stepManifest, stepRunTag, stepTagPart } from '../../src/engine/run-layout.js';
import { readRunRecord, recordFromJson, runStatement, signRunRecord, type RunRecord } from '../../src/engine/run-record.js';
import { checkRunId } from '../../src/engine/step-command.js';
import type { JsonValue } from '../../src/canonical/json.js';
import { serializeImageManifest } from '../../src/oci/manifest.js';
import { codeOf } from '../helpers/errors.js';

/**
 * How a run lives in the store (run-layout.ts) and the owner's run record (run-record.ts):
 * tags within the OCI grammar whatever the step name, manifests read strictly, the record's
 * signature and run id checked, unknown fields refused.
 */

const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const D = (c: string): string => `sha256:${c.repeat(64)}`;

describe('tags', () => {
  it('a run and its step runs have tags within the OCI tag grammar, whatever the step name (property)', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$/), fc.string({ minLength: 1, maxLength: 255 }), fc.stringMatching(/^[0-9a-f]{64}$/), (runId, step, keyid) => {
        checkRunId(runId);
        expect(runTag(runId)).toMatch(TAG);
        expect(stepRunTag(runId, step, keyid)).toMatch(TAG);
      }),
    );
  });

  it.each([
    ['train', 'train'],
    ['evaluate-2', 'evaluate-2'],
    ['a.b', '_'],
    ['_x', '_'],
    ['model sign', '_'],
    ['x'.repeat(33), '_'],
    ['ünïcode', '_'],
  ])('step %j appears as %j...', (name, prefix) => {
    const part = stepTagPart(name);
    expect(part.startsWith(prefix)).toBe(true);
    if (prefix === '_') expect(part).toMatch(/^_[0-9a-f]{32}$/);
  });

  it('two steps never share a tag part: a hashed part starts with _, which no literal name does', () => {
    expect(stepTagPart('a.b')).not.toBe(stepTagPart('a_b'));
    expect(stepTagPart(stepTagPart('a.b'))).not.toBe(stepTagPart('a.b'));
  });
});

describe('manifests', () => {
  const record = { mediaType: '', digest: D('a'), size: 10 };
  const layout = { mediaType: '', digest: D('b'), size: 20 };
  const inputs = [{ name: 'data/x.csv', digest: D('c'), size: 3 }];

  it('a run manifest reads back as written', () => {
    const read = readRunManifest(runManifest({ runId: 'r', record, layout, inputs }), 'run');
    expect(read.record.digest).toBe(D('a'));
    expect(read.layout.digest).toBe(D('b'));
    expect([...read.inputs].map(([n, d]) => [n, d.digest, d.size])).toEqual([['data/x.csv', D('c'), 3]]);
  });

  it('a step manifest reads back as written', () => {
    const read = readStepManifest(stepManifest({ runId: 'r', step: 's', functionary: 'f', keyid: 'k', link: record, products: inputs }), 'step');
    expect(read.link.digest).toBe(D('a'));
    expect([...read.products.keys()]).toEqual(['data/x.csv']);
  });

  const base = JSON.parse(Buffer.from(stepManifest({ runId: 'r', step: 's', functionary: 'f', keyid: 'k', link: record, products: inputs })).toString()) as Record<string, unknown>;
  const layer = (base['layers'] as Record<string, unknown>[])[0]!;
  it.each([
    ['another artifactType', { ...base, artifactType: 'application/vnd.cncf.model.manifest.v1+json' }],
    ['a config that is not a link', { ...base, config: { ...(base['config'] as object), mediaType: 'application/octet-stream' } }],
    ['a layer without an artifact name', { ...base, layers: [{ ...layer, annotations: {} }] }],
    ['an artifact name that climbs out', { ...base, layers: [{ ...layer, annotations: { 'dev.intoto-ts.artifact': '../x' } }] }],
    ['one artifact twice', { ...base, layers: [layer, layer] }],
    ['a layer of another media type', { ...base, layers: [{ ...layer, mediaType: 'application/vnd.oci.image.layer.v1.tar' }] }],
  ])('a step manifest with %s is refused (E_STORE)', (_, manifest) => {
    expect(codeOf(() => readStepManifest(Buffer.from(JSON.stringify(manifest)), 'step'))).toBe('E_STORE');
  });

  it('a run manifest whose first layer is not the layout is refused (E_STORE)', () => {
    const bytes = serializeImageManifest({ artifactType: 'application/vnd.intoto-ts.pipeline.run.v1+json', config: { mediaType: 'application/vnd.dsse.envelope.v1+json', digest: D('a'), size: 1 }, layers: [] });
    expect(codeOf(() => readRunManifest(bytes, 'run'))).toBe('E_STORE');
  });

  it('products that do not fit in a 4 MiB manifest are refused before anything is pushed (E_LIMIT)', () => {
    const many = Array.from({ length: 20_000 }, (_, i) => ({ name: `data/${'x'.repeat(200)}-${i}`, digest: D('c'), size: 1 }));
    expect(codeOf(() => stepManifest({ runId: 'r', step: 's', functionary: 'f', keyid: 'k', link: record, products: many }))).toBe('E_LIMIT');
  });
});

describe('the run record', () => {
  const owner = generateSigningKey({ type: 'ed25519' });
  const other = generateSigningKey({ type: 'ed25519' });
  const record: RunRecord = { runId: 'run-1', layoutSha256: 'a'.repeat(64), inputs: new Map([['data/x.csv', 'b'.repeat(64)]]), params: new Map([['SEED', '7']]), publishedOn: '2026-12-06T12:00:00Z' };

  it('reads back as signed, with the owner\'s key', () => {
    const read = readRunRecord(Buffer.from(signRunRecord(record, [owner])), [owner.public], 'run-1', 'record');
    expect(read).toEqual(record);
  });

  it('is refused when a given owner key did not sign it (E_SIGNATURE), and when it is another run\'s (E_RUN_MISMATCH)', () => {
    const signed = Buffer.from(signRunRecord(record, [owner]));
    expect(codeOf(() => readRunRecord(signed, [other.public], 'run-1', 'record'))).toBe('E_SIGNATURE');
    expect(codeOf(() => readRunRecord(signed, [owner.public, other.public], 'run-1', 'record'))).toBe('E_SIGNATURE');
    expect(codeOf(() => readRunRecord(signed, [owner.public], 'run-2', 'record'))).toBe('E_RUN_MISMATCH');
  });

  const statement = runStatement(record) as { predicate: Record<string, JsonValue>; subject: JsonValue[] } & Record<string, JsonValue>;
  it.each<[string, JsonValue]>([
    ['an unknown top-level field', { ...statement, extra: 1 }],
    ['another predicate type', { ...statement, predicateType: 'https://slsa.dev/provenance/v1' }],
    ['two subjects', { ...statement, subject: [...statement.subject, ...statement.subject] }],
    ['an unknown predicate field', { ...statement, predicate: { ...statement.predicate, extra: 'x' } }],
    ['an upper-case digest', { ...statement, subject: [{ name: 'root.layout', digest: { sha256: 'A'.repeat(64) } }] }],
    ['a digest of another algorithm', { ...statement, subject: [{ name: 'root.layout', digest: { sha512: 'a'.repeat(128) } }] }],
    ['an input listed twice', { ...statement, predicate: { ...statement.predicate, inputs: [...(statement.predicate['inputs'] as JsonValue[]), ...(statement.predicate['inputs'] as JsonValue[])] } }],
    ['an input name that climbs out', { ...statement, predicate: { ...statement.predicate, inputs: [{ name: '../etc/passwd', digest: { sha256: 'b'.repeat(64) } }] } }],
    ['a parameter that is not a string', { ...statement, predicate: { ...statement.predicate, params: { SEED: 7 } } }],
    ['a run id that is not a string', { ...statement, predicate: { ...statement.predicate, runId: 1 } }],
  ])('with %s is refused (E_SCHEMA)', (_, value) => {
    expect(codeOf(() => recordFromJson(value, 'record'))).toBe('E_SCHEMA');
  });
});
