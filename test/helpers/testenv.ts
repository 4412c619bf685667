import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Connection details of the real services started by scripts/testenv.sh (one place for every test). */
export interface TestEnv {
  root: string;
  dockerHost: string;
  /** A second dockerd, a single-node swarm manager (swarm is never initialised on dockerHost). */
  swarmDockerHost: string;
  registry: { host: string };
  authRegistry: { host: string; username: string; passwordFile: string; passwordFiles: Record<string, string> };
  ssh: {
    host: string;
    port: number;
    user: string;
    privateKey: string;
    knownHosts: string;
    config: string;
    alias: string;
  };
  s3: { endpoint: string; region: string; accessKeyId: string; secretAccessKey: string; bucket: string };
  testImage: string;
  busybox: string;
}

let cached: TestEnv | undefined;

/**
 * The test environment, or a thrown error that says how to start it. Integration and e2e tests call this
 * instead of skipping: a missing service is a failure, never a silent skip.
 */
export function testEnv(): TestEnv {
  if (cached) return cached;
  const root = process.env.LADING_TESTENV || '/tmp/lading-testenv';
  const file = join(root, 'env.json');
  if (!existsSync(file)) {
    throw new Error(`the test environment is not up (no ${file}): run 'bash scripts/testenv.sh up' or 'npm test'`);
  }
  cached = JSON.parse(readFileSync(file, 'utf8')) as TestEnv;
  return cached;
}

/** The password of a user of the htpasswd registry: lading (default), AWS or oauth2accesstoken. */
export const authPassword = (user = 'lading') => {
  const file = testEnv().authRegistry.passwordFiles[user];
  if (!file) throw new Error(`the auth registry has no user ${user}`);
  return readFileSync(file, 'utf8').trim();
};

/** Runs docker against the test dockerd; throws with stderr on failure. */
export function docker(args: string[], opts: { input?: string | Buffer; env?: Record<string, string> } = {}): string {
  const res = spawnSync('docker', args, {
    env: { ...process.env, DOCKER_HOST: testEnv().dockerHost, DOCKER_BUILDKIT: '0', ...opts.env },
    input: opts.input,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (res.status !== 0) throw new Error(`docker ${args.join(' ')} failed (${res.status}): ${res.stderr}`);
  return res.stdout.trim();
}

/** The tar stream (`docker cp … -`, as latin1 text) of one path in an image on the test dockerd. */
export function imageFile(ref: string, path: string): string {
  const id = docker(['create', ref]);
  try {
    return execFileSync('docker', ['cp', `${id}:${path}`, '-'], {
      env: { ...process.env, DOCKER_HOST: testEnv().dockerHost },
    }).toString('latin1');
  } finally {
    docker(['rm', id]);
  }
}

/** Removes the containers of compose projects from the test dockerd (their networks and volumes stay). */
export function removeProject(...projects: string[]): void {
  const ids = projects.flatMap((p) =>
    docker(['ps', '-aq', '--filter', `label=com.docker.compose.project=${p}`])
      .split('\n')
      .filter(Boolean),
  );
  if (ids.length > 0) docker(['rm', '-f', ...ids]);
  // and the networks compose made for them (each takes a subnet of the test dockerd's address pool)
  const nets = projects.flatMap((p) =>
    docker(['network', 'ls', '-q', '--filter', `label=com.docker.compose.project=${p}`])
      .split('\n')
      .filter(Boolean),
  );
  for (const n of nets) {
    try {
      docker(['network', 'rm', n]);
    } catch {
      // still used by a container of another test: left to the test environment's teardown
    }
  }
}

/** Runs docker against the swarm manager of the test environment (never the shared dockerd); throws with stderr. */
export function swarmDocker(args: string[]): string {
  const res = spawnSync('docker', args, {
    env: { ...process.env, DOCKER_HOST: testEnv().swarmDockerHost },
    encoding: 'utf8',
  });
  if (res.status !== 0) throw new Error(`docker ${args.join(' ')} failed: ${res.stderr}`);
  return res.stdout.trim();
}

/** Removes a test stack from the swarm manager, waits (up to 30 s) for its containers to go, then its images. */
export function removeStack(project: string, images: string[]): void {
  swarmDocker(['stack', 'rm', project]);
  for (
    let i = 0;
    i < 30 && swarmDocker(['ps', '-aq', '--filter', `label=com.docker.stack.namespace=${project}`]);
    i++
  ) {
    spawnSync('sleep', ['1']);
  }
  for (const ref of images) {
    spawnSync('docker', ['image', 'rm', ref], { env: { ...process.env, DOCKER_HOST: testEnv().swarmDockerHost } });
  }
}

/** Runs a command on the test sshd with the OpenSSH client (pinned host key, key auth only). */
export function sshRun(command: string): { code: number; stdout: string; stderr: string } {
  const env = testEnv();
  const res = spawnSync('ssh', ['-F', env.ssh.config, env.ssh.alias, command], { encoding: 'utf8' });
  return { code: res.status ?? -1, stdout: res.stdout, stderr: res.stderr };
}

/** The CLI flags of a deploy to the test sshd as root (its key, its pinned host key) under the deploy root `root`. */
export function sshHostArgs(root: string): string[] {
  const { ssh } = testEnv();
  return [
    '--hosts',
    `root@${ssh.host}:${ssh.port}`,
    '--ssh-key',
    ssh.privateKey,
    '--known-hosts',
    ssh.knownHosts,
    '--root',
    root,
  ];
}

/** A free TCP port on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

let counter = 0;
/** A name unique to this test process, for images, repositories and buckets. */
export function unique(prefix: string): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${counter++}`;
}

/** The tag that keeps the busybox layer every test image builds on (see keepBusyboxLayer). */
export const BUSYBOX_LAYER = 'lading-test/busybox-layer:1';
let busyboxLayerKept = false;

/**
 * The legacy builder caches `FROM scratch` + `COPY bin /bin` as one untagged image that every busybox test image
 * builds on, and `docker rmi -f` of a test image also removes its untagged parents: one test's removal could delete
 * that image while another test's build had just hit it in the cache ("unable to find image"). Tagged, it is never
 * removed that way. Built once per test dockerd (the same content and instruction: the same image as the cache's).
 */
function keepBusyboxLayer(): void {
  if (busyboxLayerKept) return;
  try {
    docker(['image', 'inspect', BUSYBOX_LAYER]);
  } catch {
    const dir = mkdtempSync(join(tmpdir(), 'lading-busybox-layer-'));
    try {
      mkdirSync(join(dir, 'bin'));
      execFileSync('cp', [testEnv().busybox, join(dir, 'bin', 'busybox')]);
      writeFileSync(join(dir, 'Dockerfile'), 'FROM scratch\nCOPY bin /bin\n');
      docker(['build', '-q', '-t', BUSYBOX_LAYER, dir]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  busyboxLayerKept = true;
}

/**
 * Writes a FROM-scratch busybox image context (no base image can be pulled here) and returns its folder.
 * `files` are added under /srv; `extra` lines are appended to the Dockerfile.
 */
export function busyboxContext(dir: string, opts: { files?: Record<string, string>; extra?: string[] } = {}): string {
  keepBusyboxLayer();
  mkdirSync(join(dir, 'bin'), { recursive: true });
  execFileSync('cp', [testEnv().busybox, join(dir, 'bin', 'busybox')]);
  const lines = ['FROM scratch', 'COPY bin /bin'];
  if (opts.files) {
    mkdirSync(join(dir, 'srv'), { recursive: true });
    for (const [name, content] of Object.entries(opts.files)) writeFileSync(join(dir, 'srv', name), content);
    lines.push('COPY srv /srv');
  }
  lines.push(...(opts.extra ?? []), 'CMD ["/bin/busybox", "sh"]');
  writeFileSync(join(dir, 'Dockerfile'), `${lines.join('\n')}\n`);
  return dir;
}

/**
 * Version n of a busybox test image (`files` under /srv) built and pushed to the test registry as
 * `<name>:v<n>-abcdef0`: its tag and registry digest.
 */
export function pushVersion(name: string, n: number, files: Record<string, string>): { tag: string; digest: string } {
  const dir = mkdtempSync(join(tmpdir(), `lading-v${n}-`));
  try {
    busyboxContext(dir, { files });
    const tag = `v${n}-abcdef0`;
    docker(['build', '-q', '-t', `${name}:${tag}`, dir]);
    docker(['push', '-q', `${name}:${tag}`]);
    const digest = docker(['image', 'inspect', '--format', '{{index .RepoDigests 0}}', `${name}:${tag}`]).split(
      '@',
    )[1]!;
    return { tag, digest };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A manifest's source for version n of a test app: sha n…, created on day n. */
export function versionSource(n: number, repository: string) {
  return {
    repository,
    ref: 'refs/heads/main',
    sha: `${String(n).repeat(7)}${'0'.repeat(33)}`.slice(0, 40),
    created: new Date(Date.UTC(2026, 0, n)).toISOString(),
  };
}

/**
 * The build step's JSON output for one image already in the test engine, as `lading export --build-json` takes it
 * (tests that export without running a whole build).
 */
export function buildJsonFor(o: {
  id: string;
  name: string;
  imageId: string;
  tag: string;
  sha: string;
  services?: string[];
  channel?: string;
}): string {
  return JSON.stringify({
    context: { sha: o.sha },
    tags: o.channel ? [o.tag, o.channel] : [o.tag],
    primary: o.tag,
    ...(o.channel ? { channel: o.channel } : {}),
    labels: {},
    composeFiles: [],
    images: [
      {
        id: o.id,
        name: o.name,
        services: o.services ?? [],
        imageId: o.imageId,
        tags: [o.tag],
        refs: [`${o.name}:${o.tag}`],
        platforms: [],
        pushedByBuild: false,
        dependsOn: [],
      },
    ],
  });
}
