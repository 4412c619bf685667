import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { parseExportSettings } from '../../src/settings/export.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { composeFile, createManifest, type Manifest, type ManifestImage } from '../../src/lib/manifest.ts';
import { busyboxContext, buildJsonFor, docker, pushVersion, testEnv, unique, versionSource } from './testenv.ts';

/**
 * A loopback port for a `network_mode: host` test app: below the kernel's ephemeral range (32768 and up), so no
 * outgoing connection and no freePort() listener of another test holds it, in a slice of 20000–32767 chosen by this
 * process's pid, and free when probed (a listen from a child process: this must stay synchronous). A random port up
 * to 40000 without a probe met another listener in CI ("httpd: bind: Address already in use").
 */
function hostAppPort(): number {
  const slice = 20000 + (process.pid % 64) * 199;
  const probe = `const net = require('node:net');
const start = Number(process.argv[1]), tries = [];
const r = Math.floor(Math.random() * 199);
for (let i = 0; i < 199; i++) tries.push(start + ((i + r) % 199));
(function next(k) {
  if (k >= tries.length) process.exit(1);
  const s = net.createServer().once('error', () => next(k + 1)).listen(tries[k], '127.0.0.1', () => {
    process.stdout.write(String(tries[k]));
    s.close();
  });
})(0);`;
  return Number(execFileSync(process.execPath, ['-e', probe, String(slice)], { encoding: 'utf8' }));
}

/**
 * A web service for deploy tests: busybox httpd on a loopback port serving /srv/index.html with a healthcheck that
 * fetches it. `version(n, { healthy })` builds and pushes image n to the test registry and returns its manifest.
 */
export function webApp(opts: { store?: string; gcsEndpoint?: string } = {}) {
  const env = testEnv();
  const name = opts.store ? `lading-rl/${unique('deploy')}/web` : `${env.registry.host}/${unique('deploy')}/web`;
  const port = hostAppPort();
  const project = unique('app')
    .replace(/[^a-z0-9-]/g, '-')
    .slice(0, 40);
  const compose = `version: "3.7"
services:
  web:
    image: ${name}:\${DOCKER_TAG:-latest}
    network_mode: host
    command: ["/bin/busybox", "httpd", "-f", "-p", "127.0.0.1:${port}", "-h", "/srv"]
    healthcheck:
      test: ["CMD", "/bin/busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:${port}/index.html"]
      interval: 1s
      timeout: 2s
      retries: 2
`;
  /**
   * Registry-less: builds version n, exports it to `opts.store` (archive, zstd) with the real export stage, and removes
   * it from the engine, so the deploy has to ship it. Returns the manifest.
   */
  async function storedVersion(
    n: number,
    v: { healthy?: boolean; mode?: 'archive' | 'layers' } = {},
  ): Promise<Manifest> {
    const dir = mkdtempSync(join(tmpdir(), `lading-web-v${n}-`));
    // A nonce keeps the image ID this test's own (the build cache would otherwise share it with other tests).
    const nonce = { 'nonce.txt': unique('nonce') };
    busyboxContext(dir, {
      files: v.healthy === false ? { 'other.html': 'broken\n', ...nonce } : { 'index.html': `v${n}\n`, ...nonce },
    });
    const tag = `v${n}-abcdef0`;
    docker(['build', '-q', '-t', `${name}:${tag}`, dir]);
    const imageId = docker(['image', 'inspect', '--format', '{{.Id}}', `${name}:${tag}`]);
    const { sha } = versionSource(n, 'acme/shop');
    const inputs: Record<string, string> = {
      'build-json': buildJsonFor({ id: 'web', name, imageId, tag, sha, services: ['web'] }),
      store: opts.store!,
      'store-mode': v.mode ?? 'archive',
      's3-endpoint': env.s3.endpoint,
      ...(opts.gcsEndpoint ? { 'gcs-endpoint': opts.gcsEndpoint } : {}),
    };
    const previous = {
      id: process.env.AWS_ACCESS_KEY_ID,
      key: process.env.AWS_SECRET_ACCESS_KEY,
      host: process.env.DOCKER_HOST,
    };
    process.env.AWS_ACCESS_KEY_ID = env.s3.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = env.s3.secretAccessKey;
    process.env.DOCKER_HOST = env.dockerHost;
    const silent = {
      info: () => {},
      warning: () => {},
      group: <T>(_n: string, f: () => Promise<T>) => f(),
      secret: () => {},
    };
    const { runExportStage } = await import('../../src/stages/export.ts');
    const exported = await runExportStage({
      ...parseExportSettings((k) => inputs[k]),
      env: process.env,
      reporter: silent,
    }).finally(() => {
      process.env.DOCKER_HOST = previous.host;
    });
    docker(['rmi', '-f', imageId]);
    const img = exported.images[0]!;
    return manifestOf(n, tag, { digest: img.digest, ref: img.ref, transport: img.transport });
  }
  function version(n: number, opts: { healthy?: boolean } = {}): Manifest {
    const { tag, digest } = pushVersion(
      name,
      n,
      opts.healthy === false ? { 'other.html': 'broken\n' } : { 'index.html': `v${n}\n` },
    );
    return manifestOf(n, tag, {
      digest,
      ref: `${name}@${digest}`,
      transport: { kind: 'registry', registry: env.registry.host, provider: 'generic' },
    });
  }
  /** The manifest of version n of the web image: source sha n…, created on day n, the compose file above. */
  function manifestOf(n: number, tag: string, image: Pick<ManifestImage, 'digest' | 'ref' | 'transport'>): Manifest {
    return createManifest({
      source: versionSource(n, 'acme/shop'),
      tags: [tag],
      primary: tag,
      images: [{ id: 'web', services: ['web'], name, tags: [tag], ...image }],
      compose: { project, files: [composeFile('docker-compose.yml', compose)], env: { DOCKER_TAG: tag } },
    });
  }
  const probe = async (): Promise<string> => {
    const res = await fetch(`http://127.0.0.1:${port}/index.html`);
    return res.ok ? (await res.text()).trim() : `HTTP ${res.status}`;
  };
  const writeManifest = (m: Manifest) => {
    const file = join(mkdtempSync(join(tmpdir(), 'lading-manifest-')), 'manifest.json');
    writeFileSync(file, JSON.stringify(m));
    return file;
  };
  return { name, port, project, version, storedVersion, probe, writeManifest };
}
