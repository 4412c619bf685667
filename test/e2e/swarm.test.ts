import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { composeFile, type Manifest } from '../../src/lib/manifest.ts';
import { runActionBundleAsync, runCli } from '../helpers/bundles.ts';
import { webApp } from '../helpers/deploy-fixture.ts';
import { removeStack, swarmDocker as swarm, testEnv } from '../helpers/testenv.ts';

const SECRET = `swarm-registry-secret-${process.pid}-Xk3`;

function filesUnder(dir: string): string {
  let out = '';
  for (const name of existsSync(dir) ? readdirSync(dir, { recursive: true }).map(String) : []) {
    const p = join(dir, name);
    if (existsSync(p) && statSync(p).isFile()) out += readFileSync(p, 'utf8');
  }
  return out;
}

describe('target swarm: dist/deploy and the CLI against a swarm manager', () => {
  const env = testEnv();
  const app = webApp();
  const service = `${app.project}_web`;
  // The fixture's images; a stack file of its own: swarm puts host networking on as an external network.
  const stack = `version: "3.8"
services:
  web:
    image: ${app.name}:\${DOCKER_TAG:-latest}
    command: ["/bin/busybox", "sh", "-c", "echo lading-boot-line; exec /bin/busybox httpd -f -p 127.0.0.1:${app.port} -h /srv"]
    networks: [hostnet]
    stop_grace_period: 1s # httpd as pid 1 ignores SIGTERM: do not wait the default 10 s per update
    healthcheck:
      test: ["CMD", "/bin/busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:${app.port}/index.html"]
      interval: 1s
      timeout: 2s
      retries: 2
networks:
  hostnet:
    external: true
    name: host
`;
  const m: Manifest[] = [];
  let root = '';
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'lading-swarm-root-'));
    for (const [n, healthy] of [
      [1, true],
      [2, true],
      [3, false],
    ] as const) {
      const mf = app.version(n, { healthy });
      mf.compose!.files = [composeFile('docker-compose.yml', stack)];
      m.push(mf);
    }
  });
  after(() => {
    try {
      removeStack(
        app.project,
        m.map((mf) => mf.images[0]!.ref),
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
  const inputs = (extra: Record<string, string>) => ({
    target: 'swarm',
    hosts: `root@${env.ssh.host}:${env.ssh.port}`,
    'docker-host': env.swarmDockerHost, // the manager's docker on the SSH host
    'ssh-key': readFileSync(env.ssh.privateKey, 'utf8'),
    'known-hosts': readFileSync(env.ssh.knownHosts, 'utf8'),
    root,
    'health-timeout': '120',
    'update-delay': '0',
    'update-monitor': '2',
    username: 'deployer',
    password: SECRET,
    registry: env.registry.host,
    ...extra,
  });
  const runEnv = { GITHUB_RUN_ID: '91', GITHUB_RUN_ATTEMPT: '1' };
  const deploy = (mf: Manifest) =>
    runActionBundleAsync('deploy', { inputs: inputs({ manifest: app.writeManifest(mf) }), env: runEnv });
  const runningImage = () =>
    swarm(['service', 'inspect', '--format', '{{.Spec.TaskTemplate.ContainerSpec.Image}}', service]);
  const releases: string[] = [];

  it('deploys v1 then v2 as a stack pinned by digest; outputs, history; the token never stored', async () => {
    for (const [i, want] of [
      [0, 'v1'],
      [1, 'v2'],
    ] as const) {
      const run = await deploy(m[i]!);
      assert.equal(run.code, 0, run.stdout + run.stderr);
      assert.equal(run.outputs.status, 'success');
      assert.equal(await app.probe(), want);
      assert.equal(runningImage(), m[i]!.images[0]!.ref);
      assert.ok(!run.stdout.replace(/^::add-mask::.*$/gm, '').includes(SECRET), 'secret in the log');
      releases.push(run.outputs.release!);
    }
    const rel = join(root, app.project, 'releases', releases[1]!);
    const rendered = readFileSync(join(rel, '01-docker-compose.yml'), 'utf8');
    assert.match(rendered, new RegExp(`image: ${m[1]!.images[0]!.ref}`));
    assert.match(readFileSync(join(rel, 'lading.stack.yml'), 'utf8'), /failure_action: rollback/);
    assert.match(readFileSync(join(rel, 'lading.stack.yml'), 'utf8'), /order: stop-first/); // host networking
    assert.equal(
      swarm(['service', 'inspect', '--format', '{{index .Spec.Labels "io.lading.release"}}', service]),
      releases[1],
    );
    assert.ok(!filesUnder(root).includes(SECRET), 'secret in a file on the manager');
  });

  it('a v3 failing its healthcheck is rolled back by swarm: the step fails with the task errors, v2 keeps running', async () => {
    const run = await deploy(m[2]!);
    assert.equal(run.code, 1, run.stdout);
    assert.equal(run.outputs.status, 'failure');
    const [host] = JSON.parse(run.outputs.hosts!);
    assert.equal(host.status, 'rolled-back');
    assert.match(host.error, /swarm rolled the update back/);
    assert.match(host.error, /task errors:.*unhealthy container/s, "the failure names the tasks' errors");
    assert.match(run.stdout, /task errors:.*unhealthy container/s);
    assert.match(host.error, /last log lines of the failed tasks:.*lading-boot-line/s, "and the tasks' last log lines");
    assert.equal(runningImage(), m[1]!.images[0]!.ref);
    assert.equal(await app.probe(), 'v2');
  });

  it('lading rollback --target swarm goes back to v1 by release id; releases lists the history', async () => {
    const cliEnv = { LADING_PASSWORD: SECRET };
    const common = [
      '--target',
      'swarm',
      '--docker-host',
      env.swarmDockerHost,
      '--root',
      root,
      '--project',
      app.project,
    ];
    // Without hosts the CLI drives the manager's docker from here (DOCKER_HOST), releases under the same root.
    const back = runCli(
      ['rollback', ...common, '--to', releases[0]!, '--username', 'deployer', '--registry', env.registry.host],
      { env: cliEnv },
    );
    assert.equal(back.code, 0, back.stdout + back.stderr);
    assert.match(back.stdout, new RegExp(`deployed\\t${releases[0]}`));
    assert.equal(runningImage(), m[0]!.images[0]!.ref);
    assert.equal(await app.probe(), 'v1');
    const listed = runCli(['releases', ...common, '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const [h] = JSON.parse(listed.stdout);
    assert.equal(h.current, releases[0]);
    assert.deepEqual(
      h.history.map((e: { action: string; result: string }) => `${e.action}:${e.result}`),
      ['deploy:success', 'deploy:success', 'deploy:failure', 'auto-rollback:success', 'rollback:success'],
    );
  });
});
