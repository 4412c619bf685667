// `npm audit --omit=dev`, read for CI: a known vulnerability in a runtime dependency fails the run; a registry that
// refuses or cannot answer the audit (offline, a mirror without the advisories endpoint, HTTP 4xx/5xx) is a warning,
// never a pass that looks like a clean bill. Exit 0 = clean or unavailable (warned), 1 = vulnerabilities.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** What an `npm audit --json` run means: { verdict: 'clean' | 'vulnerable' | 'unavailable', detail }. */
export function classifyAudit(status, stdout) {
  let report;
  try {
    report = JSON.parse(stdout);
  } catch {
    return { verdict: 'unavailable', detail: `npm audit printed no JSON (exit ${status})` };
  }
  const counts = report?.metadata?.vulnerabilities;
  if (counts && typeof counts === 'object') {
    const found = Object.entries(counts).filter(([level, n]) => level !== 'total' && level !== 'info' && n > 0);
    if (found.length === 0) return { verdict: 'clean', detail: 'no known vulnerabilities in runtime dependencies' };
    const names = Object.keys(report.vulnerabilities ?? {}).join(', ');
    return {
      verdict: 'vulnerable',
      detail: `${found.map(([level, n]) => `${n} ${level}`).join(', ')}: ${names}`,
    };
  }
  const why = report?.message ?? report?.error?.summary ?? `exit ${status}`;
  return { verdict: 'unavailable', detail: `the registry did not answer the audit: ${why}` };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const res = spawnSync('npm', ['audit', '--omit=dev', '--json'], { encoding: 'utf8', timeout: 120_000 });
  const { verdict, detail } = classifyAudit(res.status, res.stdout ?? '');
  if (verdict === 'vulnerable') {
    console.error(
      `npm audit: ${detail}\n  run 'npm audit --omit=dev' and update the dependency (or pin a fixed version)`,
    );
    process.exit(1);
  }
  console.log(verdict === 'clean' ? `npm audit: ${detail}` : `warning: npm audit unavailable: ${detail}`);
}
