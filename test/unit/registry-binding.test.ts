import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InputError, LadingError } from '../../src/lib/errors.ts';
import { createManifest, type Manifest, validateManifest } from '../../src/lib/manifest.ts';
import { parseAgentConfig } from '../../src/lib/agent-config.ts';
import type { DeploySettings } from '../../src/settings/deploy.ts';
import { agentRegistryClient } from '../../src/stages/agent-source.ts';
import { registryLogins } from '../../src/stages/host/logins.ts';

// Registry credentials go only to the registry they were given for: a manifest (which anyone who can write the
// bucket can forge) must not be able to name the host that receives them.

const D = `sha256:${'a'.repeat(64)}`;
const reporter = {
  info: () => {},
  warning: () => {},
  group: <T>(_n: string, fn: () => Promise<T>) => fn(),
  secret: () => {},
};

function manifestFor(name: string, registry: string): Manifest {
  return createManifest({
    source: { repository: 'acme/shop', ref: 'refs/heads/main', sha: 'a'.repeat(40), created: '2026-11-24T01:02:03Z' },
    tags: ['main-aaaaaaa'],
    primary: 'main-aaaaaaa',
    images: [
      {
        id: 'web',
        services: ['web'],
        name,
        tags: ['main-aaaaaaa'],
        digest: D,
        ref: `${name}@${D}`,
        transport: { kind: 'registry', registry, provider: 'generic' },
      },
    ],
  } as Parameters<typeof createManifest>[0]);
}

const settings = (auth: Record<string, string>) =>
  ({ overrides: {}, auth: { username: 'deployer', password: 'hunter2', ...auth } }) as unknown as DeploySettings;

describe('registry credentials are bound to their registry', () => {
  it('a manifest naming another registry gets no username/password', async () => {
    const mf = manifestFor('evil.example:5000/shop/web', 'evil.example:5000');
    const env = await registryLogins(mf, settings({ registry: 'registry.acme.test' }), reporter);
    assert.equal(env.LADING_LOGIN_COUNT, '0');
    assert.ok(!Object.values(env).includes('hunter2'), 'the password went to the manifest’s registry');
  });

  it('the registry the credentials are for gets them', async () => {
    const mf = manifestFor('registry.acme.test/shop/web', 'registry.acme.test');
    const env = await registryLogins(mf, settings({ registry: 'registry.acme.test' }), reporter);
    assert.equal(env.LADING_LOGIN_COUNT, '1');
    assert.equal(env.LADING_LOGIN_1_HOST, 'registry.acme.test');
  });

  it('username/password without the registry they are for is refused, naming the input', async () => {
    const mf = manifestFor('evil.example:5000/shop/web', 'evil.example:5000');
    await assert.rejects(registryLogins(mf, settings({}), reporter), (e: InputError) =>
      /input 'registry'/.test(e.message),
    );
  });

  it('a manifest whose transport.registry differs from the host of the image name is refused', () => {
    const mf = JSON.parse(JSON.stringify(manifestFor('registry.acme.test/shop/web', 'registry.acme.test')));
    mf.images[0].transport.registry = 'evil.example:5000';
    assert.throws(
      () => validateManifest(mf),
      (e: LadingError) => /transport\.registry/.test(e.message),
    );
  });

  it("the agent's registry login goes to registry.host only (a re-pin's host comes from a manifest)", async () => {
    const cfg = parseAgentConfig(
      'manifest: { store: /srv/m }\npoll: {}\nregistry: { host: registry.acme.test, username-env: RB_USER, password-env: RB_PASS }\n',
    );
    process.env.RB_USER = 'deployer';
    process.env.RB_PASS = 'hunter2';
    try {
      const credentialOf = async (host: string) =>
        ((await agentRegistryClient(cfg, host, reporter)) as unknown as { opts: { credential?: { password: string } } })
          .opts.credential;
      assert.equal(await credentialOf('evil.example:5000'), undefined);
      assert.equal((await credentialOf('registry.acme.test'))?.password, 'hunter2');
    } finally {
      delete process.env.RB_USER;
      delete process.env.RB_PASS;
    }
  });
});
