import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Manifest } from '../../src/lib/manifest.ts';
import { type ActionRun, bundle, runActionBundle, runActionBundleAsync } from '../helpers/bundles.ts';
import { webApp } from '../helpers/deploy-fixture.ts';
import { sendJson, type StandinServer, startStandin } from '../helpers/standin-server.ts';
import { removeProject, testEnv } from '../helpers/testenv.ts';

const SECRET = `registry-secret-${process.pid}-Zq9`;

function filesUnder(dir: string): string {
  let out = '';
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir, { recursive: true }).map(String)) {
    const p = join(dir, name);
    try {
      if (statSync(p).isFile()) out += readFileSync(p, 'utf8');
    } catch {
      // a dangling symlink (current) or a file removed meanwhile
    }
  }
  return out;
}

describe('dist/deploy over the real sshd, dockerd and registry', () => {
  const env = testEnv();
  const app = webApp();
  let root = '';
  const m: Manifest[] = [];
  let github: StandinServer;
  const GH_TOKEN = `ghs_standin_${process.pid}`;
  before(async () => {
    // GitHub's REST API for deployments, as GITHUB_API_URL points to it (GHES works the same way).
    let next = 1;
    github = await startStandin((req, res) => {
      if (req.headers.authorization !== `token ${GH_TOKEN}`) return sendJson(res, 401, { message: 'Bad credentials' });
      if (req.method === 'POST' && req.url === '/repos/acme/shop/deployments')
        return sendJson(res, 201, { id: next++ });
      if (req.method === 'POST' && /^\/repos\/acme\/shop\/deployments\/\d+\/statuses$/.test(req.url))
        return sendJson(res, 201, { id: 1 });
      sendJson(res, 404, { message: 'Not Found' });
    });
    root = mkdtempSync(join(tmpdir(), 'lading-ssh-root-'));
    m.push(app.version(1), app.version(2), app.version(3, { healthy: false }), app.version(4));
  });
  after(async () => {
    await github.close();
    removeProject(app.project);
    rmSync(root, { recursive: true, force: true });
  });
  const inputs = (extra: Record<string, string>) => ({
    hosts: `root@${env.ssh.host}:${env.ssh.port}`,
    'ssh-key': readFileSync(env.ssh.privateKey, 'utf8'),
    'known-hosts': readFileSync(env.ssh.knownHosts, 'utf8'),
    root,
    'health-timeout': '30',
    'health-stable': '2',
    username: 'deployer',
    password: SECRET,
    registry: env.registry.host,
    ...extra,
  });
  const runEnv = { GITHUB_RUN_ID: '77', GITHUB_RUN_ATTEMPT: '1' };
  const deploy = (mf: Manifest, extra: Record<string, string> = {}) =>
    runActionBundleAsync('deploy', {
      inputs: inputs({ manifest: app.writeManifest(mf), 'github-token': GH_TOKEN, environment: 'staging', ...extra }),
      env: { ...runEnv, GITHUB_API_URL: github.url, GITHUB_REPOSITORY: 'acme/shop' },
    });
  /** The deployment statuses GitHub was sent, in order. */
  const statuses = () =>
    github.requests.filter((r) => r.url.endsWith('/statuses')).map((r) => JSON.parse(r.body).state as string);
  const noSecret = (run: ActionRun) => {
    assert.ok(!run.stdout.replace(/^::add-mask::.*$/gm, '').includes(SECRET), 'secret in the log');
    assert.ok(!JSON.stringify(run.outputs).includes(SECRET), 'secret in outputs');
    assert.ok(!run.summary.includes(SECRET), 'secret in the summary');
  };

  it('deploys v1 then v2; outputs, summary, history; no credential left anywhere', async () => {
    const v1 = await deploy(m[0]!);
    assert.equal(v1.code, 0, v1.stdout + v1.stderr);
    assert.equal(await app.probe(), 'v1');
    const v2 = await deploy(m[1]!);
    assert.equal(v2.code, 0, v2.stdout + v2.stderr);
    assert.equal(await app.probe(), 'v2');
    assert.equal(v2.outputs.status, 'success');
    assert.equal(v2.outputs['previous-release'], v1.outputs.release);
    assert.equal(JSON.parse(v2.outputs.hosts!)[0].status, 'deployed');
    assert.match(v2.summary, /deployed/);
    for (const run of [v1, v2]) noSecret(run);
    assert.ok(!filesUnder(root).includes(SECRET), 'secret in a file on the host');
    assert.deepEqual(statuses(), ['in_progress', 'success', 'in_progress', 'success']);
    const created = JSON.parse(github.requests.find((r) => r.url === '/repos/acme/shop/deployments')!.body);
    assert.equal(created.ref, m[0]!.source.sha);
    assert.equal(created.environment, 'staging');
    for (const run of [v1, v2]) assert.ok(!run.stdout.replace(/^::add-mask::.*$/gm, '').includes(GH_TOKEN));
    const dockerConfig = join(process.env.HOME ?? '/root', '.docker', 'config.json');
    if (existsSync(dockerConfig)) assert.ok(!readFileSync(dockerConfig, 'utf8').includes(env.registry.host));
  });

  it('a broken v3 is rolled back automatically: the step fails, v2 keeps serving', async () => {
    const run = await deploy(m[2]!);
    assert.equal(run.code, 1);
    assert.deepEqual(statuses().slice(-2), ['in_progress', 'failure']);
    assert.match(run.stdout, /::error::deploy failed on 1 of 1 host\(s\):%0A.*rolled-back — .*unhealthy/);
    assert.equal(await app.probe(), 'v2');
    noSecret(run);
  });

  it('rolls back to v1 by tag, lists releases', async () => {
    const run = runActionBundle('deploy', {
      inputs: inputs({ command: 'rollback', to: 'v1-abcdef0', project: app.project }),
      env: runEnv,
    });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.equal(await app.probe(), 'v1');
    const rel = runActionBundle('deploy', {
      inputs: inputs({ command: 'releases', project: app.project }),
      env: runEnv,
    });
    assert.equal(rel.code, 0, rel.stdout + rel.stderr);
    const [host] = JSON.parse(rel.outputs.hosts!);
    assert.ok(host.current.endsWith('v1-abcdef0'));
    assert.deepEqual(
      host.history.map((h: { action: string }) => h.action),
      ['deploy', 'deploy', 'deploy', 'auto-rollback', 'rollback'],
    );
  });

  it('refuses a wrong host key before touching the host', () => {
    const before = readdirSync(join(root, app.project, 'releases')).length;
    const wrong = readFileSync(env.ssh.knownHosts, 'utf8').replace(
      /AAAA[A-Za-z0-9+/]{20}/g,
      'AAAAC3NzaC1lZDI1NTE5AAAAIOp2m5x1',
    );
    const run = runActionBundle('deploy', {
      inputs: inputs({ manifest: app.writeManifest(m[3]!), 'known-hosts': wrong }),
      env: runEnv,
    });
    assert.equal(run.code, 1);
    assert.match(run.stdout, /does not match known_hosts|no known_hosts entry/);
    assert.equal(readdirSync(join(root, app.project, 'releases')).length, before);
    const none = runActionBundle('deploy', {
      inputs: inputs({ manifest: app.writeManifest(m[3]!), 'known-hosts': '' }),
      env: runEnv,
    });
    assert.equal(none.code, 1);
    assert.match(none.stdout, /::error::input 'known-hosts': is empty: lading pins host keys/);
  });

  it('two deploys at once are serialized by the lock', async () => {
    const [a, b] = await Promise.all([
      runActionBundleAsync('deploy', {
        inputs: inputs({ manifest: app.writeManifest(m[3]!), 'run-id': 'a' }),
        env: runEnv,
      }),
      runActionBundleAsync('deploy', {
        inputs: inputs({ manifest: app.writeManifest(m[1]!), 'run-id': 'b' }),
        env: runEnv,
      }),
    ]);
    assert.equal(a.code, 0, a.stdout);
    assert.equal(b.code, 0, b.stdout);
    assert.match(a.stdout + b.stdout, /waiting for the lock held by (a|b)-[0-9a-f]{8} /);
  });

  it('a deploy killed mid-way leaves the old release serving, and its lock is broken after the TTL', async () => {
    const serving = await app.probe();
    const child = spawn(process.execPath, [bundle('deploy')], {
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/root',
        ...runEnv,
        ...Object.fromEntries(
          Object.entries(inputs({ manifest: app.writeManifest(m[0]!), 'lock-ttl': '10', 'run-id': 'killed' })).map(
            ([k, v]) => [`INPUT_${k.toUpperCase()}`, v],
          ),
        ),
      },
    });
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (c: Buffer) => {
        if (/lock taken by killed/.test(c.toString())) {
          child.kill('SIGKILL');
          resolve();
        }
      });
      child.on('close', () => resolve());
    });
    assert.ok(existsSync(join(root, app.project, '.lock')), 'the killed run left its lock');
    assert.equal(await app.probe(), serving);
    const next = runActionBundle('deploy', {
      inputs: inputs({ manifest: app.writeManifest(m[3]!), 'lock-wait': '60' }),
      env: runEnv,
    });
    assert.equal(next.code, 0, next.stdout);
    assert.match(next.stdout, /broke a stale lock held by killed/);
    assert.equal(await app.probe(), 'v4');
  });
});
