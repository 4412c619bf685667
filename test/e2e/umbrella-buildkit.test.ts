import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runJsAction } from '../helpers/js-action.ts';
import { eventPath, githubEnv } from '../helpers/github.ts';
import { busyboxContext, docker, imageFile as fileIn, testEnv, unique } from '../helpers/testenv.ts';

const SHA = '860c1904a1ce19322e91ac35af1ab07466440c37';
// Debian's docker 20.10 client has the engine's BuildKit built in (DOCKER_BUILDKIT=1); the 28.x client on PATH
// here has no buildx. Putting /usr/bin first is how this machine gets a BuildKit-capable client without buildx.
const BUILDKIT_PATH = `/usr/bin:${process.env.PATH ?? '/bin'}`;
const SECRET = `s3cr3t-${unique('tok')}`;
const NONCE = unique('nonce');

describe('the umbrella action builds with BuildKit: RUN --mount secrets and caches, on the test dockerd', () => {
  const env = testEnv();
  const name = `${env.registry.host}/${unique('bk')}/app`;
  let ws = '';
  const runEnv = () => ({
    ...githubEnv('push', 'refs/heads/main', SHA),
    GITHUB_EVENT_PATH: eventPath('push-main'),
    GITHUB_WORKSPACE: ws,
    DOCKER_HOST: env.dockerHost,
    PATH: BUILDKIT_PATH,
  });
  before(() => {
    ws = mkdtempSync(join(tmpdir(), 'lading-bk-'));
    busyboxContext(join(ws, 'app'), {
      extra: [
        // a fresh build per test run (BuildKit's cache key of a RUN does not include the secret)
        'ARG NONCE',
        // the secret is readable during the build: its length goes into the image, never its value
        'RUN --mount=type=secret,id=token,required=true ["/bin/busybox", "sh", "-c", "/bin/busybox wc -c < /run/secrets/token > /secret-length"]',
        // the cache mount survives between builds: each build of this step (RUN_NO changes) appends one line
        'ARG RUN_NO',
        'RUN --mount=type=cache,target=/cache ["/bin/busybox", "sh", "-c", "echo run >> /cache/runs; /bin/busybox cp /cache/runs /runs"]',
      ],
    });
  });
  after(() => rmSync(ws, { recursive: true, force: true }));

  it('mounts the secret and the cache; the secret is in neither the image, its history nor the pushed layers', () => {
    const build = (n: number) =>
      runJsAction('', {
        inputs: {
          'build-args': `RUN_NO=${n}\nNONCE=${NONCE}`,
          images: `- name: ${name}\n  context: app`,
          secrets: `token=${SECRET}`,
          network: 'host',
        },
        env: runEnv(),
      });
    const first = build(1);
    assert.equal(first.code, 0, first.stdout + first.stderr);
    assert.match(first.stdout, /the engine's BuildKit/);
    const second = build(2);
    assert.equal(second.code, 0, second.stdout + second.stderr);
    const ref = `${name}:main-860c190`;
    assert.equal(fileIn(ref, '/secret-length').includes(`${SECRET.length}\n`), true, 'the RUN step read the secret');
    assert.equal((fileIn(ref, '/runs').match(/run\n/g) ?? []).length >= 2, true, 'the cache mount kept the first run');
    // The runner masks it (::add-mask:: is consumed by the runner, never shown); no other line carries it.
    assert.ok(first.stdout.includes(`::add-mask::${SECRET}`), 'masked');
    for (const out of [first.stdout, first.stderr, second.stdout]) {
      const lines = out.split('\n').filter((l) => l.includes(SECRET) && !l.startsWith('::add-mask::'));
      assert.deepEqual(lines, [], 'not in the log');
    }
    assert.ok(!docker(['history', '--no-trunc', ref]).includes(SECRET), 'not in the history');
    assert.ok(!docker(['image', 'inspect', ref]).includes(SECRET), 'not in the config');
    const saved = execFileSync('docker', ['save', ref], {
      env: { ...process.env, DOCKER_HOST: env.dockerHost },
      maxBuffer: 64 << 20,
    });
    assert.equal(saved.includes(Buffer.from(SECRET)), false, 'not in any layer');
    const manifest = JSON.parse(first.outputs.manifest!);
    assert.equal(manifest.images[0].name, name);
    assert.match(second.outputs.refs!, new RegExp(`^${name}@sha256:`));
    // nothing of the secret left in RUNNER_TEMP
    for (const run of [first, second]) {
      const left = spawnSync('grep', ['-rl', SECRET, run.runnerTemp], { encoding: 'utf8' });
      assert.equal(left.stdout.trim(), '', 'no file with the secret is left behind');
    }
  });

  it('push: false on a pull request builds and publishes nothing', () => {
    const prName = `${env.registry.host}/${unique('bkpr')}/app`;
    const run = runJsAction('', {
      inputs: {
        images: `- name: ${prName}\n  context: app`,
        secrets: `token=${SECRET}`,
        network: 'host',
        push: 'false',
      },
      env: {
        ...runEnv(),
        ...githubEnv('pull_request', 'refs/pull/7/merge', SHA),
        GITHUB_EVENT_PATH: eventPath('pull_request'),
      },
    });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.equal(run.outputs.refs, '');
    assert.equal(run.outputs['manifest-path'], '');
    assert.match(run.outputs.tags!, /pr-/);
    const listed = spawnSync('skopeo', ['list-tags', '--tls-verify=false', `docker://${prName}`], { encoding: 'utf8' });
    assert.notEqual(listed.status, 0, `the registry has nothing under ${prName}: ${listed.stdout}`);
  });

  it('without buildx or a built-in BuildKit, a RUN --mount Dockerfile fails before building, saying what to add', () => {
    const run = runJsAction('', {
      inputs: { images: `- name: ${name}\n  context: app`, secrets: `token=${SECRET}` },
      env: { ...runEnv(), PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin' },
    });
    assert.equal(run.code, 1);
    assert.match(run.stdout, /uses BuildKit syntax \(RUN --mount.*docker\/setup-buildx-action/s);
  });
});
