import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { linkFileName } from '../../src/model/link.js';
import { arts, key, layoutJson, linkJson, standardChain, trainEvaluate, verify, workDir, writeLink, writeSigned, type StepSpec } from './chain.js';

/**
 * Issue 18, "Stricter where the reference is unsafe": each class the reference lets through
 * (in-toto 1.3.1 passes every chain below, or never reads the field at all), one attack per
 * test, each asserting the failure code. Each chain is the valid standard chain with one
 * change; the first test of each group shows the honest counterpart still passing.
 */

/** The standard chain with `change` applied to the train link before it is signed. */
async function withTrainLink(change: (link: Record<string, unknown>) => void): Promise<string | undefined> {
  const { dir, linkDir } = workDir();
  const { steps, links } = trainEvaluate();
  const layoutPath = join(dir, 'root.layout');
  writeSigned(layoutPath, layoutJson(steps), [key(0)]);
  const train = { ...links.train } as Record<string, unknown>;
  change(train);
  writeLink(linkDir, train as never, key(1));
  writeLink(linkDir, links.evaluate, key(2));
  return (await verify({ layoutPath, linkDir })).failure?.code;
}

/** The standard chain whose layout has these steps (and inspections). */
async function withLayout(steps: StepSpec[], inspections: Parameters<typeof layoutJson>[1] = []): Promise<string | undefined> {
  const { dir, linkDir } = workDir();
  const { links } = trainEvaluate();
  const layoutPath = join(dir, 'root.layout');
  writeSigned(layoutPath, layoutJson(steps, inspections), [key(0)]);
  writeLink(linkDir, links.train, key(1));
  writeLink(linkDir, links.evaluate, key(2));
  return (await verify({ layoutPath, linkDir, finalProducts: [], cwd: dir })).failure?.code;
}

function evaluateWith(materials: string[][]): StepSpec[] {
  const { steps } = trainEvaluate();
  return [steps[0]!, { ...steps[1]!, materials }];
}

describe('malformed glob patterns are a load error, not a literal match', () => {
  it('honest classes and wildcards still load and match', async () => {
    expect(await withLayout(evaluateWith([['MATCH', 'model.[ps]k[!x]', 'WITH', 'PRODUCTS', 'FROM', 'train'], ['DISALLOW', '*']]))).toBeUndefined();
  });

  it.each([
    ['an unclosed [ (the reference matches it literally)', 'model[.pkl'],
    ['an empty class [] (unclosed: a ] right after [ is a member)', 'model[].pkl'],
    ['[!] (unclosed)', 'model[!].pkl'],
    ['a class starting with ^, a negation to a shell and a literal ^ to fnmatch', 'model[^x].pkl'],
    ['a trailing backslash', 'model.pkl\\'],
    ['a backslash escape (no escapes in fnmatch)', 'model\\.pkl'],
    ['a POSIX class [[:alpha:]], single characters to fnmatch', 'model.[[:alpha:]]kl'],
    ['a reversed range z-a, dropped silently by fnmatch', 'model.[z-a]kl'],
  ])('attack: DISALLOW with %s: E_RULE_SYNTAX', async (_, pattern) => {
    expect(await withLayout(evaluateWith([['MATCH', 'model.pkl', 'WITH', 'PRODUCTS', 'FROM', 'train'], ['DISALLOW', pattern], ['DISALLOW', '*']]))).toBe('E_RULE_SYNTAX');
  });
});

describe('artifact names that alias each other or fool a reader: E_ARTIFACT_ALIAS', () => {
  it('honest: a step that renames README to readme (one in materials, one in products) still passes', async () => {
    const { dir, linkDir } = workDir();
    const layoutPath = join(dir, 'root.layout');
    writeSigned(layoutPath, layoutJson([{ name: 'train', keys: [key(1)], materials: [['ALLOW', '*']], products: [['ALLOW', '*']] }]), [key(0)]);
    writeLink(linkDir, linkJson('train', arts({ README: 'a' }), arts({ readme: 'a' })), key(1));
    expect((await verify({ layoutPath, linkDir })).failure).toBeUndefined();
  });

  it('attack: model.pkl and Model.pkl in one link\'s products (one file on macOS or Windows, two digests)', async () => {
    expect(await withTrainLink((l) => (l['products'] = arts({ 'model.pkl': 'model', 'Model.pkl': 'evil' })))).toBe('E_ARTIFACT_ALIAS');
  });

  it('attack: names equal only under full case folding (straße.csv and STRASSE.csv, the long s ſ and s)', async () => {
    expect(await withTrainLink((l) => (l['materials'] = arts({ 'data.csv': 'data', 'straße.csv': 'a', 'STRASSE.csv': 'b' })))).toBe('E_ARTIFACT_ALIAS');
    expect(await withTrainLink((l) => (l['materials'] = arts({ 'data.csv': 'data', 'ſ.csv': 'a', 's.csv': 'b' })))).toBe('E_ARTIFACT_ALIAS');
  });

  it('attack: a right-to-left override that shows evil\u202Elkp.exe as a .pkl', async () => {
    expect(await withTrainLink((l) => (l['products'] = arts({ 'model.pkl': 'model', 'evil\u202elkp.exe': 'x' })))).toBe('E_ARTIFACT_ALIAS');
  });

  it('attack: a zero-width space making a second model.pkl', async () => {
    expect(await withTrainLink((l) => (l['products'] = arts({ 'model.pkl': 'model', 'model.pkl\u200b': 'x' })))).toBe('E_ARTIFACT_ALIAS');
  });

  it('attack: a backslash separator (sub\\evil.sh is sub/evil.sh to Windows and to the reference\'s recorder)', async () => {
    expect(await withTrainLink((l) => (l['products'] = arts({ 'model.pkl': 'model', 'sub\\evil.sh': 'x' })))).toBe('E_ARTIFACT_ALIAS');
  });
});

describe('a step rule that matches against an inspection is a load error', () => {
  const untar = { name: 'untar', run: ['true'], materials: [['DISALLOW', 'nothing']] };

  it('honest: an inspection matching another inspection, or a step, still loads', async () => {
    const inspections = [untar, { name: 'check', run: ['true'], materials: [['MATCH', '*', 'WITH', 'MATERIALS', 'FROM', 'untar'], ['MATCH', '*', 'WITH', 'PRODUCTS', 'FROM', 'train']] }];
    expect(await withLayout(trainEvaluate().steps, inspections)).toBeUndefined();
  });

  it('attack: MATCH model.pkl WITH PRODUCTS FROM untar in a step, which could never match and would fall through: E_RULE_UNKNOWN_STEP', async () => {
    expect(await withLayout(evaluateWith([['MATCH', 'model.pkl', 'WITH', 'PRODUCTS', 'FROM', 'untar'], ['ALLOW', '*']]), [untar])).toBe('E_RULE_UNKNOWN_STEP');
  });
});

describe('step names starting with . and sublayouts with no steps are refused', () => {
  it('attack: a step named .train (a hidden file; record start keeps .<step>.<keyid>.link-unfinished): E_STEP_NAME', async () => {
    const { steps } = trainEvaluate();
    expect(await withLayout([{ ...steps[0]!, name: '.train' }, steps[1]!])).toBe('E_STEP_NAME');
  });

  it('attack: an inspection named with a zero-width space: E_STEP_NAME', async () => {
    expect(await withLayout(trainEvaluate().steps, [{ name: 'untar\u200b', run: ['true'] }])).toBe('E_STEP_NAME');
  });

  function delegated(sub: Record<string, unknown>): { layoutPath: string; linkDir: string } {
    const { dir, linkDir } = workDir();
    const alice = key(1);
    const layoutPath = join(dir, 'root.layout');
    writeSigned(layoutPath, layoutJson([{ name: 'build', keys: [alice], products: [['ALLOW', '*']] }]), [key(0)]);
    writeSigned(join(linkDir, linkFileName('build', alice.keyid)), sub as never, [alice]);
    return { layoutPath, linkDir };
  }

  it('attack: a sublayout with no steps standing in for a step\'s link (it vouches for nothing): E_SUBLAYOUT_EMPTY', async () => {
    const { layoutPath, linkDir } = delegated(layoutJson([]) as Record<string, unknown>);
    const report = await verify({ layoutPath, linkDir });
    expect(report.failure?.code).toBe('E_SUBLAYOUT_EMPTY');
    expect(report.failure?.context.step).toBe('build');
  });

  it('attack: a sublayout whose step is named .x: E_SUBLAYOUT_NAME', async () => {
    const { layoutPath, linkDir } = delegated(layoutJson([{ name: '.x', keys: [key(2)] }]) as Record<string, unknown>);
    expect((await verify({ layoutPath, linkDir })).failure?.code).toBe('E_SUBLAYOUT_NAME');
  });
});

describe('numbers in a non-canonical form are refused, not normalised', () => {
  it('attack: "return-value": -0 in a signed link (the reference reads 0 and checks the signature over "0"): E_JSON_NUMBER', async () => {
    const { layoutPath, linkDir } = standardChain();
    const file = join(linkDir, linkFileName('train', key(1).keyid));
    const text = readFileSync(file, 'utf8');
    expect(text).toContain('"return-value": 0');
    writeFileSync(file, text.replace('"return-value": 0', '"return-value": -0'));
    expect((await verify({ layoutPath, linkDir })).failure?.code).toBe('E_JSON_NUMBER');
  });

  it('attack: -0 in a DSSE payload: E_JSON_NUMBER', async () => {
    const { dir, linkDir } = workDir();
    const { steps, links } = trainEvaluate();
    const layoutPath = join(dir, 'root.layout');
    writeSigned(layoutPath, layoutJson(steps), [key(0)]);
    // The payload's bytes are signed as they are: sign a payload that spells -0.
    const { dsseText } = await import('../../src/model/envelope.js');
    const text = dsseText(links.train, [key(1)]);
    const envelope = JSON.parse(text) as { payload: string; payloadType: string; signatures: unknown };
    const payload = Buffer.from(envelope.payload, 'base64').toString('utf8').replace('"return-value":0', '"return-value":-0');
    expect(payload).toContain('-0');
    const { pae, DSSE_PAYLOAD_TYPE } = await import('../../src/model/envelope.js');
    const sig = key(1).sign(pae(DSSE_PAYLOAD_TYPE, new Uint8Array(Buffer.from(payload, 'utf8'))));
    const forged = { payload: Buffer.from(payload, 'utf8').toString('base64'), payloadType: DSSE_PAYLOAD_TYPE, signatures: [{ keyid: key(1).keyid, sig: Buffer.from(sig).toString('base64') }] };
    writeFileSync(join(linkDir, linkFileName('train', key(1).keyid)), JSON.stringify(forged));
    writeLink(linkDir, links.evaluate, key(2));
    expect((await verify({ layoutPath, linkDir })).failure?.code).toBe('E_JSON_NUMBER');
  });
});

describe('unknown fields outside the signed part are ignored; inside it they stay errors', () => {
  function rewrite(file: string, change: (document: Record<string, any>) => void): void {
    const document = JSON.parse(readFileSync(file, 'utf8')) as Record<string, any>;
    change(document);
    writeFileSync(file, JSON.stringify(document, null, 1));
  }

  it('beside signed/signatures and in a signature object (in-toto-golang\'s "cert"): ignored, the chain passes', async () => {
    const { layoutPath, linkDir } = standardChain();
    rewrite(layoutPath, (d) => {
      d['comment'] = { anything: [1, 2] };
      d['signatures'][0]['cert'] = '';
    });
    rewrite(join(linkDir, linkFileName('train', key(1).keyid)), (d) => {
      d['signatures'][0]['cert'] = '-----BEGIN CERTIFICATE-----';
      d['x-note'] = 'unsigned';
    });
    expect((await verify({ layoutPath, linkDir })).failure).toBeUndefined();
  });

  it('beside payload/payloadType/signatures of a DSSE envelope, and in its signatures: ignored', async () => {
    const { dir, linkDir } = workDir();
    const { steps, links } = trainEvaluate();
    const layoutPath = join(dir, 'root.layout');
    writeSigned(layoutPath, layoutJson(steps), [key(0)], 'dsse');
    rewrite(layoutPath, (d) => {
      d['extra'] = true;
      d['signatures'][0]['cert'] = null;
    });
    writeLink(linkDir, links.train, key(1), { envelope: 'dsse' });
    writeLink(linkDir, links.evaluate, key(2));
    expect((await verify({ layoutPath, linkDir })).failure).toBeUndefined();
  });

  it('attack: an unknown field inside the signed link, signed with it: E_SCHEMA', async () => {
    expect(await withTrainLink((l) => (l['note'] = 'signed'))).toBe('E_SCHEMA');
  });

  it('attack: an unknown field inside the signed layout, signed with it: E_SCHEMA', async () => {
    const { dir, linkDir } = workDir();
    const { steps, links } = trainEvaluate();
    const layoutPath = join(dir, 'root.layout');
    writeSigned(layoutPath, { ...layoutJson(steps), unknown: 1 }, [key(0)]);
    writeLink(linkDir, links.train, key(1));
    writeLink(linkDir, links.evaluate, key(2));
    expect((await verify({ layoutPath, linkDir })).failure?.code).toBe('E_SCHEMA');
  });

  it('attack: a file with both "signed" and "payload" (which one is signed would depend on the reader): E_ENVELOPE', async () => {
    const { layoutPath, linkDir } = standardChain();
    rewrite(layoutPath, (d) => {
      d['payload'] = 'e30=';
      d['payloadType'] = 'application/vnd.in-toto+json';
    });
    expect((await verify({ layoutPath, linkDir })).failure?.code).toBe('E_ENVELOPE');
  });
});
