// What a config load costs the requests that meet it, by how the config reaches Caddy's admin API, measured in one
// run against the test dockerd (bash scripts/testenv.sh up first):
//   npx tsx bench/proxy-admin.bench.ts [loads]
// One Caddy 2.6 container (the test image) on a published loopback port, with net.ipv4.tcp_migrate_req=1 as lading
// runs it, routing to one of two busybox httpd containers; a steady 50 requests/s (its own thread, a fresh
// connection each) while the route flips between the two upstreams `loads` times (default 20), ~1 s apart, two ways:
//   exec     `docker exec -i <proxy> caddy reload --config /dev/stdin` (lading's way without root/nsenter/curl)
//   netns    POST /load with curl from inside the proxy's network namespace (nsenter -t <pid> -n: lading's way as root)
// It prints the latency of the requests started within -30..+150 ms of each load against the others, per way.
// Bounded: each way stops after its loads; nothing leaves loopback. Asserts nothing.
import { spawn } from 'node:child_process';
import { caddyImage, loadLoop } from '../test/helpers/proxy-fixture.ts';
import { docker, freePort, pushVersion, testEnv, unique } from '../test/helpers/testenv.ts';

const loads = Number(process.argv[2] ?? 20);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const q = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;
const env = testEnv();
const net = unique('admin').replace(/[^a-z0-9-]/g, '-');
const app = `${env.registry.host}/${net}/app`;
const { tag } = pushVersion(app, 1, { 'index.html': 'v1\n' });
docker(['network', 'create', net]);
const made: string[] = [];
const ips: string[] = [];
for (const n of ['a', 'b']) {
  const c = `${net}-${n}`;
  docker(['run', '-d', '--name', c, '--network', net, '--entrypoint', '/bin/busybox', `${app}:${tag}`, 'httpd', '-f', '-p', '80', '-h', '/srv']); // prettier-ignore
  made.push(c);
  ips.push(docker(['inspect', '--format', `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`, c]));
}
const cfg = (i: number) =>
  JSON.stringify({
    admin: { listen: 'localhost:2019' },
    apps: {
      pki: { certificate_authorities: { local: { install_trust: false } } },
      http: {
        servers: {
          s: {
            listen: [':80'],
            routes: [{ handle: [{ handler: 'reverse_proxy', upstreams: [{ dial: `${ips[i % 2]}:80` }] }] }],
          },
        },
      },
    },
  });
const run = (cmd: string, args: string[], input: string) =>
  new Promise<void>((resolve, reject) => {
    const cp = spawn(cmd, args, {
      env: { ...process.env, DOCKER_HOST: env.dockerHost },
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    let err = '';
    cp.stderr.on('data', (c) => (err += c));
    cp.on('exit', (c) => (c === 0 ? resolve() : reject(new Error(`${cmd} exited ${c}: ${err}`))));
    cp.stdin.end(input);
  });

async function measure(way: 'exec' | 'netns') {
  const port = await freePort();
  const name = `${net}-caddy-${way}`;
  docker(['run', '-d', '--name', name, '--network', net, '-p', `127.0.0.1:${port}:80`, '--sysctl', 'net.ipv4.tcp_migrate_req=1', '--entrypoint', '/usr/bin/caddy', caddyImage(), 'run']); // prettier-ignore
  made.push(name);
  const pid = docker(['inspect', '--format', '{{.State.Pid}}', name]);
  const load = async (i: number) =>
    way === 'exec'
      ? run('docker', ['exec', '-i', name, '/usr/bin/caddy', 'reload', '--config', '/dev/stdin'], cfg(i))
      : run('nsenter', ['-t', pid, '-n', 'curl', '-sSf', '-H', 'Content-Type: application/json', '--data-binary', '@-', 'http://127.0.0.1:2019/load'], cfg(i)); // prettier-ignore
  for (let i = 0; ; i++) {
    try {
      await run('docker', ['exec', '-i', name, '/usr/bin/caddy', 'reload', '--config', '/dev/stdin'], cfg(0));
      break;
    } catch (err) {
      if (i > 50) throw err;
      await sleep(100);
    }
  }
  await sleep(500);
  const t0 = Date.now();
  const loop = loadLoop(port, 'x', { rps: 50, maxMs: 120_000 });
  await sleep(1000);
  const at: number[] = [];
  for (let i = 1; i <= loads; i++) {
    at.push(Date.now() - t0);
    await load(i);
    await sleep(700 + Math.random() * 300);
  }
  const stats = await loop.stop();
  const near = (s: { at: number }) => at.some((r) => s.at >= r - 30 && s.at <= r + 150);
  const a = stats.samples.filter(near).map((s) => s.ms);
  const b = stats.samples.filter((s) => !near(s)).map((s) => s.ms);
  console.log(
    `${way.padEnd(6)} ${loads} loads, ${stats.failed} failed: near a load n=${a.length} p50 ${q(a, 0.5).toFixed(1)} p90 ${q(a, 0.9).toFixed(1)} max ${q(a, 1).toFixed(1)} ms; elsewhere n=${b.length} p50 ${q(b, 0.5).toFixed(1)} p90 ${q(b, 0.9).toFixed(1)} p99 ${q(b, 0.99).toFixed(1)} ms`,
  );
  return { p90: q(a, 0.9), max: q(a, 1) };
}

try {
  const exec = await measure('exec');
  const netns = await measure('netns');
  console.log(
    `near a load, netns / exec: p90 ${(netns.p90 / exec.p90).toFixed(2)}x, max ${(netns.max / exec.max).toFixed(2)}x; load average ${(await import('node:fs')).readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`,
  );
} finally {
  docker(['rm', '-f', ...made]);
  docker(['network', 'rm', net]);
}
