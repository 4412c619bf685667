import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PlannedImage } from '../../src/lib/build-plan.ts';
import {
  type BuildOptions,
  buildCommand,
  builderFor,
  needsBuildKit,
  parseSecretLines,
} from '../../src/lib/docker-args.ts';

const image = (extra: Partial<PlannedImage> = {}): PlannedImage => ({
  id: 'app',
  name: 'r/app',
  context: 'svc/app',
  dockerfile: 'docker/Dockerfile',
  target: 'prod',
  buildArgs: {},
  resolvedArgs: { BASE: 'r/base:main-1a2b3c4', 'A B': '$(x)' },
  platforms: [],
  services: [],
  dependsOn: ['base'],
  upstreamAliases: [],
  ...extra,
});
const opts = (extra: Partial<BuildOptions> = {}): BuildOptions => ({
  builder: 'classic',
  refs: ['r/app:main-1a2b3c4', 'r/app:latest'],
  labels: { 'org.opencontainers.image.revision': 'abc' },
  iidfile: '/tmp/iid',
  platforms: [],
  cacheFrom: [],
  cacheTo: [],
  provenance: 'false',
  pull: true,
  ...extra,
});

describe('docker build command lines', () => {
  it('classic builder: BuildKit never switched off, dockerfile relative to the context, no --pull on a chained image', () => {
    const cmd = buildCommand(image(), opts());
    assert.deepEqual(cmd.env, {});
    assert.equal(cmd.pushes, false);
    assert.deepEqual(cmd.args, [
      'build',
      '--iidfile',
      '/tmp/iid',
      '--file',
      'svc/app/docker/Dockerfile',
      '--target',
      'prod',
      '--build-arg',
      'BASE=r/base:main-1a2b3c4',
      '--build-arg',
      'A B=$(x)',
      '--label',
      'org.opencontainers.image.revision=abc',
      '--tag',
      'r/app:main-1a2b3c4',
      '--tag',
      'r/app:latest',
      'svc/app',
    ]);
  });
  it('buildx, one platform: --load, provenance off, caches', () => {
    const cmd = buildCommand(
      image({ dependsOn: [] }),
      opts({ builder: 'buildx', platforms: ['linux/arm64'], cacheFrom: ['type=gha'], cacheTo: ['type=gha,mode=max'] }),
    );
    assert.deepEqual(cmd.args.slice(0, 10), [
      'buildx',
      'build',
      '--provenance=false',
      '--cache-from',
      'type=gha',
      '--cache-to',
      'type=gha,mode=max',
      '--platform',
      'linux/arm64',
      '--load',
    ]);
    assert.ok(cmd.args.includes('--pull'));
    assert.deepEqual(cmd.env, {});
  });
  it('buildx, several platforms: pushes from the build, with a metadata file', () => {
    const cmd = buildCommand(
      image({ platforms: ['linux/amd64', 'linux/arm64'] }),
      opts({ builder: 'buildx', metadataFile: '/tmp/m.json', provenance: 'true' }),
    );
    assert.equal(cmd.pushes, true);
    assert.ok(cmd.args.includes('--push') && !cmd.args.includes('--load'));
    assert.ok(cmd.args.includes('--provenance=true'));
    assert.deepEqual(cmd.args.slice(cmd.args.indexOf('--platform'), cmd.args.indexOf('--platform') + 2), [
      '--platform',
      'linux/amd64,linux/arm64',
    ]);
  });
  it('refuses what the classic builder cannot do, naming the input', () => {
    assert.throws(
      () => buildCommand(image({ platforms: ['linux/amd64', 'linux/arm64'] }), opts()),
      /input 'platforms'.*needs buildx/,
    );
    assert.throws(() => buildCommand(image(), opts({ cacheTo: ['type=gha'] })), /input 'cache-to'/);
  });
});

describe('compose build options on the command line', () => {
  const composed = image({
    labels: { team: 'a' },
    secrets: [
      { id: 'npmrc', file: '/w/npmrc' },
      { id: 'token', env: 'TOKEN' },
    ],
    additionalContexts: { assets: 'assets', base: 'docker-image://r/base:1' },
  });
  it('buildx: compose labels, additional contexts and secrets (file or env source), never the values', () => {
    const args = buildCommand(composed, opts({ builder: 'buildx' })).args;
    const pairs = (flag: string) => args.flatMap((a, i) => (a === flag ? [args[i + 1]] : []));
    assert.deepEqual(pairs('--label'), ['team=a', 'org.opencontainers.image.revision=abc']);
    assert.deepEqual(pairs('--build-context'), ['assets=assets', 'base=docker-image://r/base:1']);
    assert.deepEqual(pairs('--secret'), ['id=npmrc,src=/w/npmrc', 'id=token,env=TOKEN']);
  });
  it('classic builder: refuses build secrets and additional contexts, saying what to add', () => {
    assert.throws(
      () => buildCommand(composed, opts()),
      /uses build.secrets and build.additional_contexts, which the classic builder cannot do/,
    );
  });
  it('a dockerfile_inline written to a file is the --file', () => {
    const args = buildCommand(
      image({ dockerfileInline: 'FROM scratch\n' }),
      opts({ dockerfilePath: '/tmp/app.Dockerfile' }),
    ).args;
    assert.equal(args[args.indexOf('--file') + 1], '/tmp/app.Dockerfile');
  });
  it("the engine's BuildKit: file secrets yes; env secrets and additional contexts need buildx", () => {
    const fileOnly = image({ secrets: [{ id: 'npmrc', file: '/w/npmrc' }] });
    const args = buildCommand(fileOnly, opts({ builder: 'buildkit' })).args;
    assert.deepEqual(args.slice(args.indexOf('--secret'), args.indexOf('--secret') + 2), [
      '--secret',
      'id=npmrc,src=/w/npmrc',
    ]);
    assert.throws(
      () => buildCommand(composed, opts({ builder: 'buildkit' })),
      /uses build.secrets and build.additional_contexts \(a secret from the environment\), which the engine's BuildKit/,
    );
  });
});

/** The flags between `build` and `--file` (the options part of the command line), for table rows. */
function optionFlags(args: string[]): string[] {
  const start = args[0] === 'buildx' ? 2 : 1;
  return args.slice(start, args.indexOf('--file'));
}

type Row = [string, Partial<BuildOptions>, Partial<PlannedImage>, string[] | RegExp];

// Every build option, per builder: the flags it becomes, or the error that names the input (and what to add).
const TABLE: Record<'buildx' | 'buildkit' | 'classic', Row[]> = {
  buildx: [
    ['defaults', {}, {}, ['--provenance=false', '--load', '--iidfile', '/tmp/iid']],
    [
      'provenance mode=max',
      { provenance: 'mode=max' },
      {},
      ['--provenance=mode=max', '--load', '--iidfile', '/tmp/iid'],
    ],
    ['sbom', { sbom: 'true' }, {}, ['--provenance=false', '--sbom=true', '--load', '--iidfile', '/tmp/iid']],
    [
      'cache gha',
      { cacheFrom: ['type=gha'], cacheTo: ['type=gha,mode=max'] },
      {},
      [
        '--provenance=false',
        '--cache-from',
        'type=gha',
        '--cache-to',
        'type=gha,mode=max',
        '--load',
        '--iidfile',
        '/tmp/iid',
      ],
    ],
    [
      'cache registry',
      { cacheFrom: ['type=registry,ref=r/app:cache'], cacheTo: ['type=registry,ref=r/app:cache,mode=max'] },
      {},
      [
        '--provenance=false',
        '--cache-from',
        'type=registry,ref=r/app:cache',
        '--cache-to',
        'type=registry,ref=r/app:cache,mode=max',
        '--load',
        '--iidfile',
        '/tmp/iid',
      ],
    ],
    [
      'cache inline',
      { cacheTo: ['type=inline'] },
      {},
      ['--provenance=false', '--cache-to', 'type=inline', '--load', '--iidfile', '/tmp/iid'],
    ],
    [
      'cache local',
      { cacheFrom: ['type=local,src=/c'], cacheTo: ['type=local,dest=/c'] },
      {},
      [
        '--provenance=false',
        '--cache-from',
        'type=local,src=/c',
        '--cache-to',
        'type=local,dest=/c',
        '--load',
        '--iidfile',
        '/tmp/iid',
      ],
    ],
    [
      'multi-platform pushes',
      { platforms: ['linux/amd64', 'linux/arm64'], metadataFile: '/tmp/m' },
      {},
      [
        '--provenance=false',
        '--platform',
        'linux/amd64,linux/arm64',
        '--push',
        '--metadata-file',
        '/tmp/m',
        '--iidfile',
        '/tmp/iid',
      ],
    ],
    [
      'multi-platform with push false',
      { platforms: ['linux/amd64', 'linux/arm64'], push: false },
      {},
      ['--provenance=false', '--platform', 'linux/amd64,linux/arm64', '--iidfile', '/tmp/iid'],
    ],
    [
      'secrets by file and by env, ssh',
      {
        secrets: [
          { id: 'npm', src: '/t/s0' },
          { id: 'gh', env: 'GH_TOKEN' },
        ],
        ssh: ['default'],
      },
      {},
      [
        '--provenance=false',
        '--load',
        '--secret',
        'id=npm,src=/t/s0',
        '--secret',
        'id=gh,env=GH_TOKEN',
        '--ssh',
        'default',
        '--iidfile',
        '/tmp/iid',
      ],
    ],
    [
      'no-cache, pull, network, shm-size, ulimit',
      { noCache: true, pull: true, network: 'host', shmSize: '2g', ulimits: ['nofile=1024:2048'] },
      { dependsOn: [] },
      [
        '--provenance=false',
        '--load',
        '--iidfile',
        '/tmp/iid',
        '--pull',
        '--no-cache',
        '--network',
        'host',
        '--shm-size',
        '2g',
        '--ulimit',
        'nofile=1024:2048',
      ],
    ],
  ],
  buildkit: [
    ['defaults', {}, {}, ['--iidfile', '/tmp/iid']],
    [
      'secret file, ssh',
      { secrets: [{ id: 'tok', src: '/t/s0' }], ssh: ['default=/k'] },
      {},
      ['--secret', 'id=tok,src=/t/s0', '--ssh', 'default=/k', '--iidfile', '/tmp/iid'],
    ],
    [
      'cache-from an image',
      { cacheFrom: ['type=registry,ref=r/app:cache', 'r/app:latest'] },
      {},
      ['--cache-from', 'r/app:cache', '--cache-from', 'r/app:latest', '--iidfile', '/tmp/iid'],
    ],
    [
      'inline cache',
      { cacheTo: ['type=inline'] },
      {},
      ['--build-arg', 'BUILDKIT_INLINE_CACHE=1', '--iidfile', '/tmp/iid'],
    ],
    ['one platform', { platforms: ['linux/amd64'] }, {}, ['--platform', 'linux/amd64', '--iidfile', '/tmp/iid']],
    [
      'no-cache, pull, network, shm-size, ulimit',
      { noCache: true, pull: true, network: 'host', shmSize: '64m', ulimits: ['nofile=1024'] },
      { dependsOn: [] },
      [
        '--iidfile',
        '/tmp/iid',
        '--pull',
        '--no-cache',
        '--network',
        'host',
        '--shm-size',
        '64m',
        '--ulimit',
        'nofile=1024',
      ],
    ],
    ['cache-to gha', { cacheTo: ['type=gha'] }, {}, /input 'cache-to'.*setup-buildx-action/s],
    ['cache-from gha', { cacheFrom: ['type=gha'] }, {}, /input 'cache-from'.*needs buildx/s],
    ['cache-from local', { cacheFrom: ['type=local,src=/c'] }, {}, /input 'cache-from'/],
    ['two platforms', { platforms: ['linux/amd64', 'linux/arm64'] }, {}, /input 'platforms'.*needs buildx/s],
    ['provenance', { provenance: 'true' }, {}, /input 'provenance'.*attestations need buildx/s],
    ['sbom', { sbom: 'true' }, {}, /input 'sbom'/],
    ['secret from env', { secrets: [{ id: 'gh', env: 'GH' }] }, {}, /files only/],
  ],
  classic: [
    ['defaults', {}, {}, ['--iidfile', '/tmp/iid']],
    [
      'cache-from an image',
      { cacheFrom: ['r/app:latest'] },
      {},
      ['--cache-from', 'r/app:latest', '--iidfile', '/tmp/iid'],
    ],
    [
      'no-cache, network, shm-size, ulimit',
      { noCache: true, network: 'host', shmSize: '64m', ulimits: ['nofile=1024'] },
      {},
      ['--iidfile', '/tmp/iid', '--no-cache', '--network', 'host', '--shm-size', '64m', '--ulimit', 'nofile=1024'],
    ],
    ['secrets', { secrets: [{ id: 'tok', src: '/t/s0' }] }, {}, /input 'secrets'.*need BuildKit.*setup-buildx-action/s],
    ['ssh', { ssh: ['default'] }, {}, /input 'ssh'/],
    ['inline cache', { cacheTo: ['type=inline'] }, {}, /input 'cache-to'/],
    ['two platforms', { platforms: ['linux/amd64', 'linux/arm64'] }, {}, /input 'platforms'/],
    ['provenance', { provenance: 'mode=max' }, {}, /input 'provenance'/],
  ],
};

describe('build options → command lines, per builder', () => {
  for (const [builder, rows] of Object.entries(TABLE) as Array<[keyof typeof TABLE, Row[]]>) {
    for (const [name, extra, img, expected] of rows) {
      it(`${builder}: ${name}`, () => {
        const run = () =>
          buildCommand(image({ dependsOn: ['base'], ...img }), opts({ pull: false, ...extra, builder }));
        if (expected instanceof RegExp) {
          // the message and the hint (what to add) together
          assert.throws(run, (e: Error & { hint?: string }) => expected.test(`${e.message}\n${e.hint ?? ''}`));
          return;
        }
        const cmd = run();
        assert.deepEqual(optionFlags(cmd.args), expected);
        assert.deepEqual(cmd.env, builder === 'buildkit' ? { DOCKER_BUILDKIT: '1' } : {});
        assert.ok(!cmd.args.some((a) => /DOCKER_BUILDKIT=0/.test(a)));
        assert.equal(cmd.args.at(-1), 'svc/app');
      });
    }
  }
  it('secrets never become build args', () => {
    const cmd = buildCommand(image(), opts({ builder: 'buildkit', secrets: [{ id: 'tok', src: '/t/s0' }] }));
    assert.ok(!cmd.args.some((a, i) => cmd.args[i - 1] === '--build-arg' && a.startsWith('tok=')));
  });
});

describe('which builder a docker client offers', () => {
  const cases: Array<[string, { buildx: boolean; clientVersion?: string; serverVersion: string }, string]> = [
    ['buildx answers', { buildx: true, clientVersion: '28.1.1', serverVersion: '28.1.1' }, 'buildx'],
    [
      'a 20.10 client has BuildKit built in',
      { buildx: false, clientVersion: '20.10.24+dfsg1', serverVersion: '20.10.24+dfsg1' },
      'buildkit',
    ],
    [
      'a 28 client without buildx: classic',
      { buildx: false, clientVersion: '28.5.2', serverVersion: '20.10.24' },
      'classic',
    ],
    ['an unknown client: classic', { buildx: false, serverVersion: '20.10.24' }, 'classic'],
  ];
  for (const [name, f, want] of cases) it(name, () => assert.equal(builderFor(f), want));
});

describe('BuildKit-only Dockerfile syntax', () => {
  const cases: Array<[string, boolean]> = [
    ['FROM scratch\nRUN --mount=type=secret,id=t cat /run/secrets/t\n', true],
    ['FROM scratch\nRUN --network=none --mount=type=cache,target=/c true\n', true],
    ['FROM scratch\nRUN <<EOF\necho hi\nEOF\n', true],
    ['FROM scratch\nCOPY a /a\nRUN echo --mount is only text here\n', false],
  ];
  for (const [text, want] of cases)
    it(JSON.stringify(text.split('\n')[1]), () => assert.equal(needsBuildKit(text), want));
});

describe('secrets inputs (id=value per line)', () => {
  it('keeps values verbatim: commas, equals signs and spaces', () => {
    assert.deepEqual(parseSecretLines('secrets', 'A=x,y=z \nB_2=  \n# c\n'), [
      { id: 'A', value: 'x,y=z ' },
      { id: 'B_2', value: '  ' },
    ]);
  });
  it('refuses a line without an id, without echoing the value', () => {
    assert.throws(
      () => parseSecretLines('secrets', 'hunter2'),
      (e: Error) => /input 'secrets'.*line 1/s.test(e.message) && !e.message.includes('hunter2'),
    );
    assert.throws(() => parseSecretLines('secrets', 'A=1\nA=2'), /given twice/);
  });
});
