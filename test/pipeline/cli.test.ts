import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseEnvelope, unverifiedPayload, verifiedPayload } from '../../src/model/envelope.js';
import { layoutFromJson } from '../../src/model/layout.js';
import { ROOT, runBin } from '../helpers/bin.js';
import { tempDir } from '../helpers/reference.js';
import { BASE_YAML, edit, makeProject } from './helpers.js';

/** The `intoto` umbrella command and its own subcommands, through the built binary. */
const dir = tempDir('intoto-cli-');
const keys = makeProject(dir, ['alice', 'bob', 'owner']);
const good = join(dir, 'good.yaml');
writeFileSync(good, edit(BASE_YAML, 'expires: "2027-01-01T00:00:00Z"', 'expires_in: 90d'));
const PICKLES = join(ROOT, 'test', 'fixtures', 'pickles');

describe('intoto layout check', () => {
  it('passes a good layout (exit 0) and says what it checked', () => {
    const result = runBin('intoto', ['layout', 'check', good]);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/0 error\(s\), 0 warning\(s\) \(2 step\(s\), 0 inspection\(s\)/);
  });

  it('prints FILE:LINE:COL: error: ... [id] and exits 1 on an error', () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, edit(BASE_YAML, 'PRODUCTS FROM build"', 'PRODUCTS FROM biuld"'));
    const result = runBin('intoto', ['layout', 'check', bad]);
    expect(result.status).toBe(1);
    expect(result.stdout).toContain(`${bad}:17:17: error: rule 'MATCH app.tar WITH PRODUCTS FROM biuld' reads from step 'biuld'`);
    expect(result.stdout).toContain('[match-unknown-step]');
  });

  it('exits 0 with warnings, 1 with --strict; -k names the owner key', () => {
    const args = ['layout', 'check', good, '-k', join(dir, 'keys', 'alice.pub')];
    const lenient = runBin('intoto', args);
    expect(lenient.status, lenient.stdout).toBe(0);
    expect(lenient.stdout).toContain('[owner-is-functionary]');
    expect(runBin('intoto', [...args, '--strict']).status).toBe(1);
    expect(runBin('intoto', ['layout', 'check', good, '--strict']).status).toBe(0);
  });

  it('--json lists the diagnostics with ids, places and codes', () => {
    const bad = join(dir, 'bad-json.yaml');
    writeFileSync(bad, edit(BASE_YAML, 'readme: a test pipeline', 'readme: &r a test pipeline'));
    const result = runBin('intoto', ['layout', 'check', bad, '--json']);
    expect(result.status).toBe(1);
    const report = JSON.parse(result.stdout) as { passed: boolean; diagnostics: { id: string; line: number; code: string }[] };
    expect(report.passed).toBe(false);
    expect(report.diagnostics[0]).toMatchObject({ id: 'yaml-alias', line: 2, code: 'E_LAYOUT_SOURCE' });
  });

  it('an unreadable file is an E_IO error, not a crash', () => {
    const result = runBin('intoto', ['layout', 'check', join(dir, 'missing.yaml')]);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/no such file \(ENOENT\) \[E_IO\]/);
  });
});

describe('intoto layout sign', () => {
  it('writes a standard layout signed by the owner, which the verifier reads back', () => {
    const out = join(dir, 'root.layout');
    const result = runBin('intoto', ['layout', 'sign', good, '-k', join(dir, 'keys', 'owner'), '-o', out]);
    expect(result.status, result.stderr).toBe(0);
    const envelope = parseEnvelope(readFileSync(out), out);
    const payload = verifiedPayload(envelope, keys.get('owner')!.public);
    expect(payload).toBeDefined();
    const layout = layoutFromJson(payload!, out);
    expect(layout.steps.map((s) => [s.name, s.pubkeys])).toEqual([
      ['build', [keys.get('alice')!.keyid]],
      ['package', [keys.get('bob')!.keyid]],
    ]);
    expect(readFileSync(out, 'utf8')).not.toContain('private');
  });

  it('--use-dsse writes a DSSE envelope', () => {
    const out = join(dir, 'root.dsse.layout');
    expect(runBin('intoto', ['layout', 'sign', good, '-k', join(dir, 'keys', 'owner'), '-o', out, '--use-dsse']).status).toBe(0);
    const envelope = parseEnvelope(readFileSync(out), out);
    expect(envelope.kind).toBe('dsse');
    expect((unverifiedPayload(envelope) as { _type: string })._type).toBe('layout');
  });

  it('refuses a layout with errors (no file written), and a public key as the signing key', () => {
    const bad = join(dir, 'bad-sign.yaml');
    writeFileSync(bad, edit(BASE_YAML, '    functionaries: [bob]\n', '    functionaries: [bob]\n    threshold: 2\n'));
    const out = join(dir, 'never.layout');
    const result = runBin('intoto', ['layout', 'sign', bad, '-k', join(dir, 'keys', 'owner'), '-o', out]);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('[E_THRESHOLD]');
    const pub = runBin('intoto', ['layout', 'sign', good, '-k', join(dir, 'keys', 'owner.pub'), '-o', out]);
    expect(pub.status).toBe(1);
    expect(pub.stderr).toContain('E_KEY_PRIVATE_EXPECTED');
  });
});

describe('intoto scan-model (and its alias scan-pickle)', () => {
  it('exits 0 for a safe pickle and 1 for one that imports os.system, under either name', () => {
    for (const name of ['scan-model', 'scan-pickle']) {
      const safe = runBin('intoto', [name, join(PICKLES, 'containers-p4.pkl')]);
      expect(safe.status, safe.stdout + safe.stderr).toBe(0);
      expect(safe.stdout).toMatch(/containers-p4\.pkl: safe \(pickle, 2 globals, all allowed\)/);
      const unsafe = runBin('intoto', [name, join(PICKLES, 'handmade-os-system-global-p0.pkl')]);
      expect(unsafe.status).toBe(1);
      expect(unsafe.stdout).toMatch(/UNSAFE: .*offset \d+ \(REDUCE\): calls os\.system, which runs commands.*\[E_MODEL_UNSAFE\]/);
    }
  });

  it('--json reports every file, its format, globals with verdicts and findings; one unsafe file fails the run', () => {
    const result = runBin('intoto', ['scan-model', '--json', join(PICKLES, 'containers-p4.pkl'), join(PICKLES, 'builtins-eval-p4.pkl')]);
    expect(result.status).toBe(1);
    const report = JSON.parse(result.stdout) as {
      policy: string;
      safe: boolean;
      files: { safe: boolean; format: string; code: string | null; globals: { name: string; verdict: string }[]; findings: { kind: string; offset: number }[] }[];
    };
    expect(report.policy).toBe('default');
    expect(report.safe).toBe(false);
    expect(report.files.map((r) => [r.safe, r.format, r.code])).toEqual([
      [true, 'pickle', null],
      [false, 'pickle', 'E_MODEL_UNSAFE'],
    ]);
    expect(report.files[1]?.globals).toContainEqual(expect.objectContaining({ name: 'builtins.eval', verdict: 'never-allowed' }));
    expect(report.files[1]?.findings.map((f) => f.kind)).toEqual(['import', 'call']);
  });

  it('--policy strict refuses what the default allows; --allow adds a name; a never-allowed name is a usage error', () => {
    const bytes = join(PICKLES, 'bytes-p2.pkl');
    expect(runBin('intoto', ['scan-model', bytes]).status).toBe(0);
    expect(runBin('intoto', ['scan-model', '--policy', 'strict', bytes]).status).toBe(1);
    expect(runBin('intoto', ['scan-model', '--policy', 'strict', '--allow', '_codecs.encode', bytes]).status).toBe(0);
    const never = runBin('intoto', ['scan-model', '--allow', 'builtins.eval', join(PICKLES, 'builtins-eval-p4.pkl')]);
    expect(never.status).toBe(2);
    expect(never.stderr).toMatch(/can never be allowed.*\[E_USAGE\]/);
    expect(runBin('intoto', ['scan-model', '--allow', 'eval', join(PICKLES, 'containers-p4.pkl')]).status).toBe(2);
    expect(runBin('intoto', ['scan-model', '--allow', 'numpy.__builtins__', join(PICKLES, 'containers-p4.pkl')]).status).toBe(2);
    expect(runBin('intoto', ['scan-model']).status).toBe(2);
  });

  it('--policy FILE adds a YAML list of names to the default; a bad file is a usage error naming the item', () => {
    const policy = join(dir, 'policy.yaml');
    writeFileSync(policy, '- builtins.bytearray\n- {name: mypkg.models.Net, uses: [class]}\n');
    const ok = runBin('intoto', ['scan-model', '-v', '--policy', policy, join(PICKLES, 'containers-p4.pkl')]);
    expect(ok.status, ok.stderr).toBe(0);
    writeFileSync(policy, '- builtins.bytearray\n- posix.system\n');
    const bad = runBin('intoto', ['scan-model', '--policy', policy, join(PICKLES, 'containers-p4.pkl')]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/item 2 posix\.system: this name runs commands/);
    writeFileSync(policy, 'names: [a.b]\n');
    expect(runBin('intoto', ['scan-model', '--policy', policy, join(PICKLES, 'containers-p4.pkl')]).status).toBe(2);
    expect(runBin('intoto', ['scan-model', '--policy', join(dir, 'missing.yaml'), join(PICKLES, 'containers-p4.pkl')]).status).toBe(1);
  });

  it('scans a directory recursively, in name order, and summarises; a missing path is E_IO', () => {
    const result = runBin('intoto', ['scan-model', PICKLES]);
    expect(result.status).toBe(1);
    expect(result.stdout).toMatch(/^scan-model: \d+ files: \d+ safe, \d+ unsafe/m);
    const missing = runBin('intoto', ['scan-model', join(dir, 'no-such-model.pt')]);
    expect(missing.status).toBe(1);
    // Its own entry (the verdicts on other paths would still show), never a pass.
    expect(missing.stdout).toMatch(/no-such-model\.pt: UNREADABLE: .*no such file.*\[E_IO\]/);
  });
});

describe('intoto (umbrella)', () => {
  it('forwards to the per-tool programs: intoto verify --help is intoto-verify --help', () => {
    for (const tool of ['verify', 'run', 'sign', 'keygen', 'record', 'mock', 'match-products']) {
      const ours = runBin('intoto', [tool, '--help']);
      const theirs = runBin(`intoto-${tool}`, ['--help']);
      expect(ours.status, `${tool}: ${ours.stderr}`).toBe(theirs.status);
      expect(ours.stdout, tool).toBe(theirs.stdout);
    }
  });

  it('intoto keygen makes a key pair', () => {
    const result = runBin('intoto', ['keygen', join(dir, 'umbrella-key')]);
    expect(result.status, result.stderr).toBe(0);
    expect(readFileSync(join(dir, 'umbrella-key.pub'), 'utf8')).toContain('ed25519');
  });

  it('lists its commands, and refuses unknown ones with exit 2', () => {
    const help = runBin('intoto', ['--help']);
    expect(help.status).toBe(0);
    for (const command of ['layout check', 'layout sign', 'pipeline run', 'scan-model', 'verify']) expect(help.stdout).toContain(command);
    const unknown = runBin('intoto', ['nonsense']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain('[E_USAGE]');
    expect(runBin('intoto', ['layout', 'frobnicate']).status).toBe(2);
  });
});
