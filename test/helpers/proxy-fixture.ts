import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { Worker } from 'node:worker_threads';
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
  // net: web and worker also on a network the project declares (one a release can add)
  const nets = (net: boolean) => (net ? '    networks: [default, extra]\n' : '');
  const composeOf = (rolling: boolean, check = '/index.html', net = false) => `services:
  web:
    image: ${name}:\${DOCKER_TAG:-latest}
    init: true
${nets(net)}    stop_grace_period: 2s
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
${nets(net)}    stop_grace_period: 1s
    command: ["/bin/busybox", "sh", "-c", "while true; do sleep 1; done"]
${net ? 'networks:\n  extra: {}\n' : ''}`;
  const compose = composeOf(true);
  function version(
    n: number,
    v: { broken?: boolean; recreate?: boolean; badCheck?: boolean; network?: boolean } = {},
  ): Manifest {
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
        files: [
          composeFile(
            'docker-compose.yml',
            composeOf(!v.recreate, v.badCheck ? '/missing.html' : undefined, v.network),
          ),
        ],
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
  /** when the request started (Date.now() in the loop's thread) */
  epoch: number;
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

/** The load loop's own thread: it times every request on an event loop that nothing else shares. */
const LOAD_WORKER = `
const { parentPort, workerData: o } = require('node:worker_threads');
const { request } = require('node:http');
const started = Date.now();
let inflight = 0, stopping = false;
const done = () => { if (stopping && inflight === 0) parentPort.postMessage({ end: true }); };
const timer = setInterval(() => {
  if (Date.now() - started > o.maxMs) { stopping = true; clearInterval(timer); return done(); }
  const epoch = Date.now();
  const at = epoch - started;
  const t0 = performance.now();
  inflight++;
  const finish = (status, body, error) => {
    parentPort.postMessage({ at, epoch, ms: performance.now() - t0, status, body, error });
    inflight--;
    done();
  };
  const req = request({ host: '127.0.0.1', port: o.port, path: '/index.html', headers: { host: o.host }, agent: false, timeout: 5000 }, (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (c) => (body += c));
    res.on('end', () => finish(res.statusCode || 0, body));
    res.on('error', (e) => finish(0, '', e.message));
  });
  req.on('timeout', () => req.destroy(new Error('timed out after 5 s')));
  req.on('error', (e) => finish(0, '', e.message));
  req.end();
}, 1000 / o.rps);
parentPort.on('message', () => { stopping = true; clearInterval(timer); done(); });
`;

/**
 * A steady request loop on loopback: one request every 1000/rps ms (each on a fresh connection), until `stop()` or
 * `maxMs` — it always ends by itself. A request fails on a connection error, a timeout or a status other than 200.
 * The loop runs in a worker thread: a deploy running in this process (its SSH crypto, its parsing) never delays
 * the timing of a request, so latencies are the proxy's and the app's, as a separate client would see them.
 */
export function loadLoop(port: number, host: string, opts: { rps?: number; maxMs?: number } = {}) {
  const samples: LoadSample[] = [];
  const errors: string[] = [];
  const worker = new Worker(LOAD_WORKER, {
    eval: true,
    workerData: { port, host, rps: opts.rps ?? 50, maxMs: opts.maxMs ?? 120_000 },
  });
  const ended = new Promise<void>((resolve, reject) => {
    type Message = { end?: true; at: number; epoch: number; ms: number; status: number; body: string; error?: string };
    worker.on('message', (m: Message) => {
      if (m.end) return void worker.terminate().then(() => resolve());
      samples.push({ at: m.at, epoch: m.epoch, ms: m.ms, ok: m.status === 200, body: m.body.trim() });
      if (m.error) errors.push(`${m.error} at ${m.at} ms`);
      else if (m.status !== 200) errors.push(`HTTP ${m.status} at ${m.at} ms`);
    });
    worker.on('error', reject);
  });
  return {
    samples,
    async stop() {
      worker.postMessage('stop');
      await ended;
      const resets = errors.filter((e) => /socket hang up|ECONNRESET/.test(e)).length;
      return { total: samples.length, failed: samples.filter((s) => !s.ok).length, resets, errors, samples };
    },
  };
}
