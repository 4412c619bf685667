import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { ReplayCache, verifyWebhook } from '../../src/lib/webhook.ts';
import { runActionBundleAsync } from '../helpers/bundles.ts';
import { type SeenRequest, sendJson, type StandinServer, startStandin } from '../helpers/standin-server.ts';
import { selfSigned } from '../helpers/tls.ts';

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
  let tlsAgent: StandinServer;
  let tls: { cert: string; key: string };
  const cache = new ReplayCache(600);
  before(async () => {
    const handler = (req: SeenRequest, res: ServerResponse) => {
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
    };
    agent = await startStandin(handler);
    // An agent with a self-signed certificate, made as the README says.
    tls = selfSigned(mkdtempSync(join(tmpdir(), 'lading-notify-tls-')));
    tlsAgent = await startStandin(handler, { tls });
  });
  after(async () => {
    await agent.close();
    await tlsAgent.close();
  });
  const run = (url: string, dir = mkdtempSync(join(tmpdir(), 'lading-notify-')), extra: Record<string, string> = {}) =>
    runActionBundleAsync('manifest', {
      inputs: {
        'push-json': push,
        'manifest-path': join(dir, 'm.json'),
        'notify-url': url,
        'notify-secret': SECRET,
        ...extra,
      },
      env: {},
    }).then((r) => ({ ...r, dir }));

  it('an agent with a self-signed certificate: refused until trusted with notify-ca-file or notify-ca', async () => {
    const untrusted = await run(`${tlsAgent.url}/hooks/lading`);
    assert.equal(untrusted.code, 1);
    assert.match(untrusted.stdout, /SELF_SIGNED_CERT|self-signed/i);
    assert.match(untrusted.stdout, /notify-ca/);
    const seen = tlsAgent.requests.length;
    const byFile = await run(`${tlsAgent.url}/hooks/lading`, undefined, { 'notify-ca-file': tls.cert });
    assert.equal(byFile.code, 0, byFile.stdout);
    assert.match(byFile.stdout, /notified https:\/\/127\.0\.0\.1:\d+\/hooks\/lading: 202/);
    const byText = await run(`${tlsAgent.url}/hooks/lading`, undefined, {
      'notify-ca': readFileSync(tls.cert, 'utf8'),
    });
    assert.equal(byText.code, 0, byText.stdout);
    assert.equal(tlsAgent.requests.length, seen + 2);
    const notPem = await run(`${tlsAgent.url}/hooks/lading`, undefined, { 'notify-ca': 'not a certificate' });
    assert.equal(notPem.code, 1);
    assert.match(notPem.stdout, /input 'notify-ca': holds no PEM certificate/);
  });

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
