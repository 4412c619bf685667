import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../helpers/bundles.ts';
import { busyboxContext, docker, imageFile as fileIn, testEnv, unique } from '../helpers/testenv.ts';

// Debian's docker 20.10 client has the engine's BuildKit built in (DOCKER_BUILDKIT=1): /usr/bin first on PATH.
// Next to it sits docker-compose v1, which predates build.secrets: the project is read by lading's own compose
// model (compose-resolver builtin, held to compose v2 by the differential corpus).
const BUILDKIT_PATH = `/usr/bin:${process.env.PATH ?? '/bin'}`;
const FILE_SECRET = `file-s3cr3t-${unique('f')}`;
const ENV_SECRET = `env-s3cr3t-${unique('e')}`;

describe('compose build.secrets reach the build through the engine BuildKit (lading build)', () => {
  const env = testEnv();
  const name = `${env.registry.host}/${unique('bsec')}/app`;
  let repo = '';
  const git = (...args: string[]) => execFileSync('git', args, { cwd: repo, encoding: 'utf8' }).trim();

  before(() => {
    repo = mkdtempSync(join(tmpdir(), 'lading-bsec-'));
    git('init', '-q', '-b', 'main');
    git('config', 'user.email', 't@example.com');
    git('config', 'user.name', 'T');
    busyboxContext(join(repo, 'app'), {
      extra: [
        `ARG NONCE=${unique('n')}`,
        // the secrets are readable during the build: their lengths go into the image, never their values
        'RUN --mount=type=secret,id=s,required=true ["/bin/busybox", "sh", "-c", "/bin/busybox wc -c < /run/secrets/s > /s-length"]',
      ],
    });
    writeFileSync(join(repo, 's.txt'), FILE_SECRET);
    writeFileSync(
      join(repo, 'docker-compose.yml'),
      [
        'services:',
        '  app:',
        `    image: ${name}:\${DOCKER_TAG:-latest}`,
        '    build:',
        '      context: ./app',
        '      secrets: [s]',
        'secrets:',
        '  s:',
        '    file: ./s.txt',
        '',
      ].join('\n'),
    );
    writeFileSync(join(repo, '.gitignore'), 's.txt\n');
    git('add', '.');
    git('commit', '-qm', 'init');
  });
  after(() => rmSync(repo, { recursive: true, force: true }));

  it('builds with the file secret mounted in RUN, and keeps them out of the image and its history', () => {
    const res = runCli(
      [
        'build',
        '--compose-files',
        'docker-compose.yml',
        '--compose-resolver',
        'builtin',
        '--network',
        'host',
        '--json',
      ],
      {
        cwd: repo,
        env: {
          DOCKER_HOST: env.dockerHost,
          GITHUB_ACTIONS: undefined,
          PATH: BUILDKIT_PATH,
          TOKEN_ENV: ENV_SECRET,
        },
      },
    );
    assert.equal(res.code, 0, `lading build: ${res.stderr}\n${res.stdout}`);
    const built = JSON.parse(res.stdout) as { images: Array<{ id: string; tags: string[] }>; primary: string };
    const ref = `${name}:${built.primary}`;
    assert.ok(fileIn(ref, '/s-length').includes(`\0${FILE_SECRET.length}\n`), 'RUN read the file secret');
    for (const secret of [FILE_SECRET]) {
      assert.ok(!res.stdout.includes(secret) && !res.stderr.includes(secret), 'not in the log');
      assert.ok(!docker(['history', '--no-trunc', ref]).includes(secret), 'not in the history');
      assert.ok(!docker(['image', 'inspect', ref]).includes(secret), 'not in the config');
    }
    const saved = execFileSync('docker', ['save', ref], {
      env: { ...process.env, DOCKER_HOST: env.dockerHost },
      maxBuffer: 64 << 20,
    });
    assert.equal(saved.includes(Buffer.from(FILE_SECRET)), false, 'the file secret is in no layer');
    docker(['rmi', '--no-prune', ref]);
  });

  it('refuses a secret from the environment on the engine BuildKit, naming the service and what to add', () => {
    writeFileSync(
      join(repo, 'docker-compose.env.yml'),
      [
        'services:',
        '  app:',
        `    image: ${name}:\${DOCKER_TAG:-latest}`,
        '    build:',
        '      context: ./app',
        '      secrets: [t]',
        'secrets:',
        '  t:',
        '    environment: TOKEN_ENV',
        '',
      ].join('\n'),
    );
    const res = runCli(
      ['build', '--compose-files', 'docker-compose.env.yml', '--compose-resolver', 'builtin', '--json'],
      {
        cwd: repo,
        env: { DOCKER_HOST: env.dockerHost, GITHUB_ACTIONS: undefined, PATH: BUILDKIT_PATH, TOKEN_ENV: ENV_SECRET },
      },
    );
    assert.notEqual(res.code, 0);
    assert.match(
      res.stderr,
      /'app' uses build\.secrets \(a secret from the environment\).*add docker\/setup-buildx-action/,
    );
    assert.ok(!res.stdout.includes(ENV_SECRET) && !res.stderr.includes(ENV_SECRET), 'not in the log');
  });
});

describe('a failed build that printed its secret (lading build)', () => {
  const env = testEnv();
  const name = `${env.registry.host}/${unique('bleak')}/app`;
  const SECRET = `leak-s3cr3t-${unique('l')}`;
  let repo = '';
  const git = (...args: string[]) => execFileSync('git', args, { cwd: repo, encoding: 'utf8' }).trim();

  before(() => {
    repo = mkdtempSync(join(tmpdir(), 'lading-bleak-'));
    git('init', '-q', '-b', 'main');
    git('config', 'user.email', 't@example.com');
    git('config', 'user.name', 'T');
    busyboxContext(join(repo, 'app'), {
      extra: [
        `ARG NONCE=${unique('n')}`,
        'RUN --mount=type=secret,id=tok ["/bin/busybox", "sh", "-c", "/bin/busybox cat /run/secrets/tok; exit 3"]',
      ],
    });
    git('add', '.');
    git('commit', '-qm', 'init');
  });
  after(() => rmSync(repo, { recursive: true, force: true }));

  it("fails with the build's last log lines, the secret in them masked on stderr", () => {
    const res = runCli(
      ['build', '--images', `- { name: ${name}, context: app }`, '--secret-envs', 'tok=TOKEN_ENV', '--network', 'host'],
      {
        cwd: repo,
        env: { DOCKER_HOST: env.dockerHost, GITHUB_ACTIONS: undefined, PATH: BUILDKIT_PATH, TOKEN_ENV: SECRET },
      },
    );
    assert.equal(res.code, 1, res.stderr);
    assert.match(res.stderr, /\*\*\*/, 'the masked secret shows where the build printed it');
    assert.ok(!res.stdout.includes(SECRET) && !res.stderr.includes(SECRET), `the secret on stderr: ${res.stderr}`);
  });
});
