import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  checkComposePolicy,
  composePolicyViolations,
  parsePolicyAllow,
  type PolicyAllow,
} from '../../src/lib/compose-policy.ts';
import { LadingError } from '../../src/lib/errors.ts';
import { composeFile, createManifest } from '../../src/lib/manifest.ts';
import { stderrReporter } from '../../src/io/reporter.ts';
import { runManifestStage } from '../../src/stages/manifest.ts';
import type { PushResult } from '../../src/stages/push.ts';
import { readHostSettings } from '../../src/settings/host.ts';
import { runSwarmDeployStage } from '../../src/stages/swarm.ts';
import { hostDeps } from '../../src/stages/host/deps.ts';

const file = (service: string) => [
  { path: 'compose.yaml', content: `services:\n  app:\n    image: busybox\n${service}` },
];

// [what, the service's extra lines, the key named, what allows it]
const REFUSED: Array<[string, string, string, PolicyAllow]> = [
  ['privileged: true', '    privileged: true\n', 'privileged', 'privileged'],
  ['network_mode: host', '    network_mode: host\n', 'network_mode', 'host-network'],
  ['pid: host', '    pid: host\n', 'pid', 'host-pid'],
  ['ipc: host', '    ipc: host\n', 'ipc', 'host-ipc'],
  ['userns_mode: host', '    userns_mode: host\n', 'userns_mode', 'host-userns'],
  ['cap_add ALL', '    cap_add: [ALL]\n', 'cap_add', 'cap-all'],
  ['cap_add SYS_ADMIN', '    cap_add: [CAP_SYS_ADMIN]\n', 'cap_add', 'cap-sys-admin'],
  ['a short bind of /', '    volumes: ["/:/host:ro"]\n', 'volumes[0]', '/'],
  ['a short bind of /etc', '    volumes: ["./data:/data", "/etc/:/host-etc"]\n', 'volumes[1]', '/etc'],
  ['a short bind under /etc', '    volumes: ["/etc/ssh:/x:ro"]\n', 'volumes[0]', '/etc'],
  ['a short bind of /root', '    volumes: ["/root:/r"]\n', 'volumes[0]', '/root'],
  ['the docker socket', '    volumes: ["/var/run/docker.sock:/var/run/docker.sock"]\n', 'volumes[0]', 'docker-socket'],
  ['the /run docker socket', '    volumes: ["/run//docker.sock:/d.sock"]\n', 'volumes[0]', 'docker-socket'],
  [
    'a long-syntax bind of the socket',
    '    volumes:\n      - type: bind\n        source: /var/run/docker.sock\n        target: /s\n',
    'volumes[0]',
    'docker-socket',
  ],
  ['a bind through a variable', '    volumes: ["${HOSTROOT}:/h"]\n', 'volumes[0]', '/'],
  ['privileged through a variable', '    privileged: ${PRIV}\n', 'privileged', 'privileged'],
];
const ENV = { HOSTROOT: '/', PRIV: 'true' };

describe('compose-policy strict', () => {
  for (const [what, extra, key, allow] of REFUSED) {
    it(`refuses ${what}, naming the file, service and key, and allows it with ${allow}`, () => {
      const found = composePolicyViolations(file(extra), ENV);
      assert.equal(found.length, 1, JSON.stringify(found));
      assert.deepEqual(
        { file: found[0]!.file, service: found[0]!.service, key: found[0]!.key, allow: found[0]!.allow },
        { file: 'compose.yaml', service: 'app', key, allow },
      );
      assert.throws(
        () => checkComposePolicy('strict', file(extra), ENV),
        (err: unknown) =>
          err instanceof LadingError &&
          err.message.includes(`compose.yaml: service app: ${key}`) &&
          err.hint!.includes(`compose-policy-allow: ${allow}`),
      );
      assert.deepEqual(composePolicyViolations(file(extra), ENV, new Set([allow])), []);
      checkComposePolicy('off', file(extra), ENV); // off (the default) checks nothing
    });
  }

  it('lets ordinary services through: project binds, named volumes, other capabilities, bridge networks', () => {
    const extra =
      '    cap_add: [NET_ADMIN]\n    network_mode: bridge\n    privileged: false\n' +
      '    volumes: ["./conf:/etc/app:ro", "data:/data", "/srv/app:/srv", "/tmp", "~/x:/x"]\n' +
      '  sock-volume:\n    image: busybox\n    volumes:\n      - type: volume\n        source: etc\n        target: /etc\n';
    assert.deepEqual(composePolicyViolations(file(extra), {}), []);
  });

  it('reads a file with more than a hundred YAML aliases (compose does) instead of passing it unchecked', () => {
    const aliases = Array.from({ length: 150 }, (_, i) => `  a${i}: *base\n`).join('');
    const content = `x-base: &base\n  k: v\nx-many:\n${aliases}services:\n  app:\n    image: busybox\n    privileged: true\n`;
    assert.deepEqual(
      composePolicyViolations([{ path: 'compose.yaml', content }], {}).map((v) => v.key),
      ['privileged'],
    );
  });

  it('refuses a file it cannot read rather than passing it unchecked', () => {
    assert.throws(
      () => checkComposePolicy('strict', [{ path: 'compose.yaml', content: 'services: [\n' }], {}),
      /compose-policy strict cannot check compose.yaml is not valid YAML/,
    );
  });

  it('names every refused service of every file', () => {
    const files = [
      ...file('    privileged: true\n'),
      { path: 'compose.prod.yaml', content: 'services:\n  db:\n    pid: host\n    network_mode: host\n' },
    ];
    assert.throws(
      () => checkComposePolicy('strict', files, {}),
      /3 services: compose.yaml: service app: privileged.*compose.prod.yaml: service db: pid/,
    );
  });

  it('parses compose-policy-allow and refuses what it does not know', () => {
    assert.deepEqual(
      [...parsePolicyAllow(['Privileged', '/etc/', 'docker-socket', ''])],
      ['privileged', '/etc', 'docker-socket'],
    );
    assert.throws(() => parsePolicyAllow(['/var']), /compose-policy-allow: '\/var'/);
  });
});

describe('compose-policy in the swarm deploy', () => {
  it('refuses a privileged service before the manager is reached', async () => {
    const manifest = createManifest({
      source: { repository: 'o/r', ref: 'refs/heads/main', sha: 'a'.repeat(40), created: '2026-11-29T00:00:00Z' },
      tags: ['v1'],
      primary: 'v1',
      images: [
        {
          id: 'app',
          services: ['app'],
          name: 'registry.example/app',
          tags: ['v1'],
          digest: `sha256:${'b'.repeat(64)}`,
          ref: `registry.example/app@sha256:${'b'.repeat(64)}`,
          transport: { kind: 'registry', registry: 'registry.example', provider: 'generic' },
        },
      ],
      compose: {
        project: 'app',
        files: [composeFile('compose.yaml', 'services:\n  app:\n    image: busybox\n    privileged: true\n')],
        env: { DOCKER_TAG: 'v1' },
      },
    });
    const inputs: Record<string, string> = {
      target: 'swarm',
      'docker-host': 'unix:///nonexistent/docker.sock',
      'compose-policy': 'strict',
    };
    await assert.rejects(
      runSwarmDeployStage({
        settings: await readHostSettings((n) => inputs[n] || undefined, {}),
        manifest,
        reporter: stderrReporter(true),
        deps: hostDeps(async () => {
          throw new Error('the policy must refuse before any host');
        }),
      }),
      /compose.yaml: service app: privileged/,
    );
  });
});

describe('compose-policy in the manifest stage', () => {
  it('refuses a privileged service of an included compose file, as the deploy would', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lading-policy-manifest-'));
    try {
      writeFileSync(join(dir, 'compose.yaml'), 'include: [tools.yaml]\nservices:\n  app:\n    image: busybox\n');
      writeFileSync(join(dir, 'tools.yaml'), 'services:\n  admin:\n    image: busybox\n    privileged: true\n');
      const pushed = {
        context: { repository: 'o/r', ref: 'refs/heads/main', sha: 'a'.repeat(40) },
        tags: ['v1'],
        primary: 'v1',
        images: [],
        composeFiles: ['compose.yaml'],
      } as unknown as PushResult;
      await assert.rejects(
        runManifestStage({
          inputs: {
            composeEnv: [],
            composeEnvFiles: [],
            composeResolver: 'builtin',
            bundleSizeLimit: 1048576,
            pinExternal: false,
            path: join(dir, 'manifest.json'),
            storeOptions: {},
            composePolicy: { mode: 'strict', allow: new Set() },
          },
          pushed,
          env: {},
          cwd: dir,
          reporter: stderrReporter(true),
        }),
        /tools.yaml: service admin: privileged/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
