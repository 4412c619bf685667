import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Manifest } from '../../src/lib/manifest.ts';
import { runActionBundleAsync, runCli } from '../helpers/bundles.ts';
import { assertNoFailures, get, loadLoop, proxiedApp, testProxy } from '../helpers/proxy-fixture.ts';
import { docker, testEnv } from '../helpers/testenv.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** GET https://127.0.0.1:port/ with SNI and Host `host`, trusting any certificate (Caddy's internal CA). */
function getTls(port: number, host: string): Promise<{ status: number; body: string; issuer: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/index.html', servername: host, headers: { host }, rejectUnauthorized: false },
      (res) => {
        let body = '';
        const cert = (res.socket as import('node:tls').TLSSocket).getPeerCertificate();
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, issuer: String(cert.issuer?.CN ?? '') }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('zero-downtime deploys with the built deploy action and CLI (sshd, dockerd, registry, Caddy proxy)', () => {
  const env = testEnv();
  const shop = proxiedApp({ host: 'shop.test' });
  const blog = proxiedApp({ host: 'blog.test' });
  let proxy: Awaited<ReturnType<typeof testProxy>>;
  let root = '';
  const v: Manifest[] = [];
  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'lading-zdt-e2e-'));
    proxy = await testProxy({ https: true });
    v.push(shop.version(1), shop.version(2), shop.version(3), shop.version(4, { broken: true }));
  });
  after(() => {
    try {
      shop.cleanup();
      blog.cleanup();
    } finally {
      proxy.cleanup();
      try {
        docker(['network', 'rm', proxy.id]);
      } catch {
        // gone
      }
      rmSync(root, { recursive: true, force: true });
    }
  });
  const connection = () => ({
    hosts: `root@${env.ssh.host}:${env.ssh.port}`,
    'ssh-key': readFileSync(env.ssh.privateKey, 'utf8'),
    'known-hosts': readFileSync(env.ssh.knownHosts, 'utf8'),
    root,
    'health-timeout': '10',
    'health-stable': '0',
    ...proxy.inputs,
  });
  const deploy = (m: Manifest, extra: Record<string, string> = {}) => {
    const file = join(mkdtempSync(join(tmpdir(), 'lading-zdt-m-')), 'manifest.json');
    writeFileSync(file, JSON.stringify(m));
    return runActionBundleAsync('deploy', { inputs: { ...connection(), manifest: file, ...extra } });
  };

  it('deploys a web + worker project three times under 50 requests/s through the proxy: zero failed requests', async () => {
    const first = await deploy(v[0]!);
    assert.equal(first.code, 0, first.stdout + first.stderr);
    assert.deepEqual(await get(proxy.port, 'shop.test'), { status: 200, body: 'v1\n' });
    const load = loadLoop(proxy.port, 'shop.test', { rps: 50, maxMs: 90_000 });
    for (const m of [v[1]!, v[2]!]) {
      const run = await deploy(m);
      assert.equal(run.code, 0, run.stdout + run.stderr);
      assert.match(run.stdout, /switched: /);
    }
    // the load runs on until the drain job has stopped and removed the last old container
    for (let i = 0; i < 200 && shop.containers('web').length > 1; i++) await sleep(100);
    assert.equal(shop.containers('web').length, 1, 'the drained web container was not removed within 20 s');
    await sleep(300);
    const stats = await load.stop();
    assertNoFailures(stats);
    assert.ok(stats.total >= 50, `${stats.total} requests`);
    assert.deepEqual(await get(proxy.port, 'shop.test'), { status: 200, body: 'v3\n' });
    assert.equal(shop.containers('worker').length, 1);
  });

  it('refuses a broken release: the step fails, the old containers keep serving every request', async () => {
    const load = loadLoop(proxy.port, 'shop.test', { rps: 50, maxMs: 60_000 });
    const run = await deploy(v[3]!);
    const stats = await load.stop();
    assert.equal(run.code, 1);
    assert.equal(JSON.parse(run.outputs.hosts!)[0].status, 'rolled-back');
    assert.match(run.stdout, /traffic stays on the old containers/);
    assertNoFailures(stats);
    assert.deepEqual(await get(proxy.port, 'shop.test'), { status: 200, body: 'v3\n' });
  });

  it('lading maintenance on answers 503 with the page; off serves the app again', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lading-zdt-page-'));
    writeFileSync(join(dir, 'page.html'), '<h1>Upgrading the shop</h1>\n');
    const args = (mode: string) => [
      'maintenance',
      mode,
      '--project',
      shop.project,
      '--hosts',
      `root@${env.ssh.host}:${env.ssh.port}`,
      '--ssh-key',
      env.ssh.privateKey,
      '--known-hosts',
      env.ssh.knownHosts,
      '--root',
      root,
      ...Object.entries(proxy.inputs).flatMap(([k, val]) => [`--${k}`, val]),
    ];
    const on = runCli([...args('on'), '--maintenance-page', join(dir, 'page.html')]);
    assert.equal(on.code, 0, on.stderr);
    return get(proxy.port, 'shop.test')
      .then((r) => assert.deepEqual(r, { status: 503, body: '<h1>Upgrading the shop</h1>\n' }))
      .then(() => {
        const off = runCli(args('off'));
        assert.equal(off.code, 0, off.stderr);
        return get(proxy.port, 'shop.test');
      })
      .then((r) => assert.equal(r.status, 200));
  });

  it('a second app shares the proxy, over HTTPS with the internal CA; the first keeps answering', async () => {
    const run = await deploy(blog.version(1), { 'proxy-tls': 'internal' });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const blogAnswer = await getTls(proxy.httpsPort, 'blog.test');
    assert.equal(blogAnswer.status, 200);
    assert.equal(blogAnswer.body, 'v1\n');
    assert.match(blogAnswer.issuer, /Caddy Local Authority/);
    assert.deepEqual(await get(proxy.port, 'shop.test'), { status: 200, body: 'v3\n' });
  });
});
