import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { checkFetchUrl } from '../../src/io/manifest-fetch.ts';
import { InputError, LadingError } from '../../src/lib/errors.ts';
import { parsePlatform } from '../../src/lib/extract-plan.ts';
import { isLoopbackHost, parseObjectLocation, shownUrl } from '../../src/lib/store-location.ts';

// Property tests for what users and servers hand lading as URLs and platforms: a manifest or source URL (signed,
// with a password, or just broken), an object location, a platform. Seeded and bounded here; a long campaign:
//   LADING_FUZZ_RUNS=100000 LADING_FUZZ_SEED=$RANDOM node scripts/run-tests.mjs test/unit/url-inputs.test.ts

const RUNS = Number(process.env.LADING_FUZZ_RUNS || 300);
const SEED = Number(process.env.LADING_FUZZ_SEED || 0x5ec7e7);
const opts = { numRuns: RUNS, seed: SEED };

/** A token no generated URL part can hold by chance: where it shows up in an error, a secret leaked. */
const SECRET = 'Zq9SECRETx7';
const token = fc.stringMatching(/^[A-Za-z0-9]{1,12}$/).map((s) => `${SECRET}${s}`);
const host = fc.oneof(
  fc.domain(),
  fc.constantFrom('localhost', '127.0.0.1', '127.8.9.10', '[::1]', '10.0.0.1', '[2001:db8::1]'),
);
const path = fc.array(fc.webSegment(), { maxLength: 4 }).map((s) => `/${s.join('/')}`);
/** A URL that carries a secret in its password, its query or its fragment (any of them, or all). */
const secretUrl = fc
  .record({
    scheme: fc.constantFrom('https', 'http', 'HTTPS', 'Http', 's3', 'gs'),
    user: fc.option(fc.stringMatching(/^[a-z]{1,8}$/), { nil: undefined }),
    password: fc.option(token, { nil: undefined }),
    host,
    port: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }),
    path,
    query: fc.option(token, { nil: undefined }),
    fragment: fc.option(token, { nil: undefined }),
  })
  .map((u) => {
    const auth =
      u.user !== undefined || u.password !== undefined ? `${u.user ?? ''}${u.password ? `:${u.password}` : ''}@` : '';
    return `${u.scheme}://${auth}${u.host}${u.port ? `:${u.port}` : ''}${u.path}${u.query ? `?X-Amz-Signature=${u.query}` : ''}${u.fragment ? `#${u.fragment}` : ''}`;
  });
/** Something a user may paste where a URL goes: a secret URL with junk around it, or any text. */
const pasted = fc.oneof(
  secretUrl,
  fc.tuple(fc.string({ maxLength: 6 }), secretUrl, fc.string({ maxLength: 6 })).map(([a, u, b]) => `${a}${u}${b}`),
  fc.string({ maxLength: 40 }),
);

const noSecret = (text: string) => !text.includes(SECRET);

describe('URLs and platforms users and servers give lading (property tests)', () => {
  it('shownUrl never shows a password, a query or a fragment, valid URL or not', () => {
    fc.assert(
      fc.property(pasted, (raw) => noSecret(shownUrl(raw))),
      opts,
    );
  });

  it('checkFetchUrl accepts https, and plain http to loopback only; its refusal shows no secret', () => {
    fc.assert(
      fc.property(pasted, (raw) => {
        let url: URL;
        try {
          url = checkFetchUrl(raw);
        } catch (err) {
          assert.ok(err instanceof LadingError, String(err));
          return noSecret(`${err.message} ${err.hint ?? ''}`);
        }
        return url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackHost(url.hostname));
      }),
      opts,
    );
  });

  it('an https/http object location is taken exactly when a fetch of it would be; errors show no secret', () => {
    fc.assert(
      fc.property(pasted, (raw) => {
        let fetchable = true;
        try {
          checkFetchUrl(raw.trim());
        } catch {
          fetchable = false;
        }
        try {
          const loc = parseObjectLocation('manifest', raw);
          // an http(s) location is one the fetch path takes; s3://, gs:// and paths are not URLs it fetches
          if (loc.kind === 'https') assert.ok(fetchable, `parsed but not fetchable: ${raw}`);
        } catch (err) {
          assert.ok(err instanceof InputError, String(err));
          assert.ok(noSecret(`${err.message} ${err.hint ?? ''}`), `a secret in: ${err.message}`);
          if (/^https?:\/\//i.test(raw.trim()) && /^https?:\/\//.test(raw.trim())) {
            assert.ok(!fetchable, `fetchable but refused as a location: ${raw}`);
          }
        }
        return true;
      }),
      opts,
    );
  });

  it('parsePlatform gives os/arch[/variant] of the allowed characters, or an InputError naming the input', () => {
    const part = fc.stringMatching(/^[a-z0-9_]{1,8}$/);
    const raw = fc.oneof(
      fc.tuple(part, part, fc.option(part, { nil: undefined })).map(([o, a, v]) => `${o}/${a}${v ? `/${v}` : ''}`),
      fc.string({ maxLength: 20 }),
    );
    fc.assert(
      fc.property(raw, (value) => {
        try {
          const p = parsePlatform(value, 'platform');
          assert.match(p.os, /^[a-z0-9]+$/);
          assert.match(p.architecture, /^[a-z0-9_]+$/);
          if (p.variant !== undefined) assert.match(p.variant, /^[a-z0-9]+$/);
          const given = value.trim() || 'linux/amd64';
          assert.equal([p.os, p.architecture, p.variant].filter(Boolean).join('/'), given);
        } catch (err) {
          assert.ok(err instanceof InputError && err.input === 'platform', String(err));
        }
        return true;
      }),
      opts,
    );
  });
});
