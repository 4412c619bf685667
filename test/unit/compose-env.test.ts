import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseAgentConfig } from '../../src/lib/agent-config.ts';
import { deployEnv, envMasks, releaseFiles } from '../../src/lib/deploy-plan.ts';
import type { InputError } from '../../src/lib/errors.ts';
import {
  composeFile,
  createManifest,
  legacyEnvWarning,
  type Manifest,
  validateManifest,
} from '../../src/lib/manifest.ts';
import { parseStoreLocation } from '../../src/lib/store-location.ts';
import { agentHostSettings } from '../../src/settings/agent.ts';
import { readComposeEnv } from '../../src/settings/deploy.ts';
import { readHostSettings } from '../../src/settings/host.ts';
import { runDeployStage } from '../../src/stages/deploy.ts';
import { hostDeps } from '../../src/stages/host/deps.ts';
import { runManifestStage } from '../../src/stages/manifest.ts';
import type { PushResult } from '../../src/stages/push.ts';
import { runSwarmDeployStage } from '../../src/stages/swarm.ts';

// compose-env values are the user's secrets as often as not: the manifest (published to a bucket, kept on every
// host, read by anyone with access to either) carries only the names; the deploy supplies the values.

const VALUE = 'tok-5ecret-1b2c3d';
const work = mkdtempSync(join(tmpdir(), 'lading-compose-env-'));
after(() => rmSync(work, { recursive: true, force: true }));

const filesUnder = (dir: string): string[] =>
  readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });

const DIGEST = `sha256:${'b'.repeat(64)}`;
const IMAGE = {
  id: 'app',
  services: ['app'],
  name: 'registry.example/app',
  tags: ['v1'],
  digest: DIGEST,
  ref: `registry.example/app@${DIGEST}`,
};

const silent = { info: () => {}, warning: () => {}, group: <T>(_n: string, f: () => Promise<T>) => f() };

function v3(env: Record<string, string> = { DOCKER_TAG: 'v1' }, envNames: string[] = ['API_TOKEN']): Manifest {
  return createManifest({
    source: { repository: 'o/r', ref: 'refs/heads/main', sha: 'a'.repeat(40), created: '2026-11-29T00:00:00Z' },
    tags: ['v1'],
    primary: 'v1',
    images: [{ ...IMAGE, transport: { kind: 'registry', registry: 'registry.example', provider: 'generic' } }],
    compose: {
      project: 'app',
      files: [composeFile('compose.yaml', 'services:\n  app:\n    image: busybox\n    environment: [API_TOKEN]\n')],
      env,
      envNames,
    },
  });
}

describe('compose-env: names in the manifest, values at deploy time', () => {
  it('writes and publishes a manifest that names the variables and holds none of their values', async () => {
    const dir = join(work, 'project');
    const store = join(work, 'store');
    mkdirSync(dir);
    mkdirSync(store);
    // the value is used while reading the project (an env_file path interpolated with it), never written
    writeFileSync(
      join(dir, 'compose.yaml'),
      'services:\n  app:\n    image: busybox\n    environment: [API_TOKEN, REGION]\n    env_file: app.env\n',
    );
    writeFileSync(join(dir, 'app.env'), 'GREETING=hi\n');
    const secrets: string[] = [];
    const pushed = {
      context: { repository: 'o/r', ref: 'refs/heads/main', sha: 'a'.repeat(40) },
      tags: ['v1'],
      primary: 'v1',
      images: [{ ...IMAGE, registry: 'registry.example', provider: 'generic', platforms: [], dependsOn: [] }],
      composeFiles: ['compose.yaml'],
    } as unknown as PushResult;
    const res = await runManifestStage({
      inputs: {
        composeEnv: [
          ['API_TOKEN', VALUE],
          ['REGION', undefined],
        ],
        composeEnvFiles: [],
        composeResolver: 'builtin',
        bundleSizeLimit: 1048576,
        pinExternal: false,
        path: join(dir, 'manifest.json'),
        publishTo: parseStoreLocation('manifest-store', store),
        storeOptions: {},
        secret: 'sign-it-too',
      },
      pushed,
      env: {},
      cwd: dir,
      reporter: { ...silent, secret: (s: string) => secrets.push(s) },
    });
    assert.equal(res.manifest.schema, 'lading.manifest/v3');
    assert.deepEqual(res.manifest.compose?.envNames, ['API_TOKEN', 'REGION']);
    assert.deepEqual(Object.keys(res.manifest.compose!.env), ['DOCKER_TAG', 'LADING_IMAGE_APP']);
    assert.ok(secrets.includes(VALUE), 'the value given to the manifest step is not masked in its log');
    const written = [join(dir, 'manifest.json'), join(dir, 'manifest.json.sig'), ...filesUnder(store)];
    assert.ok(filesUnder(store).length >= 3, 'nothing was published');
    for (const f of written) {
      assert.doesNotMatch(readFileSync(f, 'utf8'), new RegExp(VALUE), `${f} holds the compose-env value`);
    }
  });

  it('refuses a deploy without a value for a named variable before any host is touched', async () => {
    for (const run of [runDeployStage, runSwarmDeployStage]) {
      const inputs: Record<string, string> = {
        ...(run === runSwarmDeployStage ? { target: 'swarm' } : {}),
        hosts: 'deploy@127.0.0.1',
        'ssh-key': 'unused',
        'known-hosts': '[127.0.0.1]:22 ssh-ed25519 AAAA',
        'docker-host': 'unix:///nonexistent/docker.sock',
        'compose-secrets': 'OTHER=x',
      };
      await assert.rejects(
        run({
          settings: await readHostSettings((n) => inputs[n] || undefined, {}),
          manifest: v3(),
          reporter: { ...silent, secret: () => {} },
          deps: hostDeps(async () => {
            throw new Error('a host was reached');
          }),
        }),
        (e: Error & { hint?: string }) =>
          /needs a value for API_TOKEN \(its compose-env\).*nothing was changed on any host/.test(e.message) &&
          /compose-env/.test(e.hint ?? '') &&
          /deploy\.env-file/.test(e.hint ?? ''),
      );
    }
  });

  it("refuses a value the release's .env cannot hold (a line break) before any host is touched", async () => {
    const file = join(work, 'multiline.env');
    writeFileSync(file, 'API_TOKEN="first\\nsecond"\n');
    const inputs: Record<string, string> = {
      hosts: 'deploy@127.0.0.1',
      'ssh-key': 'unused',
      'known-hosts': '[127.0.0.1]:22 ssh-ed25519 AAAA',
      'compose-env-file': file,
    };
    await assert.rejects(
      runDeployStage({
        settings: await readHostSettings((n) => inputs[n] || undefined, {}),
        manifest: v3(),
        reporter: { ...silent, secret: () => {} },
        deps: hostDeps(async () => {
          throw new Error('a host was reached');
        }),
      }),
      /compose env API_TOKEN contains a line break/,
    );
  });

  it("puts the deploy's values in the release's 0600 .env, never in the release's manifest.json", () => {
    const manifest = v3();
    const env = deployEnv(manifest, { composeEnv: { API_TOKEN: VALUE }, composeSecrets: {} });
    const { files } = releaseFiles(manifest, { project: 'app', release: 'r1', extraEnv: env });
    const dotenv = files.find((f) => f.name === '.env')!;
    assert.equal(dotenv.mode, 0o600);
    assert.match(String(dotenv.content), new RegExp(`^API_TOKEN=${VALUE}$`, 'm'));
    for (const f of files.filter((x) => x.name !== '.env')) assert.doesNotMatch(String(f.content), new RegExp(VALUE));
    // compose-secrets satisfy a name too
    assert.deepEqual(deployEnv(manifest, { composeEnv: {}, composeSecrets: { API_TOKEN: 's' } }), { API_TOKEN: 's' });
  });

  it('masks the values that can be secrets, not words like info or 3 (the runner would blank them from every line)', () => {
    const env = {
      API_TOKEN: VALUE, // long: masked whatever its name
      DATABASE_URL: 'postgres://app:pw@db/app',
      DB_PASSWORD: 'abc', // short, but its name says secret
      LOG_LEVEL: 'info', // short, an ordinary word: masking it would blank every "info" in the log
      WORKERS: '3',
      DEBUG: 'true',
      REGION: 'eu-west-1', // 9 characters: masked (nothing tells a long value from a secret)
      SIGNING_KEY: 'ab', // two characters are no secret, and would blank the log
    };
    assert.deepEqual(envMasks(env).sort(), [VALUE, 'abc', 'eu-west-1', 'postgres://app:pw@db/app'].sort());
    // compose-secrets are secrets, each one
    assert.deepEqual(envMasks({}, { PIN: '42', EMPTY: '' }), ['42']);
  });

  it('the deploy registers only those values with the log masker', async () => {
    const masked: string[] = [];
    const inputs: Record<string, string> = {
      hosts: 'deploy@127.0.0.1',
      'ssh-key': 'unused',
      'known-hosts': '[127.0.0.1]:22 ssh-ed25519 AAAA',
      'compose-env': `API_TOKEN=${VALUE}\nLOG_LEVEL=info`,
    };
    await runDeployStage({
      settings: await readHostSettings((n) => inputs[n] || undefined, {}),
      manifest: v3(),
      reporter: { ...silent, secret: (v: string) => masked.push(v) },
      deps: hostDeps(async () => {
        throw new Error('no host in this test');
      }),
    }).catch(() => undefined);
    assert.ok(masked.includes(VALUE), 'the token is not masked');
    assert.ok(!masked.includes('info'), '"info" is masked: every later log line loses the word');
  });

  it('refuses a v3 manifest that carries a value in compose.env (schema)', () => {
    const m = v3();
    assert.throws(
      () => validateManifest({ ...m, compose: { ...m.compose!, env: { DOCKER_TAG: 'v1', API_TOKEN: VALUE } } }),
      /not a valid lading\.manifest\/v3/,
    );
  });

  it('deploys a manifest of the older shape that still carries values, with a warning; the deploy values win', () => {
    const old = validateManifest({
      ...v3(),
      schema: 'lading.manifest/v1',
      compose: {
        project: 'app',
        files: v3().compose!.files,
        env: { DOCKER_TAG: 'v1', API_TOKEN: 'from-the-manifest' },
      },
    } as unknown);
    const warning = legacyEnvWarning(old);
    assert.match(warning ?? '', /carries the values of API_TOKEN.*older lading/);
    assert.equal(legacyEnvWarning(v3()), undefined);
    const env = deployEnv(old, { composeEnv: { API_TOKEN: 'from-the-deploy' }, composeSecrets: {} });
    const dotenv = releaseFiles(old, { project: 'app', release: 'r1', extraEnv: env }).files.find(
      (f) => f.name === '.env',
    )!;
    assert.match(String(dotenv.content), /^API_TOKEN=from-the-deploy$/m);
  });

  it("gives the agent's deploy the values from deploy.env-file, never through its config text", async () => {
    const cfg = parseAgentConfig(
      'manifest: { store: /srv/manifests }\npoll: { interval: 60 }\ndeploy: { env-file: /etc/lading/app.env }\n',
    );
    assert.equal(cfg.deploy.envFile, '/etc/lading/app.env');
    const file = join(work, 'agent.env');
    writeFileSync(file, `API_TOKEN=${VALUE}\n`);
    const here = parseAgentConfig(
      `manifest: { store: /srv/manifests }\npoll: { interval: 60 }\ndeploy: { env-file: ${file} }\n`,
    );
    assert.deepEqual(
      (await agentHostSettings(here, {})).deploy.composeEnv,
      { API_TOKEN: VALUE },
      'the file, read per deploy',
    );
    assert.throws(
      () => parseAgentConfig('manifest: { store: /m }\npoll: {}\ndeploy: { env-file: app.env }\n'),
      /deploy\.env-file.*absolute path/,
    );
  });

  it('refuses an env file name the release .env cannot hold when the settings are read, naming its input', async () => {
    const file = join(work, 'dotted.env');
    writeFileSync(file, `APP.TOKEN=${VALUE}\n`);
    await assert.rejects(readComposeEnv([], [file]), (e: InputError) => {
      assert.match(e.message, /input 'compose-env-file': .*dotted\.env: 'APP\.TOKEN' is not a variable name/);
      assert.ok(!e.message.includes(VALUE));
      return true;
    });
    const here = parseAgentConfig(
      `manifest: { store: /srv/manifests }\npoll: { interval: 60 }\ndeploy: { env-file: ${join(work, 'none.env')} }\n`,
    );
    await assert.rejects(agentHostSettings(here, {}), /input 'deploy\.env-file': .*none\.env cannot be read/);
  });
});
