import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Manifest } from '../../src/lib/manifest.ts';
import { runMaintenanceStage, runRollbackStage } from '../../src/stages/deploy.ts';
import { readMaintenanceSettings } from '../../src/settings/host.ts';
import { assertNoFailures, get, loadLoop, proxiedApp, testProxy } from '../helpers/proxy-fixture.ts';
import { localHostStage } from '../helpers/local-stage.ts';
import { docker, testEnv } from '../helpers/testenv.ts';
import HOST_SCRIPT from '../../src/lib/remote/host.sh.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('rolling services behind the shared Caddy proxy (host steps by a local shell, real dockerd)', () => {
  const shop = proxiedApp({ host: 'shop.test' });
  const blog = proxiedApp({ host: 'blog.test' });
  const legacy = proxiedApp({ host: 'legacy.test' });
  const slow = proxiedApp({ host: 'slow.test', interval: '30s' });
  const netted = proxiedApp({ host: 'net.test' });
  let proxy: Awaited<ReturnType<typeof testProxy>>;
  let root = '';
  const v: Manifest[] = [];
  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'lading-zdt-root-'));
    proxy = await testProxy();
    v.push(shop.version(1), shop.version(2), shop.version(3), shop.version(4, { broken: true }));
  });
  after(() => {
    try {
      shop.cleanup();
      blog.cleanup();
      legacy.cleanup();
      slow.cleanup();
      netted.cleanup();
    } finally {
      proxy.cleanup();
      try {
        docker(['network', 'rm', proxy.id]);
      } catch {
        // still in use or gone
      }
      rmSync(root, { recursive: true, force: true });
    }
  });
  const { opts, deploy } = localHostStage(
    () => ({ root, 'health-timeout': '8', 'health-stable': '0', ...proxy.inputs }),
    Date.UTC(2026, 10, 29, 1, 0, 0),
  );
  const maintenance = async (extra: Record<string, string>) =>
    runMaintenanceStage({
      ...(await opts(extra)),
      maintenance: await readMaintenanceSettings((n) => extra[n]),
    });
  const shopGet = () => get(proxy.port, 'shop.test');

  it('the first deploy starts the proxy and routes the host name to the new web container', async () => {
    const res = await deploy(v[0]!);
    assert.equal(res.ok, true, JSON.stringify(res.hosts));
    assert.deepEqual(await shopGet(), { status: 200, body: 'v1\n' });
    assert.equal(docker(['inspect', '--format', '{{.State.Running}}', proxy.id]), 'true');
    assert.equal(shop.containers('worker').length, 1, 'the worker (recreate) runs as usual');
    // the admin API listens on the container's own loopback: not on the network it shares with the apps
    const ip = docker([
      'inspect',
      '--format',
      `{{(index .NetworkSettings.Networks "${proxy.id}").IPAddress}}`,
      proxy.id,
    ]);
    await assert.rejects(get(2019, 'x', '/config/').then(() => fetch(`http://${ip}:2019/config/`)));
  });

  it('deploys two more releases under 50 requests/s with zero failed requests; old containers drain and go', async () => {
    const load = loadLoop(proxy.port, 'shop.test', { rps: 50, maxMs: 60_000 });
    await sleep(300);
    for (const m of [v[1]!, v[2]!]) {
      const res = await deploy(m);
      assert.equal(res.ok, true, JSON.stringify(res.hosts));
      await sleep(300);
    }
    await sleep(500);
    const stats = await load.stop();
    assertNoFailures(stats);
    assert.ok(stats.total > 50, `only ${stats.total} requests`);
    assert.deepEqual(await shopGet(), { status: 200, body: 'v3\n' });
    assert.ok(
      stats.samples.some((s) => s.body === 'v2'),
      'v2 served between the deploys',
    );
    // drain 3 s, then stop (grace 2 s) and rm
    for (let i = 0; i < 100 && shop.containers('web').length > 1; i++) await sleep(200);
    assert.equal(shop.containers('web').length, 1);
  });

  it('refuses a broken release: the gate fails, the old container keeps serving, no request fails', async () => {
    const before = shop.containers('web');
    const load = loadLoop(proxy.port, 'shop.test', { rps: 50, maxMs: 60_000 });
    const res = await deploy(v[3]!);
    const stats = await load.stop();
    assert.equal(res.ok, false);
    assert.equal(res.hosts[0]!.status, 'rolled-back', JSON.stringify(res.hosts));
    assert.match(res.hosts[0]!.error ?? '', /traffic stays on the old containers/);
    assertNoFailures(stats);
    assert.deepEqual(await shopGet(), { status: 200, body: 'v3\n' });
    const after = shop.containers('web');
    assert.ok(
      after.every((id) => before.includes(id)) && after.length > 0,
      'the broken container is gone, the old one untouched',
    );
  });

  it('a rollback to a release that fails its gate brings the current one back the rolling way: no request fails', async () => {
    const dir = join(root, shop.project, 'releases');
    const broken = readdirSync(dir).find((r) => r.includes('v4'))!;
    assert.ok(broken, 'the refused release is still on disk');
    const before = shop.containers('web');
    const load = loadLoop(proxy.port, 'shop.test', { rps: 50, maxMs: 60_000 });
    const back = await runRollbackStage(await opts({ project: shop.project, to: broken }));
    await sleep(300);
    const stats = await load.stop();
    assert.equal(back.ok, false, JSON.stringify(back.hosts));
    assert.match(back.hosts[0]!.error ?? '', /traffic stays on the old containers/);
    assertNoFailures(stats);
    assert.deepEqual(await shopGet(), { status: 200, body: 'v3\n' });
    // the target's container never served: it drains like any retired one and goes (drain 3 s)
    for (let i = 0; i < 60 && shop.containers('web').length > before.length; i++) await sleep(200);
    assert.deepEqual(shop.containers('web').sort(), before.sort(), 'the v3 container kept serving, untouched');
  });

  it('rolls back within the drain window by switching back to the still-running containers', async () => {
    const res = await deploy(v[0]!, {
      'allow-downgrade': 'true',
      rolling: 'web shop.test health=/index.html drain=60',
    });
    assert.equal(res.ok, true, JSON.stringify(res.hosts));
    assert.equal((await shopGet()).body, 'v1\n');
    const running = shop.containers('web');
    assert.equal(running.length, 2, 'the v3 container drains for 60 s');
    const load = loadLoop(proxy.port, 'shop.test', { rps: 50, maxMs: 30_000 });
    const back = await runRollbackStage(await opts({ project: shop.project, to: 'previous' }));
    const stats = await load.stop();
    assert.equal(back.ok, true, JSON.stringify(back.hosts));
    assert.equal((await shopGet()).body, 'v3\n');
    assert.deepEqual(shop.containers('web').sort(), running.sort(), 'no container was started: a switch back');
    assertNoFailures(stats);
  });

  it('a drain still under way is cut short at half the step timeout: the next deploy never sleeps into its timeout', async () => {
    const first = await deploy(v[1]!, {
      'allow-downgrade': 'true',
      rolling: 'web shop.test health=/index.html drain=90',
    });
    assert.equal(first.ok, true, JSON.stringify(first.hosts));
    const load = loadLoop(proxy.port, 'shop.test', { rps: 50, maxMs: 60_000 });
    const t = performance.now();
    // the v3 container drains for 90 s; waiting for all of it would outlast the 40 s step: it is cut after 20 s
    const res = await deploy(v[2]!, { 'step-timeout': '40' });
    const seconds = (performance.now() - t) / 1000;
    const stats = await load.stop();
    assert.equal(res.ok, true, JSON.stringify(res.hosts));
    assert.ok(seconds < 80, `${seconds.toFixed(1)} s`);
    assert.deepEqual(await shopGet(), { status: 200, body: 'v3\n' });
    assertNoFailures(stats);
  });

  it('a rolling service with a healthcheck passes the gate long before one interval (30 s); a failing check is refused', async () => {
    const [v1, v2] = [slow.version(1), slow.version(2, { badCheck: true })];
    const t = performance.now();
    const res = await deploy(v1);
    const seconds = (performance.now() - t) / 1000;
    assert.equal(res.ok, true, JSON.stringify(res.hosts));
    assert.ok(seconds < 15, `the deploy took ${seconds.toFixed(1)} s`);
    const [id] = slow.containers('web');
    assert.equal(
      docker(['inspect', '--format', '{{.State.Health.Status}}', id!]),
      'starting',
      'docker has not checked yet',
    );
    assert.deepEqual(await get(proxy.port, 'slow.test'), { status: 200, body: 'v1\n' });
    const bad = await deploy(v2, { 'health-timeout': '4' });
    assert.equal(bad.ok, false, JSON.stringify(bad.hosts));
    assert.match(bad.hosts[0]!.error ?? '', /its healthcheck did not pass/);
    assert.deepEqual(await get(proxy.port, 'slow.test'), { status: 200, body: 'v1\n' });
    assert.deepEqual(slow.containers('web'), [id], 'the new container is gone, the old one untouched');
  });

  it('a release adding a network to web and worker: the two compose runs at once create it once, no request fails', async () => {
    // the rolling service's compose run and the worker's run at the same time (web needs nothing of the worker): both
    // find the new network missing and create it; the daemon refuses the second (compose asks CheckDuplicate) and
    // that run goes again, alone
    const first = await deploy(netted.version(1));
    assert.equal(first.ok, true, JSON.stringify(first.hosts));
    const load = loadLoop(proxy.port, 'net.test', { rps: 50, maxMs: 60_000 });
    const res = await deploy(netted.version(2, { network: true }));
    await sleep(300);
    const stats = await load.stop();
    assert.equal(res.ok, true, JSON.stringify(res.hosts));
    assertNoFailures(stats);
    assert.deepEqual(await get(proxy.port, 'net.test'), { status: 200, body: 'v2\n' });
    const net = `${netted.project}_extra`;
    const named = docker(['network', 'ls', '-q', '--filter', `name=^${net}$`])
      .split('\n')
      .filter(Boolean);
    assert.equal(named.length, 1, `one network ${net}, not ${named.length}`);
    const on = (id: string) =>
      docker(['inspect', '--format', '{{json .NetworkSettings.Networks}}', id]).includes(`"${net}"`);
    const web = netted.containers('web');
    assert.ok(web.some(on), 'the new web container is on the new network');
    assert.ok(netted.containers('worker').every(on), 'the recreated worker is on the new network');
  });

  it('a switch loads the config from inside the proxy network namespace (no docker exec); docker exec where that cannot be', async () => {
    // a docker exec (runc) beside the proxy competes with it for CPU: requests meeting it waited up to ~20 ms on 2 cores
    const execs = async (fn: () => Promise<void>) => {
      const since = Math.floor(Date.now() / 1000) - 1;
      await fn();
      const until = Math.floor(Date.now() / 1000) + 1;
      const events = docker([
        'events', '--since', String(since), '--until', String(until), '--format', '{{.Action}}',
        '--filter', `container=${proxy.id}`, '--filter', 'event=exec_create',
      ]); // prettier-ignore
      return events.split('\n').filter(Boolean).length;
    };
    const load = loadLoop(proxy.port, 'shop.test', { rps: 50, maxMs: 60_000 });
    assert.equal(
      await execs(async () => {
        const res = await deploy(v[1]!, { 'allow-downgrade': 'true' });
        assert.equal(res.ok, true, JSON.stringify(res.hosts));
      }),
      0,
      'as root with nsenter and curl on the host, no docker exec into the proxy',
    );
    process.env.LADING_PROXY_ADMIN_VIA = 'exec';
    try {
      assert.ok(
        (await execs(async () => {
          const res = await deploy(v[2]!);
          assert.equal(res.ok, true, JSON.stringify(res.hosts));
        })) > 0,
        'the docker exec way is taken when asked (a host without nsenter, curl or root)',
      );
    } finally {
      delete process.env.LADING_PROXY_ADMIN_VIA;
    }
    assertNoFailures(await load.stop());
    assert.deepEqual(await shopGet(), { status: 200, body: 'v3\n' });
  });

  it('routes the proxy refuses fail the switch at once; the old routes keep serving', async () => {
    const dir = join(root, shop.project);
    const current = readlinkSync(join(dir, 'current')).replace('releases/', '');
    const served = await shopGet();
    const script = join(root, 'host.sh');
    writeFileSync(script, HOST_SCRIPT);
    const t = performance.now();
    const r = spawnSync('sh', ['-c', '. "$SCRIPT"; lading_step proxy_switch'], {
      env: {
        ...process.env,
        DOCKER_HOST: testEnv().dockerHost,
        SCRIPT: script,
        LADING_ROOT: root,
        LADING_PROJECT: shop.project,
        LADING_RELEASE: current,
        LADING_PROXY_CONTAINER: proxy.id,
        LADING_PROXY_NETWORK: proxy.id,
        LADING_PROXY_TLS: 'off',
        LADING_ROUTES: '{"match":[{"host":["shop.test"]}],"handle":[{"handler":"no_such_handler"}]}',
      },
      encoding: 'utf8',
      timeout: 60_000,
    });
    const seconds = (performance.now() - t) / 1000;
    assert.notEqual(r.status, 0, r.stdout);
    assert.match(r.stderr, /the proxy refused the new routes of/);
    assert.match(r.stderr, /no_such_handler/, 'what Caddy said is shown');
    assert.ok(seconds < 4, `a refusal is final, not retried for 5 s: ${seconds.toFixed(1)} s`);
    assert.deepEqual(await shopGet(), served, 'the previous routes are back and serving');
    assert.ok(!readFileSync(join(root, '.proxy', 'apps', `${shop.project}.http.routes`), 'utf8').includes('no_such'));
  });

  it('the proxy runs with tcp_migrate_req: its config loads under a concurrent request loop reset no connection', async () => {
    assert.ok(existsSync('/proc/sys/net/ipv4/tcp_migrate_req'), 'this kernel has net.ipv4.tcp_migrate_req (>= 5.14)');
    const sysctl = docker([
      'inspect',
      '--format',
      '{{index .HostConfig.Sysctls "net.ipv4.tcp_migrate_req"}}',
      proxy.id,
    ]);
    assert.equal(sysctl, '1');
    // 40 full config loads (what every switch does) while 8 clients keep a request in flight each, ~1000/s
    const config = readFileSync(join(root, '.proxy', 'caddy.json'), 'utf8');
    let running = true;
    let ok = 0;
    const errors: string[] = [];
    const client = async () => {
      while (running) {
        await shopGet().then(
          (r) => (r.status === 200 ? ok++ : errors.push(`HTTP ${r.status}`)),
          (err: Error) => errors.push(err.message),
        );
      }
    };
    const clients = Array.from({ length: 8 }, client);
    const deadline = Date.now() + 30_000;
    for (let i = 0; i < 40 && Date.now() < deadline; i++) {
      docker(['exec', '-i', proxy.id, '/usr/bin/caddy', 'reload', '--force', '--config', '/dev/stdin'], {
        input: config,
      });
      await sleep(100);
    }
    running = false;
    await Promise.all(clients);
    assert.deepEqual(errors, [], `${errors.length} failed of ${ok + errors.length}`);
    assert.ok(ok > 200, `only ${ok} requests`);
  });

  it('maintenance on answers 503 with the page for the app host names; off serves the app again', async () => {
    const on = await maintenance({
      project: shop.project,
      maintenance: 'on',
      'maintenance-page': '<h1>Back at 5</h1>',
    });
    assert.equal(on.ok, true, JSON.stringify(on.hosts));
    assert.deepEqual(await shopGet(), { status: 503, body: '<h1>Back at 5</h1>' });
    const off = await maintenance({ project: shop.project, maintenance: 'off' });
    assert.equal(off.ok, true, JSON.stringify(off.hosts));
    assert.equal((await shopGet()).status, 200);
  });

  it('a second app shares the proxy with its own host name; both keep answering', async () => {
    const res = await deploy(blog.version(1));
    assert.equal(res.ok, true, JSON.stringify(res.hosts));
    assert.deepEqual(await get(proxy.port, 'blog.test'), { status: 200, body: 'v1\n' });
    assert.equal((await shopGet()).body, 'v3\n');
    assert.equal((await get(proxy.port, 'nobody.test')).status !== 200, true);
  });

  it('a rollback to a release from before rolling (recreate) removes the app proxy routes: none to dead containers', async () => {
    const before = await deploy(legacy.version(1, { recreate: true }));
    assert.equal(before.ok, true, JSON.stringify(before.hosts));
    const rolled = await deploy(legacy.version(2));
    assert.equal(rolled.ok, true, JSON.stringify(rolled.hosts));
    assert.deepEqual(await get(proxy.port, 'legacy.test'), { status: 200, body: 'v2\n' });
    const back = await runRollbackStage(await opts({ project: legacy.project, to: 'previous' }));
    assert.equal(back.ok, true, JSON.stringify(back.hosts));
    assert.equal(legacy.containers('web').length, 1, 'compose recreated web as one plain container');
    assert.deepEqual(
      await get(proxy.port, 'legacy.test'),
      { status: 404, body: 'no app here\n' },
      'the proxy no longer routes legacy.test (before: 502 from the removed rolling container)',
    );
    assert.deepEqual(await get(proxy.port, 'shop.test'), { status: 200, body: 'v3\n' }, 'other apps keep theirs');
  });
});
