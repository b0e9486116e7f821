import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateSigningKey, writeKeyPair } from '../../src/crypto/keyfiles.js';
import { keyMaterial } from '../../src/crypto/keys.js';
import { BUILTINS_HEADING } from '../../src/pipeline/builtins.js';
import type { Diagnostic, DiagnosticId } from '../../src/pipeline/diagnostics.js';
import { checkLayoutSource } from '../../src/pipeline/load.js';
import { withParams } from '../../src/pipeline/params.js';
import { tempDir } from '../helpers/reference.js';
import { edit, makeProject, NOW, SIGN_YAML } from './helpers.js';

/**
 * `uses: model-sign` steps and `uses: model-verify` inspections as `intoto layout check`
 * reads them: what the standard layout says for them (an ordinary step whose expected command
 * is `intoto model sign`, an inspection running `intoto model verify` with the signer's key in
 * the command), and every mistake, named after what it would cost, with its id and line.
 */
const dir = tempDir('intoto-model-sign-layout-');
const keys = makeProject(dir, ['alice', 'bob', 'carol', 'platform', 'platform-2']);
writeKeyPair(generateSigningKey({ type: 'rsa' }), join(dir, 'keys', 'rsa'));
const platform = keys.get('platform')!;

let counter = 0;
function check(text: string): { diagnostics: readonly Diagnostic[]; source: ReturnType<typeof checkLayoutSource>['source'] } {
  const file = join(dir, `layout-${counter++}.yaml`);
  writeFileSync(file, text);
  return checkLayoutSource({ file, now: NOW });
}

const S = SIGN_YAML;
const SIGN_STEP = '    uses: model-sign\n    model: app.tar.gz\n';
const VERIFY = '    uses: model-verify\n    model: app.tar.gz\n    signer: platform\n';

describe('a model-sign step and a model-verify inspection in the compiled layout', () => {
  const result = check(S);
  const layout = result.source?.layoutJson as { readme: string; keys: Record<string, unknown>; steps: { name: string; expected_command: string[]; pubkeys: string[] }[]; inspect: { name: string; run: string[] }[] };

  it('check cleanly: no error, no warning (no step-not-run for a step without run)', () => {
    expect(result.diagnostics).toEqual([]);
  });

  it('the step is an ordinary in-toto step: expected_command `intoto model sign MODEL -o MODEL.sig`, no key path, no new field', () => {
    const sign = layout.steps.find((s) => s.name === 'sign')!;
    expect(sign.expected_command).toEqual(['intoto', 'model', 'sign', 'app.tar.gz', '-o', 'app.tar.gz.sig']);
    expect(Object.keys(sign).sort()).toEqual(['_type', 'expected_command', 'expected_materials', 'expected_products', 'name', 'pubkeys', 'threshold']);
    expect(sign.pubkeys).toEqual([platform.keyid]);
    expect(JSON.stringify(layout)).not.toMatch(/PRIVATE|keys\/platform/);
    expect(result.source?.steps.find((s) => s.name === 'sign')?.uses).toEqual({ kind: 'model-sign', model: 'app.tar.gz', signature: 'app.tar.gz.sig' });
    expect(result.source?.steps.find((s) => s.name === 'sign')?.run).toBeUndefined();
  });

  it('the signed readme says the runner performs it', () => {
    expect(layout.readme).toBe(`a test pipeline\n\n${BUILTINS_HEADING}\n  sign: model-sign app.tar.gz -> app.tar.gz.sig (OpenSSF Model Signing v1.0)`);
  });

  it("the inspection runs intoto model verify with the signer's public key written into the command", () => {
    const pem = (keyMaterial(platform.public) as { key: import('node:crypto').KeyObject }).key.export({ type: 'spki', format: 'pem' }).toString();
    expect(layout.inspect[0]?.run).toEqual(['intoto', 'model', 'verify', 'app.tar.gz', '--signature', 'app.tar.gz.sig', '--public-key-pem', pem]);
    expect(result.source?.inspections[0]?.uses).toEqual({ kind: 'model-verify', model: 'app.tar.gz', signature: 'app.tar.gz.sig', signer: 'platform' });
  });

  it('a signature path of its own goes into the command, the readme and the inspection', () => {
    const own = check(edit(edit(edit(S, SIGN_STEP, `${SIGN_STEP}    signature: sigs/app.oms.json\n`), '"CREATE app.tar.gz.sig"', '"CREATE sigs/app.oms.json"'), VERIFY, `${VERIFY}    signature: sigs/app.oms.json\n`));
    expect(own.diagnostics.filter((d) => d.id !== 'model-sign-products')).toEqual([]);
    const json = own.source?.layoutJson as typeof layout;
    expect(json.steps[2]?.expected_command).toEqual(['intoto', 'model', 'sign', 'app.tar.gz', '-o', 'sigs/app.oms.json']);
    expect(json.inspect[0]?.run.slice(0, 6)).toEqual(['intoto', 'model', 'verify', 'app.tar.gz', '--signature', 'sigs/app.oms.json']);
    expect(json.readme).toContain('sign: model-sign app.tar.gz -> sigs/app.oms.json');
  });

  it('parameters: the layout keeps {MODEL}; pipeline run signs the value', () => {
    const text = edit(edit(S, 'model: app.tar.gz\n    materials', 'model: "{MODEL}"\n    materials'), '"CREATE app.tar.gz.sig"', '"CREATE {MODEL}.sig"');
    const p = check(text);
    expect(p.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    expect((p.source?.layoutJson as typeof layout).steps[2]?.expected_command).toEqual(['intoto', 'model', 'sign', '{MODEL}', '-o', '{MODEL}.sig']);
    const { steps } = withParams(p.source!, new Map([['MODEL', 'app.tar.gz']]));
    expect(steps[2]?.uses).toEqual({ kind: 'model-sign', model: 'app.tar.gz', signature: 'app.tar.gz.sig' });
    expect(() => withParams(p.source!, new Map())).toThrow(/parameter \{MODEL\} has no value/);
  });
});

interface Case {
  readonly name: string;
  readonly text: string;
  readonly id: DiagnosticId;
  readonly line: number;
  readonly code?: string;
  readonly message?: RegExp;
  readonly severity?: 'error' | 'warning';
}

const cases: readonly Case[] = [
  // Keys: OMS signatures are ECDSA only; refused before anything runs.
  { name: 'an ed25519 functionary for a model-sign step', text: edit(S, 'platform: keys/platform.pub', 'platform: keys/carol.pub'), id: 'model-sign-key', line: 21, code: 'E_KEY_UNSUPPORTED', message: /needs an ECDSA key on P-256, P-384 or P-521 .*intoto keygen -t ecdsa.* functionary 'platform' has an ed25519 key \(.*keys\/carol\.pub\)/ },
  { name: 'an RSA functionary for a model-sign step', text: edit(S, 'platform: keys/platform.pub', 'platform: keys/rsa.pub'), id: 'model-sign-key', line: 21, code: 'E_KEY_UNSUPPORTED', message: /has an rsa key/ },
  { name: 'a model-verify signer with an ed25519 key', text: edit(S, 'signer: platform', 'signer: bob'), id: 'model-sign-key', line: 30, code: 'E_KEY_UNSUPPORTED', message: /verifies a model signature by 'bob' .* has an ed25519 key/ },
  { name: 'a model-verify signer nobody declared', text: edit(S, 'signer: platform', 'signer: mallory'), id: 'functionary-unknown', line: 30 },
  // Threshold: N signers would make N different signatures.
  {
    name: 'threshold 2 on a model-sign step (the links could never agree on the signature)',
    text: edit(edit(S, '  platform: keys/platform.pub\n', '  platform: keys/platform.pub\n  platform-2: keys/platform-2.pub\n'), '    functionaries: [platform]\n', '    functionaries: [platform, platform-2]\n    threshold: 2\n'),
    id: 'model-sign-threshold',
    line: 23,
    code: 'E_THRESHOLD',
    message: /threshold 2: N signers make N different signatures .* could never agree on the signature/,
  },
  // A model-sign step runs no command: a command's fields are refused by name.
  { name: 'run beside uses: model-sign', text: edit(S, SIGN_STEP, `${SIGN_STEP}    run: [cat, /keys/platform]\n`), id: 'schema', line: 24, code: 'E_SCHEMA', message: /uses model-sign, which runs no command .* "run" does not apply/ },
  { name: 'expected_command beside uses: model-sign', text: edit(S, SIGN_STEP, `${SIGN_STEP}    expected_command: [true]\n`), id: 'schema', line: 24, message: /"expected_command" does not apply/ },
  { name: 'a grant (network) for a step that runs nothing', text: edit(S, SIGN_STEP, `${SIGN_STEP}    network: true\n`), id: 'schema', line: 24, message: /"network" does not apply/ },
  { name: 'env for a step that runs nothing', text: edit(S, SIGN_STEP, `${SIGN_STEP}    env: [AWS_SECRET_ACCESS_KEY]\n`), id: 'schema', line: 24, message: /"env" does not apply/ },
  { name: 'a timeout for a step that runs nothing', text: edit(S, SIGN_STEP, `${SIGN_STEP}    timeout: "60"\n`), id: 'schema', line: 24, message: /"timeout" does not apply/ },
  { name: 'uses: model-sign without a model', text: edit(S, SIGN_STEP, '    uses: model-sign\n'), id: 'schema', line: 20, message: /missing field "model" \(what step 'sign' signs/ },
  { name: 'model on a command step', text: edit(S, '    run: gzip -n app.tar\n', '    run: gzip -n app.tar\n    model: app.tar.gz\n'), id: 'schema', line: 18, message: /"model" belongs to a built-in step: add uses: model-sign/ },
  { name: 'signature on a command step', text: edit(S, '    run: gzip -n app.tar\n', '    run: gzip -n app.tar\n    signature: app.sig\n'), id: 'schema', line: 18, message: /"signature" belongs to a built-in step/ },
  { name: 'a model that climbs out of the workspace', text: edit(S, SIGN_STEP, '    uses: model-sign\n    model: ../../keys\n'), id: 'schema', line: 23, code: 'E_ARTIFACT_NAME', message: /model "..\/..\/keys" has a '..' path segment/ },
  { name: 'a model name that reads as an option', text: edit(S, SIGN_STEP, '    uses: model-sign\n    model: --help\n'), id: 'schema', line: 23, code: 'E_ARTIFACT_NAME', message: /starts with '-'/ },
  { name: 'an absolute signature path', text: edit(S, SIGN_STEP, `${SIGN_STEP}    signature: /etc/passwd\n`), id: 'schema', line: 24, code: 'E_ARTIFACT_NAME', message: /is absolute/ },
  { name: 'the signature in place of the model', text: edit(S, SIGN_STEP, `${SIGN_STEP}    signature: app.tar.gz\n`), id: 'schema', line: 24, message: /cannot be the model itself/ },
  { name: 'a misspelt built-in (did-you-mean)', text: edit(S, 'uses: model-sign', 'uses: model-sing'), id: 'schema', line: 22, message: /must be a built-in step: model-sign, got "model-sing" \(did you mean "model-sign"\?\)/ },
  { name: 'the inspection built-in on a step', text: edit(S, 'uses: model-sign', 'uses: model-verify'), id: 'schema', line: 22, message: /must be a built-in step: model-sign, got "model-verify"/ },
  { name: 'a misspelt field (did-you-mean)', text: edit(S, '    model: app.tar.gz\n    materials: ["MATCH app.tar.gz WITH PRODUCTS FROM package", "DISALLOW *"]', '    modle: app.tar.gz\n    materials: ["MATCH app.tar.gz WITH PRODUCTS FROM package", "DISALLOW *"]'), id: 'schema', line: 23, message: /unknown field "modle" \(did you mean "model"\?\)/ },
  { name: 'run beside uses: model-verify', text: edit(S, VERIFY, `${VERIFY}    run: [true]\n`), id: 'schema', line: 31, message: /uses model-verify, whose command is written from model, signer and signature: remove "run"/ },
  { name: 'a model-verify inspection without a signer', text: edit(S, VERIFY, '    uses: model-verify\n    model: app.tar.gz\n'), id: 'schema', line: 27, message: /missing field "signer" \(the functionary whose key must have signed it\)/ },
  { name: 'a model-verify inspection without a model', text: edit(S, VERIFY, '    uses: model-verify\n    signer: platform\n'), id: 'schema', line: 27, message: /missing field "model"/ },
  { name: 'an inspection with neither run nor uses', text: edit(S, VERIFY, ''), id: 'schema', line: 27, message: /missing field "run" \(the command the verifier runs; or uses: model-verify with model and signer\)/ },
  { name: 'signer on a command inspection', text: edit(S, VERIFY, '    run: [true]\n    signer: platform\n'), id: 'schema', line: 29, message: /"signer" belongs to a built-in inspection: add uses: model-verify/ },
  { name: 'a readme claiming built-in steps itself', text: edit(S, 'readme: a test pipeline', `readme: "${BUILTINS_HEADING}"`), id: 'schema', line: 2, message: /must not contain the line/ },
  // Warnings: legal, but not what was meant.
  { name: 'product rules that refuse the signature (every verification would fail)', text: edit(S, '"CREATE app.tar.gz.sig", ', ''), id: 'model-sign-products', line: 25, severity: 'warning', message: /writes its signature app\.tar\.gz\.sig, but its product rule 'DISALLOW \*' refuses it: every verification would fail; add "CREATE app\.tar\.gz\.sig"/ },
  { name: 'intoto model sign run as a command (its key would be an input the command reads)', text: edit(S, 'run: [tar, -cf, app.tar, src]', 'run: [/usr/bin/intoto, model, sign, src, -k, key.pem]'), id: 'model-sign-in-command', line: 12, severity: 'warning', message: /runs intoto model sign as a command: .* use "uses: model-sign"/ },
];

describe('intoto layout check: model-sign and model-verify mistakes', () => {
  it.each(cases)('$name -> $id', (c) => {
    const result = check(c.text);
    const found = result.diagnostics.find((d) => d.id === c.id && (c.message === undefined || c.message.test(d.message)));
    expect(found, JSON.stringify(result.diagnostics, null, 1)).toBeDefined();
    expect(found?.severity).toBe(c.severity ?? 'error');
    expect(found?.line).toBe(c.line);
    if (c.code !== undefined) expect(found?.code).toBe(c.code);
    expect(result.source === undefined).toBe((c.severity ?? 'error') === 'error');
    if (c.severity === 'warning') expect(result.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  });

  it('a functionary that only signs for a model-verify inspection is not "unused"', () => {
    // The model is signed elsewhere (no model-sign step); platform's key only checks it.
    const text = edit(edit(S, SIGN_STEP, '    run: [cp, app.tar.gz, app.tar.gz.sig]\n'), '    functionaries: [platform]\n', '    functionaries: [bob]\n');
    const result = check(text);
    expect(result.diagnostics.map((d) => d.id)).not.toContain('functionary-unused');
  });
});
