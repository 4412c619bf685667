import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InputError } from '../../src/lib/errors.ts';
import {
  detectProvider,
  ecrAccountOf,
  ecrRegionOf,
  isDigest,
  isInsecureHost,
  manifestAcceptHeader,
  parseAuthChallenge,
  parseProviderOverrides,
  type RegistryProvider,
  registryApiHost,
  registryHostOf,
  repositoryOf,
} from '../../src/lib/registry.ts';

describe('registryHostOf / repositoryOf', () => {
  const cases: Array<[string, string, string]> = [
    ['app', 'docker.io', 'library/app'],
    ['acme/app', 'docker.io', 'acme/app'],
    ['acme/team/app', 'docker.io', 'acme/team/app'],
    ['docker.io/acme/app', 'docker.io', 'acme/app'],
    ['docker.io/app', 'docker.io', 'library/app'],
    ['index.docker.io/acme/app', 'docker.io', 'acme/app'],
    ['app:1.2', 'docker.io', 'library/app'],
    ['acme/app@sha256:' + 'a'.repeat(64), 'docker.io', 'acme/app'],
    ['localhost/app', 'localhost', 'app'],
    ['localhost:5000/app:v1', 'localhost:5000', 'app'],
    ['127.0.0.1:5000/lading-it/web', '127.0.0.1:5000', 'lading-it/web'],
    ['ghcr.io/acme/app:1', 'ghcr.io', 'acme/app'],
    ['europe-docker.pkg.dev/proj/repo/web', 'europe-docker.pkg.dev', 'proj/repo/web'],
    ['123456789012.dkr.ecr.eu-west-1.amazonaws.com/web', '123456789012.dkr.ecr.eu-west-1.amazonaws.com', 'web'],
    ['[::1]:5000/app', '[::1]:5000', 'app'],
    ['  gcr.io/p/app  ', 'gcr.io', 'p/app'],
  ];
  for (const [name, host, repo] of cases) {
    it(`${name.trim()} → ${host} + ${repo}`, () => {
      assert.equal(registryHostOf(name), host);
      assert.equal(repositoryOf(name), repo);
    });
  }

  it('Docker Hub is served from registry-1.docker.io; other hosts serve themselves', () => {
    assert.equal(registryApiHost('docker.io'), 'registry-1.docker.io');
    assert.equal(registryApiHost('index.docker.io'), 'registry-1.docker.io');
    assert.equal(registryApiHost('ghcr.io'), 'ghcr.io');
    assert.equal(registryApiHost('127.0.0.1:5000'), '127.0.0.1:5000');
  });
});

describe('detectProvider', () => {
  const cases: Array<[string, RegistryProvider]> = [
    ['gcr.io', 'google'],
    ['eu.gcr.io', 'google'],
    ['us.gcr.io', 'google'],
    ['asia.gcr.io', 'google'],
    ['marketplace.gcr.io', 'google'],
    ['GCR.IO', 'google'],
    ['europe-docker.pkg.dev', 'google'],
    ['us-central1-docker.pkg.dev', 'google'],
    ['europe-west3-docker.pkg.dev', 'google'],
    ['123456789012.dkr.ecr.eu-west-1.amazonaws.com', 'ecr'],
    ['123456789012.dkr.ecr.us-east-1.amazonaws.com', 'ecr'],
    ['123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com', 'ecr'],
    ['123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn', 'ecr'],
    ['123456789012.dkr-ecr.eu-central-1.on.aws', 'ecr'],
    ['public.ecr.aws', 'ecr-public'],
    ['docker.io', 'dockerhub'],
    ['index.docker.io', 'dockerhub'],
    ['registry-1.docker.io', 'dockerhub'],
    ['ghcr.io', 'ghcr'],
    ['GHCR.IO', 'ghcr'],
    ['ghcr.io.evil.example', 'generic'],
    ['docker.io.evil.example', 'generic'],
    ['registry.gitlab.com', 'generic'],
    ['127.0.0.1:5000', 'generic'],
    ['localhost:5000', 'generic'],
    // look-alikes stay generic
    ['gcr.io.evil.example', 'generic'],
    ['evilgcr.io', 'generic'],
    ['docker.pkg.dev', 'generic'],
    ['europe-docker.pkg.dev.example.com', 'generic'],
    ['12345.dkr.ecr.eu-west-1.amazonaws.com', 'generic'],
    ['123456789012.dkr.ecr.eu-west-1.amazonaws.com.evil.example', 'generic'],
    ['123456789012.dkr.ecr.eu-west-1.amazonaws.com:443', 'generic'],
    ['ecr.aws', 'generic'],
  ];
  for (const [host, provider] of cases) {
    it(`${host} → ${provider}`, () => assert.equal(detectProvider(host), provider));
  }

  it('overrides win, matched case-insensitively on host:port', () => {
    const overrides = { '127.0.0.1:5001': 'ecr', 'gcr.io': 'generic' } as const;
    assert.equal(detectProvider('127.0.0.1:5001', overrides), 'ecr');
    assert.equal(detectProvider('127.0.0.1:5000', overrides), 'generic');
    assert.equal(detectProvider('GCR.io', overrides), 'generic');
    assert.equal(detectProvider('eu.gcr.io', overrides), 'google');
  });
});

describe('ecrRegionOf / ecrAccountOf', () => {
  const cases: Array<[string, string | undefined, string | undefined]> = [
    ['123456789012.dkr.ecr.eu-west-1.amazonaws.com', 'eu-west-1', '123456789012'],
    ['210987654321.dkr.ecr-fips.us-gov-west-1.amazonaws.com', 'us-gov-west-1', '210987654321'],
    ['123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn', 'cn-northwest-1', '123456789012'],
    ['123456789012.dkr-ecr.ap-south-1.on.aws', 'ap-south-1', '123456789012'],
    ['public.ecr.aws', undefined, undefined],
    ['127.0.0.1:5001', undefined, undefined],
  ];
  for (const [host, region, account] of cases) {
    it(`${host} → ${region ?? '-'} / ${account ?? '-'}`, () => {
      assert.equal(ecrRegionOf(host), region);
      assert.equal(ecrAccountOf(host), account);
    });
  }
});

describe('parseProviderOverrides', () => {
  it('reads host:port=provider pairs, one per line or comma separated', () => {
    assert.deepEqual(parseProviderOverrides('127.0.0.1:5001=ecr\nREGISTRY.example.com = google, [::1]:5000=generic'), {
      '127.0.0.1:5001': 'ecr',
      'registry.example.com': 'google',
      '[::1]:5000': 'generic',
    });
    assert.deepEqual(parseProviderOverrides(''), {});
    assert.deepEqual(parseProviderOverrides(undefined), {});
  });
  const bad: Array<[string, RegExp]> = [
    ['127.0.0.1:5001', /not a host=provider pair/],
    ['=ecr', /not a host=provider pair/],
    ['host/path=ecr', /not a host=provider pair/],
    ['host=aws', /'aws' is not a registry provider/],
    ['host=', /'' is not a registry provider/],
  ];
  for (const [raw, re] of bad) {
    it(`refuses '${raw}' naming the input`, () => {
      assert.throws(
        () => parseProviderOverrides(raw),
        (err: unknown) => err instanceof InputError && err.input === 'registry-providers' && re.test(err.message),
      );
    });
  }
});

describe('isInsecureHost', () => {
  const cases: Array<[string, string[], boolean]> = [
    ['localhost', [], true],
    ['localhost:5000', [], true],
    ['127.0.0.1:5000', [], true],
    ['127.1.2.3', [], true],
    ['[::1]:5000', [], true],
    ['[::1]', [], true],
    ['::1', [], true],
    ['127.0.0.1.example.com', [], false],
    ['localhost.example.com:5000', [], false],
    ['10.0.0.5:5000', [], false],
    ['ghcr.io', [], false],
    ['registry.lan:5000', ['registry.lan:5000'], true],
    ['registry.lan:5000', ['registry.lan'], true],
    ['registry.lan:5000', ['registry.lan:6000'], false],
    ['registry.lan', ['http://Registry.LAN/'], true],
    ['other.lan', ['registry.lan', ''], false],
  ];
  for (const [host, list, expected] of cases) {
    it(`${host} with [${list.join(', ')}] → ${expected ? 'http' : 'https'}`, () =>
      assert.equal(isInsecureHost(host, list), expected));
  }
});

describe('manifestAcceptHeader', () => {
  it('asks for indexes and manifest lists before single manifests, OCI and Docker', () => {
    assert.equal(
      manifestAcceptHeader,
      'application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, ' +
        'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json',
    );
  });
  it('isDigest accepts sha256/sha512 hex digests only', () => {
    assert.ok(isDigest(`sha256:${'0'.repeat(64)}`));
    assert.ok(isDigest(`sha512:${'f'.repeat(128)}`));
    assert.ok(!isDigest(`sha256:${'0'.repeat(63)}`));
    assert.ok(!isDigest(`sha256:${'A'.repeat(64)}`));
    assert.ok(!isDigest(`md5:${'0'.repeat(32)}`));
    assert.ok(!isDigest(''));
  });
});

describe('parseAuthChallenge', () => {
  const cases: Array<[string, ReturnType<typeof parseAuthChallenge>]> = [
    ['Basic realm="Registry Realm"', { scheme: 'basic', realm: 'Registry Realm' }],
    ['basic realm=registry', { scheme: 'basic', realm: 'registry' }],
    ['Basic', { scheme: 'basic' }],
    [
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push"',
      {
        scheme: 'bearer',
        realm: 'https://auth.docker.io/token',
        service: 'registry.docker.io',
        scope: 'repository:samalba/my-app:pull,push',
      },
    ],
    [
      'Bearer realm="https://gcr.io/v2/token", service="gcr.io", scope="repository:p/app:pull"',
      { scheme: 'bearer', realm: 'https://gcr.io/v2/token', service: 'gcr.io', scope: 'repository:p/app:pull' },
    ],
    [
      'BEARER Realm="https://x/token",Service=x,error="insufficient_scope"',
      { scheme: 'bearer', realm: 'https://x/token', service: 'x' },
    ],
    ['Bearer realm="a\\"b"', { scheme: 'bearer', realm: 'a"b' }],
    [
      'Basic realm="basic", Bearer realm="https://t/token",service="s"',
      { scheme: 'bearer', realm: 'https://t/token', service: 's' },
    ],
    ['Negotiate, Basic realm="r"', { scheme: 'basic', realm: 'r' }],
    ['Negotiate', undefined],
    ['', undefined],
  ];
  for (const [header, expected] of cases) {
    it(`${JSON.stringify(header)}`, () => assert.deepEqual(parseAuthChallenge(header), expected));
  }
});
