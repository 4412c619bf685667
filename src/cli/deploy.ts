import { describeError } from '../lib/errors.ts';
import { stderrReporter } from '../io/reporter.ts';
import { sshConnector } from '../io/ssh-connector.ts';
import { readDeployInputs, readHostSettings, readMaintenanceSettings } from '../settings/host.ts';
import type { DeployResult } from '../stages/host/types.ts';
import { runMaintenanceStage } from '../stages/deploy.ts';
import { stagesFor } from '../stages/targets.ts';
import { hereOrOverSsh } from './local.ts';
import type { Command } from './args.ts';
import { hostDeps } from '../stages/host/deps.ts';

function report(result: DeployResult, json: boolean | string | undefined): number {
  if (json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else {
    for (const h of result.hosts) {
      const [first, ...more] = (h.error ?? '').split('\n');
      process.stdout.write(`${h.host}\t${h.status}\t${h.release ?? ''}\t${h.seconds}s${first ? `\t${first}` : ''}\n`);
      // The rest of the error (a swarm's task errors and log lines) on indented lines after the host's line.
      for (const l of more) if (l.trim()) process.stdout.write(`  ${l}\n`);
    }
    for (const h of result.hooks ?? []) {
      process.stdout.write(
        `hook ${h.hook}\t${h.host}\t${h.ok ? 'ok' : 'failed'}\t${h.seconds}s${h.error ? `\t${h.error}` : ''}\n`,
      );
    }
  }
  return result.ok ? 0 : 1;
}

export const deployCommand: Command = {
  name: 'deploy',
  summary: 'deploy a manifest to hosts over SSH with docker-compose (lock, pull, up, health gate, rollback)',
  async run(read, flags) {
    const { settings, manifest } = await readDeployInputs(read, process.env);
    return report(
      await stagesFor(settings.target).deploy({
        settings,
        manifest,
        reporter: stderrReporter(),
        deps: hostDeps(sshConnector),
      }),
      flags.json,
    );
  },
};

export const rollbackCommand: Command = {
  name: 'rollback',
  summary: 'roll hosts back to an earlier release (previous, or a release id, tag or sha), without a build',
  async run(read, flags) {
    const host = await hereOrOverSsh(read);
    return report(await stagesFor(host.settings.target).rollback({ ...host, reporter: stderrReporter() }), flags.json);
  },
};

export const maintenanceCommand: Command = {
  name: 'maintenance',
  summary: 'maintenance on|off: the proxy answers 503 with a page for the app host names, or serves the app again',
  async run(read, flags) {
    const settings = await readHostSettings(read, process.env);
    const maintenance = await readMaintenanceSettings(read);
    return report(
      await runMaintenanceStage({ settings, maintenance, reporter: stderrReporter(), deps: hostDeps(sshConnector) }),
      flags.json,
    );
  },
};

export const releasesCommand: Command = {
  name: 'releases',
  summary: 'list the releases on each host, the current one, and who deployed what when',
  async run(read, flags) {
    const host = await hereOrOverSsh(read);
    const hosts = await stagesFor(host.settings.target).releases({ ...host, reporter: stderrReporter(true) });
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(hosts, null, 2)}\n`);
      return hosts.some((h) => h.error) ? 1 : 0;
    }
    for (const h of hosts) {
      process.stdout.write(`${h.host}: ${h.error ? describeError(h.error) : `current ${h.current ?? '(none)'}`}\n`);
      for (const e of h.history) {
        const mark = e.release === h.current && e.result === 'success' ? '*' : ' ';
        process.stdout.write(
          `  ${mark} ${e.time}  ${e.action.padEnd(13)} ${e.result.padEnd(7)} ${e.release}  ${e.actor ?? ''} ${e.run ?? ''}\n`,
        );
      }
    }
    return hosts.some((h) => h.error) ? 1 : 0;
  },
};
