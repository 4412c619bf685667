import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { composeFile, type Manifest } from '../../src/lib/manifest.ts';
import type { StatusReport } from '../../src/lib/ops.ts';
import { runActionBundleAsync, runCli } from '../helpers/bundles.ts';
import { webApp } from '../helpers/deploy-fixture.ts';
import { removeStack, swarmDocker as swarm, testEnv } from '../helpers/testenv.ts';

const SECRET = `swarm-ops-secret-${process.pid}-Qz8`;

/**
 * The day-2 verbs on target swarm (status, logs, exec, prune) from the CLI bundle, over the same connection as the
 * swarm deploy: the test sshd, with the manager's docker as docker-host on that host. One busybox image, one stack.
 */
describe('lading status, logs, exec and prune on a swarm stack, through the manager the deploy uses', () => {
  const env = testEnv();
  const app = webApp();
  const service = `${app.project}_web`;
  const stack = `version: "3.8"
services:
  web:
    image: ${app.name}:\${DOCKER_TAG:-latest}
    command: ["/bin/busybox", "sh", "-c", "for i in 1 2 3; do echo line-$$i; done; exec /bin/busybox sleep 3600"]
    networks: [hostnet]
    stop_grace_period: 1s
networks:
  hostnet:
    external: true
    name: host
`;
  let m: Manifest;
  let root = '';
  const releases: string[] = [];
  const conn = () => [
    '--target',
    'swarm',
    '--hosts',
    `root@${env.ssh.host}:${env.ssh.port}`,
    '--docker-host',
    env.swarmDockerHost,
    '--ssh-key',
    env.ssh.privateKey,
    '--known-hosts',
    env.ssh.knownHosts,
    '--root',
    root,
    '--project',
    app.project,
  ];
  const cli = (args: string[]) => runCli(args, { env: { GITHUB_ACTIONS: undefined } });
  const inputs = (extra: Record<string, string>) => ({
    target: 'swarm',
    hosts: `root@${env.ssh.host}:${env.ssh.port}`,
    'docker-host': env.swarmDockerHost,
    'ssh-key': readFileSync(env.ssh.privateKey, 'utf8'),
    'known-hosts': readFileSync(env.ssh.knownHosts, 'utf8'),
    root,
    'health-timeout': '120',
    'update-delay': '0',
    'update-monitor': '1',
    username: 'deployer',
    password: SECRET,
    registry: env.registry.host,
    ...extra,
  });
  const runEnv = { GITHUB_RUN_ID: '92', GITHUB_RUN_ATTEMPT: '1' };

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'lading-swarm-ops-'));
    m = app.version(1);
    m.compose!.files = [composeFile('docker-compose.yml', stack)];
    const manifest = app.writeManifest(m);
    // two releases of the same image: prune has one to remove
    for (let i = 0; i < 2; i++) {
      const run = await runActionBundleAsync('deploy', { inputs: inputs({ manifest }), env: runEnv });
      assert.equal(run.code, 0, run.stdout + run.stderr);
      releases.push(run.outputs.release!);
    }
  });
  after(() => {
    try {
      removeStack(app.project, [m.images[0]!.ref]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('status: the service on the current release, its task running the pinned digest, exit 0', () => {
    const res = cli(['status', ...conn(), '--json']);
    assert.equal(res.code, 0, res.stdout + res.stderr);
    const report = JSON.parse(res.stdout) as StatusReport;
    assert.equal(report.ok, true);
    const [h] = report.hosts;
    assert.equal(h?.target, 'swarm');
    assert.equal(h?.healthy, true, JSON.stringify(h));
    assert.equal(h?.release?.id, releases[1]);
    assert.deepEqual(h?.releases, releases);
    assert.deepEqual(h?.drift, []);
    const [svc] = h!.services;
    assert.equal(svc?.service, 'web');
    assert.equal(svc?.desired, 1);
    assert.equal(svc?.pinned, m.images[0]!.ref);
    const [task] = svc!.containers;
    assert.equal(task?.state, 'running');
    assert.equal(task?.digest, m.images[0]!.digest, 'the digest the task runs is the pinned one');
    assert.equal(task?.release, releases[1]);
    const human = cli(['status', ...conn()]);
    assert.equal(human.code, 0, human.stdout + human.stderr);
    assert.match(human.stdout, /web/);
  });

  it('logs --tail: the last lines of the service, prefixed with the manager and the task', () => {
    const res = cli(['logs', ...conn(), '--tail', '2', '--service', 'web']);
    assert.equal(res.code, 0, res.stdout + res.stderr);
    const lines = res.stdout.trim().split('\n');
    // the stack's two tasks (one per release) each said line-1..3: the last two lines of each
    assert.ok(lines.length >= 2, res.stdout);
    const prefix = `[root@${env.ssh.host}:${env.ssh.port}] ${service}.1.`;
    for (const l of lines) {
      assert.ok(l.startsWith(prefix), `host and task prefix: ${l}`);
      assert.match(l, /@\S+\s+\| line-[23]$/, l);
    }
  });

  it('exec --running enters the running task; a one-off runs in a new container of the service image', () => {
    const running = cli([
      'exec',
      ...conn(),
      '--service',
      'web',
      '--running',
      '--',
      '/bin/busybox',
      'cat',
      '/proc/1/cmdline',
    ]);
    assert.equal(running.code, 0, running.stdout + running.stderr);
    assert.match(running.stdout, /sleep.*3600/);
    const oneOff = cli(['exec', ...conn(), '--service', 'web', '--', '/bin/busybox', 'cat', '/srv/index.html']);
    assert.equal(oneOff.code, 0, oneOff.stdout + oneOff.stderr);
    assert.match(oneOff.stdout, /v1/);
  });

  it('prune --dry-run lists the older release and no image (the swarm tasks own them), removing nothing', () => {
    const dry = cli(['prune', ...conn(), '--keep-releases', '1', '--dry-run', '--json']);
    assert.equal(dry.code, 0, dry.stdout + dry.stderr);
    const [plan] = JSON.parse(dry.stdout) as Array<{
      dryRun: boolean;
      plan: { releases: Array<{ id: string }>; images: unknown[]; kept: string[] };
    }>;
    assert.equal(plan!.dryRun, true);
    assert.deepEqual(
      plan!.plan.releases.map((r) => r.id),
      [releases[0]],
    );
    assert.deepEqual(plan!.plan.kept, [releases[1]]);
    assert.deepEqual(plan!.plan.images, []);
    const status = JSON.parse(cli(['status', ...conn(), '--json']).stdout) as StatusReport;
    assert.deepEqual(status.hosts[0]?.releases, releases, 'a dry run removes nothing');
  });

  it('a hook on target swarm is refused before anything deploys (hooks run on compose hosts only)', async () => {
    const run = await runActionBundleAsync('deploy', {
      inputs: inputs({ manifest: app.writeManifest(m), 'pre-deploy': '["/bin/busybox", "true"]' }),
      env: runEnv,
    });
    assert.equal(run.code, 1, run.stdout);
    assert.match(run.stdout, /pre-deploy.*target swarm/);
    const st = JSON.parse(cli(['status', ...conn(), '--json']).stdout) as StatusReport;
    assert.deepEqual(st.hosts[0]?.releases, releases, 'no release was made');
  });

  it('status exits non-zero when a service is not converged (its task cannot be placed), naming it', () => {
    swarm(['service', 'update', '--detach', '--constraint-add', 'node.labels.lading-nowhere==1', service]);
    let res = cli(['status', ...conn(), '--json']);
    for (let i = 0; i < 30 && res.code === 0; i++) {
      spawnSync('sleep', ['1']);
      res = cli(['status', ...conn(), '--json']);
    }
    assert.notEqual(res.code, 0, res.stdout + res.stderr);
    const report = JSON.parse(res.stdout) as StatusReport;
    assert.equal(report.ok, false);
    assert.equal(report.hosts[0]?.healthy, false);
    assert.ok(
      report.hosts[0]!.problems.some((p) => p.includes(service)),
      JSON.stringify(report.hosts[0]!.problems),
    );
  });
});
