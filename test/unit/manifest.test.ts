import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  composeFile,
  createManifest,
  type Manifest,
  parseManifest,
  serializeManifest,
  validateManifest,
} from '../../src/lib/manifest.ts';
import { REGISTRY_PROVIDERS } from '../../src/lib/registry.ts';
import { parseObjectLocation, shownUrl } from '../../src/lib/store-location.ts';

const D = (c: string) => `sha256:${c.repeat(64)}`;
const H = (c: string) => c.repeat(64);
const SHA = '860c1904a1ce19322e91ac35af1ab07466440c37';

const valid = (): Manifest =>
  createManifest({
    source: {
      repository: 'acme/shop',
      ref: 'refs/heads/main',
      sha: SHA,
      run: 'https://github.com/acme/shop/actions/runs/1',
      created: '2026-11-24T01:02:03.456Z',
    },
    tags: ['main-860c190', 'latest'],
    primary: 'main-860c190',
    channel: 'latest',
    images: [
      {
        id: 'web',
        services: ['web'],
        name: 'europe-docker.pkg.dev/p/r/web',
        tags: ['main-860c190', 'latest'],
        digest: D('a'),
        ref: `europe-docker.pkg.dev/p/r/web@${D('a')}`,
        transport: { kind: 'registry', registry: 'europe-docker.pkg.dev', provider: 'google' },
      },
      {
        id: 'worker',
        services: ['worker', 'celery'],
        name: 'worker',
        tags: ['main-860c190'],
        digest: D('b'),
        ref: D('b'),
        transport: {
          kind: 's3',
          bucket: 'bkt',
          key: `worker/${H('c')}.tar.zst`,
          sha256: H('c'),
          size: 10,
          compression: 'zstd',
          mode: 'archive',
          aliases: ['worker-latest.tar.zst'],
        },
      },
      {
        id: 'cron',
        services: [],
        name: 'cron',
        tags: ['main-860c190'],
        digest: D('d'),
        ref: D('d'),
        transport: {
          kind: 'gcs',
          bucket: 'bkt',
          object: 'cron/x',
          sha256: H('e'),
          size: 1,
          compression: 'gzip',
          mode: 'layers',
          index: 'cron/index.json',
        },
      },
      {
        id: 'tool',
        services: [],
        name: 'tool',
        tags: ['main-860c190'],
        digest: D('f'),
        ref: D('f'),
        transport: {
          kind: 'file',
          path: '/srv/tool.tar',
          sha256: H('1'),
          size: 2,
          compression: 'none',
          mode: 'archive',
        },
      },
    ],
    compose: {
      project: 'shop',
      files: [composeFile('docker-compose.yml', 'services: {}\n')],
      env: { DOCKER_TAG: 'main-860c190' },
    },
  });

describe('manifest v1', () => {
  it('round-trips every transport and compose through serialize/parse', () => {
    const m = valid();
    const text = serializeManifest(m);
    assert.ok(text.startsWith('{\n  "schema": "lading.manifest/v1",\n  "source"'));
    assert.deepEqual(parseManifest(text), m);
  });
  it('the schema file is a JSON Schema with an $id', () => {
    const schema = JSON.parse(readFileSync(new URL('../../schema/manifest.v1.json', import.meta.url), 'utf8'));
    assert.match(schema.$id, /manifest\.v1\.json$/);
  });
  it('allows x- extensions', () => {
    assert.doesNotThrow(() => validateManifest({ ...valid(), 'x-team': { owner: 'ops' } }));
  });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const mutate = (f: (m: Record<string, any>) => void) => {
    const m = JSON.parse(JSON.stringify(valid()));
    f(m);
    return m;
  };
  const bad: Array<[string, unknown, RegExp]> = [
    ['a missing field', mutate((m) => delete m.source.sha), /source: sha is missing/],
    ['an unknown top-level field', mutate((m) => (m.extra = 1)), /\(top level\): unknown field 'extra'/],
    ['an unknown field in an image', mutate((m) => (m.images[0].foo = 1)), /images\[0\]: unknown field 'foo'/],
    [
      'an unknown transport kind',
      mutate((m) => (m.images[1].transport.kind = 'ftp')),
      /images\[1\]\.transport\.kind: "ftp" is not one of registry, s3, gcs, file/,
    ],
    [
      'a bad s3 transport field, reported for that kind only',
      mutate((m) => delete m.images[1].transport.sha256),
      /images\[1\]\.transport: sha256 is missing/,
    ],
    ['a bad digest', mutate((m) => (m.images[0].digest = 'sha256:xyz')), /images\[0\]\.digest: must match pattern/],
    [
      'ref that is not name@digest',
      mutate((m) => (m.images[0].ref = `other@${D('a')}`)),
      /images\[0\]\.ref: must be name@digest/,
    ],
    [
      'a registry-less image pinned by name@digest (it is loaded, never pulled: its ref is the image ID)',
      mutate((m) => (m.images[1].ref = `worker@${D('b')}`)),
      /images\[1\]\.ref: must be the image ID sha256:b{64} for a s3 transport/,
    ],
    ['a duplicate image id', mutate((m) => (m.images[1].id = 'web')), /images\[1\]\.id: 'web' is used twice/],
    [
      'a compose sha mismatch',
      mutate((m) => (m.compose.files[0].content = 'changed')),
      /compose\.files\[0\]\.sha256: does not match the content of docker-compose\.yml/,
    ],
    ['a bad tag', mutate((m) => (m.tags[1] = '-bad')), /tags\[1\]: must match pattern/],
    ['primary not first', mutate((m) => (m.primary = 'latest')), /primary: must be the first of tags/],
    [
      'a newer schema',
      mutate((m) => (m.schema = 'lading.manifest/v4')),
      /is lading\.manifest\/v4, written by a newer lading; this lading reads lading\.manifest\/v1 to lading\.manifest\/v3/,
    ],
    ['no schema', mutate((m) => delete m.schema), /is not a lading manifest \(schema is null/],
    ['an array', [], /is not a JSON object/],
  ];
  for (const [name, doc, err] of bad) {
    it(`refuses ${name}`, () => assert.throws(() => validateManifest(doc), err));
  }
  it('refuses text that is not JSON, naming the source', () => {
    assert.throws(() => parseManifest('{', 's3://b/m.json'), /s3:\/\/b\/m\.json is not JSON/);
  });
  for (const provider of REGISTRY_PROVIDERS) {
    it(`takes a registry image of provider ${provider} in a v1 and in a v2 manifest`, () => {
      const m = valid();
      m.images = [{ ...m.images[0]!, transport: { kind: 'registry', registry: 'europe-docker.pkg.dev', provider } }];
      assert.equal(validateManifest(structuredClone(m)).schema, 'lading.manifest/v1');
      m.schema = 'lading.manifest/v2';
      m.compose = { ...m.compose!, external: [{ path: '/srv/data', service: 'web' }] };
      assert.equal(validateManifest(m).schema, 'lading.manifest/v2');
    });
  }
  it('tells a newer manifest apart with an upgrade hint', () => {
    assert.throws(
      () => validateManifest(mutate((m) => (m.schema = 'lading.manifest/v4'))),
      (e: Error & { hint?: string }) => /upgrade lading/.test(e.hint ?? ''),
    );
  });
});

describe('manifest URLs in errors and logs', () => {
  it('shows a URL without its query, fragment or user info (signatures, passwords), parsable or not', () => {
    assert.equal(shownUrl('https://u:pw@bucket.example/m.json?X-Amz-Signature=abc#f'), 'https://bucket.example/m.json');
    assert.equal(shownUrl('https://u:pw@bad host/m.json?sig=abc'), 'https://bad host/m.json');
    assert.throws(
      () => parseObjectLocation('manifest', 'https://u:pw@bad host/m.json?sig=abc'),
      (e: Error) => /is not a valid URL/.test(e.message) && !/pw|sig=abc/.test(e.message),
    );
  });
});
