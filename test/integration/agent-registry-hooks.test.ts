import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseAgentConfig } from '../../src/lib/agent-config.ts';
import { composeFile, createManifest, type Manifest, serializeManifest } from '../../src/lib/manifest.ts';
import { storeKeys } from '../../src/lib/store-location.ts';
import { Agent } from '../../src/stages/agent.ts';
import type { WebhookListener } from '../../src/stages/agent-webhook.ts';
import type { DeployResult } from '../../src/stages/deploy.ts';
import { stderrReporter } from '../../src/io/reporter.ts';
import { type StandinServer, startStandin } from '../helpers/standin-server.ts';
import { agentHostSettings } from '../../src/settings/agent.ts';

/**
 * The agent hearing registries' own push webhooks (Docker Hub, distribution/GitLab, Harbor, GitHub registry_package)
 * over real HTTP on loopback, mapping each push to the manifest the build published for it (a file manifest store),
 * or re-pinning the current release. Deploys are recorded, not run: what is tested is which manifest gets deployed.
 */

const dig = (c: string) => `sha256:${c.repeat(64)}`;
const TOKEN = 'dockerhub-token-0123456789abcdef0123';
const AUTH = 'Bearer registry-notify-0123456789';
const GH = 'github-webhook-secret-0123456789';

function manifestFor(n: number, images: Array<[string, string, string]>): Manifest {
  const tag = `main-${String(n).padStart(7, '0')}`;
  return createManifest({
    source: {
      repository: 'acme/shop',
      ref: 'refs/heads/main',
      sha: String(n).repeat(40).slice(0, 40),
      created: new Date(Date.now() + n * 1000).toISOString(),
    },
    tags: [tag, 'latest'],
    primary: tag,
    channel: 'latest',
    images: images.map(([id, name, digest]) => ({
      id,
      services: [id],
      name,
      tags: [tag, 'latest'],
      digest,
      ref: `${name}@${digest}`,
      transport: { kind: 'registry', registry: name.split('/')[0]!, provider: 'generic' },
    })),
    compose: {
      project: 'shop',
      files: [composeFile('docker-compose.yml', 'services:\n  web:\n    image: x\n')],
      env: { DOCKER_TAG: tag },
    },
  });
}

describe('lading agent: registry push webhooks', () => {
  let dir = '';
  let store = '';
  let root = '';
  let listener: WebhookListener;
  let agent: Agent;
  let callback: StandinServer;
  const deployed: Manifest[] = [];
  const publishByTag = (tag: string, m: Manifest) =>
    writeFileSync(join(store, storeKeys.manifestByTag('', tag)), serializeManifest(m));
  const post = async (path: string, body: unknown, headers: Record<string, string> = {}) => {
    const text = JSON.stringify(body);
    const res = await fetch(`${new URL(listener.url).origin}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: text,
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const done = async () => {
    await listener.idle();
    await agent.settled();
  };
  const distributionPush = (repository: string, tag: string, digest: string) => ({
    events: [
      {
        id: `e-${digest.slice(7, 15)}`,
        timestamp: new Date().toISOString(),
        action: 'push',
        target: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, repository, tag, size: 1 },
        request: { host: 'registry.example', method: 'PUT' },
      },
    ],
  });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lading-agent-hooks-'));
    store = join(dir, 'store');
    root = join(dir, 'root');
    mkdirSync(join(store, 'manifests', 'by-tag'), { recursive: true });
    for (const [f, v] of [
      ['dockerhub.token', TOKEN],
      ['registry.auth', AUTH],
      ['github.secret', GH],
    ])
      writeFileSync(join(dir, f!), `${v}\n`, { mode: 0o600 });
    callback = await startStandin((_req, res) => {
      res.writeHead(200);
      res.end('{}');
    });
    const cfg = parseAgentConfig(`
channel: latest
manifest:
  store: ${store}
deploy:
  root: ${root}
  project: shop
webhook:
  listen: 127.0.0.1:0
  path: /hooks/lading
  secret-file: ${join(dir, 'github.secret')}
  registries:
    - kind: distribution
      path: /hooks/registry
      secret-file: ${join(dir, 'registry.auth')}
      repositories: [acme/web]
    - kind: harbor
      secret-file: ${join(dir, 'registry.auth')}
      repositories: [library/web]
    - kind: dockerhub
      secret-file: ${join(dir, 'dockerhub.token')}
      repositories: [acme/hub]
      callback-prefix: ${callback.url}/
    - kind: github
      secret-file: ${join(dir, 'github.secret')}
      repositories: [acme/gh]
    - kind: distribution
      path: /hooks/pin
      secret-file: ${join(dir, 'registry.auth')}
      repositories: [acme/api]
      update: pin
`);
    agent = new Agent(cfg, {
      hostSettings: (e) => agentHostSettings(cfg, e),
      reporter: stderrReporter(true),
      imageEvents: { waitMs: 3000, intervalMs: 100 },
      deploy: async (m): Promise<DeployResult> => {
        deployed.push(m);
        return { release: `r-${m.primary}`, ok: true, hosts: [{ host: 'localhost', status: 'deployed', seconds: 0 }] };
      },
    });
    listener = await agent.listen(GH);
  });
  after(async () => {
    await listener.close();
    await callback.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('distribution: a push of a followed tag deploys the published manifest pinning that digest', async () => {
    const m = manifestFor(1, [['web', 'registry.example/acme/web', dig('1')]]);
    publishByTag('latest', m);
    const res = await post('/hooks/registry', distributionPush('acme/web', 'latest', dig('1')), {
      authorization: AUTH,
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    await done();
    assert.equal(deployed.at(-1)?.primary, m.primary);
  });

  it('distribution: forged or missing Authorization → 401; another repository or tag → 200 ignored; nothing deploys', async () => {
    const n = deployed.length;
    const body = distributionPush('acme/web', 'latest', dig('9'));
    assert.equal((await post('/hooks/registry', body, { authorization: 'Bearer guessed' })).status, 401);
    assert.equal((await post('/hooks/registry', body)).status, 401);
    const other = await post('/hooks/registry', distributionPush('acme/other', 'latest', dig('9')), {
      authorization: AUTH,
    });
    assert.equal(other.status, 200);
    assert.equal(other.body.status, 'ignored');
    const dev = await post('/hooks/registry', distributionPush('acme/web', 'dev', dig('9')), { authorization: AUTH });
    assert.equal(dev.status, 200);
    assert.match(String(dev.body.reasons), /not a tag this agent follows/);
    await done();
    assert.equal(deployed.length, n);
  });

  it('a push that arrives before the build publishes its manifest waits for the manifest pinning it', async () => {
    const m = manifestFor(2, [['web', 'registry.example/acme/web', dig('2')]]);
    const res = await post('/hooks/registry', distributionPush('acme/web', 'latest', dig('2')), {
      authorization: AUTH,
    });
    assert.equal(res.status, 202);
    await new Promise((r) => setTimeout(r, 300));
    publishByTag('latest', m); // the manifest step, a moment after the push
    await done();
    assert.equal(deployed.at(-1)?.primary, m.primary);
  });

  it('a push no published manifest ever pins deploys nothing (the old manifest is not redeployed)', async () => {
    const n = deployed.length;
    const res = await post('/hooks/registry', distributionPush('acme/web', 'latest', dig('3')), {
      authorization: AUTH,
    });
    assert.equal(res.status, 202);
    await done();
    assert.equal(deployed.length, n);
  });

  it('harbor: a PUSH_ARTIFACT with the configured auth header deploys; unsigned → 401', async () => {
    const m = manifestFor(4, [['web', 'harbor.example.com/library/web', dig('4')]]);
    publishByTag('latest', m);
    const payload = {
      type: 'PUSH_ARTIFACT',
      occur_at: Math.floor(Date.now() / 1000),
      operator: 'ci',
      event_data: {
        resources: [{ digest: dig('4'), tag: 'latest', resource_url: 'harbor.example.com/library/web:latest' }],
        repository: { name: 'web', namespace: 'library', repo_full_name: 'library/web', repo_type: 'private' },
      },
    };
    assert.equal((await post('/hooks/harbor', payload)).status, 401);
    assert.equal((await post('/hooks/harbor', payload, { authorization: AUTH })).status, 202);
    await done();
    assert.equal(deployed.at(-1)?.primary, m.primary);
  });

  it('dockerhub: the token in the path authenticates, the callback_url hears the outcome; a wrong token → 401', async () => {
    const m = manifestFor(5, [['web', 'docker.io/acme/hub', dig('5')]]);
    publishByTag('latest', m);
    const payload = {
      callback_url: `${callback.url}/u/acme/hub/hook/2141b5bi5i5b02bec211i4eeih0242eg11000a/`,
      push_data: { pushed_at: Math.floor(Date.now() / 1000) - 60, pusher: 'ci', tag: 'latest' },
      repository: { repo_name: 'acme/hub', name: 'hub', namespace: 'acme', status: 'Active' },
    };
    assert.equal((await post(`/hooks/dockerhub/${TOKEN.slice(0, -1)}0`, payload)).status, 401);
    assert.equal((await post('/hooks/dockerhub', payload)).status, 404);
    assert.equal(callback.requests.length, 0);
    const res = await post(`/hooks/dockerhub/${TOKEN}`, payload);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    await done();
    assert.equal(deployed.at(-1)?.primary, m.primary);
    const cb = callback.requests.at(-1)!;
    assert.equal(cb.url, '/u/acme/hub/hook/2141b5bi5i5b02bec211i4eeih0242eg11000a/');
    assert.equal(JSON.parse(cb.body).state, 'success');
  });

  it('github: a signed registry_package published event deploys; a replayed delivery → 409; unsigned → 401', async () => {
    const m = manifestFor(6, [['web', 'ghcr.io/acme/gh', dig('6')]]);
    publishByTag('latest', m);
    const payload = {
      action: 'published',
      registry_package: {
        name: 'gh',
        namespace: 'acme',
        package_type: 'CONTAINER',
        ecosystem: 'CONTAINER',
        owner: { login: 'acme' },
        package_version: { version: dig('6'), container_metadata: { tag: { name: 'latest', digest: dig('6') } } },
        registry: { host: 'ghcr.io' },
      },
    };
    const text = JSON.stringify(payload);
    const signed = {
      'x-github-event': 'registry_package',
      'x-github-delivery': 'd-6',
      'x-hub-signature-256': `sha256=${createHmac('sha256', GH).update(text).digest('hex')}`,
    };
    assert.equal((await post('/hooks/github', payload, { 'x-github-event': 'registry_package' })).status, 401);
    assert.equal((await post('/hooks/github', payload, signed)).status, 202);
    assert.equal((await post('/hooks/github', payload, signed)).status, 409);
    await done();
    assert.equal(deployed.at(-1)?.primary, m.primary);
  });

  it('update: pin — only the pushed service is re-pinned in the current release', async () => {
    const current = manifestFor(7, [
      ['api', 'registry.example/acme/api', dig('7')],
      ['worker', 'registry.example/acme/worker', dig('8')],
    ]);
    mkdirSync(join(root, 'shop', 'current'), { recursive: true });
    writeFileSync(join(root, 'shop', 'current', 'manifest.json'), serializeManifest(current));
    const res = await post('/hooks/pin', distributionPush('acme/api', 'latest', dig('c')), { authorization: AUTH });
    assert.equal(res.status, 202);
    await done();
    const next = deployed.at(-1)!;
    assert.equal(next.primary, current.primary);
    assert.deepEqual(
      next.images.map((i) => i.ref),
      [`registry.example/acme/api@${dig('c')}`, `registry.example/acme/worker@${dig('8')}`],
    );
  });
});
