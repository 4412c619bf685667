import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { apiAtLeast, startIntervalOverride, startIntervalRefused } from '../../src/lib/health-start.ts';

const web = `services:
  web:
    image: web
    healthcheck:
      test: ["CMD", "true"]
      interval: 5s
  worker:
    image: worker
  timed:
    image: t
    healthcheck:
      test: ["CMD", "true"]
      start_period: 10s
      start_interval: 2s
  period:
    image: p
    healthcheck:
      test: ["CMD", "true"]
      start_period: 10s
  off:
    image: o
    healthcheck:
      disable: true
`;

describe('start_interval by engine version (docker API 1.44 = docker 25)', () => {
  it('compares API versions numerically; unreadable versions count as old', () => {
    assert.equal(apiAtLeast('1.44', '1.44'), true);
    assert.equal(apiAtLeast('1.45', '1.44'), true);
    assert.equal(apiAtLeast('2.0', '1.44'), true);
    assert.equal(apiAtLeast('1.41', '1.44'), false);
    assert.equal(apiAtLeast('1.9', '1.44'), false);
    assert.equal(apiAtLeast(undefined, '1.44'), false);
    assert.equal(apiAtLeast('docker 25', '1.44'), false);
  });

  it('an engine older than API 1.44 (docker 20.10 is 1.41) gets no override', () => {
    assert.equal(startIntervalOverride('1.41', [{ content: web }]), undefined);
    assert.equal(startIntervalOverride('1.43', [{ content: web }]), undefined);
    assert.equal(startIntervalOverride(undefined, [{ content: web }]), undefined);
  });

  it('API 1.44+: services with a healthcheck and no start_interval get 1s (and a 30s start period if none)', () => {
    const out = parse(startIntervalOverride('1.44', [{ content: web }])!) as unknown;
    assert.deepEqual(out, {
      services: {
        web: { healthcheck: { start_interval: '1s', start_period: '30s' } },
        period: { healthcheck: { start_interval: '1s' } },
      },
    });
  });

  it('honours start_interval as written, skips disabled and missing healthchecks, and can be limited to services', () => {
    const out = parse(startIntervalOverride('1.45', [{ content: web }], ['web', 'timed', 'off', 'worker'])!) as unknown;
    assert.deepEqual(out, { services: { web: { healthcheck: { start_interval: '1s', start_period: '30s' } } } });
    assert.equal(startIntervalOverride('1.45', [{ content: web }], ['timed', 'off', 'worker']), undefined);
  });

  it('merges healthchecks over several files (a later file may set start_interval)', () => {
    const extra = 'services:\n  web:\n    healthcheck:\n      start_interval: 3s\n';
    const out = parse(
      startIntervalOverride('1.44', [{ content: web }, { content: extra }], ['web', 'period'])!,
    ) as unknown;
    assert.deepEqual(out, { services: { period: { healthcheck: { start_interval: '1s' } } } });
  });

  it('names the services whose start_interval compose refuses on an engine older than API 1.44, none on 1.44+', () => {
    assert.deepEqual(startIntervalRefused('1.41', [{ content: web }]), ['timed']);
    assert.deepEqual(startIntervalRefused(undefined, [{ content: web }]), ['timed']);
    assert.deepEqual(startIntervalRefused('1.44', [{ content: web }]), []);
  });
});
