import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { parseAgentConfig } from '../../src/lib/agent-config.ts';
import { ReplayCache, signWebhook, verifyWebhook, webhookSecret } from '../../src/lib/webhook.ts';
import { parseManifestInputs } from '../../src/settings/manifest.ts';
import { readWebhookSecret } from '../../src/stages/agent-webhook.ts';

const SECRET = 'a-shared-secret-of-32-characters';
const NOW = 1_800_000_000;
const body = Buffer.from(JSON.stringify({ location: 's3://bucket/manifests/channels/latest.json', channel: 'latest' }));

function verify(headers: Record<string, string>, b: Buffer = body, opts: { now?: number; cache?: ReplayCache } = {}) {
  return verifyWebhook({
    secret: SECRET,
    headers,
    body: b,
    nowSeconds: opts.now ?? NOW,
    windowSeconds: 300,
    cache: opts.cache ?? new ReplayCache(660),
  });
}

describe('webhook signatures', () => {
  it('signs lading-format requests over "<timestamp>.<body>" and verifies them', () => {
    const h = signWebhook(SECRET, body, { timestamp: NOW });
    const expected = createHmac('sha256', SECRET).update(`${NOW}.`).update(body).digest('hex');
    assert.equal(h['x-lading-signature'], `sha256=${expected}`);
    assert.equal(h['x-lading-timestamp'], String(NOW));
    const v = verify(h);
    assert.equal(v.ok, true);
    if (v.ok) assert.equal(v.body.location, 's3://bucket/manifests/channels/latest.json');
  });

  const cases: Array<[string, (h: Record<string, string>) => Record<string, string>, Buffer, number]> = [
    ['no signature header at all', () => ({}), body, 401],
    ['a signature that is not sha256=<hex>', (h) => ({ ...h, 'x-lading-signature': 'md5=abc' }), body, 401],
    ['a missing timestamp', (h) => ({ 'x-lading-signature': h['x-lading-signature']! }), body, 401],
    ['a wrong secret', () => signWebhook('another-secret-entirely-here', body, { timestamp: NOW }), body, 401],
    ['a body changed after signing', (h) => h, Buffer.from(`${body.toString()} `), 401],
    ['a timestamp changed after signing', (h) => ({ ...h, 'x-lading-timestamp': String(NOW + 1) }), body, 401],
    [
      'a signature in upper-case hex (still the right one)',
      (h) => ({ ...h, 'x-lading-signature': h['x-lading-signature']!.toUpperCase().replace('SHA256', 'sha256') }),
      body,
      0,
    ],
  ];
  for (const [name, mutate, b, status] of cases) {
    it(`${status === 0 ? 'accepts' : `refuses with ${status}`}: ${name}`, () => {
      const v = verify(mutate(signWebhook(SECRET, body, { timestamp: NOW })), b);
      if (status === 0) assert.equal(v.ok, true, JSON.stringify(v));
      else {
        assert.equal(v.ok, false);
        if (!v.ok) assert.equal(v.status, status, v.reason);
      }
    });
  }

  const windowCases: Array<[string, number, boolean]> = [
    ['on time', NOW, true],
    ['299 s old', NOW - 299, true],
    ['301 s old (stale)', NOW - 301, false],
    ['301 s in the future', NOW + 301, false],
    ['a day old', NOW - 86400, false],
  ];
  for (const [name, ts, ok] of windowCases) {
    it(`timestamp window: ${name} → ${ok ? 'accepted' : '401'}`, () => {
      const v = verify(signWebhook(SECRET, body, { timestamp: ts }));
      assert.equal(v.ok, ok);
      if (!v.ok) {
        assert.equal(v.status, 401);
        assert.match(v.reason, /window/);
      }
    });
  }

  it('refuses a replay of the same signed request (409), and a new delivery id reused', () => {
    const cache = new ReplayCache(660);
    const h = signWebhook(SECRET, body, { timestamp: NOW, delivery: 'd-1' });
    const first = verify(h, body, { cache });
    assert.equal(first.ok, true);
    if (first.ok) for (const k of first.replayKeys) cache.add(k, NOW);
    const again = verify(h, body, { cache, now: NOW + 5 });
    assert.deepEqual(again.ok ? 'ok' : again.status, 409);
    // Same delivery id, new timestamp (so a new signature): still a replay of delivery d-1.
    const sameId = verify(signWebhook(SECRET, body, { timestamp: NOW + 10, delivery: 'd-1' }), body, {
      cache,
      now: NOW + 10,
    });
    assert.deepEqual(sameId.ok ? 'ok' : sameId.status, 409);
    // Once the cache has forgotten it, the timestamp is long out of the window.
    assert.equal(cache.has(`id:d-1`, NOW + 661), false);
  });

  it('accepts GitHub X-Hub-Signature-256 over the body, with the timestamp inside the signed body', () => {
    const b = Buffer.from(JSON.stringify({ location: 'https://example.com/m.json', timestamp: NOW - 10 }));
    const h = signWebhook(SECRET, b, { timestamp: NOW, format: 'github', delivery: 'gh-1' });
    assert.equal(h['x-hub-signature-256'], `sha256=${createHmac('sha256', SECRET).update(b).digest('hex')}`);
    const v = verify(h, b);
    assert.equal(v.ok, true, JSON.stringify(v));
    if (v.ok) {
      assert.equal(v.format, 'github');
      assert.ok(v.replayKeys.includes('id:gh-1'));
    }
  });

  it('refuses a GitHub-format request without a signed timestamp (400), or with a stale one (401)', () => {
    const none = Buffer.from(JSON.stringify({ location: 'https://example.com/m.json' }));
    const v1 = verify(signWebhook(SECRET, none, { timestamp: NOW, format: 'github' }), none);
    assert.deepEqual(v1.ok ? 'ok' : v1.status, 400);
    const old = Buffer.from(
      JSON.stringify({ location: 'https://example.com/m.json', timestamp: '2020-01-01T00:00:00Z' }),
    );
    const v2 = verify(signWebhook(SECRET, old, { timestamp: NOW, format: 'github' }), old);
    assert.deepEqual(v2.ok ? 'ok' : v2.status, 401);
  });

  const bodies: Array<[string, string]> = [
    ['not JSON', 'deploy please'],
    ['a JSON array', '[]'],
    ['neither manifest nor location', '{"channel":"latest"}'],
    ['both manifest and location', '{"manifest":{},"location":"s3://b/k"}'],
    ['a manifest that is a string', '{"manifest":"x"}'],
    ['a non-string channel', '{"location":"s3://b/k","channel":1}'],
  ];
  for (const [name, text] of bodies) {
    it(`refuses a correctly signed but malformed body with 400: ${name}`, () => {
      const b = Buffer.from(text);
      const v = verify(signWebhook(SECRET, b, { timestamp: NOW }), b);
      assert.deepEqual(v.ok ? 'ok' : v.status, 400);
    });
  }

  it('the replay cache keeps at most maxEntries, forgetting the oldest first', () => {
    const cache = new ReplayCache(100, 3);
    for (const k of ['a', 'b', 'c', 'd']) cache.add(k, NOW);
    assert.equal(cache.has('a', NOW), false);
    assert.equal(cache.has('d', NOW), true);
  });
});

describe('webhook secrets: one rule for the agent and every sender', () => {
  it('takes 16 characters or more (one trailing newline dropped), and names the input otherwise', () => {
    assert.equal(webhookSecret('k', 'sixteen-chars-ok\n', 'h'), 'sixteen-chars-ok');
    assert.throws(() => webhookSecret('k', undefined, 'h'), /input 'k'.*holds no secret/);
    assert.throws(() => webhookSecret('k', '\n', 'h'), /holds no secret/);
    assert.throws(
      () => webhookSecret('k', 'fifteen-chars!!', 'h'),
      /holds 15 characters: a webhook secret has at least 16/,
    );
  });

  it("the manifest step's notify-secret is held to it before anything is built or sent", () => {
    const read = (secret: string) => (n: string) =>
      ({ 'notify-url': 'https://agent.example/hook', 'notify-secret': secret })[n];
    assert.throws(() => parseManifestInputs(read('short')), /input 'notify-secret'.*holds 5 characters/);
    assert.equal(parseManifestInputs(read('a-secret-long-enough')).notify?.secret, 'a-secret-long-enough');
  });

  it("the agent's webhook secret too", () => {
    const cfg = parseAgentConfig(
      'manifest: { store: /srv/artifacts }\nwebhook: { listen: "127.0.0.1:9000", secret-env: S }\n',
    );
    assert.throws(() => readWebhookSecret(cfg, { S: 'fifteen-chars!!' }), /webhook\.secret-env.*holds 15 characters/);
    assert.equal(readWebhookSecret(cfg, { S: 'sixteen-chars-ok' }), 'sixteen-chars-ok');
  });
});
