import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { composeFile, createManifest } from '../../src/lib/manifest.ts';
import { DEFAULT_PROXY } from '../../src/lib/proxy.ts';
import { rollingPlan, rollOut } from '../../src/stages/rolling.ts';

const manifest = (compose: string) =>
  createManifest({
    source: { repository: 'a/b', ref: 'refs/heads/main', sha: '1'.repeat(40), created: '2026-01-01T00:00:00Z' },
    tags: ['v1'],
    primary: 'v1',
    images: [
      {
        id: 'web',
        services: ['web', 'worker'],
        name: 'r.test/web',
        tags: ['v1'],
        digest: `sha256:${'a'.repeat(64)}`,
        ref: `r.test/web@sha256:${'a'.repeat(64)}`,
        transport: { kind: 'registry', registry: 'r.test', provider: 'generic' },
      },
    ],
    compose: { project: 'shop', files: [composeFile('docker-compose.yml', compose)], env: {} },
  });
const settings = { input: [], proxy: DEFAULT_PROXY };
const COMPOSE = `services:
  web:
    image: x
    x-lading: {strategy: rolling, hosts: [shop.test]}
  worker: {image: x}
  migrate: {image: x, profiles: [tools]}
`;

describe('the rolling flow on one host (a fake host that records the steps)', () => {
  const host = (fail?: string) => {
    const calls: string[] = [];
    const run = async (steps: string, env: Record<string, string>) => {
      calls.push(steps);
      if (fail && steps.includes(fail)) throw new Error(`${fail} failed`);
      assert.equal(env.LADING_OTHERS, 'worker', 'the recreate services, without profiled ones');
      return '';
    };
    return { calls, run };
  };
  const plan = rollingPlan(manifest(COMPOSE), 'shop', settings)!;

  it('a project without rolling services has no plan (recreate, as before)', () => {
    assert.equal(rollingPlan(manifest('services:\n  web: {image: x}\n'), 'shop', settings), undefined);
  });
  it('start beside the old → gate → switch → retire, in three round trips', async () => {
    const h = host();
    await rollOut(h.run, {}, plan);
    assert.deepEqual(h.calls, ['proxy_ensure rolling_start', 'rolling_gate health', 'proxy_switch rolling_retire']);
  });
  it('a failed gate removes the new containers and never switches', async () => {
    const h = host('rolling_gate');
    await assert.rejects(rollOut(h.run, {}, plan), /rolling_gate failed/);
    assert.deepEqual(h.calls, ['proxy_ensure rolling_start', 'rolling_gate health', 'rolling_abort']);
  });
  it('a hook before the switch that fails stops the switch too', async () => {
    const h = host();
    await assert.rejects(
      rollOut(h.run, {}, plan, {
        beforeSwitch: async () => {
          throw new Error('pre-switch hook failed');
        },
      }),
      /pre-switch hook/,
    );
    assert.deepEqual(h.calls.at(-1), 'rolling_abort');
  });
  it('a switch back (rollback) keeps the containers it reuses even when it fails', async () => {
    const h = host('proxy_switch');
    await assert.rejects(rollOut(h.run, {}, plan, { reuse: true }));
    assert.ok(!h.calls.includes('rolling_abort'));
  });
});

describe('the recreate services run at the same time as the rolling ones unless a rolling service needs them', () => {
  const atOnce = (compose: string) => rollingPlan(manifest(compose), 'shop', settings)!.env.LADING_OTHERS_AT_ONCE;
  const web = (extra: string) =>
    `services:\n  web:\n    image: x\n    x-lading: {strategy: rolling, hosts: [shop.test]}\n${extra}  worker: {image: x}\n  db: {image: x}\n  tool: {image: x, profiles: [t]}\n`;
  const table: Array<[string, string, '0' | '1']> = [
    ['nothing shared', '', '1'],
    ['depends_on a list', '    depends_on: [db]\n', '0'],
    ['depends_on a map', '    depends_on:\n      db: {condition: service_healthy}\n', '0'],
    ['links with an alias', '    links: ["db:database"]\n', '0'],
    ['volumes_from a service', '    volumes_from: ["worker:ro"]\n', '0'],
    ['volumes_from a container (not a service)', '    volumes_from: ["container:other"]\n', '1'],
    ['depends_on a profiled service only (never started by up)', '    depends_on: [tool]\n', '1'],
  ];
  for (const [what, extra, want] of table) {
    it(`${what}: ${want === '1' ? 'at once' : 'the others first'}`, () => assert.equal(atOnce(web(extra)), want));
  }
  it('network_mode service: never gets that far: a rolling service cannot set network_mode', () => {
    assert.throws(() => atOnce(web('    network_mode: "service:worker"\n')), /cannot roll: it sets network_mode/);
  });
  it('depends_on and x-lading through merge keys (<<: *anchor) count, as compose reads them', () => {
    const compose = `x-db: &db
  depends_on: [db]
x-roll: &roll
  x-lading: {strategy: rolling, hosts: [shop.test]}
services:
  web:
    <<: [*db, *roll]
    image: x
  db: {image: x}
`;
    const plan = rollingPlan(manifest(compose), 'shop', settings);
    assert.deepEqual(
      plan?.specs.map((s) => s.service),
      ['web'],
      'the rolling service found through its merge key',
    );
    assert.equal(plan?.env.LADING_OTHERS_AT_ONCE, '0');
  });
  it('an override file adding depends_on counts too', () => {
    const m = manifest(web(''));
    m.compose!.files.push(composeFile('docker-compose.override.yml', 'services:\n  web:\n    depends_on: [db]\n'));
    assert.equal(rollingPlan(m, 'shop', settings)!.env.LADING_OTHERS_AT_ONCE, '0');
  });
});
