import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { slurmAvailable, startLab, type Lab } from '../helpers/slurm-lab.js';

/**
 * scripts/slurm-lab.sh itself: what a node can see and reach in namespaces mode, the loopback
 * fallback (and that it says so), and that `down` leaves no process, bridge or directory.
 */

const enabled = slurmAvailable();
const SCRIPT = new URL('../../scripts/slurm-lab.sh', import.meta.url).pathname;

/** The PIDs the lab recorded (daemons, and the nodes' namespace PID 1s). */
function recordedPids(lab: Lab): number[] {
  const dir = join(lab.dir, 'pids');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.pid') || f.endsWith('.init'))
    .map((f) => Number(readFileSync(join(dir, f), 'utf8').trim()));
}

function running(pid: number): boolean {
  const stat = spawnSync('ps', ['-o', 'stat=', '-p', String(pid)], { encoding: 'utf8' }).stdout.trim();
  return stat !== '' && !stat.startsWith('Z');
}

function submit(lab: Pick<Lab, 'env' | 'nodeDir'>, node: string, script: string): string {
  const r = spawnSync('sbatch', ['--parsable', `--nodelist=${node}`, `--output=${join(lab.nodeDir(node), 'jobs', 'probe.out')}`, `--wrap=${script}`], { env: lab.env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout.trim();
}

async function waitForState(lab: Pick<Lab, 'env'>, id: string): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const state = spawnSync('squeue', ['--noheader', '--states=all', `--jobs=${id}`, '--Format=State:|'], { env: lab.env, encoding: 'utf8' }).stdout.split('|')[0]?.trim() ?? '';
    if (['COMPLETED', 'FAILED', 'CANCELLED'].includes(state)) return state;
    await new Promise((r) => setTimeout(r, 100));
  }
  return 'TIMEOUT';
}

describe.runIf(enabled)('slurm-lab.sh, namespaces mode', () => {
  let lab: Lab;
  let pids: number[] = [];
  beforeAll(() => {
    lab = startLab({ nodes: 3 });
    pids = recordedPids(lab);
  });
  afterAll(() => lab?.stop());

  it('starts a controller, three nodes, munge and a registry, each recorded by PID', () => {
    if (lab.mode !== 'namespaces') {
      expect(process.env['CI']).not.toBe('true');
      return;
    }
    expect(lab.nodes).toEqual(['node1', 'node2', 'node3']);
    const names = readdirSync(join(lab.dir, 'pids')).sort();
    expect(names).toEqual(expect.arrayContaining(['munged.pid', 'registry.pid', 'slurmctld.pid', 'node1.pid', 'node1.init', 'node3.init']));
    for (const pid of pids) expect(running(pid)).toBe(true);
    const status = spawnSync(SCRIPT, ['status'], { env: { ...process.env, SLURM_LAB_DIR: lab.dir }, encoding: 'utf8' });
    expect(status.status).toBe(0);
    expect(status.stdout).toMatch(/\(namespaces\)/);
    expect(status.stdout).toMatch(/node3: idle/);
  });

  it('each node has its own host name, /proc, /tmp and view of the lab directory', () => {
    if (lab.mode !== 'namespaces') return;
    for (const node of lab.nodes) {
      expect(lab.exec(node, ['hostname']).stdout.trim()).toBe(node);
      // Its own directory and nothing else of the lab: not the others', not the controller's state, not the registry's storage;
      // and the shared directory every node reads.
      expect(lab.exec(node, ['ls', lab.dir]).stdout.split('\n').filter(Boolean).sort()).toEqual(['etc', 'munge', 'nodes', 'shared']);
      expect(lab.exec(node, ['ls', join(lab.dir, 'nodes')]).stdout.trim()).toBe(node);
      // Its PID namespace: the node's init, slurmd, and the ps itself.
      const ps = lab.exec(node, ['ps', '-e', '-o', 'comm=']).stdout.split('\n').filter(Boolean);
      expect(ps).toContain('slurmd');
      expect(ps).not.toContain('slurmctld');
      expect(ps.length).toBeLessThan(8);
    }
    // The configuration and the shared directory are read-only on the nodes; the host writes the shared one.
    expect(lab.exec('node1', ['sh', '-c', `echo x >> ${join(lab.dir, 'etc', 'slurm.conf')}`]).status).not.toBe(0);
    writeFileSync(join(lab.shared, 'layout.yaml'), 'from the host\n');
    expect(lab.exec('node2', ['cat', join(lab.shared, 'layout.yaml')]).stdout).toBe('from the host\n');
    expect(lab.exec('node2', ['sh', '-c', `echo x >> ${join(lab.shared, 'layout.yaml')}`]).status).not.toBe(0);
  });

  it('a node reaches the registry and the controller through the bridge, never another node', () => {
    if (lab.mode !== 'namespaces') return;
    const registry = lab.exec('node1', ['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', `http://${lab.registry}/v2/`]);
    expect(registry.stdout).toBe('200');
    const conf = readFileSync(join(lab.dir, 'etc', 'slurm.conf'), 'utf8');
    const node2 = /NodeName=node2 .*NodeAddr=([0-9.]+)/.exec(conf)?.[1];
    const port = /SlurmdPort=([0-9]+)/.exec(conf)?.[1];
    expect(node2).toBeDefined();
    // node2's slurmd listens there (the controller reaches it), but node1 cannot connect.
    const fromHost = spawnSync('bash', ['-c', `timeout 3 bash -c 'exec 3<>/dev/tcp/${node2}/${port}' && echo open`], { encoding: 'utf8' });
    expect(fromHost.stdout.trim()).toBe('open');
    const fromNode1 = lab.exec('node1', ['bash', '-c', `timeout 2 bash -c 'exec 3<>/dev/tcp/${node2}/${port}' && echo open || echo closed`]);
    expect(fromNode1.stdout.trim()).toBe('closed');
    // And no route anywhere else: the host's other addresses are unreachable from a node.
    expect(lab.exec('node1', ['ip', '-4', 'route']).stdout.trim().split('\n')).toHaveLength(1);
  });

  it('down stops every daemon by PID, removes the bridge, the cgroups and the directory', () => {
    const conf = existsSync(join(lab.dir, 'pids', 'bridge')) ? readFileSync(join(lab.dir, 'pids', 'bridge'), 'utf8').trim() : undefined;
    const cgroup = existsSync(join(lab.dir, 'pids', 'cgroup')) ? readFileSync(join(lab.dir, 'pids', 'cgroup'), 'utf8').trim() : undefined;
    lab.stop();
    for (const pid of pids) expect(running(pid)).toBe(false);
    expect(existsSync(lab.dir)).toBe(false);
    if (conf !== undefined) expect(spawnSync('ip', ['link', 'show', conf]).status).not.toBe(0);
    if (cgroup !== undefined) expect(existsSync(cgroup)).toBe(false);
  });
});

describe.runIf(enabled)('slurm-lab.sh, loopback fallback', () => {
  it('runs plain slurmd processes on 127.0.0.1, says that nothing separates the nodes, and down leaves no process', async () => {
    const dir = join(process.env['TMPDIR'] ?? '/tmp', `intoto-lab-loopback-${process.pid}`);
    const env = { ...process.env, SLURM_LAB_DIR: dir, SLURM_LAB_ISOLATION: 'loopback' };
    let pids: number[] = [];
    try {
      const up = spawnSync(SCRIPT, ['up'], { env, encoding: 'utf8', timeout: 180_000 });
      expect(up.status, up.stderr).toBe(0);
      expect(up.stderr).toMatch(/WARNING: no namespaces here: .* nothing keeps one node from reading another node's key/);
      expect(spawnSync(SCRIPT, ['status'], { env, encoding: 'utf8' }).stdout).toMatch(/\(loopback\)/);
      expect(readFileSync(join(dir, 'lab.env'), 'utf8')).toMatch(/^SLURM_LAB_REGISTRY=127\.0\.0\.1:[0-9]+$/m);
      expect(readFileSync(join(dir, 'etc', 'slurm.conf'), 'utf8')).toMatch(/NodeName=node3 .*NodeAddr=127\.0\.0\.1 Port=[0-9]+/);
      const lab = { env: { PATH: process.env['PATH'], SLURM_CONF: join(dir, 'etc', 'slurm.conf') }, nodeDir: (n: string) => join(dir, 'nodes', n) };
      const id = submit(lab, 'node3', 'echo $SLURMD_NODENAME');
      expect(await waitForState(lab, id)).toBe('COMPLETED');
      expect(readFileSync(join(dir, 'nodes', 'node3', 'jobs', 'probe.out'), 'utf8').trim()).toBe('node3');
      pids = readdirSync(join(dir, 'pids')).filter((f) => f.endsWith('.pid')).map((f) => Number(readFileSync(join(dir, 'pids', f), 'utf8').trim()));
      expect(pids.length).toBe(6);
    } finally {
      spawnSync(SCRIPT, ['down'], { env, encoding: 'utf8', timeout: 120_000 });
    }
    for (const pid of pids) expect(running(pid)).toBe(false);
    expect(existsSync(dir)).toBe(false);
  });
});
