import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { authPassword, busyboxContext, docker, sshRun, testEnv, unique } from '../helpers/testenv.ts';

const ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

async function registryDigest(host: string, repo: string, ref: string, auth?: string): Promise<string> {
  const headers: Record<string, string> = { Accept: ACCEPT };
  if (auth) headers.Authorization = `Basic ${Buffer.from(auth).toString('base64')}`;
  const res = await fetch(`http://${host}/v2/${repo}/manifests/${ref}`, { method: 'HEAD', headers });
  assert.equal(res.status, 200, `HEAD manifest ${repo}:${ref}`);
  return res.headers.get('docker-content-digest') ?? '';
}

describe('the tool chain the features stand on (real dockerd, registry, sshd)', () => {
  let dir = '';
  const env = testEnv();
  const repo = `lading-it/${unique('toolchain')}`;
  const image = `${env.registry.host}/${repo}:v1`;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'lading-toolchain-'));
    busyboxContext(dir, { files: { 'hello.txt': `hello ${repo}\n` } });
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('builds a FROM-scratch busybox image, pushes it, and the registry and skopeo agree on its digest', async () => {
    docker(['build', '-q', '-t', image, dir]);
    docker(['push', '-q', image]);
    const digest = await registryDigest(env.registry.host, repo, 'v1');
    assert.match(digest, /^sha256:[0-9a-f]{64}$/);
    const skopeo = execFileSync(
      'skopeo',
      ['inspect', '--tls-verify=false', '--format', '{{.Digest}}', `docker://${image}`],
      { encoding: 'utf8' },
    ).trim();
    assert.equal(skopeo, digest);
    const repoDigests = docker(['image', 'inspect', '--format', '{{json .RepoDigests}}', image]);
    assert.ok(JSON.parse(repoDigests).includes(`${env.registry.host}/${repo}@${digest}`));
  });

  it('pulls it back by digest through dockerd over the sshd, and runs it', async () => {
    const digest = await registryDigest(env.registry.host, repo, 'v1');
    docker(['rmi', image]);
    const pinned = `${env.registry.host}/${repo}@${digest}`;
    const pulled = sshRun(
      `docker pull -q ${pinned} && docker run --rm --network host ${pinned} /bin/busybox cat /srv/hello.txt`,
    );
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.match(pulled.stdout, new RegExp(`hello ${repo}`));
    assert.ok(sshRun('docker-compose version --short').stdout.trim().length > 0, 'docker-compose on the host');
  });

  it('the sshd refuses a client that does not pin its host key', () => {
    const res = spawnSync(
      'ssh',
      [
        '-F',
        '/dev/null',
        '-o',
        'BatchMode=yes',
        '-o',
        'StrictHostKeyChecking=yes',
        '-o',
        'UserKnownHostsFile=/dev/null',
        '-i',
        env.ssh.privateKey,
        '-p',
        String(env.ssh.port),
        `${env.ssh.user}@${env.ssh.host}`,
        'true',
      ],
      { encoding: 'utf8' },
    );
    assert.notEqual(res.status, 0);
    assert.match(res.stderr, /Host key verification failed/);
  });

  it('the htpasswd registry refuses anonymous pushes and accepts a login on stdin', async () => {
    const authImage = `${env.authRegistry.host}/${repo}:v1`;
    docker(['tag', env.testImage, authImage]);
    const config = mkdtempSync(join(tmpdir(), 'lading-docker-config-'));
    try {
      assert.throws(
        () => docker(['--config', config, 'push', authImage]),
        /no basic auth credentials|unauthorized|authentication required/,
      );
      docker(
        ['--config', config, 'login', '-u', env.authRegistry.username, '--password-stdin', env.authRegistry.host],
        {
          input: authPassword(),
        },
      );
      docker(['--config', config, 'push', '-q', authImage]);
      const digest = await registryDigest(
        env.authRegistry.host,
        repo,
        'v1',
        `${env.authRegistry.username}:${authPassword()}`,
      );
      assert.match(digest, /^sha256:/);
    } finally {
      rmSync(config, { recursive: true, force: true });
      docker(['rmi', '--no-prune', authImage]);
    }
  });

  it('s3rver answers with the test bucket', async () => {
    const res = await fetch(`${env.s3.endpoint}/`);
    assert.equal(res.status, 200);
    assert.match(await res.text(), new RegExp(`<Name>${env.s3.bucket}</Name>`));
  });
});

describe('scripts/testenv.sh', () => {
  it('is idempotent and fast when everything is up, and keeps the running services', () => {
    const root = testEnv().root;
    const pids = () => execFileSync('bash', ['-c', `cat ${root}/pids/*.pid`], { encoding: 'utf8' });
    const before = pids();
    const started = Date.now();
    execFileSync('bash', ['scripts/testenv.sh', 'up'], { stdio: 'pipe' });
    assert.ok(Date.now() - started < 5000, 'up is quick when all is running');
    assert.equal(pids(), before);
    const status = execFileSync('bash', ['scripts/testenv.sh', 'status'], { encoding: 'utf8' });
    for (const s of ['dockerd', 'registry', 'auth-registry', 'sshd', 's3rver'])
      assert.match(status, new RegExp(`^${s}: running`, 'm'));
  });
});
