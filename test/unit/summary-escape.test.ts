import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { writeSummary } from '../../src/actions/run.ts';

// Host error text (container logs) reaches the job summary: it must stay text, never HTML.
describe('the job summary escapes what hosts say', () => {
  it('a table cell or heading with HTML is written escaped; lading’s own <br> joins stay', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lading-summary-'));
    const file = join(dir, 'summary.md');
    writeFileSync(file, '');
    const saved = process.env.GITHUB_STEP_SUMMARY;
    process.env.GITHUB_STEP_SUMMARY = file;
    try {
      const evil = '<img src=x onerror="alert(1)"><script>steal()</script>';
      await writeSummary((s) =>
        s
          .addHeading(`deploy ${evil}`, 3)
          .addTable([[{ data: 'error', header: true }], [`unhealthy: ${evil}`], [`line one<br>line two`]]),
      );
      const html = readFileSync(file, 'utf8');
      assert.ok(!html.includes('<img') && !html.includes('<script'), html);
      assert.match(html, /&lt;img src=x onerror=&quot;alert\(1\)&quot;&gt;/);
      assert.match(html, /line one<br>line two/);
    } finally {
      if (saved === undefined) delete process.env.GITHUB_STEP_SUMMARY;
      else process.env.GITHUB_STEP_SUMMARY = saved;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
