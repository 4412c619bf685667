import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  parseProxySettings,
  parseRollingInput,
  renderMaintenance,
  renderRoutes,
  renderTlsPolicy,
  rollingServices,
  upstreamToken,
} from '../../src/lib/proxy.ts';

const file = (content: string) => ({ path: 'docker-compose.yml', content });

describe('rolling services: x-lading in the compose file and the rolling input', () => {
  it('reads x-lading of a service, with defaults (path /, port 80, health /, 1 replica, 10 s drain)', () => {
    const specs = rollingServices([
      file(
        'services:\n  web:\n    image: x\n    x-lading: {strategy: rolling, hosts: [Shop.Example.com]}\n  db:\n    image: y\n',
      ),
    ]);
    assert.deepEqual(specs, [
      { service: 'web', hosts: ['shop.example.com'], path: '/', port: 80, health: '/', replicas: 1, drain: 10 },
    ]);
  });
  it('later compose files override x-lading key by key; recreate (the default) is not rolling', () => {
    const specs = rollingServices([
      file(
        'services:\n  web:\n    x-lading: {strategy: rolling, hosts: [a.test], port: 8080}\n  api:\n    x-lading: {hosts: [b.test]}\n',
      ),
      file('services:\n  web:\n    x-lading: {port: 9000, drain: 3}\n'),
    ]);
    assert.deepEqual(
      specs.map((s) => [s.service, s.port, s.drain]),
      [['web', 9000, 3]],
    );
  });
  it('the input wins per service and adds services', () => {
    const specs = rollingServices(
      [file('services:\n  web:\n    x-lading: {strategy: rolling, hosts: [a.test]}\n  api: {image: x}\n')],
      parseRollingInput('web b.test port=81\napi c.test,d.test/api health=/up replicas=2 drain=0'),
    );
    assert.deepEqual(specs, [
      { service: 'api', hosts: ['c.test', 'd.test'], path: '/api', port: 80, health: '/up', replicas: 2, drain: 0 },
      { service: 'web', hosts: ['b.test'], path: '/', port: 81, health: '/', replicas: 1, drain: 10 },
    ]);
  });
  for (const [why, svc] of [
    ['publishes host ports', 'ports: ["8080:80"]'],
    ['sets container_name', 'container_name: web'],
    ['sets network_mode', 'network_mode: host'],
  ] as const) {
    it(`refuses a rolling service that ${why}`, () => {
      assert.throws(
        () =>
          rollingServices([
            file(`services:\n  web:\n    ${svc}\n    x-lading: {strategy: rolling, hosts: [a.test]}\n`),
          ]),
        new RegExp(why),
      );
    });
  }
  it('a container-only port (no host side) is fine', () => {
    assert.equal(
      rollingServices([
        file('services:\n  web:\n    ports: ["80"]\n    x-lading: {strategy: rolling, hosts: [a.test]}\n'),
      ]).length,
      1,
    );
  });
  for (const [raw, msg] of [
    ['web', /names no host/],
    ['web a.test port=0', /port '0'/],
    ['web a..test', /not a host name/],
    ['web a.test/api/*', /not a path prefix/],
    ['web a.test colour=red', /not port=/],
    ['web a.test\nweb b.test', /listed twice/],
    ['we$b a.test', /not a service name/],
  ] as const) {
    it(`the rolling input refuses ${JSON.stringify(raw)}`, () => assert.throws(() => parseRollingInput(raw), msg));
  }
  it('a service the compose files do not have is an input error', () => {
    assert.throws(
      () => rollingServices([file('services:\n  web: {image: x}\n')], parseRollingInput('api a.test')),
      /not in the compose files/,
    );
  });
  it('the rolling input never lets a value outside its alphabet through (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (raw) => {
        let specs;
        try {
          specs = parseRollingInput(raw);
        } catch {
          return true; // refused: fine
        }
        for (const s of specs) {
          assert.match(s.service, /^[A-Za-z0-9._-]+$/);
          for (const h of s.hosts) assert.match(h, /^[a-z0-9.*-]+$/);
          assert.match(s.path, /^\/[^\s"\\`$]*$/u);
          assert.match(s.health, /^\/[^\s"\\`$]*$/u);
        }
        return true;
      }),
      { seed: 15, numRuns: 500 },
    );
  });
});

describe('proxy routes as Caddy JSON', () => {
  const specs = parseRollingInput('web shop.test port=8080\napi shop.test/api');
  it('one route per service, longer path prefixes first, upstreams as tokens for the host', () => {
    const routes = JSON.parse(`[${renderRoutes('shop', specs).replaceAll(/"?@@up:[^@]+@@"?/g, '{"dial":"x"}')}]`);
    assert.deepEqual(
      routes.map((r: { '@id': string; match: unknown }) => [r['@id'], r.match]),
      [
        ['lading-shop-api', [{ host: ['shop.test'], path: ['/api', '/api/*'] }]],
        ['lading-shop-web', [{ host: ['shop.test'] }]],
      ],
    );
    assert.ok(renderRoutes('shop', specs).includes(upstreamToken('web', 8080)));
  });
  it('maintenance: a 503 for every host name of the app, with the page', () => {
    const r = JSON.parse(renderMaintenance('shop', specs, '<p>later</p>'));
    assert.deepEqual(r.match, [{ host: ['shop.test'] }]);
    assert.equal(r.handle[0].status_code, 503);
    assert.equal(r.handle[0].body, '<p>later</p>');
  });
  it('TLS: internal CA in tests, ACME (no issuer named) otherwise, nothing when off', () => {
    assert.deepEqual(JSON.parse(renderTlsPolicy(specs, 'internal')), {
      subjects: ['shop.test'],
      issuers: [{ module: 'internal' }],
    });
    assert.deepEqual(JSON.parse(renderTlsPolicy(specs, 'auto')), { subjects: ['shop.test'] });
    assert.equal(renderTlsPolicy(specs, 'off'), '');
  });
  it('proxy inputs are validated (ports map to the proxy :80/:443 only)', () => {
    const read = (m: Record<string, string>) => (n: string) => m[n];
    assert.deepEqual(parseProxySettings(read({ 'proxy-ports': '127.0.0.1:8080:80, 8443:443' })).ports, [
      '127.0.0.1:8080:80',
      '8443:443',
    ]);
    assert.throws(() => parseProxySettings(read({ 'proxy-ports': '2019:2019' })), /proxy-ports/);
    assert.throws(() => parseProxySettings(read({ 'proxy-tls': 'maybe' })), /proxy-tls/);
    assert.throws(() => parseProxySettings(read({ 'proxy-container': 'a b' })), /proxy-container/);
  });
});
