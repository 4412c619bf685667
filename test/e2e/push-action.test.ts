import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type ActionRun, runActionBundle, runActionBundleAsync } from '../helpers/bundles.ts';
import { type EcrStandin, startEcrStandin } from '../helpers/ecr-standin.ts';
import { eventPath, githubEnv } from '../helpers/github.ts';
import { type GoogleStandin, startGoogleStandin } from '../helpers/google-standin.ts';
import { authPassword, busyboxContext, docker, testEnv, unique } from '../helpers/testenv.ts';

const skopeoDigest = (ref: string) =>
  execFileSync(
    'skopeo',
    [
      'inspect',
      '--tls-verify=false',
      '--creds',
      `lading:${authPassword()}`,
      '--format',
      '{{.Digest}}',
      `docker://${ref}`,
    ],
    {
      encoding: 'utf8',
    },
  ).trim();

/** Every file under a folder, read as text (to look for secrets left behind). */
function allText(dir: string): string {
  let out = '';
  for (const name of readdirSync(dir, { recursive: true }).map(String)) {
    const p = join(dir, name);
    if (statSync(p).isFile()) out += readFileSync(p, 'utf8');
  }
  return out;
}

function assertNoSecret(run: ActionRun, secret: string) {
  for (const [where, text] of [
    // ::add-mask:: lines tell the runner what to mask; they never reach the log.
    ['stdout', run.stdout.replace(/^::add-mask::.*$/gm, '')],
    ['stderr', run.stderr],
    ['outputs', JSON.stringify(run.outputs)],
    ['summary', run.summary],
    ['files left in RUNNER_TEMP', allText(run.runnerTemp)],
  ] as const) {
    assert.ok(!text.includes(secret), `the secret appears in ${where}`);
  }
}

describe('dist/push on the real registries', () => {
  const env = testEnv();
  const ns = unique('push');
  const web = `${env.registry.host}/${ns}/web`;
  const api = `${env.authRegistry.host}/${ns}/api`;
  let ws = '';
  let build: { images: Array<{ id: string }> } & Record<string, unknown>;
  const base = () => ({
    ...githubEnv('push', 'refs/heads/main', '4444444ddddddddddddddddddddddddddddddddd'),
    GITHUB_EVENT_PATH: eventPath('push-main'),
    DOCKER_HOST: env.dockerHost,
  });
  /** build-json with only the named images: each push run then talks to one registry. */
  const only = (...ids: string[]) =>
    JSON.stringify({ ...build, images: build.images.filter((i) => ids.includes(i.id)) });

  before(() => {
    ws = mkdtempSync(join(tmpdir(), 'lading-push-ws-'));
    busyboxContext(ws, { files: { 'v.txt': ns } });
    const run = runActionBundle('build', {
      inputs: { images: `- ${web}\n- ${api}\n` },
      env: { ...base(), GITHUB_WORKSPACE: ws },
    });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    build = JSON.parse(run.outputs.json!);
  });
  after(() => rmSync(ws, { recursive: true, force: true }));

  it('pushes anonymously to a v2 registry and reads the true digest back', () => {
    const run = runActionBundle('push', { inputs: { 'build-json': only('web') }, env: base() });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const out = JSON.parse(run.outputs.json!);
    const digest = out.images[0].digest;
    assert.equal(digest, skopeoDigest(`${web}:main-4444444`));
    assert.equal(skopeoDigest(`${web}:latest`), digest);
    assert.equal(out.images[0].ref, `${web}@${digest}`);
    assert.equal(JSON.parse(run.outputs.digests!).web, digest);
    assert.match(run.summary, new RegExp(digest));
  });

  it('pushes with username/password to the htpasswd registry; the password goes nowhere', () => {
    const password = authPassword('lading');
    const run = runActionBundle('push', {
      inputs: { 'build-json': only('api'), username: 'lading', password },
      env: base(),
    });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.equal(JSON.parse(run.outputs.json!).images[0].digest, skopeoDigest(`${api}:main-4444444`));
    assert.match(run.stdout, /::add-mask::/);
    assertNoSecret(run, password);
  });

  describe('ECR through the real AWS SDK and a local ECR endpoint', () => {
    let ecr: EcrStandin;
    before(async () => {
      ecr = await startEcrStandin({
        token: Buffer.from(`AWS:${authPassword('AWS')}`).toString('base64'),
        proxyEndpoint: `http://${env.authRegistry.host}`,
      });
    });
    after(() => ecr.close());
    it('gets a token with GetAuthorizationToken, creates the repository, pushes; the token goes nowhere', async () => {
      const run = await runActionBundleAsync('push', {
        inputs: {
          'build-json': only('api'),
          'registry-providers': `${env.authRegistry.host}=ecr`,
          'aws-region': 'eu-west-1',
          'ecr-create-repository': 'true',
        },
        env: {
          ...base(),
          AWS_ENDPOINT_URL_ECR: ecr.url,
          AWS_ACCESS_KEY_ID: 'AKIDLADINGTEST',
          AWS_SECRET_ACCESS_KEY: 'lading-test-secret',
          AWS_EC2_METADATA_DISABLED: 'true',
        },
      });
      assert.equal(run.code, 0, run.stdout + run.stderr);
      assert.deepEqual(
        ecr.calls.map((c) => c.operation),
        ['GetAuthorizationToken', 'DescribeRepositories', 'CreateRepository'],
      );
      assert.ok(ecr.repositories.has(`${ns}/api`));
      assert.equal(JSON.parse(run.outputs.json!).images[0].provider, 'ecr');
      assertNoSecret(run, authPassword('AWS'));
      assertNoSecret(run, Buffer.from(`AWS:${authPassword('AWS')}`).toString('base64'));
    });
  });

  describe('Google through the real google-auth-library and local STS/OIDC endpoints', () => {
    let google: GoogleStandin;
    before(async () => {
      google = await startGoogleStandin({ accessToken: authPassword('oauth2accesstoken') });
    });
    after(() => google.close());
    it('uses the credentials file google-github-actions/auth leaves (workload identity); the token goes nowhere', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'lading-adc-'));
      const adc = join(dir, 'gha-creds.json');
      writeFileSync(
        adc,
        JSON.stringify(google.externalAccount({ impersonate: 'pusher@acme.iam.gserviceaccount.com' })),
      );
      try {
        const run = await runActionBundleAsync('push', {
          inputs: { 'build-json': only('api'), 'registry-providers': `${env.authRegistry.host}=google` },
          env: { ...base(), GOOGLE_APPLICATION_CREDENTIALS: adc },
        });
        assert.equal(run.code, 0, run.stdout + run.stderr);
        assert.match(run.stdout, /logging in as oauth2accesstoken/);
        assertNoSecret(run, authPassword('oauth2accesstoken'));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  it('a registry that wants credentials and got none: a clear error saying nothing was pushed', () => {
    const run = runActionBundle('push', { inputs: { 'build-json': only('api') }, env: base() });
    assert.equal(run.code, 1);
    assert.match(
      run.stdout,
      new RegExp(
        `::error::the registry ${env.authRegistry.host.replace(/[.]/g, '\\.')} refused the push of .*Nothing was pushed\\. — give username and password`,
      ),
    );
  });

  it('a registry that is down: retried, then a clear error', () => {
    const down = `127.0.0.1:5999/${ns}/down`;
    docker(['tag', env.testImage, `${down}:main-4444444`]);
    const id = docker(['image', 'inspect', '--format', '{{.Id}}', env.testImage]);
    const buildJson = JSON.stringify({
      ...build,
      images: [
        {
          id: 'down',
          name: down,
          services: [],
          imageId: id,
          tags: ['main-4444444'],
          refs: [`${down}:main-4444444`],
          platforms: [],
          pushedByBuild: false,
          dependsOn: [],
        },
      ],
    });
    const run = runActionBundle('push', { inputs: { 'build-json': buildJson, retries: '2' }, env: base() });
    docker(['rmi', '--no-prune', `${down}:main-4444444`]);
    assert.equal(run.code, 1);
    assert.match(run.stdout, /::warning::push of 127\.0\.0\.1:5999\/.*failed \(attempt 1\); retrying/);
    assert.match(
      run.stdout,
      /::error::pushing 127\.0\.0\.1:5999\/.* failed after 2 tries: .*connection refused.*check that 127\.0\.0\.1:5999 is up/s,
    );
  });

  it('refuses bad input before touching a registry', () => {
    for (const [inputs, err] of [
      [{ 'build-json': '' }, /input 'build-json': is empty/],
      [{ 'build-json': '{"x":1}' }, /input 'build-json': is not the json output of the build step/],
      [{ 'build-json': only('web'), username: 'u' }, /input 'password': is empty while the other one is set/],
      [
        { 'build-json': only('web'), 'registry-providers': 'x=quay' },
        /input 'registry-providers': 'quay' is not a registry provider/,
      ],
    ] as const) {
      const run = runActionBundle('push', { inputs, env: base() });
      assert.equal(run.code, 1);
      assert.match(run.stdout, err);
    }
  });
});
