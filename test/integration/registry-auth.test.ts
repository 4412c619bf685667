import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { withDockerConfig } from '../../src/io/docker-config.ts';
import {
  type AuthSettings,
  credentialFor,
  ensureEcrRepository,
  type RegistryCredential,
} from '../../src/io/registry-auth.ts';
import { RegistryClient } from '../../src/io/registry-client.ts';
import { InputError, LadingError } from '../../src/lib/errors.ts';
import { detectProvider, manifestAcceptHeader } from '../../src/lib/registry.ts';
import { type EcrStandin, startEcrStandin } from '../helpers/ecr-standin.ts';
import { type GoogleStandin, startGoogleStandin } from '../helpers/google-standin.ts';
import { sendJson, startStandin, type StandinServer } from '../helpers/standin-server.ts';
import { authPassword, docker, testEnv, unique } from '../helpers/testenv.ts';

const env = testEnv();
const PLAIN = env.registry.host;
const AUTH = env.authRegistry.host;
const AUTH_RE = AUTH.replace(/[.]/g, '\\.');

// Everything this file writes to "the temp dir" goes to a private one, so the final check can look at all of it.
const realTmp = tmpdir();
const privateTmp = mkdtempSync(join(realTmp, 'lading-registry-auth-'));
process.env.TMPDIR = privateTmp;
delete process.env.RUNNER_TEMP;
const fixtures = mkdtempSync(join(realTmp, 'lading-registry-auth-fixtures-'));

const masked = new Set<string>();
const logs: string[] = [];
const errorsSeen: string[] = [];
const settings = (extra: Partial<AuthSettings> = {}): AuthSettings => ({
  mask: (s) => masked.add(s),
  log: (line) => logs.push(line),
  ...extra,
});
const dockerEnv = { DOCKER_HOST: env.dockerHost };

/** Asserts a promise rejects with a LadingError whose text matches; records the text for the secrets check. */
async function rejects(p: Promise<unknown>, check: (err: LadingError) => void): Promise<LadingError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof LadingError, `expected a LadingError, got ${String(err)}`);
    errorsSeen.push(err.describe());
    check(err);
    return err;
  }
  assert.fail('expected a rejection');
}

function skopeo(args: string[]): string {
  return execFileSync('skopeo', args, { encoding: 'utf8', env: { ...process.env, TMPDIR: fixtures } }).trim();
}
function skopeoDigest(ref: string, creds?: string): string {
  return skopeo([
    'inspect',
    '--tls-verify=false',
    ...(creds ? ['--creds', creds] : []),
    '--format',
    '{{.Digest}}',
    `docker://${ref}`,
  ]);
}

const pushed: string[] = [];
function tagTestImage(ref: string) {
  docker(['tag', env.testImage, ref]);
  pushed.push(ref);
}
function push(ref: string, configDir?: string) {
  docker([...(configDir ? ['--config', configDir] : []), 'push', '-q', ref]);
}

async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

after(() => {
  for (const ref of pushed) {
    try {
      docker(['rmi', '--no-prune', ref]);
    } catch {
      // already gone
    }
  }
  rmSync(privateTmp, { recursive: true, force: true });
  rmSync(fixtures, { recursive: true, force: true });
});

describe('RegistryClient against the real registries', () => {
  it('reads the digest of a pushed image from the plain registry, equal to what skopeo reads', async () => {
    const repo = `lading-it/${unique('plain')}`;
    const ref = `${PLAIN}/${repo}:v1`;
    tagTestImage(ref);
    push(ref);
    const client = new RegistryClient(PLAIN);
    const info = await client.manifestDigest(repo, 'v1');
    assert.match(info.digest, /^sha256:[0-9a-f]{64}$/);
    assert.equal(info.digest, skopeoDigest(ref));
    assert.equal(info.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    const doc = await client.manifest(repo, 'v1');
    assert.equal(doc.digest, info.digest);
    assert.equal(doc.size, info.size);
    assert.ok(Array.isArray(doc.manifest.layers));
    assert.equal((await client.manifestDigest(repo, info.digest)).digest, info.digest, 'by digest too');
  });

  it('reads the digest from the htpasswd registry with the lading user, and says a login is needed without one', async () => {
    const repo = `lading-it/${unique('auth')}`;
    const ref = `${AUTH}/${repo}:v1`;
    tagTestImage(ref);
    const password = authPassword('lading');
    const cred = await credentialFor(AUTH, detectProvider(AUTH), settings({ username: 'lading', password }));
    assert.deepEqual(cred, { host: AUTH, username: 'lading', password, provider: 'generic' });
    assert.ok(masked.has(password), 'the password was masked');
    await withDockerConfig([cred!], async (dir) => push(ref, dir), { env: dockerEnv });
    const info = await new RegistryClient(AUTH, { credential: cred }).manifestDigest(repo, 'v1');
    assert.equal(info.digest, skopeoDigest(ref, `lading:${password}`));
    await rejects(new RegistryClient(AUTH).manifestDigest(repo, 'v1'), (err) => {
      assert.match(err.message, /needs a login/);
      assert.match(err.hint ?? '', new RegExp(`give credentials for ${AUTH_RE}`));
    });
  });

  it('says the registry refused wrong credentials', async () => {
    const wrong: RegistryCredential = {
      host: AUTH,
      username: 'lading',
      password: 'not-the-password',
      provider: 'generic',
    };
    await rejects(new RegistryClient(AUTH, { credential: wrong }).manifestDigest('lading-it/anything', 'v1'), (err) =>
      assert.match(err.message, new RegExp(`refused the credentials for ${AUTH_RE}\\/lading-it\\/anything:v1`)),
    );
  });

  it('keeps a multi-platform manifest list a list and reads its true digest (what a pull by digest gets)', async () => {
    const repo = `lading-it/${unique('multi')}`;
    const amd = `${PLAIN}/${repo}:amd64`;
    const arm = `${PLAIN}/${repo}:arm64`;
    tagTestImage(amd);
    push(amd);
    // a second image that differs only in its config (no new layer: cheap on vfs)
    const ctx = mkdtempSync(join(fixtures, 'ctx-'));
    writeFileSync(join(ctx, 'Dockerfile'), `FROM ${env.testImage}\nLABEL lading.test.arch=arm64\n`);
    docker(['build', '-q', '-t', arm, ctx]);
    pushed.push(arm);
    push(arm);
    const client = new RegistryClient(PLAIN);
    const [a, b] = [await client.manifestDigest(repo, 'amd64'), await client.manifestDigest(repo, 'arm64')];
    const list = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json',
      manifests: [
        { mediaType: a.mediaType, size: a.size, digest: a.digest, platform: { architecture: 'amd64', os: 'linux' } },
        { mediaType: b.mediaType, size: b.size, digest: b.digest, platform: { architecture: 'arm64', os: 'linux' } },
      ],
    });
    const put = await fetch(`http://${PLAIN}/v2/${repo}/manifests/multi`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/vnd.docker.distribution.manifest.list.v2+json' },
      body: list,
    });
    assert.equal(put.status, 201, await put.text());
    const expected = `sha256:${createHash('sha256').update(list).digest('hex')}`;

    const info = await client.manifestDigest(repo, 'multi');
    assert.equal(info.mediaType, 'application/vnd.docker.distribution.manifest.list.v2+json');
    assert.equal(info.digest, expected);
    assert.equal(info.size, Buffer.byteLength(list));
    const raw = skopeo(['inspect', '--tls-verify=false', '--raw', `docker://${PLAIN}/${repo}:multi`]);
    assert.equal(`sha256:${createHash('sha256').update(raw).digest('hex')}`, expected, 'skopeo --raw agrees');
    const doc = await client.manifest(repo, 'multi');
    assert.equal((doc.manifest.manifests as unknown[]).length, 2);
    // Without the list types in Accept the registry answers with one platform's manifest instead:
    const narrow = await fetch(`http://${PLAIN}/v2/${repo}/manifests/multi`, {
      method: 'HEAD',
      headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' },
    });
    assert.notEqual(narrow.headers.get('docker-content-digest'), expected);
  });

  it('says which image is not in the registry', async () => {
    await rejects(new RegistryClient(PLAIN).manifestDigest('lading-it/never-pushed', 'v9'), (err) => {
      assert.equal(err.message, `\`${PLAIN}/lading-it/never-pushed:v9\` is not in the registry`);
      assert.match(err.hint ?? '', /check the image name and tag/);
    });
  });

  it('retries a registry that is down, then says it is unreachable and what to check', async () => {
    const host = `127.0.0.1:${await closedPort()}`;
    const retries: string[] = [];
    const started = Date.now();
    await rejects(
      new RegistryClient(host, { retry: { tries: 4, baseMs: 20 }, log: (l) => retries.push(l) }).manifestDigest(
        'lading-it/x',
        'v1',
      ),
      (err) => {
        assert.match(
          err.message,
          new RegExp(`registry ${host} is unreachable at http://${host} \\(ECONNREFUSED.*4 tries\\)`),
        );
        assert.match(err.hint ?? '', /check the registry host and port, that the registry is running/);
      },
    );
    assert.equal(retries.length, 3);
    assert.match(retries[0]!, /ECONNREFUSED.*retry 1\/3 in \d+ ms/);
    assert.ok(Date.now() - started < 5000);
  });
});

describe('RegistryClient protocol details (local fake registry)', () => {
  const index = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [],
  });
  const single = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json' });
  const sha = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}`;
  let fake: StandinServer;
  const behaviour: {
    digestOnHead: boolean;
    wrongDigest: boolean;
    failures: number[];
    bearer: boolean;
  } = { digestOnHead: true, wrongDigest: false, failures: [], bearer: false };
  const token = `registry-token-${unique('t')}`;

  before(async () => {
    fake = await startStandin((req, res) => {
      const url = new URL(req.url, 'http://fake');
      if (url.pathname === '/token') {
        if (req.headers.authorization !== `Basic ${Buffer.from('robot:robot-pass').toString('base64')}`) {
          return sendJson(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'who are you' }] });
        }
        return sendJson(res, 200, { access_token: token, scope: url.searchParams.get('scope') });
      }
      const status = behaviour.failures.shift();
      if (status) return sendJson(res, status, { errors: [{ code: 'UNAVAILABLE', message: 'try later' }] });
      if (behaviour.bearer && req.headers.authorization !== `Bearer ${token}`) {
        return sendJson(
          res,
          401,
          { errors: [{ code: 'UNAUTHORIZED' }] },
          {
            'www-authenticate': `Bearer realm="${fake.url}/token",service="fake-registry",scope="repository:team/app:pull"`,
          },
        );
      }
      const m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(url.pathname);
      if (!m) return sendJson(res, 404, { errors: [{ code: 'NAME_UNKNOWN' }] });
      const accept = String(req.headers.accept ?? '');
      const body = accept.includes('application/vnd.oci.image.index.v1+json') ? index : single;
      const mediaType = JSON.parse(body).mediaType as string;
      const headers: Record<string, string> = { 'content-type': mediaType, 'content-length': String(body.length) };
      if (behaviour.digestOnHead || req.method === 'GET') {
        headers['docker-content-digest'] = behaviour.wrongDigest ? sha('something else') : sha(body);
      }
      res.writeHead(200, headers);
      res.end(req.method === 'HEAD' ? undefined : body);
    });
  });
  after(() => fake.close());
  const reset = () => Object.assign(behaviour, { digestOnHead: true, wrongDigest: false, failures: [], bearer: false });

  it('sends the Accept header that keeps an index an index', async () => {
    reset();
    const info = await new RegistryClient(fake.host).manifestDigest('team/app', 'v1');
    assert.deepEqual(info, {
      digest: sha(index),
      mediaType: 'application/vnd.oci.image.index.v1+json',
      size: index.length,
    });
    const head = fake.requests.at(-1)!;
    assert.equal(head.method, 'HEAD');
    assert.equal(head.headers.accept, manifestAcceptHeader);
  });

  it('falls back to GET and hashes the body when the HEAD has no digest', async () => {
    reset();
    behaviour.digestOnHead = false;
    const before = fake.requests.length;
    const info = await new RegistryClient(fake.host).manifestDigest('team/app', 'v1');
    assert.equal(info.digest, sha(index));
    assert.deepEqual(
      fake.requests.slice(before).map((r) => r.method),
      ['HEAD', 'GET'],
    );
  });

  it('answers a Bearer challenge: a pull token from the realm with the basic credential, then the manifest', async () => {
    reset();
    behaviour.bearer = true;
    const credential: RegistryCredential = {
      host: fake.host,
      username: 'robot',
      password: 'robot-pass',
      provider: 'generic',
    };
    const before = fake.requests.length;
    const client = new RegistryClient(fake.host, { credential });
    assert.equal((await client.manifestDigest('team/app', 'v1')).digest, sha(index));
    const seen = fake.requests.slice(before);
    assert.deepEqual(
      seen.map((r) => `${r.method} ${r.url}`),
      [
        'HEAD /v2/team/app/manifests/v1',
        'GET /token?service=fake-registry&scope=repository%3Ateam%2Fapp%3Apull',
        'HEAD /v2/team/app/manifests/v1',
      ],
    );
    // the token is kept for the repository
    await client.manifestDigest('team/app', 'v2');
    assert.equal(fake.requests.length, before + 4);
    await rejects(
      new RegistryClient(fake.host, { credential: { ...credential, password: 'wrong' } }).manifestDigest(
        'team/app',
        'v1',
      ),
      (err) => assert.match(err.message, /token service of 127\.0\.0\.1:\d+ .* refused a pull token .*: 401/),
    );
  });

  it('refuses a manifest whose bytes do not match the digest the registry claims', async () => {
    reset();
    behaviour.wrongDigest = true;
    behaviour.digestOnHead = false;
    await rejects(new RegistryClient(fake.host).manifestDigest('team/app', 'v1'), (err) =>
      assert.match(err.message, /answered team\/app:v1 with digest sha256:\w+ but the manifest it sent hashes to/),
    );
  });

  it('retries 503 and 429 answers with backoff, then succeeds', async () => {
    reset();
    behaviour.failures = [503, 429];
    const lines: string[] = [];
    const info = await new RegistryClient(fake.host, {
      retry: { baseMs: 5 },
      log: (l) => lines.push(l),
    }).manifestDigest('team/app', 'v1');
    assert.equal(info.digest, sha(index));
    assert.equal(lines.length, 2);
    assert.match(lines[0]!, /HTTP 503/);
  });

  it('gives up on a registry that keeps failing, saying so', async () => {
    reset();
    behaviour.failures = [502, 502, 502];
    await rejects(
      new RegistryClient(fake.host, { retry: { tries: 3, baseMs: 5 } }).manifestDigest('team/app', 'v1'),
      (err) => assert.match(err.message, /kept failing \(HTTP 502 .*3 tries\)/),
    );
  });

  it('never sends credentials to a plain-HTTP token realm off loopback', async () => {
    const evil = await startStandin((_req, res) =>
      sendJson(res, 401, {}, { 'www-authenticate': 'Bearer realm="http://tokens.example.com/token",service="x"' }),
    );
    try {
      const credential: RegistryCredential = {
        host: evil.host,
        username: 'u',
        password: 'p4ssw0rd',
        provider: 'generic',
      };
      await rejects(new RegistryClient(evil.host, { credential }).manifestDigest('team/app', 'v1'), (err) =>
        assert.match(err.message, /token service http:\/\/tokens\.example\.com over plain HTTP/),
      );
    } finally {
      await evil.close();
    }
  });
});

describe('credentialFor: generic registries', () => {
  it('gives no credential without username and password (anonymous)', async () => {
    assert.equal(await credentialFor('ghcr.io', 'generic', settings()), undefined);
  });
  it('refuses a username without a password, and a password without a username, naming the input', async () => {
    await assert.rejects(
      credentialFor('ghcr.io', 'generic', settings({ username: 'ci' })),
      (err: unknown) => err instanceof InputError && err.input === 'password' && /no password/.test(err.message),
    );
    await assert.rejects(
      credentialFor('ghcr.io', 'generic', settings({ password: 'only-a-password' })),
      (err: unknown) => err instanceof InputError && err.input === 'username' && /no username/.test(err.message),
    );
    assert.ok(masked.has('only-a-password'), 'even a stray password is masked');
  });
});

describe('ECR through the real AWS SDK and a stand-in ECR API', () => {
  let ecr: EcrStandin;
  const saved: Record<string, string | undefined> = {};
  const awsEnv: Record<string, string | undefined> = {
    AWS_ACCESS_KEY_ID: 'AKIAIOSFODNN7EXAMPLE',
    AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
    AWS_SESSION_TOKEN: undefined,
    AWS_PROFILE: undefined,
    AWS_REGION: undefined,
    AWS_DEFAULT_REGION: undefined,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: '/nonexistent/lading/aws-config',
    AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/lading/aws-credentials',
  };
  const setEnv = (vars: Record<string, string | undefined>) => {
    for (const [k, v] of Object.entries(vars)) {
      if (!(k in saved)) saved[k] = process.env[k];
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
  const overrides = { [AUTH]: 'ecr' } as const;
  const ecrSettings = (extra: Partial<AuthSettings> = {}) =>
    settings({ ecrEndpoint: ecr.url, awsRegion: 'eu-west-1', ...extra });

  before(async () => {
    ecr = await startEcrStandin({
      token: Buffer.from(`AWS:${authPassword('AWS')}`).toString('base64'),
      proxyEndpoint: `http://${AUTH}`,
      expiresAt: new Date('2030-01-02T03:04:05Z'),
    });
    setEnv(awsEnv);
  });
  after(async () => {
    await ecr.close();
    setEnv(saved);
  });

  it('logs in with a token from GetAuthorizationToken, pushes, and reads the digest back', async () => {
    const provider = detectProvider(AUTH, overrides);
    assert.equal(provider, 'ecr');
    const repo = `lading-it/${unique('ecr')}`;
    const ref = `${AUTH}/${repo}:v1`;
    tagTestImage(ref);
    const cred = await credentialFor(AUTH, provider, ecrSettings());
    assert.ok(cred);
    assert.equal(cred.username, 'AWS');
    assert.equal(cred.password, authPassword('AWS'));
    assert.equal(cred.provider, 'ecr');
    assert.equal(cred.expiresAt?.toISOString(), '2030-01-02T03:04:05.000Z');
    assert.ok(masked.has(cred.password) && masked.has(Buffer.from(`AWS:${cred.password}`).toString('base64')));
    const call = ecr.calls.at(-1)!;
    assert.equal(call.operation, 'GetAuthorizationToken');
    assert.match(
      call.authorization,
      /^AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE\/\d{8}\/eu-west-1\/ecr\/aws4_request/,
    );
    assert.match(logs.at(-1)!, /ECR authorization token \(expires 2030-01-02T03:04:05.000Z\)/);

    await withDockerConfig([cred], async (dir) => push(ref, dir), { env: dockerEnv });
    const info = await new RegistryClient(AUTH, { credential: cred }).manifestDigest(repo, 'v1');
    assert.equal(info.digest, skopeoDigest(ref, `AWS:${cred.password}`));
  });

  it('creates a missing repository once, and leaves an existing one alone', async () => {
    const repo = `lading-it/${unique('ecr-create')}`;
    const before = ecr.calls.length;
    assert.equal(await ensureEcrRepository(AUTH, repo, ecrSettings()), 'created');
    assert.equal(await ensureEcrRepository(AUTH, repo, ecrSettings()), 'exists');
    assert.deepEqual(
      ecr.calls.slice(before).map((c) => c.operation),
      ['DescribeRepositories', 'CreateRepository', 'DescribeRepositories'],
    );
    assert.deepEqual(ecr.calls[before + 1]!.body, { repositoryName: repo });
    assert.ok(ecr.repositories.has(repo));
    assert.match(logs.at(-1)!, new RegExp(`created the ECR repository ${repo}`));
  });

  it('passes the registry id of a real ECR host, and refuses to create when creation is off', async () => {
    const host = '123456789012.dkr.ecr.eu-west-1.amazonaws.com';
    const before = ecr.calls.length;
    await rejects(ensureEcrRepository(host, 'web', ecrSettings({ ecrCreateRepositories: false })), (err) => {
      assert.match(
        err.message,
        /the ECR repository 123456789012\.dkr\.ecr\.eu-west-1\.amazonaws\.com\/web does not exist/,
      );
      assert.match(err.hint ?? '', /ecr-create-repository: true/);
    });
    assert.deepEqual(ecr.calls.slice(before), [
      {
        operation: 'DescribeRepositories',
        body: { repositoryNames: ['web'], registryId: '123456789012' },
        authorization: ecr.calls[before]!.authorization,
      },
    ]);
  });

  it('splits the token on the first colon only, whatever the user is', async () => {
    const other = await startEcrStandin({
      token: Buffer.from('robot:pa:ss:word').toString('base64'),
      proxyEndpoint: 'https://x',
    });
    try {
      const cred = await credentialFor(AUTH, 'ecr', settings({ ecrEndpoint: other.url, awsRegion: 'us-east-1' }));
      assert.equal(cred?.username, 'robot');
      assert.equal(cred?.password, 'pa:ss:word');
    } finally {
      await other.close();
    }
  });

  it('gets ECR Public tokens from us-east-1', async () => {
    const cred = await credentialFor('public.ecr.aws', 'ecr-public', settings({ ecrPublicEndpoint: ecr.url }));
    assert.equal(cred?.provider, 'ecr-public');
    assert.equal(cred?.username, 'AWS');
    assert.equal(cred?.password, authPassword('AWS'));
    assert.match(ecr.calls.at(-1)!.authorization, /\/us-east-1\/ecr-public\/aws4_request/);
  });

  it('turns AccessDenied into an error that names the IAM action to allow', async () => {
    ecr.failures.GetAuthorizationToken = [
      'AccessDeniedException',
      'User: arn:aws:iam::123456789012:user/ci is not authorized to perform: ecr:GetAuthorizationToken',
    ];
    try {
      await rejects(credentialFor(AUTH, 'ecr', ecrSettings()), (err) => {
        assert.match(
          err.message,
          new RegExp(`cannot get an ECR login for ${AUTH_RE}: AWS denied ecr:GetAuthorizationToken`),
        );
        assert.match(err.message, /user\/ci is not authorized/);
        assert.match(err.hint ?? '', /allow ecr:GetAuthorizationToken/);
      });
    } finally {
      delete ecr.failures.GetAuthorizationToken;
    }
  });

  it('says how to give the runner AWS credentials when it has none', async () => {
    setEnv({ AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined });
    try {
      await rejects(credentialFor(AUTH, 'ecr', ecrSettings()), (err) => {
        assert.match(err.message, /no AWS credentials found/);
        assert.match(err.hint ?? '', /aws-actions\/configure-aws-credentials/);
      });
    } finally {
      setEnv({ AWS_ACCESS_KEY_ID: awsEnv.AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: awsEnv.AWS_SECRET_ACCESS_KEY });
    }
  });
});

describe('Google (GCR / Artifact Registry) through the real google-auth-library and a stand-in STS', () => {
  let google: GoogleStandin;
  const savedAdc = process.env.GOOGLE_APPLICATION_CREDENTIALS;
  const overrides = { [AUTH]: 'google' } as const;

  before(async () => {
    google = await startGoogleStandin({ accessToken: authPassword('oauth2accesstoken') });
  });
  after(async () => {
    await google.close();
    if (savedAdc === undefined) delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
    else process.env.GOOGLE_APPLICATION_CREDENTIALS = savedAdc;
  });

  it('uses Application Default Credentials written by google-github-actions/auth (WIF + impersonation), pushes, reads the digest', async () => {
    const file = join(fixtures, 'gha-creds-adc.json');
    writeFileSync(file, JSON.stringify(google.externalAccount({ impersonate: 'pusher@acme.iam.gserviceaccount.com' })));
    process.env.GOOGLE_APPLICATION_CREDENTIALS = file;
    const provider = detectProvider(AUTH, overrides);
    assert.equal(provider, 'google');
    const cred = await credentialFor(AUTH, provider, settings());
    assert.ok(cred);
    assert.equal(cred.username, 'oauth2accesstoken');
    assert.equal(cred.password, authPassword('oauth2accesstoken'));
    assert.ok(masked.has(cred.password));
    assert.ok(cred.expiresAt && cred.expiresAt.getTime() > Date.now() + 3000_000);
    assert.deepEqual(
      google.requests.map((r) => `${r.method} ${new URL(r.url, 'http://x').pathname}`),
      [
        'GET /oidc',
        'POST /v1/token',
        'POST /v1/projects/-/serviceAccounts/pusher@acme.iam.gserviceaccount.com:generateAccessToken',
      ],
    );
    assert.match(logs.at(-1)!, /Google access token from Application Default Credentials \(.*gha-creds-adc\.json\)/);

    const repo = `lading-it/${unique('gcr')}`;
    const ref = `${AUTH}/${repo}:v1`;
    tagTestImage(ref);
    await withDockerConfig([cred], async (dir) => push(ref, dir), { env: dockerEnv });
    const info = await new RegistryClient(AUTH, { credential: cred }).manifestDigest(repo, 'v1');
    assert.equal(info.digest, skopeoDigest(ref, `oauth2accesstoken:${cred.password}`));
  });

  it('takes the credentials JSON from the input, as text or base64, over ADC', async () => {
    process.env.GOOGLE_APPLICATION_CREDENTIALS = '/nonexistent/adc.json';
    const tokenFile = join(fixtures, 'oidc-token');
    writeFileSync(tokenFile, google.subjectToken);
    const json = JSON.stringify(google.externalAccount({ source: { file: tokenFile } }));
    for (const googleCredentials of [json, Buffer.from(json).toString('base64')]) {
      const cred = await credentialFor(AUTH, 'google', settings({ googleCredentials }));
      assert.equal(cred?.password, authPassword('oauth2accesstoken'));
      assert.match(logs.at(-1)!, /from workload identity federation/);
    }
  });

  it('says how to give Google credentials when there are none (no input, no ADC, not on GCE)', async () => {
    const saved = { ...process.env };
    delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
    process.env.CLOUDSDK_CONFIG = join(fixtures, 'no-gcloud');
    process.env.METADATA_SERVER_DETECTION = 'none';
    try {
      await rejects(credentialFor(AUTH, 'google', settings()), (err) => {
        assert.match(err.message, new RegExp(`no Google credentials for ${AUTH_RE}`));
        assert.match(err.hint ?? '', /`google-credentials`.*google-github-actions\/auth/);
      });
    } finally {
      for (const k of ['CLOUDSDK_CONFIG', 'METADATA_SERVER_DETECTION']) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    }
  });

  it('turns a refused token exchange into an error that says what to do', async () => {
    google.failSts = ['invalid_grant', 'The audience in the token does not match'];
    try {
      const googleCredentials = JSON.stringify(google.externalAccount());
      await rejects(credentialFor(AUTH, 'google', settings({ googleCredentials })), (err) => {
        assert.match(
          err.message,
          new RegExp(`cannot get a Google access token for ${AUTH_RE} from workload identity federation`),
        );
        assert.match(err.message, /invalid_grant/);
        assert.match(err.hint ?? '', /google-github-actions\/auth/);
      });
    } finally {
      delete google.failSts;
    }
  });

  it('refuses credentials input that is not a credentials JSON, without echoing it', async () => {
    await assert.rejects(
      credentialFor(AUTH, 'google', settings({ googleCredentials: 'secret-ish {not json' })),
      (err: unknown) =>
        err instanceof InputError &&
        err.input === 'google-credentials' &&
        !err.describe().includes('secret-ish') &&
        /not a JSON credentials file/.test(err.message),
    );
    await assert.rejects(
      credentialFor(AUTH, 'google', settings({ googleCredentials: '{"type":"authorized_user","refresh_token":"x"}' })),
      (err: unknown) => err instanceof InputError && /type 'authorized_user' are not supported/.test(err.message),
    );
  });
});

describe('withDockerConfig', () => {
  const cred = (): RegistryCredential => ({
    host: AUTH,
    username: 'lading',
    password: authPassword('lading'),
    provider: 'generic',
  });

  it('logs in through stdin inside a private 0700 folder, and removes it afterwards — also when fn throws', async () => {
    let seen = '';
    const out = await withDockerConfig(
      [cred()],
      async (dir) => {
        seen = dir;
        assert.equal(statSync(dir).mode & 0o777, 0o700);
        assert.ok(dir.startsWith(privateTmp), 'under the temp dir');
        const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
        assert.ok(config.auths[AUTH].auth, 'the login is in this folder');
        assert.equal(config.credsStore, undefined);
        return 42;
      },
      { env: dockerEnv },
    );
    assert.equal(out, 42);
    assert.ok(!existsSync(seen), 'the folder is gone');

    await assert.rejects(
      withDockerConfig(
        [cred()],
        async (dir) => {
          seen = dir;
          throw new Error('push failed');
        },
        { env: dockerEnv },
      ),
      /push failed/,
    );
    assert.ok(!existsSync(seen), 'the folder is gone after a failure too');
  });

  it('never puts the password in argv: it goes to docker on stdin', async () => {
    const bin = join(fixtures, 'fake-docker');
    mkdirSync(bin, { recursive: true });
    const record = join(fixtures, 'fake-docker.log');
    writeFileSync(
      join(bin, 'docker'),
      `#!/bin/sh\nprintf 'argv: %s\\n' "$*" >> '${record}'\nprintf 'stdin: ' >> '${record}'\ncat >> '${record}'\necho >> '${record}'\n`,
    );
    chmodSync(join(bin, 'docker'), 0o755);
    await withDockerConfig([cred()], async () => undefined, { docker: join(bin, 'docker') });
    const text = readFileSync(record, 'utf8');
    const [argv, stdin] = text.split('\n');
    assert.match(
      argv!,
      new RegExp(`^argv: --config \\S+lading-docker-config-\\S+ login ${AUTH_RE} --username lading --password-stdin$`),
    );
    assert.ok(!argv!.includes(cred().password));
    assert.equal(stdin, `stdin: ${cred().password}`);
  });

  it('keeps logins out of a platform credential helper (the keyring), in the folder that goes away', async () => {
    // docker looks for docker-credential-pass / -secretservice when the config has no auth at all and then stores
    // the login in the user's keyring, where it outlives the temp folder. Fake both and watch them.
    const bin = join(fixtures, 'fake-helpers');
    mkdirSync(bin, { recursive: true });
    const calls = join(fixtures, 'helper-calls');
    const helper = `#!/bin/sh\necho "$1" >> '${calls}'\ncat > /dev/null\n[ "$1" = get ] && { echo "credentials not found in native keychain"; exit 1; }\n[ "$1" = list ] && echo '{}'\nexit 0\n`;
    for (const name of ['docker-credential-pass', 'docker-credential-secretservice']) {
      writeFileSync(join(bin, name), helper);
      chmodSync(join(bin, name), 0o755);
    }
    writeFileSync(join(bin, 'pass'), '#!/bin/sh\nexit 0\n');
    chmodSync(join(bin, 'pass'), 0o755);
    const PATH = `${bin}:${process.env.PATH}`;

    // the premise: a bare config folder sends the login to the helper
    const bare = mkdtempSync(join(fixtures, 'bare-config-'));
    docker(['--config', bare, 'login', AUTH, '-u', 'lading', '--password-stdin'], {
      input: cred().password,
      env: { PATH },
    });
    assert.match(readFileSync(calls, 'utf8'), /store/);
    rmSync(calls);
    rmSync(bare, { recursive: true, force: true });

    await withDockerConfig(
      [cred()],
      async (dir) => {
        const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
        assert.ok(config.auths[AUTH].auth);
        assert.equal(config.credsStore, undefined);
      },
      { env: { ...dockerEnv, PATH } },
    );
    assert.ok(!existsSync(calls), 'the helper was never called');
  });

  it('names the host and shows docker’s message when a login fails, without the password', async () => {
    const bad: RegistryCredential = { ...cred(), password: 'wrong-password-123' };
    await rejects(
      withDockerConfig([bad], async () => undefined, { env: dockerEnv }),
      (err) => {
        assert.match(err.message, new RegExp(`docker login to ${AUTH_RE} as lading failed: .*(unauthorized|401)`, 'i'));
        assert.ok(!err.describe().includes('wrong-password-123'));
        assert.match(err.hint ?? '', /refused the credentials/);
      },
    );
  });

  it('refuses a credential that has already expired', async () => {
    const old: RegistryCredential = { ...cred(), expiresAt: new Date(Date.now() - 1000) };
    await rejects(
      withDockerConfig([old], async () => undefined, { env: dockerEnv }),
      (err) => assert.match(err.message, new RegExp(`the credential for ${AUTH_RE} expired at`)),
    );
  });
});

describe('secrets stay secret', () => {
  function filesUnder(dir: string): string[] {
    if (!existsSync(dir)) return [];
    return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
      const p = join(dir, e.name);
      return e.isDirectory() ? filesUnder(p) : e.isFile() ? [p] : [];
    });
  }

  it('no token or password in the log lines, the errors shown, or any file left in the temp dir', () => {
    const secrets = [
      authPassword('lading'),
      authPassword('AWS'),
      authPassword('oauth2accesstoken'),
      Buffer.from(`AWS:${authPassword('AWS')}`).toString('base64'),
    ];
    for (const s of secrets)
      assert.ok(masked.has(s) || s === authPassword('lading'), 'every derived secret was masked');
    assert.ok(logs.length >= 5 && errorsSeen.length >= 10, `logs ${logs.length}, errors ${errorsSeen.length}`);
    for (const s of secrets) {
      for (const line of logs) assert.ok(!line.includes(s), `a log line holds a secret: ${line.replace(s, '***')}`);
      for (const e of errorsSeen) assert.ok(!e.includes(s), `an error holds a secret: ${e.replace(s, '***')}`);
    }
    const left = filesUnder(privateTmp);
    for (const file of left) {
      const text = readFileSync(file, 'latin1');
      for (const s of secrets) assert.ok(!text.includes(s), `${file} holds a secret`);
    }
    assert.deepEqual(
      readdirSync(privateTmp).filter((n) => n.startsWith('lading-docker-config-')),
      [],
      'no docker config folder is left behind',
    );
  });
});
