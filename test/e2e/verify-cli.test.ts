import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { publicKeyFileText } from '../../src/crypto/keyfiles.js';
import type { JsonObject, JsonValue } from '../../src/canonical/json.js';
import { linkFileName } from '../../src/model/link.js';
import { runBin } from '../helpers/bin.js';
import { bwrapAvailable } from '../helpers/reference.js';
import { arts, key, layoutJson, linkJson, sha, standardChain, trainEvaluate, workDir, writeLink, writeSigned } from '../verify/chain.js';

/**
 * intoto-verify through the built binary: exit statuses (0 pass, 1 fail, 2 usage), the one-line
 * failure, the JSON report, the -v trace, the sandboxed inspection, and large links.
 */

function ownerKeyFile(dir: string): string {
  const path = join(dir, 'owner.pub');
  writeFileSync(path, publicKeyFileText(key(0).public));
  return path;
}

describe('intoto-verify', () => {
  it('exit 0 and a PASS line for a valid chain', () => {
    const { dir, layoutPath, linkDir } = standardChain();
    const result = runBin('intoto-verify', ['-l', layoutPath, '-k', ownerKeyFile(dir), '--link-dir', linkDir], { cwd: dir });
    expect(result.stderr).not.toContain('FAIL');
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^PASS: /);
  });

  it('exit 1 with one FAIL line naming step, rule, artifact and both digests; -v adds the trace', () => {
    const { dir, layoutPath, linkDir } = standardChain();
    writeLink(linkDir, linkJson('evaluate', arts({ 'model.pkl': 'evil' }), arts({ 'report.txt': 'ok' })), key(2));
    const args = ['-l', layoutPath, '-k', ownerKeyFile(dir), '--link-dir', linkDir];
    const result = runBin('intoto-verify', args, { cwd: dir });
    expect(result.status).toBe(1);
    const fail = result.stderr.split('\n').filter((l) => l.startsWith('FAIL'));
    expect(fail).toHaveLength(1);
    expect(fail[0]).toMatch(/^FAIL E_RULE_DISALLOW: step 'evaluate'.*DISALLOW \*.*model\.pkl/);
    expect(fail[0]).toContain(sha('evil'));
    expect(fail[0]).toContain(sha('model'));
    const verbose = runBin('intoto-verify', [...args, '-v'], { cwd: dir });
    expect(verbose.status).toBe(1);
    expect(verbose.stderr).toContain("step 'train': threshold 1, links by");
    expect(verbose.stderr).toContain("products 'CREATE model.pkl': consumed 1: model.pkl");
  });

  it('--json prints the report: verdict, failure, who signed each step, what each rule consumed', () => {
    const { dir, layoutPath, linkDir } = standardChain();
    const pass = runBin('intoto-verify', ['-l', layoutPath, '-k', ownerKeyFile(dir), '--link-dir', linkDir, '--json'], { cwd: dir });
    expect(pass.status).toBe(0);
    const report = JSON.parse(pass.stdout) as Record<string, any>;
    expect(report['verdict']).toBe('passed');
    expect(report['layout'].steps[0]).toMatchObject({ name: 'train', threshold: 1, signedBy: [key(1).keyid] });
    expect(report['layout'].steps[0].products[0]).toEqual({ rule: 'CREATE model.pkl', consumed: ['model.pkl'], notes: [] });
    expect(typeof report['timing'].totalMs).toBe('number');

    const fail = runBin('intoto-verify', ['-l', layoutPath, '-k', ownerKeyFile(dir), '--link-dir', join(dir, 'nowhere'), '--json'], { cwd: dir });
    expect(fail.status).toBe(1);
    // A link directory that does not exist is said to be missing, not every link in it (issue 18.12).
    expect(JSON.parse(fail.stdout)).toMatchObject({ verdict: 'failed', passed: false, failure: { code: 'E_IO', message: `--link-dir ${join(dir, 'nowhere')}: no such directory` } });
    const noLink = runBin('intoto-verify', ['-l', layoutPath, '-k', ownerKeyFile(dir), '--link-dir', dir, '--json'], { cwd: dir });
    expect(JSON.parse(noLink.stdout)).toMatchObject({ verdict: 'failed', passed: false, failure: { code: 'E_LINK_MISSING' } });
  });

  it('exit 1 for unreadable or malformed files: a missing layout, a key file that is not a key', () => {
    const { dir, layoutPath, linkDir } = standardChain();
    expect(runBin('intoto-verify', ['-l', join(dir, 'missing.layout'), '-k', ownerKeyFile(dir), '--link-dir', linkDir]).status).toBe(1);
    writeFileSync(join(dir, 'bad.pub'), 'not a key');
    const bad = runBin('intoto-verify', ['-l', layoutPath, '-k', join(dir, 'bad.pub'), '--link-dir', linkDir, '--json']);
    expect(bad.status).toBe(1);
    expect(JSON.parse(bad.stdout).failure.code).toBe('E_KEY_FORMAT');
    // -t names another type than the file holds
    expect(runBin('intoto-verify', ['-l', layoutPath, '-k', ownerKeyFile(dir), '-t', 'rsa', '--link-dir', linkDir]).status).toBe(1);
  });

  it.each([
    [['-k', 'x.pub']], // no layout
    [['-l', 'root.layout']], // no key
    [['-l', 'root.layout', '-k', 'x.pub', '-g', 'ABCD']],
    [['-l', 'root.layout', '-k', 'x.pub', '-t', 'dsa']],
    [['-l', 'root.layout', '-k', 'x.pub', '--layout-threshold', '0']],
    [['-l', 'root.layout', '-k', 'x.pub', '--param', 'no-equals']],
    [['-l', 'root.layout', '-k', 'x.pub', '--sandbox', 'docker']],
    [['-l', 'root.layout', '-k', 'x.pub', '--inspection-timeout', '-3']],
    [['-l', 'root.layout', '-k', 'x.pub', '--frobnicate']],
  ])('exit 2 for bad usage: %j', (args) => {
    const result = runBin('intoto-verify', args);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('E_USAGE');
  });

  it('--layout-threshold above the distinct keys given is bad usage (exit 2)', () => {
    const { dir, layoutPath, linkDir } = standardChain();
    const owner = ownerKeyFile(dir);
    expect(runBin('intoto-verify', ['-l', layoutPath, '-k', owner, owner, '--layout-threshold', '2', '--link-dir', linkDir]).status).toBe(2);
  });

  it('--param values reach the rules', () => {
    const { dir, linkDir } = workDir();
    const { links } = trainEvaluate();
    const layoutPath = join(dir, 'root.layout');
    writeSigned(layoutPath, layoutJson([{ name: 'train', keys: [key(1)], products: [['CREATE', '{MODEL}'], ['DISALLOW', '*']] }]), [key(0)]);
    writeLink(linkDir, links.train, key(1));
    const base = ['-l', layoutPath, '-k', ownerKeyFile(dir), '--link-dir', linkDir];
    expect(runBin('intoto-verify', [...base, '--param', 'MODEL=model.pkl']).status).toBe(0);
    expect(runBin('intoto-verify', [...base, '--param', 'MODEL=other.pkl']).status).toBe(1);
    const missing = runBin('intoto-verify', [...base, '--json']);
    expect(JSON.parse(missing.stdout).failure.code).toBe('E_PARAM');
  });

  it.skipIf(!bwrapAvailable())('runs inspections under bwrap (--sandbox bwrap)', () => {
    const { dir, linkDir } = workDir();
    const { steps, links } = trainEvaluate();
    const layoutPath = join(dir, 'root.layout');
    writeSigned(layoutPath, layoutJson(steps, [{ name: 'look', run: ['sh', '-c', 'test -f model.pkl && ! test -e root.layout'], materials: [['MATCH', 'model.pkl', 'WITH', 'PRODUCTS', 'FROM', 'train'], ['DISALLOW', '*']] }]), [key(0)]);
    writeLink(linkDir, links.train, key(1));
    writeLink(linkDir, links.evaluate, key(2));
    writeFileSync(join(dir, 'model.pkl'), 'model');
    const result = runBin('intoto-verify', ['-l', layoutPath, '-k', ownerKeyFile(dir), '--link-dir', linkDir, '--sandbox', 'bwrap', '--json'], { cwd: dir });
    expect(result.stderr).not.toContain('FAIL');
    expect(result.status).toBe(0);
    expect(JSON.parse(result.stdout).layout.inspections[0]).toMatchObject({ name: 'look', exitCode: 0, sandboxed: true });
  });

  it('large links (45,000 artifacts): a pass, a tampered artifact caught, a malformed file reported', () => {
    const { dir, linkDir } = workDir();
    const count = 45_000; // two links of about 5 MB
    const big = (prefix: string, salt: string): JsonObject => {
      const object: Record<string, JsonValue> = Object.create(null) as Record<string, JsonValue>;
      for (let i = 0; i < count; i++) object[`${prefix}/f${i}`] = { sha256: sha(`${salt}${i}`) };
      return object;
    };
    const data = big('data', 'd');
    const layoutPath = join(dir, 'root.layout');
    writeSigned(
      layoutPath,
      layoutJson([
        { name: 'fetch', keys: [key(1)], products: [['CREATE', 'data/*'], ['DISALLOW', '*']] },
        { name: 'train', keys: [key(2)], materials: [['MATCH', '*', 'WITH', 'PRODUCTS', 'FROM', 'fetch'], ['DISALLOW', '*']] },
      ]),
      [key(0)],
    );
    writeLink(linkDir, linkJson('fetch', {}, data), key(1));
    writeLink(linkDir, linkJson('train', data, {}), key(2));
    // No --json: the report lists every consumed name (90,000), more than runBin buffers.
    const args = ['-l', layoutPath, '-k', ownerKeyFile(dir), '--link-dir', linkDir];
    const pass = runBin('intoto-verify', args);
    expect([pass.status, pass.signal, pass.stderr.slice(0, 2000)]).toEqual([0, null, '']);
    const tampered = { ...data, 'data/f44999': { sha256: sha('evil') } } as JsonObject;
    writeLink(linkDir, linkJson('train', tampered, {}), key(2));
    const fail = runBin('intoto-verify', args);
    expect(fail.status).toBe(1);
    expect(fail.stderr).toMatch(/FAIL E_RULE_DISALLOW: step 'train'.*"data\/f44999"/);
    // A malformed large link: a typed parse error, not a crash.
    const trainFile = join(linkDir, linkFileName('train', key(2).keyid));
    writeFileSync(trainFile, `${readFileSync(trainFile, 'utf8')} garbage`);
    expect(runBin('intoto-verify', args).stderr).toContain('FAIL E_JSON_SYNTAX');
  });
});
