import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ReplayCache, verifyWebhook } from '../../src/lib/webhook.ts';
import { runActionBundleAsync } from '../helpers/bundles.ts';
import { sendJson, type StandinServer, startStandin } from '../helpers/standin-server.ts';

/** The build side of pull mode: dist/manifest POSTs a signed webhook to each agent after writing the manifest. */
describe('dist/manifest notify-url: a signed webhook to pull-mode agents', () => {
  const SECRET = `hook-secret-${process.pid}-0123456789abcdef`;
  const D = `sha256:${'a'.repeat(64)}`;
  const push = JSON.stringify({
    context: { sha: 'b'.repeat(40), repository: 'acme/shop', ref: 'refs/heads/main' },
    tags: ['main-bbbbbbb', 'latest'],
    primary: 'main-bbbbbbb',
    channel: 'latest',
    labels: {},
    composeFiles: [],
    images: [
      {
        id: 'web',
        name: 'r.example/web',
        services: ['web'],
        tags: ['main-bbbbbbb'],
        refs: [],
        platforms: [],
        pushedByBuild: false,
        dependsOn: [],
        digest: D,
        ref: `r.example/web@${D}`,
        registry: 'r.example',
        provider: 'generic',
        mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      },
    ],
  });
  let agent: StandinServer;
  const cache = new ReplayCache(600);
  before(async () => {
    agent = await startStandin((req, res) => {
      const verdict = verifyWebhook({
        secret: req.url === '/wrong' ? 'another-secret-entirely-0000' : SECRET,
        headers: req.headers,
        body: Buffer.from(req.body),
        nowSeconds: Math.floor(Date.now() / 1000),
        windowSeconds: 300,
        cache,
      });
      if (!verdict.ok) return sendJson(res, verdict.status, { error: verdict.reason });
      sendJson(res, 202, {
        status: 'queued',
        manifest: (verdict.body.manifest as { primary?: string } | undefined)?.primary,
      });
    });
  });
  after(() => agent.close());
  const run = (url: string, dir = mkdtempSync(join(tmpdir(), 'lading-notify-'))) =>
    runActionBundleAsync('manifest', {
      inputs: { 'push-json': push, 'manifest-path': join(dir, 'm.json'), 'notify-url': url, 'notify-secret': SECRET },
      env: {},
    }).then((r) => ({ ...r, dir }));

  it('sends the manifest, signed, and logs what the agent said', async () => {
    const r = await run(`${agent.url}/hooks/lading`);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /notified http:\/\/127\.0\.0\.1:\d+\/hooks\/lading: 202 .*queued.*main-bbbbbbb/);
    const seen = agent.requests.at(-1)!;
    assert.equal(JSON.parse(seen.body).channel, 'latest');
    assert.ok(!r.stdout.replace(/^::add-mask::.*$/gm, '').includes(SECRET), 'the secret is masked');
  });

  it('fails the step naming the agent that refused it (the manifest is still written)', async () => {
    const r = await run(`${agent.url}/wrong`);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /1 agent\(s\) did not take the notification:%0A.*\/wrong: 401/);
    assert.ok(existsSync(join(r.dir, 'm.json')));
  });

  it('refuses a plain-http agent that is not on loopback before writing anything', async () => {
    const r = await run('http://agent.example.com/hooks');
    assert.equal(r.code, 1);
    assert.match(r.stdout, /input 'notify-url': 'http:\/\/agent\.example\.com\/hooks' is not https/);
    assert.ok(!existsSync(join(r.dir, 'm.json')));
  });
});
