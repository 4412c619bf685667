import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { composeFile, createManifest } from '../../src/lib/manifest.ts';
import {
  composeStatus,
  lockReleaseDecision,
  parseLock,
  parseOpsFacts,
  parsePruneFacts,
  parseSince,
  prunePlan,
  renderStatus,
  repositoryOf,
} from '../../src/lib/ops.ts';

const NOW = 1_800_000_000;
const REPO = '127.0.0.1:5000/acme/web';
const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const manifest = createManifest({
  source: { repository: 'acme/shop', ref: 'refs/heads/main', sha: 'a'.repeat(40), created: '2026-01-02T00:00:00.000Z' },
  tags: ['v2'],
  primary: 'v2',
  images: [
    {
      id: 'web',
      services: ['web'],
      name: REPO,
      tags: ['v2'],
      digest: D2,
      ref: `${REPO}@${D2}`,
      transport: { kind: 'registry', registry: '127.0.0.1:5000', provider: 'generic' },
    },
  ],
  compose: {
    project: 'shop',
    files: [composeFile('docker-compose.yml', 'services:\n  web:\n    image: x\n  redis:\n    image: redis\n')],
    env: {},
  },
});

const container = (o: Record<string, unknown>) =>
  `container=${JSON.stringify({
    id: 'c1',
    name: '/shop-web-1',
    labels: {
      'com.docker.compose.service': 'web',
      'com.docker.compose.container-number': '1',
      'com.docker.compose.oneoff': 'False',
      'com.docker.compose.project.working_dir': '/srv/lading/shop/releases/R2',
    },
    state: { Status: 'running', StartedAt: new Date((NOW - 120) * 1000).toISOString(), Health: { Status: 'healthy' } },
    restarts: 0,
    image: `${REPO}@${D2}`,
    imageId: 'sha256:img2',
    ...o,
  })}`;

const hostOutput = (lines: string[]) =>
  [
    `now=${NOW}`,
    'hostname=h1',
    'current=R2',
    'release=R1',
    'release=R2',
    `manifest=${Buffer.from(JSON.stringify(manifest)).toString('base64')}`,
    `history=${JSON.stringify({ time: '2026-01-02T10:00:00.000Z', action: 'deploy', result: 'success', release: 'R2', sha: 'a'.repeat(40), primary: 'v2', tags: ['v2'], images: {}, actor: 'alice', run: 'gh-7.1' })}`,
    ...lines,
    `image="sha256:img2" ["${REPO}@${D2}"]`,
    `image="sha256:img1" ["${REPO}@${D1}"]`,
  ].join('\n');

const where = { host: 'h1', root: '/srv/lading', project: 'shop' };
const redis = container({
  id: 'c2',
  name: '/shop-redis-1',
  labels: {
    'com.docker.compose.service': 'redis',
    'com.docker.compose.container-number': '1',
    'com.docker.compose.oneoff': 'False',
    'com.docker.compose.project.working_dir': '/srv/lading/shop/releases/R2',
  },
  state: { Status: 'running', StartedAt: new Date((NOW - 60) * 1000).toISOString() },
  image: 'redis:7',
  imageId: 'sha256:redis',
});

describe('status of a compose host from its ops_status output', () => {
  it('healthy: the current release with who/when, every container running the pinned digest, no drift', () => {
    const s = composeStatus(parseOpsFacts(hostOutput([container({}), redis]), 'h1'), where);
    assert.equal(s.healthy, true, s.problems.join());
    assert.deepEqual(s.drift, []);
    assert.deepEqual(s.release, {
      id: 'R2',
      tag: 'v2',
      commit: 'a'.repeat(40),
      repository: 'acme/shop',
      at: '2026-01-02T10:00:00.000Z',
      action: 'deploy',
      by: 'alice',
      run: 'gh-7.1',
    });
    const web = s.services.find((x) => x.service === 'web')!;
    assert.equal(web.containers[0]!.digest, D2);
    assert.equal(web.containers[0]!.uptime, 120);
    assert.equal(s.services.find((x) => x.service === 'redis')!.containers[0]!.health, 'none');
    assert.match(
      renderStatus({ schema: 'lading.status/v1', time: '', ok: true, hosts: [s] }),
      /web\s+shop-web-1\s+running\s+healthy\s+0\s+2m\s+222222222222\s+current/,
    );
  });
  for (const [name, lines, expect] of [
    [
      'a container running another digest is drift',
      [container({ imageId: 'sha256:img1' }), redis],
      { drift: /runs sha256:1{64}, the release pins/ },
    ],
    [
      'a container from an older release is drift',
      [
        container({
          labels: {
            'com.docker.compose.service': 'web',
            'com.docker.compose.oneoff': 'False',
            'com.docker.compose.project.working_dir': '/srv/lading/shop/releases/R1',
          },
        }),
        redis,
      ],
      { drift: /started from release R1, not the current R2/ },
    ],
    [
      'a container lading did not start is drift',
      [
        container({}),
        redis,
        container({
          id: 'c9',
          name: '/stray',
          labels: {
            'com.docker.compose.service': 'web',
            'com.docker.compose.oneoff': 'False',
            'com.docker.compose.project.working_dir': '/home/bob/shop',
          },
        }),
      ],
      { drift: /stray: not started by lading \(compose directory \/home\/bob\/shop\)/ },
    ],
    [
      'an exited container is unhealthy',
      [container({ state: { Status: 'exited' } }), redis],
      { problem: /shop-web-1 is exited/ },
    ],
    [
      'an unhealthy healthcheck is unhealthy',
      [container({ state: { Status: 'running', Health: { Status: 'unhealthy' } } }), redis],
      { problem: /shop-web-1 is unhealthy/ },
    ],
    [
      'a healthcheck docker has not run yet (starting: the deploy gate ran it) is no problem',
      [container({ state: { Status: 'running', Health: { Status: 'starting' } } }), redis],
      {},
    ],
    [
      'a service of the release without a container is unhealthy',
      [container({})],
      { problem: /service redis has no running container/ },
    ],
    [
      'one-off containers (lading exec) are left out',
      [
        container({}),
        redis,
        container({
          id: 'c5',
          name: '/shop_web_run_1',
          labels: { 'com.docker.compose.service': 'web', 'com.docker.compose.oneoff': 'True' },
          state: { Status: 'exited' },
        }),
      ],
      {},
    ],
  ] as const) {
    it(name, () => {
      const s = composeStatus(parseOpsFacts(hostOutput([...lines]), 'h1'), where);
      const e = expect as { drift?: RegExp; problem?: RegExp };
      if (e.drift) assert.match(s.drift.join('\n'), e.drift);
      else assert.deepEqual(s.drift, []);
      if (e.problem) {
        assert.equal(s.healthy, false);
        assert.match(s.problems.join('\n'), e.problem);
      } else assert.equal(s.healthy, true, s.problems.join());
    });
  }
  it('a host without a current release is not healthy', () => {
    const s = composeStatus(parseOpsFacts(`now=${NOW}\ncurrent=\n`, 'h1'), where);
    assert.equal(s.healthy, false);
    assert.deepEqual(s.problems, ['no current release of shop']);
  });
  it('reads any output without throwing (a hostile or broken host)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (text) => {
        composeStatus(parseOpsFacts(text, 'h'), where);
        parsePruneFacts(text);
      }),
      { seed: 17, numRuns: 300 },
    );
  });
});

describe('lock release policy', () => {
  const live = parseLock(`${NOW + 600} gh-9.1 build-box`, NOW)!;
  const expired = parseLock(`${NOW - 1} gh-9.1 build-box`, NOW)!;
  const cases: Array<[string, Parameters<typeof lockReleaseDecision>, boolean, RegExp]> = [
    ['no lock: nothing to release', [undefined, { owner: 'me', force: false }], false, /no lock/],
    ["this run's own lock is released", [live, { owner: 'gh-9.1', force: false }], true, /own/],
    ["another's live lock without --force is refused", [live, { owner: 'me', force: false }], false, /held by gh-9.1/],
    [
      "another's expired lock without --force is refused",
      [expired, { owner: 'me', force: false }],
      false,
      /not by this run/,
    ],
    ['--force releases an expired lease', [expired, { owner: 'me', force: true }], true, /ran out/],
    ['--force alone refuses a live lease', [live, { owner: 'me', force: true }], false, /live until/],
    [
      "a deploy's lock token (<run-id>-<hex>) is its run's own",
      [parseLock(`${NOW + 600} gh-9.1-0a1b2c3d build-box`, NOW), { owner: 'gh-9.1', force: false }],
      true,
      /own/,
    ],
    [
      "another run's token is not",
      [parseLock(`${NOW + 600} gh-9.12-0a1b2c3d b`, NOW), { owner: 'gh-9.1', force: false }],
      false,
      /held by/,
    ],
    [
      '--force --confirm <holder> releases a live lease',
      [live, { owner: 'me', force: true, confirm: 'gh-9.1' }],
      true,
      /confirmed/,
    ],
    [
      '--confirm naming someone else is refused',
      [live, { owner: 'me', force: true, confirm: 'gh-8.1' }],
      false,
      /live until/,
    ],
  ];
  for (const [name, args, release, why] of cases) {
    it(name, () => {
      const d = lockReleaseDecision(...args);
      assert.equal(d.release, release);
      assert.match(d.why, why);
    });
  }
  it('parses the lock line, with the lease left', () => {
    assert.deepEqual(
      { owner: live.owner, host: live.host, expired: live.expired, remaining: live.remaining },
      { owner: 'gh-9.1', host: 'build-box', expired: false, remaining: 600 },
    );
  });
});

describe('prune plan', () => {
  const facts = parsePruneFacts(
    [
      'current=R3',
      'release=R1 100',
      'release=R2 200',
      'release=R3 300',
      `pin=R1 ${REPO}@${D1} sha256:i1`,
      `pin=R2 ${REPO}@${D2} sha256:i2`,
      `pin=R3 ${REPO}@sha256:${'3'.repeat(64)} sha256:i3`,
      `image="sha256:i1" 1000 ["${REPO}@${D1}"] []`,
      `image="sha256:i2" 2000 ["${REPO}@${D2}"] []`,
      `image="sha256:i3" 3000 ["${REPO}@sha256:${'3'.repeat(64)}"] []`,
      `image="sha256:i0" 500 ["${REPO}@sha256:${'0'.repeat(64)}"] ["${REPO}:old"]`,
      'image="sha256:other" 9000 ["127.0.0.1:5000/someone/else@sha256:x"] []',
      'used=sha256:i2',
    ].join('\n'),
  );
  it('keeps the newest keep-releases and the current; removes the others and the images no kept release or container uses', () => {
    const plan = prunePlan(facts, 1);
    assert.deepEqual(plan.kept, ['R3']);
    assert.deepEqual(
      plan.releases.map((r) => r.id),
      ['R1', 'R2'],
    );
    // i2 is still used by a container, i3 is kept, `other` is another project's repository
    assert.deepEqual(
      plan.images.map((i) => i.id),
      ['sha256:i0', 'sha256:i1'],
    );
    assert.equal(plan.bytes, 100 * 1024 + 200 * 1024 + 1000 + 500);
  });
  it('never prunes the current release, even when it is older than keep-releases', () => {
    const plan = prunePlan({ ...facts, current: 'R1' }, 1);
    assert.deepEqual(plan.kept, ['R1', 'R3']);
    assert.deepEqual(
      plan.releases.map((r) => r.id),
      ['R2'],
    );
  });
  it('repositories of refs', () => {
    assert.equal(repositoryOf('127.0.0.1:5000/a/b@sha256:x'), '127.0.0.1:5000/a/b');
    assert.equal(repositoryOf('127.0.0.1:5000/a/b:v1'), '127.0.0.1:5000/a/b');
    assert.equal(repositoryOf('127.0.0.1:5000/a/b'), '127.0.0.1:5000/a/b');
  });
});

describe('--since', () => {
  for (const ok of ['10m', '1h30m', '45s', '2026-11-29', '2026-11-29T10:00:00Z', '1700000000']) {
    it(`accepts ${ok}`, () => assert.equal(parseSince(ok), ok));
  }
  for (const bad of ['yesterday', '10 m', '$(reboot)']) {
    it(`refuses ${bad}`, () => assert.throws(() => parseSince(bad), /since/));
  }
});
