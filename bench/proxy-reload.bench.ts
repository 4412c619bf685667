// Connections reset by the proxy at a config change, measured in one run against the test dockerd
// (bash scripts/testenv.sh up first):
//   npx tsx bench/proxy-reload.bench.ts [changes]
// One Caddy 2.6 container (the test image: Debian's caddy) answering a static route on a published loopback port,
// 8 clients each keeping one request in flight (a fresh connection per request), while the config changes
// `changes` times (default 40), every 150 ms, three ways:
//   load          POST /load of the whole config (what `caddy reload` and lading's switch do)
//   patch         PATCH of one value under /config/ (Caddy applies it as the same full reload)
//   load+migrate  POST /load, the container started with --sysctl net.ipv4.tcp_migrate_req=1 (what lading does)
// Caddy 2.6 opens a new SO_REUSEPORT listener per config and closes the old one when the old server stops; without
// tcp_migrate_req the kernel resets the connections still queued on the closed socket. Bounded: each way stops
// after its changes; nothing leaves loopback. Prints counts, asserts nothing.
import { request } from 'node:http';
import { caddyImage, get } from '../test/helpers/proxy-fixture.ts';
import { docker, freePort, unique } from '../test/helpers/testenv.ts';

const changes = Number(process.argv[2] ?? 40);
const img = caddyImage();
const net = unique('reload').replace(/[^a-z0-9-]/g, '-');
docker(['network', 'create', net]);

async function run(way: 'load' | 'patch' | 'load+migrate') {
  const port = await freePort();
  const admin = await freePort();
  const name = `${net}-${way.replace('+', '-')}`;
  const cfg = (body: string) =>
    JSON.stringify({
      admin: { listen: '0.0.0.0:2019', origins: ['localhost:2019', `127.0.0.1:${admin}`] },
      apps: {
        http: { servers: { s: { listen: [':80'], routes: [{ handle: [{ handler: 'static_response', body }] }] } } },
      },
    });
  docker([
    'run', '-d', '--name', name, '--network', net, '-p', `127.0.0.1:${port}:80`, '-p', `127.0.0.1:${admin}:2019`,
    ...(way === 'load+migrate' ? ['--sysctl', 'net.ipv4.tcp_migrate_req=1'] : []),
    '--entrypoint', '/usr/bin/caddy', img, 'run',
  ]); // prettier-ignore
  const adminReq = (method: string, path: string, body: string) =>
    new Promise<number>((resolve, reject) => {
      const r = request(
        { host: '127.0.0.1', port: admin, path, method, headers: { 'content-type': 'application/json' } },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      r.on('error', reject);
      r.end(body);
    });
  try {
    for (let i = 0; ; i++) {
      try {
        docker(
          ['exec', '-i', name, '/usr/bin/caddy', 'reload', '--address', 'localhost:2019', '--config', '/dev/stdin'],
          {
            input: cfg('a'),
          },
        );
        if ((await adminReq('GET', '/config/', '')) === 200) break;
      } catch {
        // the admin API is not up yet
      }
      if (i > 50) throw new Error(`${way}: the proxy did not take its first config`);
      await new Promise((r) => setTimeout(r, 100));
    }
    let ok = 0;
    const errors = new Map<string, number>();
    let running = true;
    const client = async () => {
      while (running) {
        await get(port, 'x', '/').then(
          (r) => (r.status === 200 ? ok++ : errors.set(`HTTP ${r.status}`, (errors.get(`HTTP ${r.status}`) ?? 0) + 1)),
          (e: Error) => errors.set(e.message, (errors.get(e.message) ?? 0) + 1),
        );
      }
    };
    const clients = Array.from({ length: 8 }, client);
    for (let i = 0; i < changes; i++) {
      await new Promise((r) => setTimeout(r, 150));
      const body = i % 2 ? 'a' : 'b';
      const status =
        way === 'patch'
          ? await adminReq('PATCH', '/config/apps/http/servers/s/routes/0/handle/0/body', JSON.stringify(body))
          : await adminReq('POST', '/load', cfg(body));
      if (status !== 200) throw new Error(`${way}: the admin API answered ${status}`);
    }
    await new Promise((r) => setTimeout(r, 300));
    running = false;
    await Promise.all(clients);
    const failed = [...errors.values()].reduce((a, b) => a + b, 0);
    console.log(
      `${way.padEnd(13)} ${changes} changes: ${failed} of ${ok + failed} requests failed ${JSON.stringify(Object.fromEntries(errors))}`,
    );
  } finally {
    docker(['rm', '-f', name]);
  }
}

try {
  for (const way of ['load', 'patch', 'load+migrate'] as const) await run(way);
  console.log(
    `load average ${(await import('node:fs')).readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`,
  );
} finally {
  docker(['network', 'rm', net]);
}
