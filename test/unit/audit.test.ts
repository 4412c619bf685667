import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
// @ts-expect-error: a plain .mjs script without types
import { classifyAudit } from '../../scripts/audit.mjs';

const counts = (high: number) =>
  JSON.stringify({
    vulnerabilities: high ? { 'bad-pkg': { severity: 'high' } } : {},
    metadata: { vulnerabilities: { info: 0, low: 0, moderate: 0, high, critical: 0, total: high } },
  });

describe('the CI audit: vulnerabilities fail, an unavailable registry warns', () => {
  for (const [name, status, out, verdict] of [
    ['a clean report', 0, counts(0), 'clean'],
    ['a known vulnerability', 1, counts(2), 'vulnerable'],
    [
      'the registry refuses the bulk endpoint (HTTP 405)',
      1,
      JSON.stringify({ message: '405 Method Not Allowed - POST …', statusCode: 405 }),
      'unavailable',
    ],
    ['no network (no JSON at all)', 1, '', 'unavailable'],
  ] as const) {
    it(`${name} → ${verdict}`, () => {
      const r = classifyAudit(status, out) as { verdict: string; detail: string };
      assert.equal(r.verdict, verdict);
      if (verdict === 'vulnerable') assert.match(r.detail, /2 high: bad-pkg/);
    });
  }
});
