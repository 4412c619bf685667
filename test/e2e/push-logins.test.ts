import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runActionBundle } from '../helpers/bundles.ts';
import { eventPath, githubEnv } from '../helpers/github.ts';
import { authPassword, busyboxContext, testEnv, unique } from '../helpers/testenv.ts';

// Logins the runner already has: what docker/login-action, amazon-ecr-login or gcloud left in the runner's docker
// config (an auths entry or a credential helper), and ghcr.io's GITHUB_TOKEN — against the htpasswd registry.
describe('dist/push logs in with what the runner already has', () => {
  const env = testEnv();
  const host = env.authRegistry.host;
  const image = `${host}/${unique('logins')}/app`;
  let ws = '';
  let build = '';
  const base = () => ({
    ...githubEnv('push', 'refs/heads/main', '5555555eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee'),
    GITHUB_EVENT_PATH: eventPath('push-main'),
    DOCKER_HOST: env.dockerHost,
  });
  /** A runner HOME whose ~/.docker/config.json is `config`; returns its path. */
  const home = (config: object): { home: string; file: string } => {
    const h = mkdtempSync(join(ws, 'home-'));
    mkdirSync(join(h, '.docker'));
    const file = join(h, '.docker', 'config.json');
    writeFileSync(file, JSON.stringify(config));
    return { home: h, file };
  };
  const push = (extraEnv: Record<string, string>, inputs: Record<string, string> = {}) =>
    runActionBundle('push', { inputs: { 'build-json': build, ...inputs }, env: { ...base(), ...extraEnv } });

  before(() => {
    ws = mkdtempSync(join(tmpdir(), 'lading-logins-'));
    busyboxContext(join(ws, 'app'), { files: { 'v.txt': image } });
    const run = runActionBundle('build', {
      inputs: { images: `- name: ${image}\n  context: app` },
      env: { ...base(), GITHUB_WORKSPACE: ws },
    });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    build = run.outputs.json!;
  });
  after(() => rmSync(ws, { recursive: true, force: true }));

  it('without credentials and without a login on the runner, the registry refuses, saying what to give', () => {
    const h = home({});
    const run = push({ HOME: h.home });
    assert.equal(run.code, 1);
    assert.match(run.stdout, /refused the push/);
  });

  it('uses the auths entry docker/login-action left in ~/.docker/config.json, and leaves that file as it was', () => {
    const auth = Buffer.from(`lading:${authPassword()}`).toString('base64');
    const h = home({ auths: { [host]: { auth } } });
    const before = readFileSync(h.file, 'utf8');
    const run = push({ HOME: h.home });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /using the login in .*config\.json \(lading\)/);
    assert.match(run.outputs.refs!, new RegExp(`^${image}@sha256:`));
    assert.equal(readFileSync(h.file, 'utf8'), before);
    assert.ok(run.stdout.includes(`::add-mask::${authPassword()}`), 'the password is masked');
  });

  it('asks the credential helper the config names (credHelpers), with DOCKER_CONFIG', () => {
    const bin = mkdtempSync(join(ws, 'bin-'));
    const log = join(bin, 'asked');
    // A docker-credential-* helper reads the server on stdin and answers {Username, Secret}.
    writeFileSync(
      join(bin, 'docker-credential-ladingtest'),
      `#!/bin/sh\nread -r server\necho "$1 $server" >> '${log}'\nprintf '{"ServerURL":"%s","Username":"lading","Secret":"%s"}' "$server" "$(cat '${env.authRegistry.passwordFile}')"\n`,
    );
    chmodSync(join(bin, 'docker-credential-ladingtest'), 0o755);
    const h = home({ credHelpers: { [host]: 'ladingtest' } });
    const run = push({ DOCKER_CONFIG: join(h.home, '.docker'), PATH: `${bin}:${process.env.PATH}` });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(readFileSync(log, 'utf8'), new RegExp(`^get ${host.replace(/\./g, '\\.')}$`, 'm'));
    assert.match(run.stdout, /using docker-credential-ladingtest \(lading\)/);
  });

  it('ghcr provider: logs in as GITHUB_ACTOR with the github-token input', () => {
    const h = home({});
    const run = push(
      { HOME: h.home, GITHUB_ACTOR: 'lading' },
      { 'registry-providers': `${host}=ghcr`, 'github-token': authPassword() },
    );
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /logging in as lading with the workflow's GITHUB_TOKEN/);
    assert.ok(run.stdout.includes(`::add-mask::${authPassword()}`), 'the token is masked');
  });

  it('explicit username/password win over the runner config', () => {
    const h = home({ auths: { [host]: { auth: Buffer.from('lading:wrong').toString('base64') } } });
    const run = push({ HOME: h.home }, { username: 'lading', password: authPassword() });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.doesNotMatch(run.stdout, /using the login in/);
  });
});
