import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { readHooks } from '../../src/lib/hooks.ts';
import { composeFile, createManifest, type Manifest } from '../../src/lib/manifest.ts';
import {
  convergence,
  DEFAULT_POLICY,
  parseSwarmState,
  RELEASE_LABEL,
  renderStack,
  safeOrder,
  type ServiceInspect,
  type SwarmState,
  swarmHookRun,
  type TaskLine,
} from '../../src/lib/swarm-plan.ts';
import { readSwarmSettings, readTarget } from '../../src/settings/swarm.ts';
import { REPO_ROOT } from '../helpers/bundles.ts';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;

function manifest(files: Array<[string, string]>, o: { env?: Record<string, string>; kind?: 's3' } = {}): Manifest {
  return createManifest({
    source: { repository: 'a/b', ref: 'refs/heads/main', sha: '1'.repeat(40), created: '2026-01-01T00:00:00.000Z' },
    tags: ['main-1111111'],
    primary: 'main-1111111',
    images: [
      {
        id: 'app',
        services: ['web', 'worker'],
        name: 'r.example/app',
        tags: ['main-1111111'],
        digest: D1,
        ref: o.kind === 's3' ? D1 : `r.example/app@${D1}`, // a loaded image is known by its ID
        transport:
          o.kind === 's3'
            ? {
                kind: 's3',
                bucket: 'builds',
                key: 'app.tar.zst',
                sha256: 'f'.repeat(64),
                size: 1,
                compression: 'zstd',
                mode: 'archive',
              }
            : { kind: 'registry', registry: 'r.example', provider: 'generic' },
      },
    ],
    compose: {
      project: 'shop',
      files: files.map(([p, c]) => composeFile(p, c)),
      env: o.env ?? { DOCKER_TAG: 'main-1111111' },
    },
  });
}

const render = (m: Manifest, policy = DEFAULT_POLICY) => renderStack(m, { project: 'shop', release: 'R1', policy });
const fileOf = (r: ReturnType<typeof render>, name: string) =>
  parse(r.files.find((f) => f.name === name)!.content) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('swarm stack rendering', () => {
  const BASE = `version: "3.8"
services:
  web:
    image: r.example/app:\${DOCKER_TAG}
    build: { context: . }
    environment:
      GREETING: "\${GREETING:-hello} costs $$5"
    networks: [hostnet]
  worker:
    image: r.example/app:\${DOCKER_TAG}
    command: ["worker", "--queue", "\${QUEUE}"]
    volumes: ["data:/var/lib/app"]
  cache:
    image: redis:7
networks:
  hostnet: { external: true, name: host }
volumes:
  data: {}
`;

  it('pins built services by digest, drops build:, resolves variables and keeps $$ literal for the second pass', () => {
    const r = render(manifest([['deploy/docker-compose.yml', BASE]]));
    assert.deepEqual(r.stackFiles, ['01-docker-compose.yml', 'lading.stack.yml']);
    const f = fileOf(r, '01-docker-compose.yml');
    assert.equal(f.services.web.image, `r.example/app@${D1}`);
    assert.equal(f.services.worker.image, `r.example/app@${D1}`);
    assert.equal(f.services.cache.image, 'redis:7');
    assert.equal(f.services.web.build, undefined);
    assert.equal(f.services.web.environment.GREETING, 'hello costs $$5');
    assert.deepEqual(f.services.worker.command, ['worker', '--queue', '']);
    assert.deepEqual(r.missing, ['QUEUE']);
    assert.deepEqual(r.pins, { web: `r.example/app@${D1}`, worker: `r.example/app@${D1}` });
    for (const file of r.files.filter((x) => x.name.endsWith('.yml'))) assert.equal(file.mode, 0o600);
  });

  it('sets update and rollback policy and the release label on every service; start-first only where safe', () => {
    const r = render(manifest([['docker-compose.yml', BASE]]), {
      parallelism: 2,
      delay: 3,
      monitor: 20,
      order: 'auto',
      rollback: true,
    });
    const o = fileOf(r, 'lading.stack.yml');
    assert.equal(o.version, '3.8');
    assert.deepEqual(o.services.cache.deploy.update_config, {
      parallelism: 2,
      delay: '3s',
      failure_action: 'rollback',
      monitor: '20s',
      order: 'start-first',
      max_failure_ratio: 0,
    });
    assert.equal(o.services.cache.deploy.rollback_config.failure_action, 'pause');
    assert.equal(o.services.web.deploy.update_config.order, 'stop-first');
    assert.equal(o.services.worker.deploy.update_config.order, 'stop-first');
    assert.deepEqual(o.services.web.deploy.labels, { [RELEASE_LABEL]: 'R1' });
    assert.equal(o.services.web.image, `r.example/app@${D1}`);
    assert.equal(o.services.cache.image, undefined);
    assert.deepEqual(r.orders, {
      web: { order: 'stop-first', why: 'host networking' },
      worker: { order: 'stop-first', why: 'writable volume data' },
      cache: { order: 'start-first', why: 'no host network, host port or writable volume' },
    });
    const paused = render(manifest([['docker-compose.yml', BASE]]), { ...DEFAULT_POLICY, rollback: false });
    assert.equal(fileOf(paused, 'lading.stack.yml').services.web.deploy.update_config.failure_action, 'pause');
    const forced = render(manifest([['docker-compose.yml', BASE]]), { ...DEFAULT_POLICY, order: 'start-first' });
    assert.equal(fileOf(forced, 'lading.stack.yml').services.web.deploy.update_config.order, 'start-first');
  });

  it('keeps several compose files in order (docker stack deploy merges them) and takes the highest 3.x version', () => {
    const r = render(
      manifest([
        ['docker-compose.yml', 'version: "3.7"\nservices:\n  web: { image: r.example/app }\n'],
        ['docker-compose.prod.yml', 'version: "3.9"\nservices:\n  web: { ports: ["8080:80"] }\n'],
      ]),
    );
    assert.deepEqual(r.stackFiles, ['01-docker-compose.yml', '02-docker-compose.prod.yml', 'lading.stack.yml']);
    assert.equal(fileOf(r, 'lading.stack.yml').version, '3.9');
    assert.equal(fileOf(r, '02-docker-compose.prod.yml').services.web.image, `r.example/app@${D1}`);
    assert.equal(r.orders.web!.order, 'start-first'); // ingress ports: the routing mesh moves traffic over
    assert.equal(
      parse(r.files.find((f) => f.name === '.lading-files')!.content.replace(/\n/g, ' ')),
      r.stackFiles.join(' '),
    );
  });

  it('pins a registry-less image by its image ID (loaded on the nodes, never pulled)', () => {
    const r = render(manifest([['c.yml', BASE]], { kind: 's3' }));
    assert.equal(fileOf(r, 'lading.stack.yml').services.web.image, D1);
    assert.equal(r.pins.web, D1);
  });

  const refusals: Array<[string, () => unknown, RegExp]> = [
    [
      'compose format 2',
      () => render(manifest([['c.yml', 'version: "2.4"\nservices:\n  web: { image: x }\n']])),
      /version 2\.4; docker stack deploy reads format 3\.x only/,
    ],
    [
      'a service without image that no manifest image runs',
      () => render(manifest([['c.yml', 'services:\n  other: { build: . }\n']])),
      /service other has no image/,
    ],
    [
      'a required variable that is not set',
      () => render(manifest([['c.yml', 'services:\n  web: { image: "x:${TAG:?set TAG}" }\n']], { env: {} })),
      /TAG is required: set TAG/,
    ],
  ];
  for (const [what, fn, re] of refusals) {
    it(`refuses ${what}`, () =>
      assert.throws(fn, (e: Error) => re.test(`${e.message} — ${(e as { hint?: string }).hint}`)));
  }

  const orders: Array<[string, Record<string, unknown>, Record<string, unknown>, string]> = [
    ['network_mode host', { network_mode: 'host' }, {}, 'stop-first'],
    ['an external network named host', { networks: ['h'] }, { h: { external: true, name: 'host' } }, 'stop-first'],
    [
      'external: { name: host } (old syntax)',
      { networks: { h: {} } },
      { h: { external: { name: 'host' } } },
      'stop-first',
    ],
    ['an overlay network', { networks: ['back'] }, { back: { driver: 'overlay' } }, 'start-first'],
    ['a port in host mode', { ports: [{ target: 80, published: 8080, mode: 'host' }] }, {}, 'stop-first'],
    ['an ingress port', { ports: ['8080:80'] }, {}, 'start-first'],
    ['a read-only bind mount', { volumes: ['./conf:/etc/app:ro'] }, {}, 'start-first'],
    ['a writable bind mount', { volumes: ['/srv/data:/data'] }, {}, 'stop-first'],
    ['an anonymous volume', { volumes: ['/tmp/cache'] }, {}, 'start-first'],
    ['a tmpfs mount', { volumes: [{ type: 'tmpfs', target: '/tmp' }] }, {}, 'start-first'],
    ['a long-form writable volume', { volumes: [{ type: 'volume', source: 'db', target: '/d' }] }, {}, 'stop-first'],
  ];
  for (const [what, svc, nets, want] of orders) {
    it(`update order with ${what}: ${want}`, () => assert.equal(safeOrder(svc, nets).order, want));
  }
});

// --- deploy hooks on a manager ---------------------------------------------------------------------------------

describe('swarm deploy hooks: the one-off container of a service', () => {
  const stack = (svc: string, extra = '') =>
    render(manifest([['docker-compose.yml', `version: "3.8"\nservices:\n${svc}\n${extra}`]]));
  it("gets the service's new pinned image, its environment resolved (a literal $ single again), user and working dir", () => {
    const r = swarmHookRun(
      stack(
        '  web:\n    image: app\n    user: "1000"\n    working_dir: /app\n    environment:\n      DB: "postgres://db/$${X}"\n      TAG: ${DOCKER_TAG}\n      PASSED_THROUGH:\n',
      ),
      'web',
    );
    assert.equal(r.envFileName, 'hook-web.env');
    assert.equal(r.envFile, 'DB=postgres://db/${X}\nTAG=main-1111111\n');
    assert.deepEqual(r.vars, {
      LADING_HOOK_IMAGE: `r.example/app@${D1}`,
      LADING_HOOK_NETWORKS: 'shop_default',
      LADING_HOOK_USER: '1000',
      LADING_HOOK_WORKDIR: '/app',
    });
  });
  it('names its networks as docker does: the stack prefix, a name:, an external one, host networking', () => {
    const nets = (svc: string, extra = '') => swarmHookRun(stack(svc, extra), 'web').vars.LADING_HOOK_NETWORKS;
    assert.equal(
      nets(
        '  web:\n    image: app\n    environment: [A=1, B]\n    networks: [back, shared, named]',
        'networks:\n  back: {attachable: true}\n  shared: {external: true}\n  named: {name: my-net}',
      ),
      'shop_back shared my-net',
    );
    assert.equal(nets('  web:\n    image: app\n    network_mode: host'), 'host');
    assert.equal(
      nets('  web:\n    image: app\n    networks: [hostnet]', 'networks:\n  hostnet: {external: true, name: host}'),
      'host',
    );
  });
  it("x-lading (the hooks' declaration) stays out of the rendered stack files; the hooks still read it", () => {
    const m = manifest([
      [
        'docker-compose.yml',
        'version: "3.8"\nservices:\n  web: {image: app}\nx-lading:\n  hooks:\n    pre-deploy: {command: [migrate, "${NOT_A_STACK_VAR}"]}\n',
      ],
    ]);
    const r = render(m);
    assert.equal(fileOf(r, '01-docker-compose.yml')['x-lading'], undefined);
    assert.deepEqual(r.missing, []);
    assert.deepEqual(readHooks({ commands: {} }, m)['pre-deploy']?.argv, ['migrate', '${NOT_A_STACK_VAR}']);
  });
  it('refuses, before any host, a service the stack lacks and a variable docker run --env-file cannot carry', () => {
    assert.throws(
      () => swarmHookRun(stack('  web:\n    image: app'), 'db'),
      /service db, which the stack does not define/,
    );
    assert.throws(
      () => swarmHookRun(stack('  web:\n    image: app\n    environment:\n      CERT: "a\\nb"'), 'web'),
      /variable CERT holds a line break/,
    );
  });
});

// --- convergence ------------------------------------------------------------------------------------------------

const service = (o: { name?: string; image?: string; index?: number; replicas?: number; update?: string }) =>
  ({
    ID: 'svc1',
    Version: { Index: o.index ?? 20 },
    Spec: {
      Name: o.name ?? 'shop_web',
      TaskTemplate: { ContainerSpec: { Image: o.image ?? `r.example/app@${D2}` } },
      Mode: { Replicated: { Replicas: o.replicas ?? 1 } },
    },
    UpdateStatus: o.update ? { State: o.update, Message: `update ${o.update}` } : null,
  }) satisfies ServiceInspect;
const task = (
  state: string,
  digest: string,
  o: { desired?: string; error?: string; slot?: number } = {},
): TaskLine => ({
  ID: `t${Math.random()}`,
  Name: `shop_web.${o.slot ?? 1}`,
  Image: `r.example/app@${digest}`,
  Node: 'vm',
  DesiredState: o.desired ?? 'Running',
  CurrentState: `${state} 3 seconds ago`,
  Error: o.error ?? '',
});
const judge = (state: SwarmState, before?: Record<string, number>) =>
  convergence(state, {
    stack: 'shop',
    pins: { web: `r.example/app@${D2}` },
    services: ['web'],
    ...(before ? { before } : {}),
  });

describe('swarm convergence', () => {
  const cases: Array<[string, SwarmState, Record<string, number> | undefined, string, boolean?]> = [
    [
      'all tasks run the new digest',
      { services: [service({ update: 'completed' })], tasks: [task('Running', D2)] },
      undefined,
      'ok',
    ],
    [
      'a first deploy (no update status) with its task running',
      { services: [service({})], tasks: [task('Running', D2)] },
      undefined,
      'ok',
    ],
    [
      'an update in progress',
      { services: [service({ update: 'updating' })], tasks: [task('Running', D1)] },
      undefined,
      'pending',
    ],
    [
      'the old task still running while the new one is readied (stop-first)',
      {
        services: [service({ update: 'completed' })],
        tasks: [task('Ready', D2, { desired: 'Ready' }), task('Running', D1, { desired: 'Shutdown' })],
      },
      undefined,
      'pending',
    ],
    [
      'fewer running than replicas',
      { services: [service({ replicas: 2 })], tasks: [task('Running', D2), task('Starting', D2, { slot: 2 })] },
      undefined,
      'pending',
    ],
    [
      'a rollback in progress',
      { services: [service({ update: 'rollback_started' })], tasks: [] },
      undefined,
      'pending',
    ],
    ['the service not created yet', { services: [], tasks: [] }, undefined, 'pending'],
    [
      'swarm rolled the update back',
      {
        services: [service({ update: 'rollback_completed', image: `r.example/app@${D1}` })],
        tasks: [
          task('Running', D1),
          task('Failed', D2, {
            desired: 'Shutdown',
            error: '"task: non-zero exit (137): dockerexec: unhealthy container"',
          }),
        ],
      },
      undefined,
      'failed',
      true,
    ],
    [
      'the update paused',
      { services: [service({ update: 'paused' })], tasks: [task('Running', D1)] },
      undefined,
      'failed',
    ],
    [
      'another deploy changed the image',
      { services: [service({ image: `r.example/app@${D1}` })], tasks: [task('Running', D1)] },
      undefined,
      'failed',
    ],
    [
      'an old rollback status on a service this deploy did not change',
      { services: [service({ update: 'rollback_completed', index: 43 })], tasks: [task('Running', D2)] },
      { shop_web: 43 },
      'ok',
    ],
    ['zero replicas', { services: [service({ replicas: 0 })], tasks: [] }, undefined, 'ok'],
  ];
  for (const [what, state, before, want, rolledBack] of cases) {
    it(`${what}: ${want}`, () => {
      const v = judge(state, before);
      assert.equal(v.state, want, JSON.stringify(v));
      assert.equal(v.rolledBack, rolledBack ?? false);
    });
  }

  it('shows the errors of the new release’s failed tasks, not old ones', () => {
    const v = judge({
      services: [service({ update: 'rollback_completed', image: `r.example/app@${D1}` })],
      tasks: [
        task('Running', D1),
        task('Failed', D2, {
          desired: 'Shutdown',
          error: '"task: non-zero exit (137): dockerexec: unhealthy container"',
        }),
        task('Failed', D1, { desired: 'Shutdown', error: 'an old failure' }),
      ],
    });
    assert.deepEqual(v.errors, [
      'web: shop_web.1 on vm: failed: task: non-zero exit (137): dockerexec: unhealthy container',
    ]);
    assert.match(v.services[0]!.detail, /swarm rolled the update back: update rollback_completed/);
  });

  it('waits while one service is still updating even if another failed', () => {
    const v = convergence(
      {
        services: [service({ update: 'paused' }), service({ name: 'shop_api', update: 'updating' })],
        tasks: [],
      },
      { stack: 'shop', pins: { web: `r.example/app@${D2}` }, services: ['web', 'api'] },
    );
    assert.equal(v.state, 'pending');
  });

  it('reads the host step output: service inspect JSON, ---, task lines', () => {
    const out = `${JSON.stringify([service({})], null, 4)}\n---\n${JSON.stringify(task('Running', D2))}\n\n`;
    const s = parseSwarmState(out);
    assert.equal(s.services[0]!.Spec.Name, 'shop_web');
    assert.equal(s.tasks.length, 1);
    assert.deepEqual(parseSwarmState('[]\n---\n'), { services: [], tasks: [] });
    assert.throws(() => parseSwarmState('Error: no such service\n---\n'), /cannot read docker service inspect output/);
  });
});

describe('swarm host steps', () => {
  it('are POSIX sh (shellcheck)', () => {
    const res = spawnSync('shellcheck', ['-s', 'sh', join(REPO_ROOT, 'src/lib/remote/swarm.sh')], { encoding: 'utf8' });
    assert.equal(res.status, 0, res.stdout + res.stderr);
  });
});

describe('swarm settings', () => {
  const read = (inputs: Record<string, string>) => (n: string) => inputs[n] || undefined;
  const settings = (inputs: Record<string, string>) => readSwarmSettings(read(inputs), {});

  it('without hosts, docker-host is the manager driven from here: no SSH inputs needed', async () => {
    const s = await settings({ 'docker-host': 'unix:///run/docker.sock', 'update-order': 'stop-first' });
    assert.equal(s.local, true);
    assert.deepEqual(
      s.deploy.hosts.map((h) => h.label),
      ['unix:///run/docker.sock'],
    );
    assert.deepEqual(s.policy, { ...DEFAULT_POLICY, order: 'stop-first' });
  });

  it('with hosts, the managers are reached over SSH (pinned keys required as for compose)', async () => {
    const s = await settings({ hosts: 'm1, m2', 'ssh-key': 'KEY TEXT', 'known-hosts': 'm1 ssh-ed25519 AAAA' });
    assert.equal(s.local, false);
    assert.deepEqual(
      s.deploy.hosts.map((h) => h.host),
      ['m1', 'm2'],
    );
    await assert.rejects(settings({ hosts: 'm1', 'ssh-key': 'KEY TEXT' }), /input 'known-hosts': is empty/);
  });

  const bad: Array<[string, Record<string, string>, RegExp]> = [
    ['no manager at all', {}, /input 'hosts': target swarm needs a manager.*docker-host/],
    ['a docker-host that is not an endpoint', { 'docker-host': '/run/docker.sock' }, /input 'docker-host'/],
    ['an unknown update order', { 'docker-host': 'tcp://m:2376', 'update-order': 'sideways' }, /input 'update-order'/],
    ['a monitor of 0 s', { 'docker-host': 'tcp://m:2376', 'update-monitor': '0' }, /input 'update-monitor'/],
  ];
  for (const [what, inputs, re] of bad) {
    it(`refuses ${what}`, () =>
      assert.rejects(settings(inputs), (e: Error) => re.test(`${e.message} — ${(e as { hint?: string }).hint}`)));
  }

  it('target is compose unless swarm is asked for', () => {
    assert.equal(readTarget(read({})), 'compose');
    assert.equal(readTarget(read({ target: 'swarm' })), 'swarm');
    assert.throws(() => readTarget(read({ target: 'k8s' })), /input 'target'/);
  });
});
