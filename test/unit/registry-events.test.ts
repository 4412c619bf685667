import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  authenticate,
  type ImagePush,
  parseRegistryEvent,
  REGISTRY_KINDS,
  type RegistryKind,
  sameSecret,
  selectPushes,
} from '../../src/lib/registry-events.ts';

const D = `sha256:${'a'.repeat(64)}`;
const TOKEN = 'k3Jd9x-2QmZr8vLw4Tn7Yp1Hs6Gc5Fb0';
const AUTH = 'Bearer registry-notify-0123456789';
const GH_SECRET = 'github-webhook-secret-0123456789';

// Payloads as each registry documents them (trimmed to the fields that matter, plus some that do not).
const dockerHub = {
  callback_url: 'https://registry.hub.docker.com/u/svendowideit/testhook/hook/2141b5bi5i5b02bec211i4eeih0242eg11000a/',
  push_data: { pushed_at: 1417566161, pusher: 'trustedbuilder', tag: 'latest' },
  repository: {
    comment_count: 0,
    date_created: 1417494799,
    description: '',
    is_official: false,
    is_private: true,
    is_trusted: true,
    name: 'testhook',
    namespace: 'svendowideit',
    owner: 'svendowideit',
    repo_name: 'svendowideit/testhook',
    repo_url: 'https://registry.hub.docker.com/u/svendowideit/testhook/',
    star_count: 0,
    status: 'Active',
  },
};

const distribution = {
  events: [
    {
      id: 'asdf-asdf-asdf-asdf-0',
      timestamp: '2006-01-02T15:04:05Z',
      action: 'push',
      target: {
        mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
        size: 1,
        digest: D,
        length: 1,
        repository: 'library/test',
        url: `https://example.com/v2/library/test/manifests/${D}`,
        tag: 'latest',
      },
      request: {
        id: 'asdfasdf',
        addr: 'client.local',
        host: 'registrycluster.local',
        method: 'PUT',
        useragent: 'test/0.1',
      },
      actor: { name: 'test-actor' },
      source: { addr: 'hostname.local:port' },
    },
    {
      id: 'asdf-asdf-asdf-asdf-1',
      timestamp: '2006-01-02T15:04:05Z',
      action: 'push',
      target: {
        mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
        size: 2,
        digest: `sha256:${'b'.repeat(64)}`,
        length: 2,
        repository: 'library/test',
        url: 'https://example.com/v2/library/test/blobs/sha256:…',
      },
    },
    {
      id: 'asdf-asdf-asdf-asdf-2',
      action: 'pull',
      target: {
        mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
        repository: 'library/test',
        tag: 'x',
      },
    },
  ],
};

const harbor = {
  type: 'PUSH_ARTIFACT',
  occur_at: 1680501893,
  operator: 'harbor-jobservice',
  event_data: {
    resources: [{ digest: D, tag: 'latest', resource_url: 'harbor.example.com/library/web:latest' }],
    repository: {
      date_created: 1680501893,
      name: 'web',
      namespace: 'library',
      repo_full_name: 'library/web',
      repo_type: 'private',
    },
  },
};

const github = {
  action: 'published',
  registry_package: {
    id: 1,
    name: 'web',
    namespace: 'acme',
    description: '',
    ecosystem: 'CONTAINER',
    package_type: 'CONTAINER',
    html_url: 'https://github.com/orgs/acme/packages/container/package/web',
    created_at: '2026-11-24T10:00:00Z',
    updated_at: '2026-11-24T10:00:00Z',
    owner: { login: 'acme', type: 'Organization' },
    package_version: {
      id: 2,
      version: D,
      name: D,
      container_metadata: { tag: { name: 'latest', digest: D }, labels: {}, manifest: {} },
      package_url: 'ghcr.io/acme/web:latest',
    },
    registry: {
      about_url: 'https://docs.github.com/…',
      name: 'GitHub CONTAINER registry',
      type: 'CONTAINER',
      url: 'https://ghcr.io/acme',
      vendor: 'GitHub Inc',
    },
  },
  repository: { full_name: 'acme/shop' },
  sender: { login: 'octocat' },
};

const buf = (x: unknown) => Buffer.from(JSON.stringify(x));
const ghSig = (body: Buffer, secret = GH_SECRET) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

describe('registry push webhooks: documented payloads', () => {
  const cases: Array<[RegistryKind, unknown, ImagePush[], number]> = [
    ['dockerhub', dockerHub, [{ repository: 'svendowideit/testhook', tag: 'latest', pushedAt: 1417566161 }], 0],
    [
      'distribution',
      distribution,
      [{ repository: 'library/test', tag: 'latest', digest: D, host: 'registrycluster.local' }],
      2, // the layer push and the pull
    ],
    ['harbor', harbor, [{ repository: 'library/web', tag: 'latest', digest: D, host: 'harbor.example.com' }], 0],
    ['github', github, [{ repository: 'acme/web', tag: 'latest', digest: D, host: 'ghcr.io' }], 0],
  ];
  for (const [kind, payload, pushes, ignored] of cases) {
    it(`${kind}: reads the pushed image(s) and ignores the rest (${ignored} ignored)`, () => {
      const parsed = parseRegistryEvent(
        kind,
        buf(payload),
        kind === 'github' ? { 'x-github-event': 'registry_package' } : {},
      );
      assert.ok(parsed.ok, JSON.stringify(parsed));
      assert.deepEqual(parsed.pushes, pushes);
      assert.equal(parsed.ignored.length, ignored);
    });
  }

  it('dockerhub: hands back the callback_url', () => {
    const parsed = parseRegistryEvent('dockerhub', buf(dockerHub));
    assert.ok(parsed.ok && parsed.callbackUrl === dockerHub.callback_url);
  });

  it('harbor: a PULL_ARTIFACT or DELETE_ARTIFACT event deploys nothing', () => {
    for (const type of ['PULL_ARTIFACT', 'DELETE_ARTIFACT']) {
      const parsed = parseRegistryEvent('harbor', buf({ ...harbor, type }));
      assert.ok(parsed.ok);
      assert.deepEqual(parsed.pushes, []);
    }
  });

  it('github: another event, another action or a non-container package deploys nothing', () => {
    const ping = parseRegistryEvent('github', buf({ zen: 'hi' }), { 'x-github-event': 'ping' });
    assert.ok(ping.ok && ping.pushes.length === 0);
    const updated = parseRegistryEvent('github', buf({ ...github, action: 'deleted' }), {});
    assert.ok(updated.ok && updated.pushes.length === 0);
    const npm = parseRegistryEvent(
      'github',
      buf({ ...github, registry_package: { ...github.registry_package, package_type: 'npm', ecosystem: 'npm' } }),
    );
    assert.ok(npm.ok && npm.pushes.length === 0);
  });

  it('a payload of the wrong shape is refused with a reason, not an exception', () => {
    for (const kind of REGISTRY_KINDS) {
      for (const body of ['not json', '[]', '{}', '{"events": 3}']) {
        const parsed = parseRegistryEvent(kind, Buffer.from(body), {});
        if (parsed.ok) assert.deepEqual(parsed.pushes, [], `${kind} ${body}`);
      }
    }
  });

  it('names that are not a repository, tag or digest are dropped (untrusted input)', () => {
    const bad = structuredClone(distribution);
    bad.events[0]!.target.repository = '../../etc';
    bad.events[0]!.target.tag = 'a b';
    const parsed = parseRegistryEvent('distribution', buf(bad));
    assert.ok(parsed.ok);
    assert.deepEqual(parsed.pushes, []);
  });
});

describe('registry push webhooks: authentication', () => {
  const body = buf(distribution);
  const table: Array<[string, RegistryKind, string, Parameters<typeof authenticate>[2], boolean]> = [
    ['dockerhub: the token in the path', 'dockerhub', TOKEN, { headers: {}, body, pathToken: TOKEN }, true],
    [
      'dockerhub: a forged token',
      'dockerhub',
      TOKEN,
      { headers: {}, body, pathToken: `${TOKEN.slice(0, -1)}x` },
      false,
    ],
    [
      'dockerhub: a prefix of the token',
      'dockerhub',
      TOKEN,
      { headers: {}, body, pathToken: TOKEN.slice(0, 8) },
      false,
    ],
    ['dockerhub: no token', 'dockerhub', TOKEN, { headers: {}, body }, false],
    ['distribution: the configured header', 'distribution', AUTH, { headers: { authorization: AUTH }, body }, true],
    ['distribution: another header', 'distribution', AUTH, { headers: { authorization: 'Bearer x' }, body }, false],
    ['distribution: unsigned (no header)', 'distribution', AUTH, { headers: {}, body }, false],
    ['harbor: the configured header', 'harbor', AUTH, { headers: { authorization: AUTH }, body }, true],
    ['harbor: unsigned', 'harbor', AUTH, { headers: {}, body }, false],
    ['github: signed', 'github', GH_SECRET, { headers: { 'x-hub-signature-256': ghSig(body) }, body }, true],
    [
      'github: signed with another secret',
      'github',
      GH_SECRET,
      { headers: { 'x-hub-signature-256': ghSig(body, 'another-secret-entirely-000') }, body },
      false,
    ],
    [
      'github: body changed after signing',
      'github',
      GH_SECRET,
      { headers: { 'x-hub-signature-256': ghSig(body) }, body: Buffer.concat([body, Buffer.from(' ')]) },
      false,
    ],
    ['github: unsigned', 'github', GH_SECRET, { headers: {}, body }, false],
    [
      'github: a malformed signature',
      'github',
      GH_SECRET,
      { headers: { 'x-hub-signature-256': 'sha1=abc' }, body },
      false,
    ],
  ];
  for (const [name, kind, secret, req, ok] of table) {
    it(`${ok ? 'accepts' : 'refuses (401)'}: ${name}`, () => {
      const v = authenticate(kind, secret, req);
      assert.equal(v.ok, ok, JSON.stringify(v));
      if (!v.ok) assert.equal(v.status, 401);
    });
  }
});

describe('registry push webhooks: which pushes deploy', () => {
  const pushes: ImagePush[] = [
    { repository: 'acme/web', tag: 'latest', digest: D },
    { repository: 'acme/web', tag: 'main-1a2b3c4' },
    { repository: 'acme/other', tag: 'latest' },
    { repository: 'Acme/Web', digest: D },
  ];
  it('only configured repositories and followed tags (the channel by default)', () => {
    const { selected, ignored } = selectPushes(pushes, { repositories: ['acme/web'], tags: ['latest'] });
    assert.deepEqual(selected, [pushes[0]]);
    assert.equal(ignored.length, 3);
  });
  it('a trailing * follows a family of tags; a bare * also takes digest-only pushes', () => {
    assert.deepEqual(selectPushes(pushes, { repositories: ['acme/web'], tags: ['main-*'] }).selected, [pushes[1]]);
    assert.equal(selectPushes(pushes, { repositories: ['acme/web'], tags: ['*'] }).selected.length, 3);
  });
});

describe('registry push webhooks: properties (fast-check, seeded)', () => {
  const opts = { seed: 1919, numRuns: 300 };

  it('no payload makes a parser throw, and every push it yields is well-formed', () => {
    fc.assert(
      fc.property(fc.constantFrom(...REGISTRY_KINDS), fc.anything(), (kind, value) => {
        let text: string;
        try {
          text = JSON.stringify(value) ?? 'null';
        } catch {
          return;
        }
        const parsed = parseRegistryEvent(kind, Buffer.from(text), {});
        if (!parsed.ok) return;
        for (const p of parsed.pushes) {
          assert.match(p.repository, /^[a-z0-9][a-z0-9._/-]*$/);
          assert.ok(p.tag !== undefined || p.digest !== undefined);
          if (p.digest) assert.match(p.digest, /^sha256:[0-9a-f]{64}$/);
          if (p.tag) assert.match(p.tag, /^[A-Za-z0-9_][A-Za-z0-9._-]*$/);
        }
      }),
      opts,
    );
  });

  it('documented payloads with arbitrary values in their fields never throw', () => {
    fc.assert(
      fc.property(fc.anything(), fc.anything(), fc.anything(), (a, b, c) => {
        const d = structuredClone(distribution) as { events: Array<Record<string, unknown>> };
        d.events[0] = { ...d.events[0], action: a, target: { ...(d.events[0]!.target as object), tag: b, digest: c } };
        parseRegistryEvent('distribution', Buffer.from(JSON.stringify(d) ?? '{}'));
        const h = { ...dockerHub, push_data: { tag: a, pushed_at: b }, repository: { repo_name: c } };
        parseRegistryEvent('dockerhub', Buffer.from(JSON.stringify(h) ?? '{}'));
      }),
      opts,
    );
  });

  it('any token other than the configured one is refused', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (t) => {
        fc.pre(t !== TOKEN);
        assert.equal(authenticate('dockerhub', TOKEN, { headers: {}, body: Buffer.alloc(0), pathToken: t }).ok, false);
        assert.equal(sameSecret(AUTH, t), false);
      }),
      opts,
    );
  });

  it('a GitHub signature covers every byte: any changed body is refused', () => {
    const body = buf(github);
    const sig = ghSig(body);
    fc.assert(
      fc.property(fc.nat(body.length - 1), fc.integer({ min: 1, max: 255 }), (i, x) => {
        const changed = Buffer.from(body);
        changed[i] = changed[i]! ^ x;
        assert.equal(
          authenticate('github', GH_SECRET, { headers: { 'x-hub-signature-256': sig }, body: changed }).ok,
          false,
        );
      }),
      opts,
    );
  });
});
