import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { serializeManifest } from '../../src/lib/manifest.ts';
import { bundle, runCli } from '../helpers/bundles.ts';
import { webApp } from '../helpers/deploy-fixture.ts';
import { removeProject, testEnv } from '../helpers/testenv.ts';

describe('the CLI bundle: lading agent (--once and as a service) and lading notify', () => {
  const env = testEnv();
  const app = webApp();
  let dir = '';
  let root = '';
  let store = '';
  let agent: ChildProcess | undefined;
  const secret = 'e2e-shared-secret-0123456789abcdef';
  const cliEnv = { DOCKER_HOST: env.dockerHost };
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'lading-e2e-agent-'));
    root = join(dir, 'root');
    store = join(dir, 'store');
    mkdirSync(join(store, 'manifests', 'channels'), { recursive: true });
    writeFileSync(join(dir, 'secret'), `${secret}\n`, { mode: 0o600 });
    writeFileSync(
      join(dir, 'agent.yml'),
      `channel: latest
manifest:
  store: ${store}
deploy:
  root: ${root}
  health-timeout: 20
  health-stable: 1
poll:
  interval: 3600
webhook:
  listen: 127.0.0.1:0
  secret-file: ${join(dir, 'secret')}
`,
    );
    // The cron agent: the channel to read and how to deploy, nothing to listen or poll with.
    writeFileSync(
      join(dir, 'cron.yml'),
      `channel: latest\nmanifest:\n  store: ${store}\ndeploy:\n  root: ${root}\n  health-timeout: 20\n  health-stable: 1\n`,
    );
  });
  after(() => {
    agent?.kill('SIGKILL');
    try {
      removeProject(app.project);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('--once (a cron agent: no poll or webhook section) deploys the channel manifest, then finds it unchanged', () => {
    writeFileSync(join(store, 'manifests', 'channels', 'latest.json'), serializeManifest(app.version(1)));
    const first = runCli(['agent', '--config', join(dir, 'cron.yml'), '--once'], { env: cliEnv });
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /^deployed\tv1-abcdef0\t/);
    const again = runCli(['agent', '--config', join(dir, 'cron.yml'), '--once'], { env: cliEnv });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /^unchanged\t/);
  });

  it('on the pull-mode host itself, releases and status with --root and no --hosts read the local releases', () => {
    const releases = runCli(['releases', '--project', app.project, '--root', root], { env: cliEnv });
    assert.equal(releases.code, 0, releases.stderr);
    assert.match(releases.stdout, /^localhost: current \d{8}T\d{6}Z-v1-abcdef0/);
    assert.doesNotMatch(releases.stderr, /ssh-key/);
    const status = runCli(['status', '--project', app.project, '--root', root], { env: cliEnv });
    assert.equal(status.code, 0, status.stdout + status.stderr);
    assert.match(status.stdout, /v1-abcdef0/);
    const noRoot = runCli(['releases', '--project', app.project], { env: cliEnv });
    assert.notEqual(noRoot.code, 0, 'without --root it still asks for hosts');
  });

  it('as a service: notify sends a signed manifest, the agent deploys it, and SIGTERM stops it cleanly', async () => {
    const child = spawn(process.execPath, [bundle('cli'), 'agent', '--config', join(dir, 'agent.yml')], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...cliEnv },
    });
    agent = child;
    let stderr = '';
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr!.on('data', (c: Buffer) => {
        stderr += c.toString('utf8');
        const m = /webhook listening on (http:\/\/\S+)/.exec(stderr);
        if (m) resolve(m[1]!);
      });
      child.on('exit', (code) => reject(new Error(`the agent exited (${code}): ${stderr}`)));
    });
    const file = app.writeManifest(app.version(2));
    const sent = runCli(['notify', '--url', url, '--secret-file', join(dir, 'secret'), '--manifest', file]);
    assert.equal(sent.code, 0, sent.stderr);
    assert.match(sent.stdout, /^202\t/);
    const wrong = runCli(['notify', '--url', url, '--manifest', file], {
      env: { LADING_SECRET: 'a-wrong-secret-of-some-length' },
    });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stdout, /^401\t/);
    const deadline = Date.now() + 60_000;
    while ((await app.probe().catch(() => '')) !== 'v2' && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 300));
    assert.equal(await app.probe(), 'v2');
    while (!/deployed v2-abcdef0/.test(stderr) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    agent = undefined;
    assert.equal(code, 0, stderr);
    assert.doesNotMatch(stderr, new RegExp(secret));
  });

  it('notify: a secret shorter than the agent takes is an input error before anything is sent', () => {
    const file = app.writeManifest(app.version(3));
    // port 9 on loopback: nothing listens, so reaching the send would fail differently
    const res = runCli(['notify', '--url', 'http://127.0.0.1:9/', '--manifest', file], {
      env: { LADING_SECRET: 'too-short' },
    });
    assert.equal(res.code, 2, res.stderr);
    assert.match(res.stderr, /LADING_SECRET: holds 9 characters: a webhook secret has at least 16/);
  });

  it('notify: an unreadable <manifest>.sig is an input error before anything is sent (a missing one sends unsigned)', () => {
    const file = app.writeManifest(app.version(3));
    rmSync(`${file}.sig`, { force: true });
    mkdirSync(`${file}.sig`); // a directory: readFile fails with EISDIR
    try {
      // port 9 on loopback: nothing listens, so reaching the send would fail differently
      const res = runCli([
        'notify',
        '--url',
        'http://127.0.0.1:9/',
        '--secret-file',
        join(dir, 'secret'),
        '--manifest',
        file,
      ]);
      assert.equal(res.code, 2, res.stderr);
      assert.match(res.stderr, /--manifest: has a signature file .*\.sig that cannot be read \(EISDIR\)/);
    } finally {
      rmSync(`${file}.sig`, { recursive: true, force: true });
    }
  });

  it('refuses a config with a public plain-HTTP webhook (exit 2, naming the key)', () => {
    writeFileSync(
      join(dir, 'bad.yml'),
      `manifest: { store: ${store} }\nwebhook: { listen: "0.0.0.0:8080", secret-env: X }\n`,
    );
    const res = runCli(['agent', '--config', join(dir, 'bad.yml'), '--once']);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /input 'webhook.tls-cert'/);
  });
});
