import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { interpolate, parseDotEnv } from '../../src/lib/compose-interpolate.ts';
import { activeProfiles, normalizeProjectName, resolveCompose } from '../../src/lib/compose-model.ts';
import { LadingError } from '../../src/lib/errors.ts';

/** A project in memory: path → text (absolute paths under /p). */
function project(
  files: Record<string, string>,
  opts: { env?: Record<string, string>; profiles?: string[]; files?: string[] } = {},
) {
  return resolveCompose({
    files: opts.files ?? ['/p/compose.yaml'],
    env: opts.env ?? {},
    profiles: opts.profiles ?? [],
    read: (path) => files[path],
  });
}

describe('compose interpolation (compose spec forms)', () => {
  const env = { A: 'x', E: '' };
  const table: Array<[string, string]> = [
    ['${A} ${A:-d} ${E:-d} ${E-d} ${U-d} ${U:-${A}} $A $$A ${U}', 'x x d  d x x $A '],
    ['${A:+set} ${E:+set} ${U:+set}', 'set  '],
    ['${A+set} ${E+set} ${U+set}', 'set set '],
    ['${U:-${V:-${A}}}', 'x'],
    ['${E?unused}', ''],
    ['a$', 'a$'],
    ['$1', '$1'],
  ];
  for (const [input, want] of table) it(`expands ${input}`, () => assert.equal(interpolate(input, env), want));
  it('refuses a required variable with its message', () => {
    assert.throws(() => interpolate('${U:?must be set}', env), /U is required: must be set/);
    assert.throws(() => interpolate('${E:?}', env), /E is required: empty/);
    assert.throws(() => interpolate('${U?gone}', env), /U is required: gone/);
  });
  it('refuses an unclosed or malformed expression', () => {
    assert.throws(() => interpolate('${A', env), /unclosed/);
    assert.throws(() => interpolate('${A B}', env), /invalid interpolation format/);
  });
  it('never throws anything but a LadingError on arbitrary text (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (s) => {
        try {
          interpolate(s, env);
        } catch (err) {
          assert.ok(err instanceof LadingError);
        }
      }),
      { seed: 13, numRuns: 500 },
    );
  });
  it('reads dotenv files as compose does', () => {
    assert.deepEqual(
      parseDotEnv('# c\nexport A=1\n B = two \nC="q $A\\n"\nD=\'$A\'\nE=v # c\nF=a#b\nG="multi\nline"\n'),
      { A: '1', B: 'two', C: 'q 1\n', D: '$A', E: 'v', F: 'a#b', G: 'multi\nline' },
    );
    assert.throws(() => parseDotEnv('not a var=1', {}, '/p/.env'), /\/p\/.env:1: 'not a var' is not a variable name/);
  });
});

describe('the built-in resolver: compose spec constructs compose v1 lacks', () => {
  it('reads include (relative to the included file, its own .env)', () => {
    const r = project({
      '/p/compose.yaml': 'include:\n  - db/compose.yaml\nservices:\n  web: { image: "r/web", depends_on: [db] }\n',
      '/p/db/compose.yaml': 'services:\n  db: { image: "r/db:${DB_TAG}", build: ., env_file: db.env }\n',
      '/p/db/.env': 'DB_TAG=16\n',
      '/p/db/db.env': 'X=1\n',
    });
    assert.equal(r.model.services.db!.image, 'r/db:16');
    assert.equal(r.model.services.db!.build!.context, '/p/db');
    assert.deepEqual(r.model.services.db!.environment, { X: '1' });
    assert.deepEqual(r.files, ['/p/compose.yaml', '/p/db/compose.yaml', '/p/db/db.env']);
  });
  it('refuses a service defined both by the project and an included file', () => {
    assert.throws(
      () =>
        project({
          '/p/compose.yaml': 'include: [other.yaml]\nservices:\n  web: { image: a }\n',
          '/p/other.yaml': 'services:\n  web: { image: b }\n',
        }),
      /service 'web' is defined by the project and by an included file/,
    );
  });
  it('takes the project name from name:, COMPOSE_PROJECT_NAME over it, normalised', () => {
    const files = { '/p/compose.yaml': 'name: My.App\nservices:\n  web: { image: a }\n' };
    assert.equal(project(files).model.name, 'myapp');
    assert.equal(project(files, { env: { COMPOSE_PROJECT_NAME: 'Other' } }).model.name, 'other');
    assert.equal(project({ '/p/compose.yaml': 'services: {}\n' }).model.name, 'p');
    assert.equal(normalizeProjectName('Foo Bar_1-x'), 'foobar_1-x');
  });
  it('reads env_file in the long form, skipping a missing optional file', () => {
    const r = project({
      '/p/compose.yaml':
        'services:\n  web:\n    image: a\n    env_file:\n      - path: base.env\n      - path: local.env\n        required: false\n',
      '/p/base.env': 'A=1\n',
    });
    assert.deepEqual(r.model.services.web!.environment, { A: '1' });
    assert.deepEqual(r.model.services.web!.envFiles, [
      { path: '/p/base.env', required: true },
      { path: '/p/local.env', required: false },
    ]);
  });
  it('refuses a missing required env_file, naming file, service and key', () => {
    assert.throws(
      () => project({ '/p/compose.yaml': 'services:\n  web: { image: a, env_file: [gone.env] }\n' }),
      /\/p\/compose.yaml: services.web.env_file: \/p\/gone.env does not exist/,
    );
  });
  it('reads dockerfile_inline, build secrets, additional_contexts, labels, platforms', () => {
    const r = project({
      '/p/compose.yaml': `services:
  web:
    image: r/web
    build:
      context: app
      dockerfile_inline: |
        FROM scratch
      secrets: [npmrc, { source: token, target: tok }]
      additional_contexts: { assets: ./assets, base: "docker-image://r/base:1" }
      labels: [team=a]
      platforms: [linux/amd64]
secrets:
  npmrc: { file: ./npmrc }
  token: { environment: TOKEN }
`,
    });
    assert.deepEqual(r.model.services.web!.build, {
      context: '/p/app',
      dockerfileInline: 'FROM scratch\n',
      args: {},
      labels: { team: 'a' },
      platforms: ['linux/amd64'],
      secrets: ['npmrc', 'token'],
      additionalContexts: { assets: '/p/assets', base: 'docker-image://r/base:1' },
    });
    assert.deepEqual(r.model.secrets, {
      npmrc: { file: '/p/npmrc', external: false },
      token: { environment: 'TOKEN', external: false },
    });
  });
  it('marks services active by profiles, COMPOSE_PROFILES when none given', () => {
    const files = {
      '/p/compose.yaml':
        'services:\n  a: { image: a }\n  b: { image: b, profiles: [debug] }\n  c: { image: c, profiles: [ops] }\n',
    };
    const active = (r: ReturnType<typeof project>) =>
      Object.values(r.model.services)
        .filter((s) => s.active)
        .map((s) => s.name);
    assert.deepEqual(active(project(files)), ['a']);
    assert.deepEqual(active(project(files, { profiles: ['ops'] })), ['a', 'c']);
    assert.deepEqual(active(project(files, { env: { COMPOSE_PROFILES: 'debug, ops' } })), ['a', 'b', 'c']);
    assert.deepEqual(activeProfiles(['x'], { COMPOSE_PROFILES: 'y' }), ['x']);
  });
  it('reports variables used without a value', () => {
    const r = project({ '/p/compose.yaml': 'services:\n  a: { image: "r/a:${TAG}" }\n' });
    assert.deepEqual(r.missing, ['TAG']);
    assert.equal(r.model.services.a!.image, 'r/a:');
  });
});

describe('the built-in resolver refuses what it cannot read, naming file, service and key', () => {
  const bad: Array<[string, Record<string, string>, RegExp]> = [
    [
      'an unknown top-level key',
      { '/p/compose.yaml': 'servises: {}\n' },
      /\/p\/compose.yaml: servises: is not a compose top-level key/,
    ],
    [
      'an unknown service key',
      { '/p/compose.yaml': 'services:\n  web: { imag: a }\n' },
      /compose.yaml: services.web.imag: is not a compose service key/,
    ],
    [
      'an unknown build key',
      { '/p/compose.yaml': 'services:\n  web: { build: { contxt: . } }\n' },
      /services.web.build.contxt: is not a compose build key/,
    ],
    [
      'a required variable',
      { '/p/compose.yaml': 'services:\n  web: { image: "${R:?set R}" }\n' },
      /compose.yaml: services.web.image: compose variable R is required: set R/,
    ],
    [
      'an unquoted boolean',
      { '/p/compose.yaml': 'services:\n  web: { image: a, environment: { D: true } }\n' },
      /services.web.environment.D: D is true/,
    ],
    [
      'an extends cycle',
      { '/p/compose.yaml': 'services:\n  a: { extends: b }\n  b: { extends: a }\n' },
      /circular extends/,
    ],
    [
      'an extends of a missing service',
      { '/p/compose.yaml': 'services:\n  a: { extends: nope }\n' },
      /services.a.extends: no service 'nope'/,
    ],
    [
      'a bad port',
      { '/p/compose.yaml': 'services:\n  a: { image: a, ports: ["x:y"] }\n' },
      /services.a.ports: 'x:y' is not a port/,
    ],
    [
      'a bad depends_on condition',
      {
        '/p/compose.yaml': 'services:\n  a: { image: a, depends_on: { b: { condition: done } } }\n  b: { image: b }\n',
      },
      /services.a.depends_on.b.condition: 'done'/,
    ],
    ['invalid YAML', { '/p/compose.yaml': 'services: [\n' }, /compose.yaml is not valid YAML/],
    ['duplicate keys', { '/p/compose.yaml': 'services:\n  a: { image: a }\n  a: { image: b }\n' }, /not valid YAML/],
    ['a missing file', {}, /compose file \/p\/compose.yaml does not exist/],
  ];
  for (const [what, files, re] of bad) it(`refuses ${what}`, () => assert.throws(() => project(files), re));
});
