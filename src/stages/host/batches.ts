import type { Reporter } from '../../io/reporter.ts';
import { type HostSpec, planBatches } from '../../lib/deploy-plan.ts';
import type { DeploySettings, HostResult } from './types.ts';

/**
 * Runs `fn` for every host in batches of max-parallel; with fail-fast, hosts after a failed batch are skipped.
 * One host at a time logs live inside its group; hosts of a parallel batch log into a buffer each, printed as one
 * group when the host is done, so groups never interleave (a `started` line shows progress meanwhile).
 */
export async function forEachHost(
  settings: Pick<DeploySettings, 'hosts' | 'maxParallel' | 'failFast' | 'maxFailures' | 'canary'>,
  reporter: Reporter,
  title: (h: HostSpec) => string,
  fn: (h: HostSpec, reporter: Reporter) => Promise<HostResult>,
): Promise<HostResult[]> {
  const results: HostResult[] = [];
  let stopped = '';
  for (const b of planBatches(settings.hosts.length, settings)) {
    const batch = b.hosts.map((i) => settings.hosts[i]!);
    const failed = results.filter((r) => r.status === 'failed' || r.status === 'rolled-back').length;
    if (!stopped && failed > settings.maxFailures) {
      stopped = `${failed} host(s) failed, over the error budget of ${settings.maxFailures} (max-failures / fail-fast)`;
    }
    if (!stopped && failed > 0 && results.some((r, i) => i < settings.canary && r.status !== 'deployed')) {
      stopped = 'a canary host failed';
    }
    if (stopped) {
      for (const h of batch)
        results.push({ host: h.label, status: 'skipped', seconds: 0, error: `not started: ${stopped}` });
      continue;
    }
    if (batch.length === 1) {
      results.push(await reporter.group(title(batch[0]!), () => fn(batch[0]!, reporter)));
      continue;
    }
    const run = async (h: HostSpec) => {
      const buffer = bufferedReporter(reporter);
      reporter.info(`${title(h)}: started`);
      let result: HostResult | undefined;
      try {
        result = await fn(h, buffer.reporter);
        return result;
      } finally {
        await buffer.flush(`${title(h)}: ${result?.status ?? 'failed'} (${result?.seconds ?? 0} s)`);
      }
    };
    results.push(...(await Promise.all(batch.map(run))));
  }
  return results;
}

/** A Reporter that keeps lines until `flush` prints them as one group (secrets are registered at once). */
function bufferedReporter(parent: Reporter): { reporter: Reporter; flush: (title: string) => Promise<void> } {
  const lines: Array<{ warning: boolean; line: string }> = [];
  return {
    reporter: {
      info: (line) => lines.push({ warning: false, line }),
      warning: (line) => lines.push({ warning: true, line }),
      group: (name, fn) => {
        lines.push({ warning: false, line: `== ${name}` });
        return fn();
      },
      secret: (value) => parent.secret(value),
    },
    flush: (title) =>
      parent.group(title, async () => {
        for (const l of lines.splice(0)) {
          if (l.warning) parent.warning(l.line);
          else parent.info(l.line);
        }
      }),
  };
}
