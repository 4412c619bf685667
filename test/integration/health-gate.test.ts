import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { apiAtLeast, START_INTERVAL_API } from '../../src/lib/health-start.ts';
import { composeFile, type Manifest } from '../../src/lib/manifest.ts';
import { webApp } from '../helpers/deploy-fixture.ts';
import { localHostStage } from '../helpers/local-stage.ts';
import { docker, removeProject } from '../helpers/testenv.ts';

/** The manifest with a short stop grace period and the web healthcheck's interval (and, with `check`, the page it fetches) changed. */
function withHealthcheck(m: Manifest, interval: string, check?: string): Manifest {
  const out = structuredClone(m);
  const file = out.compose!.files[0]!;
  let text = file.content!.replace(/interval: 1s/, `interval: ${interval}`);
  // httpd as pid 1 ignores SIGTERM: a short grace keeps the rollback's container swap quick
  text = text.replace(/network_mode: host\n/, 'network_mode: host\n    stop_grace_period: 1s\n');
  if (check) text = text.replace(/\/index\.html"\]/, `${check}"]`);
  out.compose!.files[0] = composeFile(file.path, text);
  return out;
}

describe('the health gate runs a starting container’s own healthcheck early (recreate, real dockerd)', () => {
  const app = webApp();
  let root = '';
  const v: Manifest[] = [];
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'lading-health-root-'));
    v.push(withHealthcheck(app.version(1), '30s'), withHealthcheck(app.version(2), '30s', '/missing.html'));
  });
  after(() => {
    try {
      removeProject(app.project);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
  const { deploy } = localHostStage(
    () => ({ root, 'health-timeout': '20', 'health-stable': '0' }),
    Date.UTC(2026, 10, 29, 3, 0, 0),
  );

  const webHealth = () => {
    const id = docker(['ps', '-q', '--filter', `label=com.docker.compose.project=${app.project}`]);
    return docker(['inspect', '--format', '{{.State.Health.Status}}', id]);
  };

  it('passes within a few seconds with a 30 s interval, while docker has not run its first check yet', async () => {
    const t = performance.now();
    const res = await deploy(v[0]!);
    const seconds = (performance.now() - t) / 1000;
    assert.equal(res.ok, true, JSON.stringify(res.hosts));
    assert.ok(seconds < 15, `the deploy took ${seconds.toFixed(1)} s: the gate waited for docker's first check`);
    assert.equal(webHealth(), 'starting', 'docker itself has not checked yet: the gate ran the healthcheck');
    assert.equal(await app.probe(), 'v1');
  });

  it('adds start_interval only where the engine honours it (asked of the engine, not assumed)', () => {
    const api = docker(['version', '--format', '{{.Server.APIVersion}}']);
    const rel = readlinkSync(join(root, app.project, 'current'));
    const override = existsSync(join(root, app.project, rel, 'lading.health.yml'));
    assert.equal(override, apiAtLeast(api, START_INTERVAL_API), `engine API ${api}`);
  });

  it('a healthcheck that fails still fails the gate (at the health timeout) and the release is rolled back', async () => {
    const res = await deploy(v[1]!, { 'health-timeout': '4' });
    assert.equal(res.ok, false, JSON.stringify(res.hosts));
    assert.equal(res.hosts[0]!.status, 'rolled-back');
    assert.match(res.hosts[0]!.error ?? '', /not healthy within 4s: waiting for web/);
    assert.equal(await app.probe(), 'v1');
  });
});
