import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { composeFile, createManifest, type Manifest } from '../../src/lib/manifest.ts';
import { docker, freePort, pushVersion, removeProject, testEnv, unique, versionSource } from './testenv.ts';

export const CADDY_IMAGE = 'lading-test/caddy:2.6';

/**
 * A FROM scratch Caddy image for tests: Debian's /usr/bin/caddy (2.6) and the libraries `ldd` lists. Built once per
 * test dockerd (the tag is reused).
 */
export function caddyImage(): string {
  try {
    docker(['image', 'inspect', CADDY_IMAGE]);
    return CADDY_IMAGE;
  } catch {
    // not built yet
  }
  const dir = mkdtempSync(join(tmpdir(), 'lading-caddy-'));
  const files = ['/usr/bin/caddy'];
  for (const line of execFileSync('ldd', ['/usr/bin/caddy'], { encoding: 'utf8' }).split('\n')) {
    const m = /(\/\S+)\s+\(0x/.exec(line);
    if (m) files.push(m[1]!);
  }
  for (const f of files) {
    mkdirSync(join(dir, 'root', dirname(f)), { recursive: true });
    copyFileSync(f, join(dir, 'root', f)); // copyFileSync follows symlinks: the library itself
  }
  writeFileSync(
    join(dir, 'Dockerfile'),
    'FROM scratch\nCOPY root /\nENV XDG_CONFIG_HOME=/config XDG_DATA_HOME=/data HOME=/data\nENTRYPOINT ["/usr/bin/caddy"]\nCMD ["run"]\n',
  );
  docker(['build', '-q', '-t', CADDY_IMAGE, dir]);
  return CADDY_IMAGE;
}

/** A proxy of its own for one test file: container, network, published port, inputs for the deploy. */
export async function testProxy(opts: { https?: boolean } = {}) {
  const id = unique('proxy')
    .replace(/[^a-z0-9-]/g, '-')
    .slice(0, 40);
  const port = await freePort();
  const httpsPort = opts.https ? await freePort() : 0;
  const inputs = {
    'proxy-container': id,
    'proxy-network': id,
    'proxy-image': caddyImage(),
    'proxy-ports': `127.0.0.1:${port}:80${opts.https ? `,127.0.0.1:${httpsPort}:443` : ''}`,
    'proxy-tls': 'off',
  };
  const cleanup = () => {
    for (const args of [
      ['rm', '-f', id],
      ['volume', 'rm', '-f', `${id}-data`, `${id}-config`],
    ]) {
      try {
        docker(args);
      } catch {
        // already gone
      }
    }
  };
  return { id, port, httpsPort, inputs, cleanup };
}

/**
 * A realistic project behind the proxy: `web` (busybox httpd on :80 in its container, healthcheck, init, a short
 * stop grace period, `x-lading` rolling on `host`) and `worker` (a loop), on the project's default network.
 * `publish`: the same app without the proxy, web published on that loopback port (recreate and raw compose).
 * `version(n)` builds and pushes image n (index.html "vN"; `broken`: no index.html, so the health path 404s;
 * `recreate`: web without `x-lading`, as before rolling was turned on; `badCheck`: the health path answers but the
 * healthcheck fetches a missing page). `interval`: the healthcheck's interval (5s).
 */
export function proxiedApp(opts: { host: string; drain?: number; publish?: number; interval?: string }) {
  const env = testEnv();
  const name = `${env.registry.host}/${unique('zdt')}/app`;
  const project = unique('zdt')
    .replace(/[^a-z0-9-]/g, '-')
    .slice(0, 40);
  const composeOf = (rolling: boolean, check = '/index.html') => `services:
  web:
    image: ${name}:\${DOCKER_TAG:-latest}
    init: true
    stop_grace_period: 2s
    command: ["/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/srv"]
    healthcheck:
      test: ["CMD", "/bin/busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1${check}"]
      interval: ${opts.interval ?? '5s'}
      timeout: 2s
      retries: 2
${
  !rolling
    ? ''
    : opts.publish
      ? `    ports: ["127.0.0.1:${opts.publish}:80"]\n`
      : `    x-lading:
      strategy: rolling
      hosts: [${opts.host}]
      port: 80
      health: /index.html
      drain: ${opts.drain ?? 3}
`
}  worker:
    image: ${name}:\${DOCKER_TAG:-latest}
    init: true
    stop_grace_period: 1s
    command: ["/bin/busybox", "sh", "-c", "while true; do sleep 1; done"]
`;
  const compose = composeOf(true);
  function version(n: number, v: { broken?: boolean; recreate?: boolean; badCheck?: boolean } = {}): Manifest {
    const { tag, digest } = pushVersion(name, n, v.broken ? { 'other.html': 'broken\n' } : { 'index.html': `v${n}\n` });
    return createManifest({
      source: versionSource(n, 'acme/shop'),
      tags: [tag],
      primary: tag,
      images: [
        {
          id: 'app',
          services: ['web', 'worker'],
          name,
          tags: [tag],
          digest,
          ref: `${name}@${digest}`,
          transport: { kind: 'registry', registry: env.registry.host, provider: 'generic' },
        },
      ],
      compose: {
        project,
        files: [composeFile('docker-compose.yml', composeOf(!v.recreate, v.badCheck ? '/missing.html' : undefined))],
        env: { DOCKER_TAG: tag },
      },
    });
  }
  const containers = (service: string) =>
    docker([
      'ps',
      '-aq',
      '--filter',
      `label=com.docker.compose.project=${project}`,
      '--filter',
      `label=com.docker.compose.service=${service}`,
    ])
      .split('\n')
      .filter(Boolean);
  const cleanup = () => {
    removeProject(project);
    try {
      docker(['network', 'rm', `${project}_default`]);
    } catch {
      // not there
    }
  };
  return { name, project, compose, version, containers, cleanup };
}

/** GET http://127.0.0.1:port/path with a Host header: status and body. */
export function get(port: number, host: string, path = '/index.html'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { host }, agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timed out after 5 s')));
    req.on('error', reject);
    req.end();
  });
}

export interface LoadSample {
  /** ms since the loop started */
  at: number;
  ms: number;
  ok: boolean;
  body: string;
}

/**
 * A zero-downtime test tolerates no failed request: none refused, reset, timed out or answered with an error.
 * (Resets at a route switch came from Caddy 2.6 closing its old SO_REUSEPORT listener at each config load with
 * connections still queued on it; the proxy now runs with net.ipv4.tcp_migrate_req=1, which hands those connections
 * to the new listener: bench/proxy-reload.bench.ts, test/unit/proxy-start-step.test.ts.)
 */
export function assertNoFailures(stats: { failed: number; resets: number; errors: string[] }): void {
  if (stats.failed > 0) {
    throw new Error(
      `${stats.failed} failed request(s) (${stats.resets} reset):\n${stats.errors.slice(0, 5).join('\n')}`,
    );
  }
}

/**
 * A steady request loop on loopback: one request every 1000/rps ms (each on a fresh connection), until `stop()` or
 * `maxMs` — it always ends by itself. A request fails on a connection error, a timeout or a status other than 200.
 */
export function loadLoop(port: number, host: string, opts: { rps?: number; maxMs?: number } = {}) {
  const samples: LoadSample[] = [];
  const errors: string[] = [];
  const started = Date.now();
  const inflight = new Set<Promise<void>>();
  const every = 1000 / (opts.rps ?? 50);
  const maxMs = opts.maxMs ?? 120_000;
  const timer = setInterval(() => {
    if (Date.now() - started > maxMs) return void clearInterval(timer);
    const at = Date.now() - started;
    const t0 = performance.now();
    const p = get(port, host)
      .then((r) => {
        samples.push({ at, ms: performance.now() - t0, ok: r.status === 200, body: r.body.trim() });
        if (r.status !== 200) errors.push(`HTTP ${r.status} at ${at} ms`);
      })
      .catch((err: Error) => {
        samples.push({ at, ms: performance.now() - t0, ok: false, body: '' });
        errors.push(`${err.message} at ${at} ms`);
      })
      .finally(() => inflight.delete(p));
    inflight.add(p);
  }, every);
  return {
    samples,
    async stop() {
      clearInterval(timer);
      await Promise.all([...inflight]);
      const resets = errors.filter((e) => /socket hang up|ECONNRESET/.test(e)).length;
      return { total: samples.length, failed: samples.filter((s) => !s.ok).length, resets, errors, samples };
    },
  };
}
