import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseManifest } from '../../src/lib/manifest.ts';
import { runCli } from '../helpers/bundles.ts';
import { busyboxContext, docker, freePort, removeProject, sshHostArgs, testEnv, unique } from '../helpers/testenv.ts';

/**
 * A compose project written the way real ones are, never shaped for lading: a project .env with the registry,
 * YAML anchors with <<: merge keys, ${VAR:?message} in image:, an env_file, a bind-mounted config folder, the
 * default network with a published port, a named volume, a one-off migrate service the others wait for
 * (service_completed_successfully), a healthcheck-gated dependency on a third-party image the app does not build,
 * and a profile that stays off. It goes through lading build → push → manifest → deploy unchanged, twice.
 */
describe('a real compose project deploys unchanged (build → push → manifest → deploy, twice)', () => {
  const env = testEnv();
  const ns = `${env.registry.host}/${unique('proj')}`;
  const project = unique('realapp').replace(/[^a-z0-9-]/g, '-');
  let port = 0;
  let repo = '';
  let root = '';
  const git = (...args: string[]) => execFileSync('git', args, { cwd: repo, encoding: 'utf8' }).trim();
  const ladingWith = (extra: Record<string, string>, ...args: string[]) => {
    const res = runCli(args, {
      cwd: repo,
      env: { DOCKER_HOST: env.dockerHost, GITHUB_ACTIONS: undefined, ...extra },
    });
    assert.equal(res.code, 0, `lading ${args[0]}: ${res.stderr}\n${res.stdout}`);
    return { out: res.stdout, err: res.stderr };
  };
  const lading = (...args: string[]) => ladingWith({}, ...args);
  const get = async (path: string) => (await (await fetch(`http://127.0.0.1:${port}${path}`)).text()).trim();

  before(async () => {
    port = await freePort();
    repo = mkdtempSync(join(tmpdir(), 'lading-proj-'));
    root = mkdtempSync(join(tmpdir(), 'lading-proj-root-'));
    git('init', '-q', '-b', 'main');
    git('config', 'user.email', 't@example.com');
    git('config', 'user.name', 'T');
    // the third-party image: built elsewhere, only pulled by the hosts
    const third = busyboxContext(join(repo, '..', `${project}-kv`), { files: { 'index.html': 'kv' } });
    docker(['build', '-q', '-t', `${ns}/thirdparty/kv:1`, third], { env: { DOCKER_BUILDKIT: '0' } });
    docker(['push', '-q', `${ns}/thirdparty/kv:1`]);
    rmSync(third, { recursive: true, force: true });
    busyboxContext(join(repo, 'app'), { files: { 'index.html': 'app' } });
    mkdirSync(join(repo, 'conf'));
    writeFileSync(join(repo, 'conf', 'message.txt'), 'from the bind-mounted config\n');
    writeFileSync(join(repo, '.env'), `REGISTRY=${ns}\nHTTP_PORT=${port}\n`);
    writeFileSync(join(repo, 'app.env'), 'GREETING=hello from env_file\n');
    const bb = '/bin/busybox';
    writeFileSync(
      join(repo, 'docker-compose.yml'),
      `x-app: &app
  image: \${REGISTRY:?set REGISTRY in .env}/app:\${DOCKER_TAG:-latest}
  build:
    context: ./app
  env_file: app.env
  volumes:
    - appdata:/data

services:
  migrate:
    <<: *app
    command: ["${bb}", "sh", "-c", "${bb} date >> /data/migrations"]
    restart: "no"
  web:
    <<: *app
    command:
      - ${bb}
      - sh
      - -c
      - >-
        ${bb} cp /conf/message.txt /srv/message.txt &&
        ${bb} echo "$$GREETING" > /srv/greeting.txt &&
        ${bb} wc -l < /data/migrations > /srv/migrations.txt &&
        ${bb} echo "$$DB_PASSWORD" > /srv/secret.txt &&
        ${bb} echo "$$API_TOKEN" > /srv/token.txt &&
        exec ${bb} httpd -f -p 8080 -h /srv
    environment:
      - DB_PASSWORD
      - API_TOKEN
    volumes:
      - appdata:/data
      - ./conf:/conf:ro
    ports:
      - "127.0.0.1:\${HTTP_PORT:?}:8080"
    healthcheck:
      test: ["CMD", "${bb}", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/greeting.txt"]
      interval: 1s
      retries: 30
    depends_on:
      migrate:
        condition: service_completed_successfully
      kv:
        condition: service_healthy
  kv:
    image: \${REGISTRY}/thirdparty/kv:1
    command: ["${bb}", "httpd", "-f", "-p", "9000", "-h", "/srv"]
    healthcheck:
      test: ["CMD", "${bb}", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:9000/"]
      interval: 1s
      retries: 30
  debug:
    image: \${REGISTRY}/thirdparty/kv:1
    profiles: [debug]
    command: ["${bb}", "false"]

volumes:
  appdata: {}
`,
    );
    git('add', '-A');
    git('commit', '-qm', 'project');
  });
  after(() => {
    removeProject(project);
    try {
      docker(['volume', 'rm', `${project}_appdata`]);
      docker(['network', 'rm', `${project}_default`]);
    } catch {
      // already gone
    }
    rmSync(repo, { recursive: true, force: true });
    rmSync(root, { recursive: true, force: true });
  });

  const release = (n: number) => {
    writeFileSync(join(repo, 'app', 'srv', 'index.html'), `release ${n}`);
    git('commit', '-qam', `release ${n}`);
    const build = lading('build', '--compose-files', 'docker-compose.yml', '--json');
    writeFileSync(join(repo, 'build.json'), build.out);
    writeFileSync(join(repo, 'push.json'), lading('push', '--build-json', '@build.json', '--json').out);
    lading(
      'manifest',
      '--push-json',
      '@push.json',
      '--compose-project',
      project,
      '--manifest-path',
      'manifest.json',
      '--pin-external',
      '--compose-env',
      'API_TOKEN',
    );
    // compose-env values come to the deploy: from the env (release 1) or an env file (release 2), never argv
    writeFileSync(join(root, 'deploy.env'), `API_TOKEN=token-${n}-from-a-file\n`);
    const supply: Record<string, string> =
      n === 1
        ? { LADING_COMPOSE_ENV: 'API_TOKEN=token-1-from-the-env' }
        : { LADING_COMPOSE_ENV_FILE: join(root, 'deploy.env') };
    const deploy = ladingWith(
      supply,
      'deploy',
      '--manifest',
      'manifest.json',
      ...sshHostArgs(root),
      '--health-stable',
      '1',
      '--compose-secrets',
      'DB_PASSWORD=s3cret-from-ci',
    );
    assert.match(deploy.out, /\tdeployed\t/);
    return { build: JSON.parse(build.out) as { images: Array<{ id: string; services: string[] }> } };
  };

  it('builds the shared image once, ships its files, serves, and keeps the volume on the second release', async () => {
    const first = release(1);
    // one image for migrate + web (same image and build via the anchor); kv is third-party: pulled, not built
    assert.deepEqual(
      first.build.images.map((i) => [i.id, [...i.services].sort()]),
      [['migrate', ['migrate', 'web']]],
    );
    const manifest = parseManifest(readFileSync(join(repo, 'manifest.json'), 'utf8'));
    assert.equal(manifest.schema, 'lading.manifest/v3');
    assert.deepEqual(manifest.compose!.envNames, ['API_TOKEN']);
    // pin-external: the third-party image is pinned by its registry digest for this release
    assert.match(manifest.compose!.pins!.kv!, new RegExp(`^${ns}/thirdparty/kv@sha256:[0-9a-f]{64}$`));
    assert.deepEqual(
      manifest.compose!.assets!.map((a) => [a.path, a.kind]),
      [
        ['.env', 'env'],
        ['app.env', 'env_file'],
        ['conf', 'dir'],
        ['conf/message.txt', 'bind'],
      ],
    );
    assert.equal(await get('/index.html'), 'release 1');
    assert.equal(await get('/message.txt'), 'from the bind-mounted config');
    assert.equal(await get('/greeting.txt'), 'hello from env_file');
    assert.equal(await get('/migrations.txt'), '1');
    assert.equal(await get('/secret.txt'), 's3cret-from-ci'); // compose-secrets: in the 0600 .env only
    assert.doesNotMatch(readFileSync(join(repo, 'manifest.json'), 'utf8'), /s3cret/);
    assert.equal(await get('/token.txt'), 'token-1-from-the-env'); // compose-env: the name in the manifest, the value here
    assert.doesNotMatch(readFileSync(join(repo, 'manifest.json'), 'utf8'), /token-1/);
    // a deploy that does not supply it is refused before it touches the host: release 1 keeps serving
    const bare = runCli(['deploy', '--manifest', 'manifest.json', ...sshHostArgs(root)], {
      cwd: repo,
      env: { DOCKER_HOST: env.dockerHost, GITHUB_ACTIONS: undefined },
    });
    assert.notEqual(bare.code, 0);
    assert.match(bare.stderr, /needs a value for API_TOKEN \(its compose-env\)/);
    assert.equal(await get('/token.txt'), 'token-1-from-the-env');
    const running = () =>
      docker([
        'ps',
        '-a',
        '--filter',
        `label=com.docker.compose.project=${project}`,
        '--format',
        '{{.Label "com.docker.compose.service"}} {{.State}}',
      ])
        .split('\n')
        .sort();
    assert.deepEqual(running(), ['kv running', 'migrate exited', 'web running']); // debug's profile stays off
    release(2);
    assert.equal(await get('/index.html'), 'release 2');
    assert.equal(await get('/migrations.txt'), '2'); // the named volume survived the release; migrate ran again
    assert.equal(await get('/token.txt'), 'token-2-from-a-file');
    assert.deepEqual(running(), ['kv running', 'migrate exited', 'web running']);
  });
});
