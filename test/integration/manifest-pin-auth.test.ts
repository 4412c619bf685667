import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RegistryClient } from '../../src/io/registry-client.ts';
import type { Reporter } from '../../src/io/reporter.ts';
import { LadingError } from '../../src/lib/errors.ts';
import { runManifestStage } from '../../src/stages/manifest.ts';
import type { PushResult } from '../../src/stages/push.ts';
import { authPassword, docker, testEnv, unique } from '../helpers/testenv.ts';

// pin-external against a registry that needs credentials (the htpasswd registry of the test env): the login the
// runner's docker config files under that registry is used for it, and for no other registry.
const env = testEnv();
const AUTH = env.authRegistry.host;
const PLAIN = env.registry.host;
const root = mkdtempSync(join(tmpdir(), 'lading-pin-auth-'));
const repoName = unique('pinauth').toLowerCase();
const image = `${AUTH}/thirdparty/${repoName}:7`;
let expected = '';

/** A docker config folder whose config.json files `password` under `host` (what docker login leaves). */
function dockerConfig(name: string, host: string | undefined): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  const auth = Buffer.from(`${env.authRegistry.username}:${authPassword()}`).toString('base64');
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ auths: host ? { [host]: { auth } } : {} }));
  return dir;
}

const pushed = {
  context: {
    provider: 'local',
    event: 'push',
    repository: 'o/r',
    repositoryUrl: '',
    ref: 'refs/heads/main',
    sha: 'a'.repeat(40),
  },
  tags: ['main-aaaaaaa'],
  primary: 'main-aaaaaaa',
  channel: 'main',
  images: [
    {
      id: 'app',
      services: ['app'],
      name: `${PLAIN}/o/app`,
      tags: ['main-aaaaaaa'],
      digest: `sha256:${'b'.repeat(64)}`,
      ref: `${PLAIN}/o/app@sha256:${'b'.repeat(64)}`,
      registry: PLAIN,
      provider: 'generic',
      platforms: [],
      dependsOn: [],
    },
  ],
  composeFiles: ['docker-compose.yml'],
} as unknown as PushResult;

async function manifest(dockerConfigDir: string, logs: string[] = []) {
  const reporter: Reporter = {
    info: (l: string) => logs.push(l),
    warn: (l: string) => logs.push(l),
    secret: () => {},
  } as unknown as Reporter;
  return runManifestStage({
    inputs: {
      composeEnv: [],
      composeEnvFiles: [],
      composeResolver: 'builtin',
      bundleSizeLimit: 50 * 1048576,
      pinExternal: true,
      path: join(root, 'manifest.json'),
      storeOptions: {},
    },
    pushed,
    env: { DOCKER_CONFIG: dockerConfigDir, HOME: root },
    cwd: root,
    reporter,
  });
}

describe('pin-external against a registry that needs credentials', () => {
  before(async () => {
    writeFileSync(
      join(root, 'docker-compose.yml'),
      `services:\n  app:\n    image: ${PLAIN}/o/app:main-aaaaaaa\n    build: .\n  kv:\n    image: ${image}\n`,
    );
    const login = dockerConfig('push', AUTH);
    docker(['tag', env.testImage, image]);
    docker(['--config', login, 'push', '-q', image]);
    const client = new RegistryClient(AUTH, {
      credential: { host: AUTH, username: env.authRegistry.username, password: authPassword(), provider: 'generic' },
    });
    expected = (await client.manifestDigest(`thirdparty/${repoName}`, '7')).digest;
  });
  after(() => {
    try {
      docker(['rmi', '--no-prune', image]);
    } catch {
      // already gone
    }
    rmSync(root, { recursive: true, force: true });
  });

  it('resolves the image to its digest with the login the docker config holds for that registry', async () => {
    const logs: string[] = [];
    const { manifest: m } = await manifest(dockerConfig('runner', AUTH), logs);
    assert.equal(m.compose!.pins!.kv, `${AUTH}/thirdparty/${repoName}@${expected}`);
    assert.ok(logs.some((l) => l.includes(`registry ${AUTH}: using the login in`)));
    assert.ok(!logs.join('\n').includes(authPassword()), 'the password is never logged');
  });

  it('fails clearly without credentials, naming the registry and how to log in', async () => {
    await assert.rejects(manifest(dockerConfig('anonymous', undefined)), (err: unknown) => {
      assert.ok(err instanceof LadingError);
      const text = err.describe();
      assert.match(
        text,
        new RegExp(`pin-external: cannot resolve ${image.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(service kv\\)`),
      );
      assert.match(text, new RegExp(`${AUTH} needs credentials: log in to it before this step`));
      return true;
    });
  });

  it('never sends a login filed under another registry (the valid password stays with its own host)', async () => {
    await assert.rejects(manifest(dockerConfig('other-host', PLAIN)), (err: unknown) => {
      assert.ok(err instanceof LadingError);
      assert.match(err.describe(), /needs credentials/);
      return true;
    });
  });
});
