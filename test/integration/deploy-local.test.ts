import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LocalSession } from '../../src/io/local-host.ts';
import { composeFile, type Manifest } from '../../src/lib/manifest.ts';
import { runDeployStage, runReleasesStage, runRollbackStage } from '../../src/stages/deploy.ts';
import { stderrReporter } from '../../src/io/reporter.ts';
import { readHostSettings } from '../../src/settings/host.ts';
import { webApp } from '../helpers/deploy-fixture.ts';
import { localHostStage } from '../helpers/local-stage.ts';
import { docker, removeProject, testEnv } from '../helpers/testenv.ts';
import { hostDeps } from '../../src/stages/host/deps.ts';

describe('the host steps, run by a local shell against the test dockerd', () => {
  const app = webApp();
  let root = '';
  const manifests: Manifest[] = [];
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'lading-hostroot-'));
    manifests.push(app.version(1), app.version(2), app.version(3, { healthy: false }));
  });
  after(() => {
    try {
      removeProject(app.project);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
  const { opts, deploy } = localHostStage(
    () => ({ root, 'health-timeout': '30', 'health-stable': '2' }),
    Date.UTC(2026, 10, 24, 1, 0, 0),
  );

  const projectDir = () => join(root, app.project);
  const current = () => readlinkSync(join(projectDir(), 'current')).replace(/^releases\//, '');
  const history = () =>
    readFileSync(join(projectDir(), 'history.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));

  it('deploys v1: release dir with pinned images and a 0600 .env, current switched, history written', async () => {
    const res = await deploy(manifests[0]!);
    assert.equal(res.ok, true, JSON.stringify(res.hosts));
    assert.equal(await app.probe(), 'v1');
    assert.equal(current(), res.release);
    const rel = join(projectDir(), 'releases', res.release);
    assert.equal(statSync(join(rel, '.env')).mode & 0o777, 0o600);
    assert.match(readFileSync(join(rel, '.env'), 'utf8'), /^DOCKER_TAG=v1-abcdef0$/m);
    assert.match(
      readFileSync(join(rel, 'lading.pins.yml'), 'utf8'),
      new RegExp(`image: ${manifests[0]!.images[0]!.ref}`),
    );
    assert.deepEqual(
      history().map((h) => [h.action, h.result]),
      [['deploy', 'success']],
    );
  });

  it('deploys v2 over v1', async () => {
    const res = await deploy(manifests[1]!);
    assert.equal(res.ok, true, JSON.stringify(res.hosts));
    assert.equal(res.hosts[0]!.previous?.endsWith('v1-abcdef0'), true);
    assert.equal(await app.probe(), 'v2');
  });

  it('a v3 whose healthcheck fails is rolled back: v2 keeps serving and the deploy reports failure', async () => {
    const before = current();
    const res = await deploy(manifests[2]!);
    assert.equal(res.ok, false);
    assert.equal(res.hosts[0]!.status, 'rolled-back');
    assert.match(res.hosts[0]!.error ?? '', /unhealthy|not healthy/);
    assert.equal(current(), before);
    assert.equal(await app.probe(), 'v2');
    assert.deepEqual(
      history()
        .slice(-2)
        .map((h) => [h.action, h.result]),
      [
        ['deploy', 'failure'],
        ['auto-rollback', 'success'],
      ],
    );
  });

  it('compose-policy strict refuses a privileged service before any host is touched: v2 keeps serving', async () => {
    const before = {
      current: current(),
      history: history().length,
      releases: readdirSync(join(projectDir(), 'releases')),
    };
    const m = structuredClone(manifests[1]!);
    const f = m.compose!.files[0]!;
    m.compose!.files[0] = composeFile(
      f.path,
      f.content.replace('    network_mode: host\n', '    network_mode: host\n    privileged: true\n'),
    );
    await assert.rejects(
      deploy(m, { 'compose-policy': 'strict', 'compose-policy-allow': 'host-network' }),
      (err: Error) =>
        /docker-compose.yml: service web: privileged/.test(err.message) &&
        /compose-policy-allow: privileged/.test((err as { hint?: string }).hint ?? ''),
    );
    assert.deepEqual(
      { current: current(), history: history().length, releases: readdirSync(join(projectDir(), 'releases')) },
      before,
    );
    assert.equal(await app.probe(), 'v2');
  });

  const hostOpts = (extra: Record<string, string>) => opts({ project: app.project, ...extra });

  it('rolls back by tag to v1 without a build, and records it', async () => {
    const res = await runRollbackStage(await hostOpts({ to: 'v1-abcdef0' }));
    assert.equal(res.ok, true, JSON.stringify(res.hosts));
    assert.equal(await app.probe(), 'v1');
    assert.ok(current().endsWith('v1-abcdef0'));
    assert.deepEqual(history().at(-1)!.action, 'rollback');
  });

  it('rolls back to "previous" after that (v2 again), and refuses an unknown target', async () => {
    const res = await runRollbackStage(await hostOpts({ to: 'previous' }));
    assert.equal(res.ok, false, 'v1 is the oldest: there is no release before it');
    assert.match(res.hosts[0]!.error ?? '', /no previous release/);
    const bad = await runRollbackStage(await hostOpts({ to: 'nope' }));
    assert.match(bad.hosts[0]!.error ?? '', /no release matching 'nope'/);
    const v2 = await runRollbackStage(await hostOpts({ to: 'v2-abcdef0' }));
    assert.equal(v2.ok, true, JSON.stringify(v2.hosts));
    assert.equal(await app.probe(), 'v2');
  });

  it('lists releases with the current one and who deployed what', async () => {
    const [host] = await runReleasesStage(await hostOpts({}));
    assert.equal(host!.current, current());
    assert.equal(host!.releases.length, 3);
    assert.deepEqual(
      host!.history.map((h) => `${h.action}:${h.result}:${h.primary}`),
      [
        'deploy:success:v1-abcdef0',
        'deploy:success:v2-abcdef0',
        'deploy:failure:v3-abcdef0',
        'auto-rollback:success:v2-abcdef0',
        'rollback:success:v1-abcdef0',
        'rollback:success:v2-abcdef0',
      ],
    );
  });

  it('no lock is left behind', () => {
    assert.throws(() => statSync(join(projectDir(), '.lock')));
  });

  it('prune-images removes the images only pruned releases pinned, never the running one', async () => {
    const res = await deploy(manifests[0]!, {
      'keep-releases': '1',
      'prune-images': 'true',
      'allow-downgrade': 'true',
    });
    assert.equal(res.ok, true, JSON.stringify(res.hosts));
    assert.equal(await app.probe(), 'v1');
    const has = (ref: string) => {
      try {
        docker(['image', 'inspect', ref]);
        return true;
      } catch {
        return false;
      }
    };
    assert.equal(has(manifests[1]!.images[0]!.ref), false, 'v2 (only in pruned releases) is gone');
    assert.equal(has(manifests[2]!.images[0]!.ref), false, 'v3 is gone');
    assert.equal(has(manifests[0]!.images[0]!.ref), true, 'v1 runs and stays');
  });

  it('a service without a healthcheck that exits with an error fails the gate (templates of clients that refuse a missing .State.Health)', async () => {
    const m = structuredClone(manifests[0]!);
    const compose = m.compose!;
    const file = compose.files[0]!;
    const sidecar = `  sidecar:
    image: ${m.images[0]!.name}:\${DOCKER_TAG:-latest}
    network_mode: host
    command: ["/bin/busybox", "sh", "-c", "exit 3"]
`;
    compose.files[0] = composeFile(file.path, file.content + sidecar);
    m.images[0]!.services = ['web', 'sidecar'];
    const before = current();
    const res = await deploy(m, { 'allow-downgrade': 'true' });
    assert.equal(res.ok, false, JSON.stringify(res.hosts));
    assert.equal(res.hosts[0]!.status, 'rolled-back');
    assert.match(res.hosts[0]!.error ?? '', /sidecar/);
    assert.equal(current(), before);
    assert.equal(await app.probe(), 'v1');
  });
});

describe('a fleet in rolling batches, one host failing', () => {
  const env = testEnv();
  const app = webApp();
  let root = '';
  let manifest: Manifest;
  const projects = ['fleet-a', 'fleet-b', 'fleet-c'].map((p) => `${p}-${process.pid}`);
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'lading-fleet-'));
    manifest = app.version(1);
  });
  after(() => {
    for (const p of projects) {
      removeProject(p);
    }
    rmSync(root, { recursive: true, force: true });
  });
  // Three "hosts" on this machine, told apart by inventory overrides (root, project). The second one cannot
  // bind the port the first one serves on, so it fails its health gate.
  const inventory = () =>
    projects.map((p, i) => `- host: localhost\n  root: ${root}/h${i}\n  project: ${p}\n`).join('');
  const run = async (extra: Record<string, string>) => {
    const inputs: Record<string, string> = {
      inventory: inventory(),
      'ssh-key': 'unused',
      'known-hosts': 'unused',
      'health-timeout': '20',
      'health-stable': '2',
      ...extra,
    };
    return runDeployStage({
      settings: await readHostSettings((n) => inputs[n] || undefined, {}),
      manifest,
      reporter: stderrReporter(true),
      deps: hostDeps(async () => new LocalSession({ ...process.env, DOCKER_HOST: env.dockerHost })),
    });
  };

  it('fail-fast: the first host deploys, the second fails, the third is skipped', async () => {
    const res = await run({ 'max-parallel': '1' });
    assert.equal(res.ok, false);
    assert.deepEqual(
      res.hosts.map((h) => h.status),
      ['deployed', 'failed', 'skipped'],
    );
    assert.match(res.hosts[1]!.error ?? '', /health/);
    assert.equal(await app.probe(), 'v1');
    assert.ok(readlinkSync(join(root, 'h0', projects[0]!, 'current')).includes('v1-abcdef0'));
  });

  it('an error budget of 1 lets the rollout go on past one failed host (the third fails on the same port)', async () => {
    const res = await run({ 'max-parallel': '1', 'max-failures': '1' });
    assert.deepEqual(
      res.hosts.map((h) => h.status),
      ['deployed', 'failed', 'failed'],
    );
  });

  it('a failed canary stops the rollout, whatever the budget', async () => {
    const res = await run({ 'max-parallel': '1', canary: '2', 'fail-fast': 'false' });
    assert.deepEqual(
      res.hosts.map((h) => h.status),
      ['deployed', 'failed', 'skipped'],
    );
    assert.match(res.hosts[2]!.error ?? '', /not started: a canary host failed/);
  });
});
