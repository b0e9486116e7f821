import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { publicKeyToObject, makePublicKey } from '../../src/crypto/keys.js';
import { UsageError } from '../../src/errors.js';
import { linkFileName } from '../../src/model/link.js';
import { arts, key, layoutJson, linkJson, standardChain, trainEvaluate, verify, workDir, writeLink, writeSigned } from './chain.js';

/**
 * The verifier against the attack families of THREATS.md, one test per attack, each asserting
 * the failure code (never message text). Every chain starts as a valid one (the first test
 * shows it passes), so each test fails only because of its one change.
 */

describe('the valid chain', () => {
  it('passes, with who signed each step and what each rule consumed', async () => {
    const { layoutPath, linkDir } = standardChain();
    const report = await verify({ layoutPath, linkDir });
    expect(report.failure).toBeUndefined();
    expect(report.passed).toBe(true);
    expect(report.layout.signedBy).toEqual([key(0).keyid]);
    expect(report.layout.steps.map((s) => [s.name, s.signedBy])).toEqual([
      ['train', [key(1).keyid]],
      ['evaluate', [key(2).keyid]],
    ]);
    const evaluate = report.layout.steps[1];
    expect(evaluate?.materials[0]).toMatchObject({ rule: 'MATCH model.pkl WITH PRODUCTS FROM train', consumed: ['model.pkl'] });
    expect(report.timing.checks.map((c) => c.check)).toContain('step-rules');
  });
});

describe('layout tampering', () => {
  it('a byte of signed changed after signing: E_LAYOUT_SIG', async () => {
    const { layoutPath, linkDir } = standardChain();
    writeFileSync(layoutPath, readFileSync(layoutPath, 'utf8').replace('test layout', 'test layouT'));
    expect((await verify({ layoutPath, linkDir })).failure?.code).toBe('E_LAYOUT_SIG');
  });

  it('an extra field added inside signed: E_LAYOUT_SIG', async () => {
    const { layoutPath, linkDir } = standardChain();
    writeFileSync(layoutPath, readFileSync(layoutPath, 'utf8').replace('"readme":', '"extra": 1,\n  "readme":'));
    expect((await verify({ layoutPath, linkDir })).failure?.code).toBe('E_LAYOUT_SIG');
  });

  it('a link signed by the owner passed as the layout: E_METADATA_TYPE', async () => {
    const { dir, linkDir } = standardChain();
    const fake = join(dir, 'fake.layout');
    writeSigned(fake, linkJson('train', {}, {}), [key(0)]);
    expect((await verify({ layoutPath: fake, linkDir })).failure?.code).toBe('E_METADATA_TYPE');
  });

  it('a link file (signed by a functionary) passed as the layout: E_LAYOUT_SIG', async () => {
    const { linkDir } = standardChain();
    const layoutPath = join(linkDir, linkFileName('train', key(1).keyid));
    expect((await verify({ layoutPath, linkDir })).failure?.code).toBe('E_LAYOUT_SIG');
  });

  it('expires in the past, or exactly now: E_LAYOUT_EXPIRED', async () => {
    const { dir, linkDir } = standardChain();
    const layoutPath = join(dir, 'expired.layout');
    writeSigned(layoutPath, layoutJson(trainEvaluate().steps, [], '2029-12-31T23:59:59Z'), [key(0)]);
    expect((await verify({ layoutPath, linkDir })).failure?.code).toBe('E_LAYOUT_EXPIRED');
    expect((await verify({ layoutPath, linkDir, now: new Date('2029-12-31T23:59:59Z') })).failure?.code).toBe('E_LAYOUT_EXPIRED');
    expect((await verify({ layoutPath, linkDir, now: new Date('2029-12-31T23:59:58Z') })).passed).toBe(true);
  });

  it('expires not in the exact form: E_EXPIRES_FORMAT', async () => {
    const { dir, linkDir } = standardChain();
    const layoutPath = join(dir, 'format.layout');
    writeSigned(layoutPath, layoutJson(trainEvaluate().steps, [], '2099-01-01T00:00:00+00:00'), [key(0)]);
    expect((await verify({ layoutPath, linkDir })).failure?.code).toBe('E_EXPIRES_FORMAT');
  });

  it.each([
    [0, 'E_SCHEMA'],
    [-1, 'E_SCHEMA'],
    [2, 'E_THRESHOLD'],
  ])('step threshold %s: %s', async (threshold, code) => {
    const { dir, linkDir } = standardChain();
    const layout = layoutJson(trainEvaluate().steps) as Record<string, any>;
    layout['steps'][0].threshold = threshold;
    const layoutPath = join(dir, `threshold${threshold}.layout`);
    writeSigned(layoutPath, layout, [key(0)]);
    expect((await verify({ layoutPath, linkDir })).failure?.code).toBe(code);
  });

  it('a threshold that is not an integer (1.5): E_JSON_NUMBER, before anything else is read', async () => {
    const { dir, linkDir, layoutPath } = standardChain();
    const bad = join(dir, 'fraction.layout');
    writeFileSync(bad, readFileSync(layoutPath, 'utf8').replace('"threshold": 1', '"threshold": 1.5'));
    expect((await verify({ layoutPath: bad, linkDir })).failure?.code).toBe('E_JSON_NUMBER');
  });

  it('a step authorising a key that is not in keys: E_LAYOUT_KEYS', async () => {
    const { dir, linkDir } = standardChain();
    const layout = layoutJson(trainEvaluate().steps) as Record<string, any>;
    delete layout['keys'][key(2).keyid];
    const layoutPath = join(dir, 'unknown-key.layout');
    writeSigned(layoutPath, layout, [key(0)]);
    expect((await verify({ layoutPath, linkDir })).failure?.code).toBe('E_LAYOUT_KEYS');
  });

  it('the same public key under two keyids (threshold 2 met by one key): E_LAYOUT_KEYS', async () => {
    const { dir, linkDir } = standardChain();
    const alice = key(1);
    // The same key material without keyid_hash_algorithms hashes to another keyid.
    const twin = makePublicKey({ ...alice.public, keyidHashAlgorithms: undefined }, 'twin');
    expect(twin.keyid).not.toBe(alice.keyid);
    const layout = layoutJson(trainEvaluate().steps) as Record<string, any>;
    layout['keys'][twin.keyid] = publicKeyToObject(twin);
    layout['steps'][0].pubkeys = [alice.keyid, twin.keyid];
    layout['steps'][0].threshold = 2;
    const layoutPath = join(dir, 'twin.layout');
    writeSigned(layoutPath, layout, [key(0)]);
    expect((await verify({ layoutPath, linkDir })).failure?.code).toBe('E_LAYOUT_KEYS');
  });

  it('a MATCH naming a step that does not exist: E_RULE_UNKNOWN_STEP', async () => {
    const { dir, linkDir } = standardChain();
    const layout = layoutJson(trainEvaluate().steps) as Record<string, any>;
    layout['steps'][1].expected_materials = [['MATCH', '*', 'WITH', 'PRODUCTS', 'FROM', 'nowhere']];
    const layoutPath = join(dir, 'match.layout');
    writeSigned(layoutPath, layout, [key(0)]);
    expect((await verify({ layoutPath, linkDir })).failure?.code).toBe('E_RULE_UNKNOWN_STEP');
  });

  it('owner threshold: every key passed must sign unless --layout-threshold; a key passed twice counts once', async () => {
    const { layoutPath, linkDir } = standardChain();
    const other = key(5).public;
    expect((await verify({ layoutPath, linkDir, layoutKeys: [key(0).public, other] })).failure?.code).toBe('E_LAYOUT_SIG');
    expect((await verify({ layoutPath, linkDir, layoutKeys: [key(0).public, other], layoutThreshold: 1 })).passed).toBe(true);
    expect((await verify({ layoutPath, linkDir, layoutKeys: [key(0).public, other], layoutThreshold: 2 })).failure?.code).toBe('E_LAYOUT_SIG');
    // One key given twice is one key: a threshold of 2 cannot be met by it.
    await expect(verify({ layoutPath, linkDir, layoutKeys: [key(0).public, key(0).public], layoutThreshold: 2 })).rejects.toBeInstanceOf(UsageError);
    const twin = makePublicKey({ ...key(0).public, keyidHashAlgorithms: undefined }, 'twin');
    await expect(verify({ layoutPath, linkDir, layoutKeys: [key(0).public, twin], layoutThreshold: 2 })).rejects.toBeInstanceOf(UsageError);
    await expect(verify({ layoutPath, linkDir, layoutKeys: [] })).rejects.toBeInstanceOf(UsageError);
  });
});

describe('link tampering', () => {
  it('a product hash changed after signing: the link does not count (E_THRESHOLD)', async () => {
    const { layoutPath, linkDir } = standardChain();
    const file = join(linkDir, linkFileName('train', key(1).keyid));
    writeFileSync(file, readFileSync(file, 'utf8').replace(/"sha256": "[0-9a-f]/, (m) => `${m.slice(0, -1)}${m.endsWith('0') ? '1' : '0'}`));
    const report = await verify({ layoutPath, linkDir });
    expect(report.failure?.code).toBe('E_THRESHOLD');
    expect(report.failure?.context.step).toBe('train');
  });

  it('a link signed by a key not authorised for the step: E_THRESHOLD', async () => {
    const { layoutPath, linkDir } = standardChain();
    // bob signs a train link and places it in alice's slot
    writeLink(linkDir, trainEvaluate().links.train, key(2), { step: 'train' });
    copyFileSync(join(linkDir, linkFileName('train', key(2).keyid)), join(linkDir, linkFileName('train', key(1).keyid)));
    expect((await verify({ layoutPath, linkDir })).failure?.code).toBe('E_THRESHOLD');
  });

  it("a link copied into another step's slot by a functionary authorised for both: E_LINK_NAME_MISMATCH", async () => {
    const { dir, linkDir } = workDir();
    const alice = key(1);
    const steps = [
      { name: 'train', keys: [alice], products: [['ALLOW', '*']] },
      { name: 'evaluate', keys: [alice], materials: [['ALLOW', '*']] },
    ];
    const layoutPath = join(dir, 'root.layout');
    writeSigned(layoutPath, layoutJson(steps), [key(0)]);
    writeLink(linkDir, linkJson('train', {}, arts({ 'model.pkl': 'm' })), alice);
    // The train link, signed by alice, saved as evaluate's link
    writeLink(linkDir, linkJson('train', {}, arts({ 'model.pkl': 'm' })), alice, { step: 'evaluate' });
    const report = await verify({ layoutPath, linkDir });
    expect(report.failure?.code).toBe('E_LINK_NAME_MISMATCH');
    expect(report.failure?.context.step).toBe('evaluate');
  });

  it('two links from the same key presented as two functionaries: counted once (E_THRESHOLD)', async () => {
    const { dir, linkDir } = workDir();
    const [alice, carol] = [key(1), key(3)];
    const layoutPath = join(dir, 'root.layout');
    writeSigned(layoutPath, layoutJson([{ name: 'train', keys: [alice, carol], threshold: 2, products: [['ALLOW', '*']] }]), [key(0)]);
    const path = writeLink(linkDir, linkJson('train', {}, arts({ m: 'm' })), alice);
    copyFileSync(path, join(linkDir, linkFileName('train', carol.keyid)));
    const report = await verify({ layoutPath, linkDir });
    expect(report.failure?.code).toBe('E_THRESHOLD');
    expect(report.layout.steps[0]?.signedBy).toEqual([alice.keyid]);
  });

  it('threshold links that disagree on products: E_LINKS_DISAGREE naming the artifact and both digests', async () => {
    const { dir, linkDir } = workDir();
    const [alice, carol] = [key(1), key(3)];
    const layoutPath = join(dir, 'root.layout');
    writeSigned(layoutPath, layoutJson([{ name: 'train', keys: [alice, carol], threshold: 2, products: [['ALLOW', '*']] }]), [key(0)]);
    writeLink(linkDir, linkJson('train', {}, arts({ 'model.pkl': 'good' })), alice);
    writeLink(linkDir, linkJson('train', {}, arts({ 'model.pkl': 'evil' })), carol);
    const report = await verify({ layoutPath, linkDir });
    expect(report.failure?.code).toBe('E_LINKS_DISAGREE');
    expect(report.failure?.context.artifact).toBe('model.pkl');
    expect(report.failure?.message).toContain((arts({ x: 'good' })['x'] as Record<string, string>)['sha256']);
    expect(report.failure?.message).toContain((arts({ x: 'evil' })['x'] as Record<string, string>)['sha256']);
  });

  it('threshold 2 met by two distinct functionaries who agree: passes', async () => {
    const { dir, linkDir } = workDir();
    const [alice, carol] = [key(1), key(3)];
    const layoutPath = join(dir, 'root.layout');
    writeSigned(layoutPath, layoutJson([{ name: 'train', keys: [alice, carol], threshold: 2, products: [['ALLOW', '*']] }]), [key(0)]);
    writeLink(linkDir, linkJson('train', {}, arts({ 'model.pkl': 'good' })), alice);
    writeLink(linkDir, linkJson('train', {}, arts({ 'model.pkl': 'good' })), carol, { envelope: 'dsse' });
    const report = await verify({ layoutPath, linkDir });
    expect(report.failure).toBeUndefined();
    expect(report.layout.steps[0]?.signedBy).toEqual([alice.keyid, carol.keyid]);
  });

  it('no link file at all: E_LINK_MISSING', async () => {
    const { dir, linkDir } = workDir();
    const layoutPath = join(dir, 'root.layout');
    writeSigned(layoutPath, layoutJson(trainEvaluate().steps), [key(0)]);
    expect((await verify({ layoutPath, linkDir })).failure?.code).toBe('E_LINK_MISSING');
  });

  it('a non-zero recorded return-value and an unexpected command: warnings, not failures', async () => {
    const { dir, linkDir } = workDir();
    const layoutPath = join(dir, 'root.layout');
    writeSigned(layoutPath, layoutJson([{ name: 'train', keys: [key(1)], products: [['ALLOW', '*']] }]), [key(0)]);
    writeLink(linkDir, linkJson('train', {}, {}, { byproducts: { 'return-value': 3 }, command: ['rm', '-rf', 'x'] }), key(1));
    const report = await verify({ layoutPath, linkDir });
    expect(report.passed).toBe(true);
    expect(report.warnings.some((w) => w.includes('exited with 3'))).toBe(true);
    expect(report.warnings.some((w) => w.includes('"rm"'))).toBe(true);
  });
});

describe('keys and signatures', () => {
  it('a Metablock signature presented as a DSSE signature over the same JSON: not counted', async () => {
    const { layoutPath, linkDir } = standardChain();
    const file = join(linkDir, linkFileName('train', key(1).keyid));
    const metablock = JSON.parse(readFileSync(file, 'utf8')) as { signatures: { keyid: string; sig: string }[]; signed: unknown };
    const payload = Buffer.from(JSON.stringify(metablock.signed)).toString('base64');
    const sig = Buffer.from(metablock.signatures[0]!.sig, 'hex').toString('base64');
    writeFileSync(file, JSON.stringify({ payload, payloadType: 'application/vnd.in-toto+json', signatures: [{ keyid: key(1).keyid, sig }] }));
    expect((await verify({ layoutPath, linkDir })).failure?.code).toBe('E_THRESHOLD');
  });

  it('links in DSSE envelopes verify', async () => {
    const { dir, linkDir } = workDir();
    const { steps, links } = trainEvaluate();
    const layoutPath = join(dir, 'root.layout');
    writeSigned(layoutPath, layoutJson(steps), [key(0)], 'dsse');
    writeLink(linkDir, links.train, key(1), { envelope: 'dsse' });
    writeLink(linkDir, links.evaluate, key(2), { envelope: 'dsse' });
    expect((await verify({ layoutPath, linkDir })).failure).toBeUndefined();
  });
});

describe('artifact rules end to end', () => {
  it('a model swapped between train and evaluate: E_RULE_DISALLOW naming step, rule, artifact and both digests', async () => {
    const { layoutPath, linkDir } = standardChain();
    writeLink(linkDir, linkJson('evaluate', arts({ 'model.pkl': 'evil model' }), arts({ 'report.txt': 'ok' })), key(2));
    const report = await verify({ layoutPath, linkDir });
    const failure = report.failure;
    expect(failure?.code).toBe('E_RULE_DISALLOW');
    expect(failure?.context).toMatchObject({ step: 'evaluate', rule: 'DISALLOW *', artifact: 'model.pkl' });
    expect(failure?.message).toContain((arts({ m: 'evil model' })['m'] as Record<string, string>)['sha256']);
    expect(failure?.message).toContain((arts({ m: 'model' })['m'] as Record<string, string>)['sha256']);
  });

  it('a disallowed name spelled sub/../evil.sh is refused at load: E_ARTIFACT_NAME', async () => {
    const { layoutPath, linkDir } = standardChain();
    writeLink(linkDir, linkJson('train', arts({ 'data.csv': 'data' }), arts({ 'model.pkl': 'model', 'sub/../evil.sh': 'x' })), key(1));
    expect((await verify({ layoutPath, linkDir })).failure?.code).toBe('E_ARTIFACT_NAME');
  });

  it('an artifact named __proto__ is plain data', async () => {
    const { layoutPath, linkDir } = standardChain();
    writeLink(linkDir, linkJson('train', arts({ 'data.csv': 'data' }), arts({ 'model.pkl': 'model', ['__proto__']: 'x' })), key(1));
    const report = await verify({ layoutPath, linkDir });
    expect(report.failure?.code).toBe('E_RULE_DISALLOW');
    expect(report.failure?.context.artifact).toBe('__proto__');
  });
});
