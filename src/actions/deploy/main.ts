import * as core from '@actions/core';
import { LadingError } from '../../lib/errors.ts';
import { parseChoice } from '../../lib/inputs.ts';
import { type DeployResult, runDeployStage, runReleasesStage, runRollbackStage } from '../../stages/deploy.ts';
import { sshConnector } from '../../stages/ssh-connector.ts';
import { coreReporter } from '../reporter.ts';
import { readInput, runAction, writeSummary } from '../run.ts';

await runAction(async () => {
  const command = parseChoice('command', readInput('command'), ['deploy', 'rollback', 'releases'] as const, 'deploy');
  const opts = { read: readInput, env: process.env, reporter: coreReporter, connector: sshConnector };
  if (command === 'releases') {
    const hosts = await runReleasesStage(opts);
    core.setOutput('hosts', JSON.stringify(hosts));
    await writeSummary((s) =>
      s.addHeading('lading: releases', 3).addTable([
        [
          { data: 'host', header: true },
          { data: 'current', header: true },
          { data: 'last deploys', header: true },
        ],
        ...hosts.map((h) => [
          h.host,
          h.current ?? h.error ?? '',
          h.history
            .slice(-3)
            .map((e) => `${e.time} ${e.action} ${e.primary} ${e.result}${e.actor ? ` by ${e.actor}` : ''}`)
            .join('<br>'),
        ]),
      ]),
    );
    for (const h of hosts) core.info(`${h.host}: current ${h.current ?? '(none)'}; ${h.releases.length} release(s)`);
    return;
  }
  const result: DeployResult = command === 'rollback' ? await runRollbackStage(opts) : await runDeployStage(opts);
  core.setOutput('release', result.release);
  core.setOutput('previous-release', result.hosts.find((h) => h.previous)?.previous ?? '');
  core.setOutput('hosts', JSON.stringify(result.hosts));
  core.setOutput('status', result.ok ? 'success' : 'failure');
  await writeSummary((s) =>
    s.addHeading(`lading: ${command} ${result.release}`, 3).addTable([
      [
        { data: 'host', header: true },
        { data: 'result', header: true },
        { data: 'release', header: true },
        { data: 'before', header: true },
        { data: 'seconds', header: true },
        { data: 'error', header: true },
      ],
      ...result.hosts.map((h) => [
        h.host,
        h.status,
        h.release ?? '',
        h.previous ?? '',
        String(h.seconds),
        h.error ?? '',
      ]),
    ]),
  );
  if (!result.ok) {
    const failed = result.hosts.filter((h) => h.status !== 'deployed');
    throw new LadingError(
      `${command} failed on ${failed.length} of ${result.hosts.length} host(s):\n${failed.map((h) => `  ${h.host}: ${h.status}${h.error ? ` — ${h.error}` : ''}`).join('\n')}`,
    );
  }
});
