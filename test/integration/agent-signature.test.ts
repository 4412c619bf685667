import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sendNotification } from '../../src/io/notify.ts';
import { parseAgentConfig } from '../../src/lib/agent-config.ts';
import { createManifest, type Manifest, serializeManifest } from '../../src/lib/manifest.ts';
import { signManifest } from '../../src/lib/manifest-signature.ts';
import { storeKeys } from '../../src/lib/store-location.ts';
import { Agent } from '../../src/stages/agent.ts';
import { channelSource } from '../../src/stages/agent-source.ts';
import type { WebhookListener } from '../../src/stages/agent-webhook.ts';
import type { DeployResult } from '../../src/stages/host/types.ts';
import { agentHostSettings } from '../../src/settings/agent.ts';

// Whoever can write the bucket an agent follows must not get a deploy when the agent is given the manifest-secret:
// unsigned and mismatching manifests are logged and not deployed, whichever way the agent hears of them.

const SECRET = 'manifest-secret-for-the-agent-test';
const HOOK_SECRET = 'webhook-secret-0123456789abcdef';
const D = `sha256:${'c'.repeat(64)}`;

function manifest(n: number): Manifest {
  return createManifest({
    source: {
      repository: 'acme/shop',
      ref: 'refs/heads/main',
      sha: String(n).repeat(40).slice(0, 40),
      created: new Date(Date.UTC(2026, 10, 1, 0, 0, n)).toISOString(),
    },
    tags: [`b${n}-aaaaaaa`],
    primary: `b${n}-aaaaaaa`,
    channel: 'latest',
    images: [
      {
        id: 'web',
        services: ['web'],
        name: 'registry.example/shop/web',
        tags: [`b${n}-aaaaaaa`],
        digest: D,
        ref: `registry.example/shop/web@${D}`,
        transport: { kind: 'registry', registry: 'registry.example', provider: 'generic' },
      },
    ],
  });
}

describe('the agent deploys only manifests signed with its manifest-secret', () => {
  const work = mkdtempSync(join(tmpdir(), 'lading-agent-sig-'));
  const store = join(work, 'store');
  const channelKey = join(store, storeKeys.manifestChannel('', 'latest'));
  const deployed: string[] = [];
  const warnings: string[] = [];
  const masked = new Set<string>();
  let listener: WebhookListener | undefined;
  let n = 0;

  const config = (extra = '') =>
    parseAgentConfig(
      `channel: latest
manifest: { store: ${store}, secret-env: TEST_MANIFEST_SECRET }
poll: { interval: 60 }
deploy: { root: ${work}/root }
state-file: ${work}/state-${++n}.json
${extra}`,
    );
  const agentWith = (cfg = config(), env: NodeJS.ProcessEnv = { TEST_MANIFEST_SECRET: `${SECRET}\n` }) =>
    new Agent(cfg, {
      hostSettings: (e) => agentHostSettings(cfg, e),
      env: { ...env, TEST_HOOK_SECRET: HOOK_SECRET },
      reporter: {
        info: () => {},
        warning: (w: string) => warnings.push(w),
        group: (_n, fn) => fn(),
        secret: (v: string) => masked.add(v),
      },
      deploy: async (m): Promise<DeployResult> => {
        deployed.push(m.primary);
        return { release: `r-${m.primary}`, ok: true, hosts: [{ host: 'localhost', status: 'deployed', seconds: 0 }] };
      },
    });
  const publish = (key: string, text: string, signature?: string) => {
    mkdirSync(dirname(key), { recursive: true });
    writeFileSync(key, text);
    rmSync(`${key}.sig`, { force: true });
    if (signature !== undefined) writeFileSync(`${key}.sig`, `${signature}\n`);
  };

  before(() => mkdirSync(store, { recursive: true }));
  after(async () => {
    await listener?.close();
    rmSync(work, { recursive: true, force: true });
  });

  it('poll: refuses an unsigned manifest and one changed after signing; deploys the signed one', async () => {
    const text = serializeManifest(manifest(1));
    publish(channelKey, text);
    let agent = agentWith();
    await assert.rejects(agent.pollOnce(await channelSource(agent.cfg)), /has no valid signature.*missing/);
    const forged = text.replace('registry.example/shop/web@', 'registry.example/evil/web@');
    publish(channelKey, forged, signManifest(text, SECRET));
    agent = agentWith();
    await assert.rejects(agent.pollOnce(await channelSource(agent.cfg)), /does not match its signature/);
    publish(channelKey, text, signManifest(text, 'another-secret'));
    agent = agentWith();
    await assert.rejects(agent.pollOnce(await channelSource(agent.cfg)), /does not match its signature/);
    assert.deepEqual(deployed, [], 'an unsigned or forged manifest was deployed');
    publish(channelKey, text, signManifest(text, SECRET));
    agent = agentWith();
    const event = await agent.pollOnce(await channelSource(agent.cfg));
    await agent.settled();
    assert.equal(event?.outcome, 'deployed');
    assert.deepEqual(deployed, ['b1-aaaaaaa']);
  });

  it('refuses to deploy anything when the configured secret is empty, rather than deploying unchecked', async () => {
    const before = deployed.length;
    const agent = agentWith(config(), {});
    await assert.rejects(agent.pollOnce(await channelSource(agent.cfg)), /manifest\.secret-env'?: holds no secret/);
    assert.equal(deployed.length, before);
  });

  it('webhook: a location without a valid signature and an unsigned inline manifest get 422; signed ones deploy', async () => {
    const agent = agentWith(config('webhook: { listen: "127.0.0.1:0", path: /deploy, secret-env: TEST_HOOK_SECRET }'));
    listener = await agent.listen(HOOK_SECRET);
    const notify = (o: { manifest?: Manifest; location?: string; signature?: string }) =>
      sendNotification({ url: listener!.url, secret: HOOK_SECRET, delivery: randomUUID(), ...o });
    const before = deployed.length;

    const two = serializeManifest(manifest(2));
    const byTag = join(store, storeKeys.manifestByTag('', 'b2-aaaaaaa'));
    publish(byTag, two);
    let res = await notify({ location: byTag });
    assert.equal(res.status, 422, res.body);
    assert.match(res.body, /no valid signature/);
    publish(byTag, two.replace('acme/shop', 'evil/shop'), signManifest(two, SECRET));
    res = await notify({ location: byTag });
    assert.equal(res.status, 422, res.body);
    assert.match(res.body, /does not match its signature/);

    res = await notify({ manifest: manifest(3) });
    assert.equal(res.status, 422, res.body);
    assert.match(res.body, /the manifest in the request has no valid signature/);
    res = await notify({ manifest: manifest(3), signature: signManifest(serializeManifest(manifest(4)), SECRET) });
    assert.equal(res.status, 422, res.body);
    assert.equal(deployed.length, before, 'an unsigned or forged manifest was deployed');

    publish(byTag, two, signManifest(two, SECRET));
    res = await notify({ location: byTag });
    assert.equal(res.status, 202, res.body);
    await agent.settled();
    res = await notify({ manifest: manifest(5), signature: signManifest(serializeManifest(manifest(5)), SECRET) });
    assert.equal(res.status, 202, res.body);
    await agent.settled();
    assert.deepEqual(deployed.slice(before), ['b2-aaaaaaa', 'b5-aaaaaaa']);
    assert.ok(masked.has(SECRET) && masked.has(HOOK_SECRET), 'the agent masks its manifest and webhook secrets');
  });

  it('registry push (update: manifest): the by-tag manifest it maps to deploys only with a matching .sig', async () => {
    const AUTH = 'Bearer registry-hook-token-0123456789';
    const agent = new Agent(
      config(`webhook:
  listen: "127.0.0.1:0"
  registries:
    - kind: distribution
      path: /hooks/registry
      secret-env: TEST_REGISTRY_AUTH
      repositories: [shop/web]`),
      {
        hostSettings: () => assert.fail('this agent deploys through its deploy function'),
        env: { TEST_MANIFEST_SECRET: SECRET, TEST_REGISTRY_AUTH: AUTH },
        reporter: {
          info: () => {},
          warning: (w: string) => warnings.push(w),
          group: (_n, fn) => fn(),
          secret: () => {},
        },
        imageEvents: { waitMs: 600, intervalMs: 100 },
        deploy: async (m): Promise<DeployResult> => {
          deployed.push(m.primary);
          return {
            release: `r-${m.primary}`,
            ok: true,
            hosts: [{ host: 'localhost', status: 'deployed', seconds: 0 }],
          };
        },
      },
    );
    const hooks = await agent.listen(undefined);
    try {
      const push = () =>
        fetch(`${new URL(hooks.url).origin}/hooks/registry`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: AUTH },
          body: JSON.stringify({
            events: [
              {
                id: randomUUID(),
                timestamp: new Date().toISOString(),
                action: 'push',
                target: {
                  mediaType: 'application/vnd.oci.image.manifest.v1+json',
                  digest: D,
                  repository: 'shop/web',
                  tag: 'latest',
                  size: 1,
                },
                request: { host: 'registry.example', method: 'PUT' },
              },
            ],
          }),
        }).then((r) => r.status);
      const key = join(store, storeKeys.manifestByTag('', 'latest'));
      const six = serializeManifest(manifest(6));
      const before = deployed.length;
      publish(key, six);
      assert.equal(await push(), 202);
      await hooks.idle();
      await agent.settled();
      assert.equal(deployed.length, before, 'an unsigned by-tag manifest was deployed');
      assert.ok(
        warnings.some((w) => /no valid signature/.test(w)),
        warnings.join('\n'),
      );
      publish(key, six, signManifest(six, SECRET));
      assert.equal(await push(), 202);
      await hooks.idle();
      await agent.settled();
      assert.deepEqual(deployed.slice(before), ['b6-aaaaaaa']);
    } finally {
      await hooks.close();
    }
  });

  it('config: the secret comes from a file or an env var, never the config text; not with a registry source', () => {
    const cfg = parseAgentConfig(
      `manifest: { store: ${store}, secret-file: /etc/lading/manifest.secret }\npoll: { interval: 60 }\n`,
    );
    assert.equal(cfg.manifest.secretFile, '/etc/lading/manifest.secret');
    assert.throws(
      () => parseAgentConfig(`manifest: { store: ${store}, secret: s3cret }\npoll: { interval: 60 }\n`),
      /manifest\.secret'?: is not a known key/,
    );
    assert.throws(
      () =>
        parseAgentConfig(
          'manifest: { registry: registry.example/acme/manifests, secret-env: X }\npoll: { interval: 60 }\n',
        ),
      /manifest\.secret-env'?: is set with manifest\.registry/,
    );
  });
});
