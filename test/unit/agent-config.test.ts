import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { manifestIdentity, parseAgentConfig } from '../../src/lib/agent-config.ts';
import { INPUTS } from '../../src/lib/input-table.ts';
import { parseSize } from '../../src/lib/inputs.ts';
import { createManifest, composeFile } from '../../src/lib/manifest.ts';
import { agentHostSettings } from '../../src/settings/agent.ts';

const MIN = `
channel: latest
manifest:
  store: s3://lading-test/shop
poll:
  interval: 30
`;

describe('agent config', () => {
  it('reads a minimal poll config with defaults, and the channel key from storeKeys', () => {
    const cfg = parseAgentConfig(MIN, { hostname: 'web-1' });
    assert.equal(cfg.channel, 'latest');
    assert.deepEqual(cfg.manifest.location, {
      kind: 's3',
      bucket: 'lading-test',
      key: 'shop/manifests/channels/latest.json',
    });
    assert.equal(cfg.poll?.interval, 30);
    assert.equal(cfg.deploy.root, '/srv/lading');
    assert.equal(cfg.deploy.healthTimeout, 120);
    assert.equal(cfg.deploy.rollback, true);
    assert.equal(cfg.deploy.allowDowngrade, false);
    assert.equal(cfg.stateFile, '/srv/lading/.lading-agent-latest.json');
    assert.equal(cfg.runId, 'agent-web-1');
    assert.equal(cfg.webhook, undefined);
  });

  it('reads a full config: https URL source, deploy settings, registry env names, TLS webhook', () => {
    const cfg = parseAgentConfig(`
channel: stage
manifest:
  url: https://artifacts.example.com/manifests/channels/stage.json
deploy:
  root: /opt/apps
  project: shop
  health-timeout: 60
  health-stable: 5
  probe-url: http://127.0.0.1:8080/health
  keep-releases: 3
  rollback: false
  docker-host: unix:///run/docker.sock
registry:
  host: registry.example.com
  username-env: REG_USER
  password-env: REG_PASS
  providers: ["registry.example.com=generic"]
webhook:
  listen: 0.0.0.0:8443
  path: /hooks/lading
  tls-cert: /etc/lading/cert.pem
  tls-key: /etc/lading/key.pem
  secret-file: /etc/lading/webhook.secret
  max-body: 256k
  timestamp-window: 120
state-file: /var/lib/lading/agent.json
`);
    assert.equal(cfg.manifest.location?.kind, 'https');
    assert.equal(cfg.deploy.project, 'shop');
    assert.equal(cfg.deploy.rollback, false);
    assert.equal(cfg.deploy.dockerHost, 'unix:///run/docker.sock');
    assert.deepEqual(cfg.registry, {
      host: 'registry.example.com',
      usernameEnv: 'REG_USER',
      passwordEnv: 'REG_PASS',
      providers: ['registry.example.com=generic'],
    });
    assert.deepEqual(
      { ...cfg.webhook },
      {
        host: '0.0.0.0',
        port: 8443,
        path: '/hooks/lading',
        tlsCert: '/etc/lading/cert.pem',
        tlsKey: '/etc/lading/key.pem',
        secretFile: '/etc/lading/webhook.secret',
        maxBody: 256 * 1024,
        timestampWindow: 120,
        registries: [],
      },
    );
    assert.equal(cfg.poll, undefined);
  });

  it('a cron-only agent (--once) needs only the channel to read: no poll or webhook section', () => {
    const cfg = parseAgentConfig('manifest: { store: /srv/artifacts }\n', { once: true });
    assert.equal(cfg.poll, undefined);
    assert.equal(cfg.webhook, undefined);
    assert.equal(cfg.manifest.location?.key, 'manifests/channels/latest.json');
  });

  it('a webhook may listen to registries only; each endpoint defaults its path, tags (the channel) and update', () => {
    const cfg = parseAgentConfig(
      'channel: stage\nmanifest: { store: /srv/artifacts }\nwebhook:\n  listen: 127.0.0.1:9000\n  registries:\n    - { kind: dockerhub, secret-file: /etc/lading/hub.token, repositories: [acme/web] }\n',
    );
    assert.equal(cfg.webhook?.secretFile, undefined);
    assert.deepEqual(cfg.webhook?.registries, [
      {
        kind: 'dockerhub',
        path: '/hooks/dockerhub',
        secretFile: '/etc/lading/hub.token',
        repositories: ['acme/web'],
        tags: ['stage'],
        update: 'manifest',
        callbackPrefix: 'https://registry.hub.docker.com/',
      },
    ]);
  });

  it('a file store location reads <dir>/manifests/channels/<channel>.json', () => {
    const cfg = parseAgentConfig('manifest: { store: /srv/artifacts }\npoll: {}\n');
    assert.deepEqual(cfg.manifest.location, {
      kind: 'file',
      bucket: '/srv/artifacts',
      key: 'manifests/channels/latest.json',
    });
    assert.equal(cfg.poll?.interval, 60);
  });

  it('a registry location: host/repo:tag, the tag defaulting to the channel', () => {
    const cfg = parseAgentConfig(
      'channel: stage\nmanifest: { registry: "127.0.0.1:5000/acme/shop-manifest" }\npoll: {}\n',
    );
    assert.deepEqual(cfg.manifest.registry, {
      host: '127.0.0.1:5000',
      repository: 'acme/shop-manifest',
      tag: 'stage',
      ref: '127.0.0.1:5000/acme/shop-manifest:stage',
    });
    assert.equal(cfg.manifest.location, undefined);
    const tagged = parseAgentConfig('manifest: { registry: "ghcr.io/acme/deploy:prod" }\npoll: {}\n');
    assert.equal(tagged.manifest.registry?.tag, 'prod');
    assert.throws(
      () => parseAgentConfig('manifest: { registry: "acme/deploy" }\npoll: {}\n'),
      /input 'manifest.registry'.*no registry host/,
    );
    assert.throws(
      () => parseAgentConfig('manifest: { registry: "ghcr.io/a/b", store: /x }\npoll: {}\n'),
      /input 'manifest': names more than one/,
    );
  });

  it('plain HTTP is accepted on loopback only', () => {
    const cfg = parseAgentConfig(
      'manifest: { store: s3://lading-test }\nwebhook: { listen: "127.0.0.1:9000", secret-env: HOOK_SECRET }\n',
    );
    assert.equal(cfg.webhook?.tlsCert, undefined);
    assert.equal(cfg.webhook?.host, '127.0.0.1');
  });

  const bad: Array<[string, string, RegExp]> = [
    ['not YAML', 'manifest: [', /input 'config'.*not YAML/],
    ['a list', '- a\n- b\n', /input 'config'.*not a YAML mapping/],
    ['an unknown top-level key', `${MIN}colour: blue\n`, /input 'colour': is not a known key/],
    [
      'an unknown key in deploy',
      `${MIN}deploy: { helth-timeout: 3 }\n`,
      /input 'deploy.helth-timeout': is not a known key/,
    ],
    ['no manifest section', 'poll: {}\n', /input 'manifest': is missing/],
    [
      'store and url together',
      'manifest: { store: s3://lading-test, url: "https://x.example/m.json" }\npoll: {}\n',
      /input 'manifest': names more than one/,
    ],
    ['neither store nor url', 'manifest: { region: eu-west-1 }\npoll: {}\n', /input 'manifest': names no location/],
    ['a bad bucket name', 'manifest: { store: s3://UPPER }\npoll: {}\n', /input 'manifest.store'.*bucket name/],
    [
      'a plain-http url off loopback',
      'manifest: { url: "http://example.com/m.json" }\npoll: {}\n',
      /input 'manifest.url'.*plain http/,
    ],
    [
      'neither poll nor webhook',
      'manifest: { store: s3://lading-test }\n',
      /input 'poll': and webhook are both missing/,
    ],
    [
      'a zero poll interval',
      'manifest: { store: s3://lading-test }\npoll: { interval: 0 }\n',
      /input 'poll.interval': 0 is out of range/,
    ],
    [
      'a text health timeout',
      `${MIN}deploy: { health-timeout: soon }\n`,
      /input 'deploy.health-timeout': 'soon' is not a whole number/,
    ],
    ['a relative root', `${MIN}deploy: { root: srv }\n`, /input 'deploy.root'/],
    ['an upper-case project', `${MIN}deploy: { project: Shop }\n`, /input 'deploy.project'/],
    [
      'rollback as text',
      `${MIN}deploy: { rollback: "maybe" }\n`,
      /input 'deploy.rollback': 'maybe' is not true or false/,
    ],
    ['a bad channel', 'channel: "no/slash"\nmanifest: { store: s3://lading-test }\npoll: {}\n', /input 'channel'/],
    [
      'a password value instead of an env var name',
      `${MIN}registry: { username-env: U, password-env: "hunter2!" }\n`,
      /input 'registry.password-env'.*not an environment variable name/,
    ],
    [
      'a registry login without the registry it is for',
      `${MIN}registry: { username-env: U, password-env: P }\n`,
      /input 'registry.host': is missing while username-env\/password-env are set/,
    ],
    [
      'a username env without the password env',
      `${MIN}registry: { username-env: U }\n`,
      /input 'registry.password-env': is missing/,
    ],
    [
      'a public webhook without TLS',
      'manifest: { store: s3://lading-test }\nwebhook: { listen: "0.0.0.0:8443", secret-env: S }\n',
      /input 'webhook.tls-cert': is missing: .*loopback only/,
    ],
    [
      'a cert without its key',
      'manifest: { store: s3://lading-test }\nwebhook: { listen: ":8443", tls-cert: /c.pem, secret-env: S }\n',
      /input 'webhook.tls-key': is missing/,
    ],
    [
      'no secret',
      'manifest: { store: s3://lading-test }\nwebhook: { listen: "127.0.0.1:9000" }\n',
      /input 'webhook.secret-file': is missing/,
    ],
    [
      'two secrets',
      'manifest: { store: s3://lading-test }\nwebhook: { listen: "127.0.0.1:9000", secret-env: S, secret-file: /s }\n',
      /input 'webhook.secret-file': and secret-env are both set/,
    ],
    [
      'an unknown registry kind',
      'manifest: { store: /s }\nwebhook: { listen: "127.0.0.1:9000", registries: [{ kind: quay, secret-env: T, repositories: [a/b] }] }\n',
      /input 'webhook.registries\[0\].kind': 'quay' is not a registry kind/,
    ],
    [
      'a registry endpoint without repositories',
      'manifest: { store: /s }\nwebhook: { listen: "127.0.0.1:9000", registries: [{ kind: dockerhub, secret-env: T }] }\n',
      /input 'webhook.registries\[0\].repositories': is empty/,
    ],
    [
      'update: manifest without a manifest store',
      'manifest: { url: "https://x.example/m.json" }\nwebhook: { listen: "127.0.0.1:9000", registries: [{ kind: harbor, secret-env: T, repositories: [a/b] }] }\n',
      /input 'webhook.registries\[0\].update': is manifest, which reads the manifest store/,
    ],
    [
      'update: pin without deploy.project',
      'manifest: { store: /s }\nwebhook: { listen: "127.0.0.1:9000", registries: [{ kind: github, secret-env: T, repositories: [a/b], update: pin }] }\n',
      /input 'webhook.registries\[0\].update': is pin/,
    ],
    [
      'two endpoints on one path',
      'manifest: { store: /s }\nwebhook: { listen: "127.0.0.1:9000", path: /h, secret-env: S, registries: [{ kind: github, path: /h, secret-env: T, repositories: [a/b] }] }\n',
      /two endpoints listen on the path \/h/,
    ],
    [
      'a bad listen address',
      'manifest: { store: s3://lading-test }\nwebhook: { listen: "8443", secret-env: S }\n',
      /input 'webhook.listen'/,
    ],
    [
      'a huge max-body',
      'manifest: { store: s3://lading-test }\nwebhook: { listen: "127.0.0.1:1", secret-env: S, max-body: 1g }\n',
      /input 'webhook.max-body'/,
    ],
    [
      'a relative secret file',
      'manifest: { store: s3://lading-test }\nwebhook: { listen: "127.0.0.1:1", secret-file: secret.txt }\n',
      /input 'webhook.secret-file'.*absolute/,
    ],
  ];
  for (const [name, text, re] of bad) {
    it(`refuses ${name}, naming the key`, () => {
      assert.throws(
        () => parseAgentConfig(text),
        (err: Error) => {
          assert.match(err.message, re);
          return true;
        },
      );
    });
  }

  it('sizes: bytes, k and m', () => {
    assert.equal(parseSize('s', 2048, 0), 2048);
    assert.equal(parseSize('s', '10m', 0), 10 * 1024 * 1024);
    assert.equal(parseSize('s', '512KiB', 0), 512 * 1024);
    assert.equal(parseSize('s', undefined, 7), 7);
  });
});

describe('manifest identity', () => {
  const make = (created: string, digest = 'a') =>
    createManifest({
      source: { repository: 'acme/shop', ref: 'refs/heads/main', sha: '1'.repeat(40), created },
      tags: ['main-1111111'],
      primary: 'main-1111111',
      images: [
        {
          id: 'web',
          services: ['web'],
          name: 'r.example/web',
          tags: ['main-1111111'],
          digest: `sha256:${digest.repeat(64)}`,
          ref: `r.example/web@sha256:${digest.repeat(64)}`,
          transport: { kind: 'registry', registry: 'r.example', provider: 'generic' },
        },
      ],
      compose: {
        project: 'shop',
        files: [composeFile('docker-compose.yml', 'services: {}\n')],
        env: { DOCKER_TAG: 'main-1111111' },
      },
    });
  it('is the same for a manifest re-published with only a new created time', () => {
    assert.equal(manifestIdentity(make('2026-01-01T00:00:00Z')), manifestIdentity(make('2026-02-01T00:00:00Z')));
  });
  it('differs when an image digest differs', () => {
    assert.notEqual(
      manifestIdentity(make('2026-01-01T00:00:00Z', 'a')),
      manifestIdentity(make('2026-01-01T00:00:00Z', 'b')),
    );
  });
});

describe('the shipped example config', () => {
  it('examples/agent/agent.yml is a valid agent config', async () => {
    const { readFileSync } = await import('node:fs');
    const text = readFileSync(new URL('../../examples/agent/agent.yml', import.meta.url), 'utf8');
    const cfg = parseAgentConfig(text, { hostname: 'web-1' });
    assert.equal(cfg.channel, 'latest');
    assert.equal(cfg.manifest.location?.key, 'shop/manifests/channels/latest.json');
    assert.equal(cfg.webhook?.tlsCert, '/etc/lading/tls/cert.pem');
    assert.equal(cfg.poll?.interval, 60);
  });
});

describe("the agent's deploy defaults are the deploy inputs' (one table of inputs)", () => {
  it('takes the defaults and the bounds of health-timeout, keep-releases, lock-ttl … from the table', () => {
    const d = parseAgentConfig(MIN, { hostname: 'web-1' }).deploy;
    assert.deepEqual(
      [
        d.healthTimeout,
        d.healthStable,
        d.keepReleases,
        d.lockTtl,
        d.lockWait,
        d.stepTimeout,
        d.rollback,
        d.allowDowngrade,
      ],
      [
        INPUTS['health-timeout'].default,
        INPUTS['health-stable'].default,
        INPUTS['keep-releases'].default,
        INPUTS['lock-ttl'].default,
        INPUTS['lock-wait'].default,
        INPUTS['step-timeout'].default,
        INPUTS.rollback.default,
        INPUTS['allow-downgrade'].default,
      ],
    );
    const over = `${MIN}\ndeploy: { health-timeout: ${INPUTS['health-timeout'].max + 1} }\n`;
    assert.throws(() => parseAgentConfig(over, { hostname: 'web-1' }), /deploy\.health-timeout.*out of range/);
  });
});

describe("the agent's deploy settings", () => {
  it('names the config key (deploy.env-file) when its env file cannot be read', async () => {
    const cfg = parseAgentConfig(`${MIN}\ndeploy: { env-file: /nonexistent/lading-agent.env }\n`, {
      hostname: 'web-1',
    });
    await assert.rejects(
      agentHostSettings(cfg, {}),
      /deploy\.env-file.*\/nonexistent\/lading-agent\.env cannot be read/,
    );
  });
  it('names the config key (registry.google-credentials-file) when the credentials file cannot be read', async () => {
    const cfg = parseAgentConfig(`${MIN}\nregistry: { google-credentials-file: /nonexistent/sa.json }\n`, {
      hostname: 'web-1',
    });
    await assert.rejects(
      agentHostSettings(cfg, {}),
      /registry\.google-credentials-file.*\/nonexistent\/sa\.json cannot be read/,
    );
  });
});
